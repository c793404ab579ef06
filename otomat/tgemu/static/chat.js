/* The chat page: a person talks to one bot through the control API.
   New, edited and deleted messages arrive through a long-polled change feed (after_rev). */
"use strict";

const username = decodeURIComponent(window.location.pathname.split("/").pop());
const botPath = "/control/bots/" + encodeURIComponent(username);
const IDENTITY_KEY = "tgemu.identity";

const messagesList = document.getElementById("messages");
const statusBox = document.getElementById("status");
const composer = document.getElementById("composer");
const textBox = document.getElementById("text");
const replyKeyboard = document.getElementById("reply-keyboard");
const chatSelect = document.getElementById("chat-select");

let identity = loadIdentity();
let chatId = identity.userId;
let rev = 0;
let pollGeneration = 0;
const messages = new Map(); // message_id -> latest message view
const nodes = new Map(); // message_id -> <li>

function loadIdentity() {
  try {
    const saved = JSON.parse(window.localStorage.getItem(IDENTITY_KEY) || "null");
    if (saved && Number.isInteger(saved.userId) && saved.userId > 0 && saved.firstName) return saved;
  } catch (_) {
    /* fall through to a fresh identity */
  }
  const fresh = { userId: 100000 + Math.floor(Math.random() * 900000), firstName: "Tester" };
  window.localStorage.setItem(IDENTITY_KEY, JSON.stringify(fresh));
  return fresh;
}

function setStatus(text) {
  statusBox.textContent = text || "";
}

/* ---------------------------------------------------------------- rendering */

const ENTITY_TAGS = {
  bold: "strong", italic: "em", underline: "u", strikethrough: "s", code: "code",
  pre: "pre", spoiler: "span", blockquote: "blockquote", expandable_blockquote: "blockquote",
};

/** Text with Telegram entities as DOM nodes. Offsets are UTF-16 units, like JS string indices. */
function renderText(text, entities) {
  const fragment = document.createDocumentFragment();
  const points = new Set([0, text.length]);
  for (const e of entities || []) {
    points.add(e.offset);
    points.add(Math.min(text.length, e.offset + e.length));
  }
  const sorted = [...points].filter((p) => p >= 0 && p <= text.length).sort((a, b) => a - b);
  for (let i = 0; i < sorted.length - 1; i++) {
    const start = sorted[i];
    const end = sorted[i + 1];
    const segment = text.slice(start, end);
    let node = document.createTextNode(segment);
    const active = (entities || []).filter((e) => e.offset <= start && e.offset + e.length >= end);
    for (const e of active) {
      node = wrapEntity(e, node, text.slice(e.offset, e.offset + e.length));
    }
    fragment.append(node);
  }
  return fragment;
}

function wrapEntity(entity, inner, entityText) {
  if (entity.type === "text_link" || entity.type === "url") {
    const href = safeUrl(entity.type === "url" ? entityText : entity.url);
    if (!href) return inner;
    return el("a", { href, target: "_blank", rel: "noopener noreferrer" }, inner);
  }
  if (entity.type === "bot_command") {
    // Like Telegram, tapping a command in a message sends it.
    return el("button", {
      type: "button", className: "linklike", onclick: () => sendText(entityText),
    }, inner);
  }
  if (entity.type === "mention" || entity.type === "hashtag") {
    return el("span", { className: "mention" }, inner);
  }
  const tag = ENTITY_TAGS[entity.type];
  if (!tag) return inner;
  return el(tag, { className: entity.type === "spoiler" ? "spoiler" : null }, inner);
}

function inlineKeyboard(message) {
  const markup = message.reply_markup;
  if (!markup || !Array.isArray(markup.inline_keyboard) || !markup.inline_keyboard.length) return null;
  const rows = markup.inline_keyboard.map((row) =>
    el("div", { className: "kb-row" }, ...row.map((button) => inlineButton(message, button))));
  return el("div", { className: "inline-keyboard", role: "group", "aria-label": "Message buttons" }, ...rows);
}

function inlineButton(message, button) {
  const label = String(button.text || "");
  if (typeof button.callback_data === "string") {
    return el("button", {
      type: "button", className: "kb-button",
      onclick: (event) => pressButton(message, button.callback_data, event.currentTarget),
    }, label);
  }
  if (typeof button.url === "string" && safeUrl(button.url)) {
    return el("a", {
      className: "kb-button", href: safeUrl(button.url), target: "_blank", rel: "noopener noreferrer",
    }, label + " ↗");
  }
  return el("button", {
    type: "button", className: "kb-button", disabled: true,
    title: "This kind of button is not supported by the emulator",
  }, label);
}

function formatTime(date) {
  return new Date(date * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function messageNode(message) {
  const fromBot = message.from_bot;
  const sender = message.from ? message.from.first_name : "";
  const isGroup = message.chat && message.chat.type !== "private";
  const bubble = el("div", { className: "bubble" });
  if (isGroup && !(message.from && message.from.id === identity.userId)) {
    bubble.append(el("div", { className: "sender" }, sender));
  }
  if (message.reply_to_message) {
    const quoted = message.reply_to_message;
    bubble.append(el("div", { className: "quote" },
      el("span", { className: "sender" }, quoted.from ? quoted.from.first_name : ""),
      el("span", {}, (quoted.text || "").slice(0, 120))));
  }
  bubble.append(el("div", { className: "text" }, renderText(message.text || "", message.entities)));
  bubble.append(el("div", { className: "meta" },
    message.edited ? "edited " : "", el("time", { datetime: new Date(message.date * 1000).toISOString() },
      formatTime(message.edit_date || message.date))));
  const keyboard = inlineKeyboard(message);
  const mine = !fromBot && message.from && message.from.id === identity.userId;
  return el("li", {
    className: "message " + (mine ? "mine" : "theirs") + (fromBot ? " from-bot" : ""),
    "data-message-id": message.message_id,
  }, bubble, keyboard);
}

function render(message) {
  rev = Math.max(rev, message.rev || 0);
  const existing = nodes.get(message.message_id);
  if (message.deleted) {
    if (existing) existing.remove();
    nodes.delete(message.message_id);
    messages.delete(message.message_id);
    updateReplyKeyboard();
    return;
  }
  messages.set(message.message_id, message);
  const node = messageNode(message);
  if (existing) {
    existing.replaceWith(node);
  } else {
    // Keep id order even if a change arrives for an older message.
    const after = [...nodes.keys()].filter((id) => id > message.message_id).sort((a, b) => a - b)[0];
    if (after !== undefined) messagesList.insertBefore(node, nodes.get(after));
    else messagesList.append(node);
    node.scrollIntoView({ block: "end" });
  }
  nodes.set(message.message_id, node);
  updateReplyKeyboard();
}

/** The reply keyboard is whatever the bot's latest keyboard-bearing message asked for. */
function updateReplyKeyboard() {
  const ids = [...messages.keys()].sort((a, b) => b - a);
  let markup = null;
  for (const id of ids) {
    const m = messages.get(id);
    if (!m.from_bot || !m.reply_markup) continue;
    if (m.reply_markup.keyboard || m.reply_markup.remove_keyboard) {
      markup = m.reply_markup.keyboard ? m.reply_markup : null;
      if (markup && markup.one_time_keyboard && m.used) markup = null;
      break;
    }
  }
  if (!markup) {
    replyKeyboard.hidden = true;
    replyKeyboard.replaceChildren();
    return;
  }
  const rows = markup.keyboard.map((row) => el("div", { className: "kb-row" }, ...row.map((button) =>
    el("button", {
      type: "button", className: "kb-button",
      onclick: () => {
        if (markup.one_time_keyboard) {
          const owner = ids.map((id) => messages.get(id)).find((m) => m.reply_markup === markup);
          if (owner) owner.used = true;
        }
        sendText(String(button.text));
      },
    }, String(button.text)))));
  replyKeyboard.replaceChildren(...rows);
  replyKeyboard.hidden = false;
  if (markup.input_field_placeholder) textBox.setAttribute("placeholder", markup.input_field_placeholder);
}

/* ------------------------------------------------------------------ actions */

async function sendText(text) {
  if (!text.trim()) return;
  try {
    const body = { user_id: identity.userId, first_name: identity.firstName, text };
    if (chatId !== identity.userId) body.chat_id = chatId;
    render(await api("POST", botPath + "/messages", body));
    setStatus("");
  } catch (error) {
    setStatus("Not sent: " + error.message);
  }
}

async function pressButton(message, data, button) {
  button.disabled = true;
  button.classList.add("pending");
  try {
    const query = await api("POST", botPath + "/callbacks", {
      user_id: identity.userId, first_name: identity.firstName,
      chat_id: message.chat.id, message_id: message.message_id, data,
    });
    const status = await api("GET", botPath + "/callbacks/" + encodeURIComponent(query.id) + "?wait=15");
    if (!status.answered) {
      showToast("The bot did not answer the button press.");
    } else if (status.answer.text) {
      if (status.answer.show_alert) showAlert(status.answer.text);
      else showToast(status.answer.text);
    }
  } catch (error) {
    showToast(error.message);
  } finally {
    button.disabled = false;
    button.classList.remove("pending");
  }
}

let toastTimer = null;
function showToast(text) {
  const toast = document.getElementById("toast");
  toast.textContent = text;
  toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { toast.hidden = true; }, 4000);
}

function showAlert(text) {
  const dialog = document.getElementById("alert-dialog");
  document.getElementById("alert-text").textContent = text;
  if (typeof dialog.showModal === "function") dialog.showModal();
  else window.alert(text);
}
document.getElementById("alert-ok").addEventListener("click", () => {
  document.getElementById("alert-dialog").close();
});

/* ------------------------------------------------------------ live updates */

async function poll(generation) {
  while (generation === pollGeneration) {
    try {
      const path = botPath + "/chats/" + chatId + "/messages?after_rev=" + rev + "&wait=25";
      const changes = await api("GET", path);
      if (generation !== pollGeneration) return;
      changes.forEach(render);
      setStatus("");
    } catch (error) {
      if (generation !== pollGeneration) return;
      setStatus(error.status === 404 ? "This bot was deleted." : "Connection problem, retrying…");
      if (error.status === 404) return;
      await sleep(2000);
    }
  }
}

function restart() {
  pollGeneration += 1;
  rev = 0;
  messages.clear();
  nodes.clear();
  messagesList.replaceChildren();
  updateReplyKeyboard();
  poll(pollGeneration);
}

async function loadChats() {
  const options = [el("option", { value: identity.userId }, "Private chat")];
  try {
    const groups = await api("GET", "/control/groups");
    for (const group of groups) {
      if (group.bot_usernames.some((u) => u.toLowerCase() === username.toLowerCase())) {
        options.push(el("option", { value: group.id }, "Group: " + group.title));
      }
    }
  } catch (_) {
    /* groups are optional */
  }
  chatSelect.replaceChildren(...options);
  chatSelect.value = String(chatId);
  if (chatSelect.value !== String(chatId)) chatId = identity.userId;
}

async function init() {
  try {
    const bot = await api("GET", botPath);
    document.getElementById("bot-title").textContent = bot.first_name;
    document.getElementById("bot-subtitle").textContent = "@" + bot.username;
    document.title = bot.first_name + " · Telegram emulator";
  } catch (error) {
    setStatus(error.message);
    return;
  }
  document.getElementById("user-id").value = identity.userId;
  document.getElementById("user-name").value = identity.firstName;
  document.getElementById("identity-summary").textContent = identity.firstName + " (" + identity.userId + ")";
  await loadChats();
  restart();
}

document.getElementById("identity-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const userId = Number(document.getElementById("user-id").value);
  const firstName = document.getElementById("user-name").value.trim();
  if (!Number.isInteger(userId) || userId <= 0 || !firstName) {
    setStatus("Enter a positive user id and a name.");
    return;
  }
  const selected = Number(chatSelect.value);
  identity = { userId, firstName };
  window.localStorage.setItem(IDENTITY_KEY, JSON.stringify(identity));
  chatId = selected > 0 ? userId : selected;
  document.getElementById("identity-summary").textContent = firstName + " (" + userId + ")";
  await loadChats();
  restart();
});

composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = textBox.value;
  textBox.value = "";
  sendText(text);
});

textBox.addEventListener("keydown", (event) => {
  // Enter sends, Shift+Enter starts a new line, as in Telegram's clients.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    composer.requestSubmit();
  }
});

init();
