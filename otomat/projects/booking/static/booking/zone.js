// Shows the slots in the browser's own time zone on the first visit (no ?tz= yet): picks the
// zone in the picker and reloads. Without JavaScript the page uses the account's, the lead's
// or the host's zone, and the picker still works.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("form[data-auto-zone]");
  if (!form || new URLSearchParams(location.search).has("tz")) return;
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return; }
  var select = form.querySelector("select[name=tz]");
  if (!zone || !select || select.value === zone) return;
  if (!Array.prototype.some.call(select.options, function (o) { return o.value === zone; })) return;
  select.value = zone;
  form.submit();
});
