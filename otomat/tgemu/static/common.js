/* Shared helpers for the emulator pages. Every string from bots or users is put into the page
   with textContent or as an attribute value via setAttribute, never through innerHTML. */
"use strict";

const CONTROL_TOKEN_KEY = "tgemu.controlToken";

/* The page's texts in its language, handed over by the server (otomat/tgemu/i18n.py) in
   <meta name="tgemu-texts">; pages without it (the staff's bot list) stay in English. */
const PAGE_TEXTS = (() => {
  const meta = document.querySelector('meta[name="tgemu-texts"]');
  try {
    return meta ? JSON.parse(meta.getAttribute("content") || "{}") : {};
  } catch (_) {
    return {};
  }
})();

/** The text ``key`` with its {name} values filled in: t("not_sent", {error: "..."}). */
function t(key, values, fallback) {
  let text = typeof PAGE_TEXTS[key] === "string" ? PAGE_TEXTS[key] : (fallback || key);
  for (const [name, value] of Object.entries(values || {})) {
    text = text.split("{" + name + "}").join(String(value));
  }
  return text;
}

/** The staff control token typed on the bot list page (kept for this browser tab only). */
function controlToken() {
  try {
    return window.sessionStorage.getItem(CONTROL_TOKEN_KEY) || "";
  } catch (_) {
    return "";
  }
}

/** Call the control API; resolves with the JSON body or rejects with the error description. */
async function api(method, path, body) {
  const options = { method, headers: {} };
  const token = controlToken();
  if (token) options.headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const description = data && data.description ? data.description : response.statusText;
    const error = new Error(description);
    error.status = response.status;
    throw error;
  }
  return data;
}

/** Create an element: el("a", {href: "..."}, "text", otherNode). Text children become text nodes. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "className") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Only web links are followed; javascript: and other schemes are rendered as plain text. */
function safeUrl(url) {
  try {
    const parsed = new URL(url, window.location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch (_) {
    return null;
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
