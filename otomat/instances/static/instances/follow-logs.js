/* The instance page's log box shows the newest lines at the bottom and follows them: it opens
   scrolled to the end and stays there as htmx swaps in fresh lines, unless the reader scrolled
   up to read older ones (then it keeps their place). */
"use strict";
(function () {
  const SLACK = 24; // pixels from the bottom that still count as "at the bottom"
  let follow = true;
  let kept = 0;
  let current = null;

  function place() {
    const pre = document.querySelector("#logs pre.logs");
    if (!pre || pre === current) return;
    current = pre; // a fresh box (first load or swapped in by htmx)
    pre.scrollTop = follow ? pre.scrollHeight : kept;
    pre.addEventListener("scroll", () => {
      follow = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - SLACK;
      kept = pre.scrollTop;
    });
  }
  document.addEventListener("htmx:afterSettle", place);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", place);
  else place();
})();
