/* The bot list and the "create a bot" form. */
"use strict";

const botsList = document.getElementById("bots");
const botsEmpty = document.getElementById("bots-empty");

function botItem(bot) {
  const chatUrl = "/chat/" + encodeURIComponent(bot.username);
  const tokenCode = el("code", { className: "token" }, bot.token);
  const remove = el("button", {
    type: "button",
    className: "small danger",
    "aria-label": "Delete @" + bot.username,
    onclick: async () => {
      if (!window.confirm("Delete @" + bot.username + " and its chats?")) return;
      try {
        await api("DELETE", "/control/bots/" + encodeURIComponent(bot.username));
        await loadBots();
      } catch (error) {
        window.alert(error.message);
      }
    },
  }, "Delete");
  return el("li", { className: "bot-item" },
    el("div", { className: "bot-main" },
      el("a", { href: chatUrl, className: "bot-name" }, bot.first_name),
      el("span", { className: "muted" }, " @" + bot.username),
      bot.webhook_url ? el("span", { className: "badge" }, "webhook") : null,
    ),
    el("details", { className: "bot-token" }, el("summary", {}, "Token"), tokenCode),
    el("div", { className: "bot-actions" },
      el("a", { href: chatUrl, className: "button small" }, "Open chat"), remove),
  );
}

const staffOnly = document.getElementById("staff-only");

/** Show the staff sections, or the "for staff only" notice when the emulator refuses (403). */
function showStaff(staff) {
  staffOnly.hidden = staff;
  document.getElementById("bots-section").hidden = !staff;
  document.getElementById("create-section").hidden = !staff;
}

async function loadBots() {
  try {
    const bots = await api("GET", "/control/bots");
    showStaff(true);
    botsList.replaceChildren(...bots.map(botItem));
    botsEmpty.hidden = bots.length > 0;
    return true;
  } catch (error) {
    if (error.status === 403) {
      showStaff(false);
      return false;
    }
    showStaff(true);
    botsList.replaceChildren(el("li", { className: "error" }, "Could not load bots: " + error.message));
    return true;
  }
}

document.getElementById("token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const tokenError = document.getElementById("token-error");
  tokenError.hidden = true;
  const value = String(new FormData(event.target).get("token") || "").trim();
  if (!value) return;
  window.sessionStorage.setItem(CONTROL_TOKEN_KEY, value);
  if (!(await loadBots())) {
    window.sessionStorage.removeItem(CONTROL_TOKEN_KEY);
    tokenError.textContent = "This is not the emulator's control token.";
    tokenError.hidden = false;
  }
});

const form = document.getElementById("create-form");
const errorBox = document.getElementById("create-error");
const resultBox = document.getElementById("create-result");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorBox.hidden = true;
  resultBox.hidden = true;
  const data = new FormData(form);
  try {
    const bot = await api("POST", "/control/bots", {
      username: String(data.get("username") || "").trim(),
      first_name: String(data.get("first_name") || "").trim(),
      can_read_all_group_messages: data.get("can_read_all_group_messages") === "on",
    });
    document.getElementById("result-name").textContent = bot.first_name + " (@" + bot.username + ")";
    document.getElementById("result-token").textContent = bot.token;
    document.getElementById("result-base").textContent = window.location.origin + "/bot" + bot.token + "/";
    document.getElementById("result-chat").setAttribute("href", "/chat/" + encodeURIComponent(bot.username));
    resultBox.hidden = false;
    form.reset();
    await loadBots();
  } catch (error) {
    errorBox.textContent = error.message;
    errorBox.hidden = false;
  }
});

document.getElementById("result-copy").addEventListener("click", async () => {
  const token = document.getElementById("result-token").textContent;
  try {
    await navigator.clipboard.writeText(token);
  } catch (_) {
    // The clipboard API needs a secure context; select the text so the user can copy it.
    const range = document.createRange();
    range.selectNodeContents(document.getElementById("result-token"));
    window.getSelection().removeAllRanges();
    window.getSelection().addRange(range);
  }
});

loadBots();
