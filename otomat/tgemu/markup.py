"""Validation of ``reply_markup`` the way Telegram checks it.

Bots find out about a malformed keyboard from the 400 error here instead of from users who see
no buttons. The accepted markup is normalised (reply keyboard strings become ``{"text": ...}``) and
stored with the message; only inline keyboards are part of the returned Message object.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from .errors import bad_request

# Exactly one of these makes an inline button do something; a button with none is refused.
INLINE_ACTIONS = (
    "url", "callback_data", "web_app", "login_url", "switch_inline_query",
    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
    "callback_game", "pay",
)  # fmt: skip
MAX_BUTTONS = 100
MAX_CALLBACK_DATA_BYTES = 64
_PARSE_ERROR = "can't parse reply keyboard markup JSON object"


def is_allowed_button_url(url: str) -> bool:
    """http(s) and tg:// links only: anything else (``javascript:``) is refused."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme in ("http", "https"):
        return bool(parts.hostname)
    return parts.scheme == "tg"


def _inline_button(button: Any) -> dict[str, Any]:
    if not isinstance(button, dict):
        raise bad_request(
            "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
        )
    text = button.get("text")
    if not isinstance(text, str) or not text.strip():
        raise bad_request("can't parse inline keyboard button: Text must be non-empty")
    if not any(key in button for key in INLINE_ACTIONS):
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if "callback_data" in button:
        data = button["callback_data"]
        if (
            not isinstance(data, str)
            or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES
        ):
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button:
        url = button["url"]
        if not isinstance(url, str) or not is_allowed_button_url(url):
            raise bad_request("BUTTON_URL_INVALID")
    return dict(button)


def _keyboard_button(button: Any) -> dict[str, Any]:
    if isinstance(button, str):
        button = {"text": button}
    if not isinstance(button, dict):
        raise bad_request(
            "can't parse keyboard button: KeyboardButton must be a String or an Object"
        )
    text = button.get("text")
    if not isinstance(text, str) or not text.strip():
        raise bad_request("can't parse keyboard button: Text must be non-empty")
    return dict(button)


def _rows(markup: dict[str, Any], key: str, kind: str) -> list[list[Any]]:
    rows = markup[key]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(f'field "{key}" of the {kind} must be an Array of Arrays')
    if sum(len(row) for row in rows) > MAX_BUTTONS:
        raise bad_request("reply markup is too long")
    return rows


def validate_reply_markup(
    markup: dict[str, Any] | None, *, inline_only: bool = False
) -> dict[str, Any] | None:
    """Check and normalise one of the four markup kinds; ``None`` passes through.

    ``inline_only`` is for the edit methods, which accept only inline keyboards. Raises 400 with
    Telegram's wording for anything malformed.
    """
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request(_PARSE_ERROR)
    if "inline_keyboard" in markup:
        rows = _rows(markup, "inline_keyboard", "InlineKeyboardMarkup")
        return {"inline_keyboard": [[_inline_button(b) for b in row] for row in rows]}
    if inline_only:
        raise bad_request("reply markup must be an inline keyboard")
    if "keyboard" in markup:
        rows = _rows(markup, "keyboard", "ReplyKeyboardMarkup")
        result: dict[str, Any] = {"keyboard": [[_keyboard_button(b) for b in row] for row in rows]}
        for key in ("is_persistent", "resize_keyboard", "one_time_keyboard", "selective"):
            if isinstance(markup.get(key), bool):
                result[key] = markup[key]
        if isinstance(markup.get("input_field_placeholder"), str):
            result["input_field_placeholder"] = markup["input_field_placeholder"][:64]
        return result
    if markup.get("remove_keyboard") is True:
        return {"remove_keyboard": True}
    if markup.get("force_reply") is True:
        result = {"force_reply": True}
        if isinstance(markup.get("input_field_placeholder"), str):
            result["input_field_placeholder"] = markup["input_field_placeholder"][:64]
        return result
    raise bad_request(_PARSE_ERROR)


def find_callback_button(markup: dict[str, Any] | None, data: str) -> bool:
    """Whether an inline keyboard has a button whose ``callback_data`` equals ``data``."""
    if not markup or "inline_keyboard" not in markup:
        return False
    return any(
        isinstance(button, dict) and button.get("callback_data") == data
        for row in markup["inline_keyboard"]
        for button in row
    )
