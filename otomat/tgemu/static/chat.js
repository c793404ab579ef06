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
const inlineResults = document.getElementById("inline-results");
const attachInput = document.getElementById("attach");

/* A trial's chat (the platform's "Try it now") shows the welcome its bot was created with: what
   to say first and the way back to the product, in the page's language. Only the platform sets
   it (creating a bot needs the control token), so no link can make this page say anything else:
   there is no ?hint= to read. A bot without a welcome may still be given ?back= (a sandbox's chat
   link). Either way the back link is only followed when it is a relative path (resolved against
   the platform's address, when the emulator knows it, else this page's) or an address on the
   platform itself: never elsewhere. */
const pageParams = new URLSearchParams(window.location.search);

function backTarget(raw, platformUrl) {
  if (typeof raw !== "string" || !raw || raw.length > 2000 || /[\s\\]/.test(raw)) return "";
  let platform = null;
  try {
    platform = platformUrl ? new URL(platformUrl) : null;
  } catch (_) {
    platform = null;
  }
  if (platform && !/^https?:$/.test(platform.protocol)) platform = null;
  let target;
  if (raw.startsWith("/") && !raw.startsWith("//")) {
    target = new URL(raw, platform ? platform.origin : window.location.origin);
  } else {
    try {
      target = new URL(raw);
    } catch (_) {
      return "";
    }
    if (!platform || target.origin !== platform.origin) return "";
  }
  return /^https?:$/.test(target.protocol) ? target.href : "";
}

function clip(value, limit) {
  const text = typeof value === "string" ? value.trim() : "";
  return text.length <= limit ? text : text.slice(0, limit - 1) + "…";
}

/** The welcome's text in the page's language (else English, else none). */
function welcomeText(texts) {
  if (!texts || typeof texts !== "object") return "";
  const lang = document.documentElement.lang || "en";
  return texts[lang] || texts.en || "";
}

// The bot list is for staff: others get no link to it, only the way back they were given.
async function showWelcome(bot) {
  let access = {};
  try {
    access = await api("GET", "/control/access");
  } catch (_) {
    access = {};
  }
  const welcome = bot.welcome || {};
  const back = document.querySelector(".chat-header a.back");
  const target = backTarget(welcome.back || pageParams.get("back"), access.platform_url || "");
  const label = clip(welcomeText(welcome.back_label), 120) || t("back");
  if (target && back) {
    back.href = target;
    back.setAttribute("aria-label", label);
    back.title = label;
    back.hidden = false;
  } else if (back && !access.staff) {
    back.hidden = true;
  }
  const hint = clip(welcomeText(welcome.hint), 200);
  const banner = document.getElementById("chat-hint");
  if (banner && (hint || target)) {
    const parts = [];
    if (hint) parts.push(el("span", {}, hint));
    if (hint.includes("/start")) {
      parts.push(el("button", {
        type: "button", className: "small primary", onclick: () => sendText("/start"),
      }, "/start"));
    }
    if (target) parts.push(el("a", { href: target, className: "hint-back" }, "← " + label));
    banner.replaceChildren(...parts);
    banner.hidden = false;
  }
  banner.dataset.ready = "1";
}

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
  return el("div", { className: "inline-keyboard", role: "group", "aria-label": t("message_buttons") }, ...rows);
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
    title: t("unsupported_button"),
  }, label);
}

/** A photo as an image, a document as a download link (both served by /control/files/);
    videos, audio and voice notes play in the page, static stickers show as images. */
function mediaNode(message) {
  const fileUrl = (file) => "/control/files/" + encodeURIComponent(file.file_id);
  if (message.video) {
    return el("video", { className: "video", src: fileUrl(message.video), controls: true, preload: "metadata" });
  }
  if (message.audio || message.voice) {
    const file = message.audio || message.voice;
    const label = message.audio ? [file.performer, file.title].filter(Boolean).join(" – ") || file.file_name || t("audio") : t("voice");
    return el("div", { className: "audio" }, el("span", {}, label),
      el("audio", { src: fileUrl(file), controls: true, preload: "metadata" }));
  }
  if (message.sticker) {
    const sticker = message.sticker;
    if (!sticker.is_animated && !sticker.is_video) {
      return el("img", { className: "sticker", src: fileUrl(sticker), alt: t("sticker"), width: 160, loading: "lazy" });
    }
    return el("span", { className: "badge" }, sticker.is_video ? t("video_sticker") : t("animated_sticker"));
  }
  if (Array.isArray(message.photo) && message.photo.length) {
    const size = message.photo[message.photo.length - 1];
    const src = "/control/files/" + encodeURIComponent(size.file_id);
    return el("a", { className: "photo", href: src, target: "_blank", rel: "noopener" },
      el("img", { src, alt: message.caption || t("photo"), width: size.width, height: size.height, loading: "lazy" }));
  }
  if (message.document) {
    const doc = message.document;
    const href = "/control/files/" + encodeURIComponent(doc.file_id);
    return el("a", { className: "document", href, download: doc.file_name || "file" },
      el("span", { className: "doc-icon", "aria-hidden": "true" }, fileBadge(doc.file_name)),
      el("span", {}, (doc.file_name || "file") + " · " + formatSize(doc.file_size || 0)));
  }
  return null;
}

/** A short file-type badge ("TXT", "PDF"); emoji icons need fonts many systems lack. */
function fileBadge(name) {
  const match = /\.([A-Za-z0-9]{1,4})$/.exec(name || "");
  return match ? match[1].toUpperCase() : "FILE";
}

function formatSize(bytes) {
  if (bytes < 1024) return bytes + " B";
  if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
  return (bytes / 1024 / 1024).toFixed(1) + " MB";
}

function formatTime(date) {
  return new Date(date * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function messageNode(message) {
  const fromBot = message.from_bot;
  // Channel posts are signed by the channel itself (sender_chat), not by a person.
  const sender = message.from ? message.from.first_name : (message.sender_chat ? message.sender_chat.title : "");
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
  if (message.via_bot) {
    bubble.append(el("div", { className: "via" }, t("via", { name: message.via_bot.username })));
  }
  if (message.forward_origin) {
    const origin = message.forward_origin;
    const who = origin.sender_user ? origin.sender_user.first_name
      : origin.chat ? origin.chat.title : origin.sender_user_name || "";
    bubble.append(el("div", { className: "via" }, t("forwarded_from", { name: who })));
  }
  const media = mediaNode(message);
  if (media) bubble.append(media);
  const body = media ? message.caption || "" : message.text || "";
  const entities = media ? message.caption_entities : message.entities;
  if (body) bubble.append(el("div", { className: "text" }, renderText(body, entities)));
  bubble.append(el("div", { className: "meta" },
    message.edited ? t("edited") + " " : "", el("time", { datetime: new Date(message.date * 1000).toISOString() },
      formatTime(message.edit_date || message.date))));
  const keyboard = inlineKeyboard(message);
  const mine = !fromBot && message.from && message.from.id === identity.userId;
  if (mine && !media && message.text) {
    bubble.append(el("button", {
      type: "button", className: "small edit-message", "aria-label": t("edit_this"),
      onclick: () => editMessage(message),
    }, t("edit")));
  }
  return el("li", {
    className: "message " + (mine ? "mine" : "theirs") + (fromBot ? " from-bot" : ""),
    "data-message-id": message.message_id,
  }, bubble, keyboard);
}

/** Edit one of your own messages; the bot gets an edited_message update. */
async function editMessage(message) {
  const text = window.prompt(t("edit_prompt"), message.text);
  if (text === null || text === message.text) return;
  try {
    const chatPath = botPath + "/chats/" + encodeURIComponent(message.chat.id);
    render(await api("PATCH", chatPath + "/messages/" + message.message_id, {
      user_id: identity.userId, text,
    }));
  } catch (error) {
    setStatus(t("not_edited", { error: error.message }));
  }
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
  if (channels.has(chatId)) {
    await postInChannel(text);
    return;
  }
  try {
    const body = { user_id: identity.userId, first_name: identity.firstName, text };
    if (chatId !== identity.userId) body.chat_id = chatId;
    render(await api("POST", botPath + "/messages", body));
    setStatus("");
  } catch (error) {
    setStatus(t("not_sent", { error: error.message }));
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
      showToast(t("no_answer_press"));
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

/** In a channel only its owner writes; the post reaches the bot as a channel_post. */
async function postInChannel(text) {
  const channel = channels.get(chatId);
  if (channel.owner_user_id !== identity.userId) {
    setStatus(t("channel_owner_only", { id: channel.owner_user_id }));
    return;
  }
  try {
    render(await api("POST", "/control/channels/" + chatId + "/posts", { text }));
    setStatus("");
  } catch (error) {
    setStatus(t("not_sent", { error: error.message }));
  }
}

/** Send a photo (images) or a document (anything else) from the attach button. */
async function sendFile(file) {
  if (channels.has(chatId)) {
    setStatus(t("no_files_in_channels"));
    return;
  }
  const form = new FormData();
  form.append("user_id", String(identity.userId));
  form.append("first_name", identity.firstName);
  form.append("kind", /^image\/(png|jpeg|gif|webp)$/.test(file.type) ? "photo" : "document");
  if (chatId !== identity.userId) form.append("chat_id", String(chatId));
  const caption = textBox.value.trim();
  if (caption && inlineQueryText(caption) === null) {
    form.append("caption", caption);
    textBox.value = "";
  }
  form.append("file", file, file.name);
  setStatus(t("uploading", { name: file.name }));
  try {
    const response = await fetch(botPath + "/files", { method: "POST", body: form });
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new Error(data && data.description ? data.description : response.statusText);
    render(data);
    setStatus("");
  } catch (error) {
    setStatus(t("not_sent", { error: error.message }));
  }
}

/* ------------------------------------------------------------ inline mode */

let inlineTimer = null;
let inlineGeneration = 0;

/** The query when the composer holds "@this_bot query", else null. */
function inlineQueryText(text) {
  const prefix = "@" + username.toLowerCase();
  const lower = text.toLowerCase();
  if (lower === prefix) return "";
  if (lower.startsWith(prefix + " ")) return text.slice(prefix.length + 1);
  return null;
}

function hideInlineResults() {
  inlineResults.hidden = true;
  inlineResults.replaceChildren();
}

function scheduleInlineQuery() {
  clearTimeout(inlineTimer);
  const query = inlineQueryText(textBox.value);
  if (query === null) {
    inlineGeneration += 1;
    hideInlineResults();
    return;
  }
  inlineTimer = setTimeout(() => runInlineQuery(query), 350);
}

async function runInlineQuery(query) {
  const generation = ++inlineGeneration;
  inlineResults.hidden = false;
  inlineResults.replaceChildren(el("div", { className: "inline-note" }, t("asking", { name: username })));
  try {
    const body = { user_id: identity.userId, first_name: identity.firstName, query };
    if (chatId !== identity.userId) body.chat_id = chatId;
    const started = await api("POST", botPath + "/inline_queries", body);
    const status = await api("GET", botPath + "/inline_queries/" + encodeURIComponent(started.id) + "?wait=10");
    if (generation !== inlineGeneration) return;
    if (!status.answered) {
      inlineResults.replaceChildren(el("div", { className: "inline-note" }, t("no_answer")));
      return;
    }
    const results = status.answer.results || [];
    if (!results.length) {
      inlineResults.replaceChildren(el("div", { className: "inline-note" }, t("no_results")));
      return;
    }
    inlineResults.replaceChildren(...results.map((result) => inlineResultNode(started.id, result)));
  } catch (error) {
    if (generation === inlineGeneration) {
      inlineResults.replaceChildren(el("div", { className: "inline-note" }, error.message));
    }
  }
}

function inlineResultNode(queryId, result) {
  const title = result.title || (result.type === "photo" ? t("photo") : result.type);
  const description = result.description || result.caption ||
    (result.input_message_content && result.input_message_content.message_text) || "";
  let thumb = null;
  if (result.type === "photo" && result.photo_file_id) {
    thumb = el("img", { className: "inline-thumb", alt: "", src: "/control/files/" + encodeURIComponent(result.photo_file_id) });
  } else {
    thumb = el("span", { className: "inline-thumb placeholder", "aria-hidden": "true" },
      String(result.title || result.type || "?").trim().charAt(0).toUpperCase());
  }
  return el("button", {
    type: "button", className: "inline-result", role: "option",
    onclick: () => chooseInlineResult(queryId, result.id),
  }, thumb, el("span", { className: "inline-text" },
    el("strong", {}, String(title)), el("span", { className: "muted" }, String(description).slice(0, 140))));
}

async function chooseInlineResult(queryId, resultId) {
  try {
    const body = { result_id: resultId, chat_id: chatId };
    render(await api("POST", botPath + "/inline_queries/" + encodeURIComponent(queryId) + "/choose", body));
    textBox.value = "";
    inlineGeneration += 1;
    hideInlineResults();
    setStatus("");
  } catch (error) {
    setStatus(t("not_sent", { error: error.message }));
  }
}

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
      setStatus(error.status === 404 ? t("bot_deleted") : t("retrying"));
      if (error.status === 404) return;
      await sleep(2000);
    }
  }
}

/** The header's subtitle names the chat being shown (private chat or a group's title). */
function showChatName() {
  const option = [...chatSelect.options].find((o) => o.value === String(chatId));
  const name = chatId === identity.userId || !option ? t("private_chat_lower") : option.textContent;
  document.getElementById("bot-subtitle").textContent = "@" + username + " · " + name;
}

function restart() {
  showChatName();
  pollGeneration += 1;
  rev = 0;
  messages.clear();
  nodes.clear();
  messagesList.replaceChildren();
  updateReplyKeyboard();
  poll(pollGeneration);
}

const channels = new Map(); // chat id -> channel view, for the channels this bot is in

async function loadChats() {
  const options = [el("option", { value: identity.userId }, t("private_chat"))];
  channels.clear();
  try {
    const groups = await api("GET", "/control/groups");
    for (const group of groups) {
      if (!group.bot_usernames.some((u) => u.toLowerCase() === username.toLowerCase())) continue;
      if (group.type === "channel") {
        channels.set(group.id, group);
        options.push(el("option", { value: group.id }, t("channel", { title: group.title })));
      } else {
        options.push(el("option", { value: group.id }, t("group", { title: group.title })));
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
    document.title = bot.first_name + " · " + t("emulator");
    showWelcome(bot);
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
    setStatus(t("bad_identity"));
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
  inlineGeneration += 1;
  hideInlineResults();
  sendText(text);
});

textBox.addEventListener("input", scheduleInlineQuery);

attachInput.addEventListener("change", () => {
  const file = attachInput.files && attachInput.files[0];
  attachInput.value = "";
  if (file) sendFile(file);
});

chatSelect.addEventListener("change", () => {
  const selected = Number(chatSelect.value);
  chatId = selected > 0 ? identity.userId : selected;
  restart();
});

document.getElementById("group-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const titleBox = document.getElementById("group-title");
  const title = titleBox.value.trim();
  if (!title) return;
  const asChannel = document.getElementById("group-is-channel").checked;
  try {
    const group = asChannel
      ? await api("POST", "/control/channels", {
        title, owner_user_id: identity.userId, owner_first_name: identity.firstName,
        bot_usernames: [username],
      })
      : await api("POST", "/control/groups", {
        title, member_user_ids: [identity.userId], bot_usernames: [username],
      });
    titleBox.value = "";
    document.querySelector("details.identity").open = false; // back to the conversation
    chatId = group.id;
    await loadChats();
    restart();
    setStatus(asChannel
      ? t("created_channel", { title: group.title })
      : t("created_group", { title: group.title }));
  } catch (error) {
    setStatus(t("group_not_created", { error: error.message }));
  }
});

textBox.addEventListener("keydown", (event) => {
  // Enter sends, Shift+Enter starts a new line, as in Telegram's clients.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    composer.requestSubmit();
  }
});

init();
