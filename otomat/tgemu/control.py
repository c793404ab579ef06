"""The control API under ``/control/``: drive the emulator from tests, the platform and the web chat.

Requests and responses are JSON. Successful calls return the object itself (no envelope); errors
use the Bot API's envelope ``{"ok": false, "error_code": N, "description": "..."}`` with HTTP
status ``N``. Endpoints are documented with examples in ``docs/tgemu.md``.

Most of the control API is open: it is what the web chat uses. What reveals or destroys other
people's bots is for staff: listing bots (with their tokens), a bot's token, creating and deleting
bots, ``/control/reset``, bot settings, peeking at pending updates, the clock and the rate limits.
When the emulator has a control token (``--control-token`` or ``TGEMU_CONTROL_TOKEN``) those need
``Authorization: Bearer <token>``; without one (development mode) they are allowed only from a
direct loopback connection (no proxy headers), like the platform's own calls.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
from typing import Any

from aiohttp import web

from .errors import ApiError, bad_request
from .formatting import utf16_len
from .markup import find_callback_button
from .models import BotRecord, Conversation, GroupRecord
from .params import Params
from .state import EmulatorState

MAX_WAIT_SECONDS = 60.0
MAX_TEXT_LENGTH = 4096
STATE_KEY: web.AppKey[EmulatorState] = web.AppKey("tgemu_state", EmulatorState)
CONTROL_TOKEN_KEY: web.AppKey[str] = web.AppKey("tgemu_control_token", str)
# Set by proxies: a request carrying one came from somewhere else, whatever the socket says.
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-IP")
STAFF_ONLY = (
    "Forbidden: this needs the emulator's control token (or, in development mode without one, "
    "a direct connection from this machine)"
)

routes = web.RouteTableDef()


def _state(request: web.Request) -> EmulatorState:
    return request.app[STATE_KEY]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False))


async def _body(request: web.Request) -> Params:
    """The request's JSON object body as :class:`Params`; 400 if it is not a JSON object."""
    raw = await request.read()
    if not raw.strip():
        return Params({})
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request("request body must be a JSON object") from exc
    if not isinstance(data, dict):
        raise bad_request("request body must be a JSON object")
    return Params(data)


def is_staff(request: web.Request) -> bool:
    """Whether ``request`` may use the staff-only control endpoints (see the module docstring)."""
    token = request.app.get(CONTROL_TOKEN_KEY) or ""
    if token:
        header = request.headers.get("Authorization", "")
        scheme, _, supplied = header.partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(
            supplied.strip().encode(), token.encode()
        )
    if any(name in request.headers for name in PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def require_staff(request: web.Request) -> None:
    """Raise 403 unless :func:`is_staff`."""
    if not is_staff(request):
        raise ApiError(403, STAFF_ONLY)


def _bot(request: web.Request) -> BotRecord:
    username = request.match_info["username"]
    bot = _state(request).bot_by_username(username)
    if bot is None:
        raise ApiError(404, f"Not Found: bot @{username} does not exist")
    return bot


def _wait(request: web.Request) -> float:
    params = Params(request.query)
    value = params.number("wait") or 0.0
    if not 0 <= value <= MAX_WAIT_SECONDS:
        raise bad_request(f"wait must be between 0 and {MAX_WAIT_SECONDS:g} seconds")
    return value


def _required_int(params: Params, name: str) -> int:
    value = params.integer(name)
    if value is None:
        raise bad_request(f'field "{name}" is required')
    return value


def bot_view(state: EmulatorState, bot: BotRecord, *, token: bool = True) -> dict[str, Any]:
    """The control API's description of a bot; the token only for staff (``token=True``)."""
    return {
        "id": bot.id,
        "username": bot.username,
        "first_name": bot.first_name,
        **({"token": bot.token} if token else {}),
        "can_read_all_group_messages": bot.can_read_all_group_messages,
        "webhook_url": bot.webhook.url if bot.webhook else None,
        "pending_update_count": len(state.pending_updates(bot)),
        "commands": bot.commands.get('{"type": "default"}|', []),
        "supports_inline_queries": bot.supports_inline_queries,
        "inline_feedback": bot.inline_feedback,
        "welcome": bot.welcome,
    }


def group_view(state: EmulatorState, group: GroupRecord) -> dict[str, Any]:
    return {
        **group.chat_api(),
        "member_user_ids": list(group.member_user_ids),
        "bot_usernames": [state.bots[b].username for b in group.bot_ids if b in state.bots],
        "admin_bot_usernames": [
            state.bots[b].username for b in group.admin_bot_ids if b in state.bots
        ],
        "owner_user_id": group.owner_user_id,
    }


# --------------------------------------------------------------------------- health


@routes.get("/control/health")
async def health(request: web.Request) -> web.Response:
    return _json({"ok": True})


@routes.get("/control/access")
async def access(request: web.Request) -> web.Response:
    """Whether this client is staff here, so pages show or hide the bot list and tokens; and the
    platform's address (``OTOMAT_BASE_URL``, set by ``otomat run``), the only place besides
    relative paths a chat page's ``?back=`` link may lead."""
    mode = "token" if request.app.get(CONTROL_TOKEN_KEY) else "loopback"
    platform = os.environ.get("OTOMAT_BASE_URL", "").rstrip("/")
    return _json({"staff": is_staff(request), "mode": mode, "platform_url": platform})


@routes.post("/control/reset")
async def reset(request: web.Request) -> web.Response:
    require_staff(request)
    _state(request).reset()
    return _json({"ok": True})


# ----------------------------------------------------------------------------- bots


@routes.get("/control/bots")
async def list_bots(request: web.Request) -> web.Response:
    require_staff(request)
    state = _state(request)
    bots = sorted(state.bots.values(), key=lambda b: b.username.lower())
    return _json([bot_view(state, b) for b in bots])


WELCOME_TEXT_LIMITS = {"hint": 200, "back_label": 120}
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


def _welcome(params: Params) -> dict[str, Any]:
    """The optional ``welcome`` of a new bot: what its chat page says first and the way back
    (``{"hint": {lang: text}, "back": "/catalog/x/", "back_label": {lang: text}}``). Only staff
    (the platform) create bots, so a chat link cannot put words in the page. 400 on anything
    else than that shape."""
    raw = params.json_object("welcome", error='field "welcome" must be a JSON object')
    if not raw:
        return {}
    unknown = sorted(set(raw) - {"hint", "back", "back_label"})
    if unknown:
        raise bad_request(f'welcome: unknown field "{unknown[0]}"')
    welcome: dict[str, Any] = {}
    for name, limit in WELCOME_TEXT_LIMITS.items():
        texts = raw.get(name)
        if texts is None:
            continue
        if not isinstance(texts, dict):
            raise bad_request(f"welcome.{name} must be an object of language codes and texts")
        for lang, text in texts.items():
            if not _LANGUAGE_CODE.match(lang):
                raise bad_request(f'welcome.{name}: "{lang}" is not a language code')
            if not isinstance(text, str) or not text.strip() or len(text) > limit:
                raise bad_request(f"welcome.{name}.{lang} must be a text of 1-{limit} characters")
        welcome[name] = {lang: text.strip() for lang, text in texts.items()}
    back = raw.get("back")
    if back is not None:
        if not isinstance(back, str) or not back.strip() or len(back) > 2000:
            raise bad_request("welcome.back must be an address of at most 2000 characters")
        welcome["back"] = back.strip()
    return welcome


@routes.post("/control/bots")
async def create_bot(request: web.Request) -> web.Response:
    require_staff(request)
    state = _state(request)
    params = await _body(request)
    username = params.string("username", max_len=64)
    if not username:
        raise bad_request('field "username" is required')
    welcome = _welcome(params)
    bot = state.create_bot(
        username,
        params.string("first_name", max_len=64) or username,
        token=params.string("token", max_len=160),
        can_read_all_group_messages=params.boolean("can_read_all_group_messages"),
        welcome=welcome,
    )
    return _json(bot_view(state, bot), status=201)


@routes.get("/control/bots/{username}")
async def get_bot(request: web.Request) -> web.Response:
    """A bot's public description (its chat page uses it); staff also get the token."""
    return _json(bot_view(_state(request), _bot(request), token=is_staff(request)))


@routes.delete("/control/bots/{username}")
async def delete_bot(request: web.Request) -> web.Response:
    require_staff(request)
    _state(request).delete_bot(_bot(request))
    return _json({"ok": True})


@routes.get("/control/bots/{username}/updates")
async def peek_updates(request: web.Request) -> web.Response:
    """Pending updates, without confirming them (the bot still receives them)."""
    require_staff(request)
    state, bot = _state(request), _bot(request)
    return _json([u.update_api() for u in state.pending_updates(bot)])


# ------------------------------------------------------------------------- messages


def _group_for(state: EmulatorState, bot: BotRecord, chat_id: int) -> GroupRecord:
    group = state.groups.get(chat_id)
    if group is None:
        raise ApiError(404, f"Not Found: group {chat_id} does not exist")
    if bot.id not in group.bot_ids:
        raise bad_request(f"bot @{bot.username} is not a member of group {chat_id}")
    return group


@routes.post("/control/bots/{username}/messages")
async def user_message(request: web.Request) -> web.Response:
    """A user sends a text message to the bot (privately, or in a group with ``chat_id``)."""
    state, bot = _state(request), _bot(request)
    params = await _body(request)
    user_id = _required_int(params, "user_id")
    text = params.string("text")
    if text is None or not text.strip():
        raise bad_request("message text is empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise bad_request("message is too long")
    chat_id = params.integer("chat_id")
    group = None
    if chat_id is not None and chat_id != user_id:
        if chat_id > 0:
            raise bad_request("chat_id must be the user's own id or a group id")
        group = _group_for(state, bot, chat_id)
    reply_to = params.integer("reply_to_message_id")
    if reply_to is not None:
        # Checked before the user is created or renamed, so a failed call changes nothing.
        conv = state.conversations.get(state.conversation_key(bot, group.id if group else user_id))
        if conv is None or conv.live(reply_to) is None:
            raise bad_request("message to be replied not found")
    user = state.upsert_user(
        user_id,
        first_name=params.string("first_name", max_len=64),
        last_name=params.string("last_name", max_len=64),
        username=params.string("username", max_len=33),
        language_code=params.string("language_code", max_len=35),
    )
    conv, record = state.user_sends(bot, user, text, group=group, reply_to_message_id=reply_to)
    return _json(state.message_view(conv, record), status=201)


def _conversation(state: EmulatorState, bot: BotRecord, chat_id: int) -> Conversation | None:
    if chat_id < 0:
        _group_for(state, bot, chat_id)
    return state.conversations.get(state.conversation_key(bot, chat_id))


@routes.get("/control/bots/{username}/chats")
async def list_chats(request: web.Request) -> web.Response:
    """Chats the bot is in: its private chats and its groups."""
    state, bot = _state(request), _bot(request)
    result = []
    for conv in state.conversations.values():
        private_of_bot = conv.is_private and conv.key[1] == bot.id
        group = state.groups.get(conv.chat_id) if not conv.is_private else None
        if private_of_bot or (group is not None and bot.id in group.bot_ids):
            last = next(reversed(conv.messages.values()), None)
            result.append(
                {
                    "chat": state.chat_api(conv),
                    "message_count": len(conv.messages),
                    "last_message_date": last.date if last else None,
                }
            )
    return _json(result)


@routes.get("/control/bots/{username}/chats/{chat_id}/messages")
async def chat_messages(request: web.Request) -> web.Response:
    """Messages of one chat, both directions, with edits and deletions applied.

    ``after=<message_id>`` returns newer messages; with ``wait`` it waits for a newer message
    *from the bot*. ``after_rev=<rev>`` returns every message changed (sent, edited, deleted)
    since that revision and waits for any change; the web chat uses it.
    """
    state, bot = _state(request), _bot(request)
    try:
        chat_id = int(request.match_info["chat_id"])
    except ValueError as exc:
        raise bad_request("chat_id must be an integer") from exc
    query = Params(request.query)
    after = query.integer("after") or 0
    after_rev = query.integer("after_rev")
    wait = _wait(request)
    _conversation(state, bot, chat_id)  # 404/400 for a bad group before waiting

    def select() -> list[dict[str, Any]]:
        conv = _conversation(state, bot, chat_id)
        if conv is None:
            return []
        if after_rev is not None:
            changed = sorted(
                (m for m in conv.messages.values() if m.rev > after_rev), key=lambda m: m.rev
            )
            return [state.message_view(conv, m) for m in changed]
        return [state.message_view(conv, m) for m in conv.messages.values() if m.message_id > after]

    def ready() -> bool:
        if bot.id not in state.bots:
            return True
        conv = state.conversations.get(state.conversation_key(bot, chat_id))
        if conv is None:
            return False
        if after_rev is not None:
            return conv.rev > after_rev
        return any(
            m.message_id > after and m.sender_kind == "bot" and m.sender_id == bot.id
            for m in reversed(conv.messages.values())
        )

    if wait > 0:
        await state.wait_until(state.conversation_key(bot, chat_id), wait, ready)
        if bot.id not in state.bots:
            raise ApiError(404, f"Not Found: bot @{bot.username} does not exist")
    return _json(select())


@routes.patch("/control/bots/{username}/chats/{chat_id}/messages/{message_id}")
async def user_edits_message(request: web.Request) -> web.Response:
    """A user edits their own message: body ``user_id`` and the new ``text``.

    The bot gets an ``edited_message`` update; returns the message as the chat shows it.
    """
    state, bot = _state(request), _bot(request)
    try:
        chat_id = int(request.match_info["chat_id"])
        message_id = int(request.match_info["message_id"])
    except ValueError as exc:
        raise bad_request("chat_id and message_id must be integers") from exc
    params = await _body(request)
    user_id = _required_int(params, "user_id")
    text = params.string("text")
    if text is None:
        raise bad_request('field "text" is required')
    if len(text) > MAX_TEXT_LENGTH:
        raise bad_request("message is too long")
    if chat_id > 0 and chat_id != user_id:
        raise bad_request("chat_id must be the user's own id or a group id")
    conv = _conversation(state, bot, chat_id)
    record = conv.live(message_id) if conv is not None else None
    user = state.users.get(user_id)
    if conv is None or record is None or user is None:
        raise bad_request(f"message {message_id} not found in chat {chat_id}")
    state.user_edits(conv, record, user, text)
    return _json(state.message_view(conv, record))


# ------------------------------------------------------------------------ callbacks


@routes.post("/control/bots/{username}/callbacks")
async def press_button(request: web.Request) -> web.Response:
    """A user presses an inline button with ``data`` under message ``message_id``."""
    state, bot = _state(request), _bot(request)
    params = await _body(request)
    user_id = _required_int(params, "user_id")
    message_id = _required_int(params, "message_id")
    chat_id = params.integer("chat_id") or user_id
    data = params.string("data")
    if not data or utf16_len(data) > 64 or len(data.encode("utf-8")) > 64:
        raise bad_request('field "data" must be 1-64 bytes')
    if chat_id > 0 and chat_id != user_id:
        raise bad_request("chat_id must be the user's own id or a group id")
    group = _group_for(state, bot, chat_id) if chat_id < 0 else None
    conv = state.conversations.get(state.conversation_key(bot, chat_id))
    record = conv.live(message_id) if conv else None
    if conv is None or record is None:
        raise bad_request(f"message {message_id} not found in chat {chat_id}")
    sent_by_bot = record.sender_kind == "bot" and record.sender_id == bot.id
    if not sent_by_bot and not (record.inline_message_id and record.via_bot_id == bot.id):
        raise bad_request(f"message {message_id} was not sent by @{bot.username}")
    if not params.boolean("force") and not find_callback_button(record.inline_keyboard, data):
        raise bad_request(f"message {message_id} has no inline button with this callback_data")
    user = state.upsert_user(user_id, first_name=params.string("first_name", max_len=64))
    if group is not None and user.id not in group.member_user_ids:
        group.member_user_ids.append(user.id)
    callback = state.press_button(bot, user, conv, record, data)
    return _json(callback.status(), status=201)


@routes.get("/control/bots/{username}/callbacks/{query_id}")
async def callback_status(request: web.Request) -> web.Response:
    """A pressed button's status; ``wait`` waits for the bot's answerCallbackQuery."""
    state, bot = _state(request), _bot(request)
    query_id = request.match_info["query_id"]
    if query_id not in bot.callbacks:
        raise ApiError(404, "Not Found: unknown callback query")
    wait = _wait(request)
    if wait > 0:
        await state.wait_until(
            ("callback", query_id),
            wait,
            lambda: (cb := bot.callbacks.get(query_id)) is None or cb.answer is not None,
        )
    callback = bot.callbacks.get(query_id)
    if callback is None:
        raise ApiError(404, "Not Found: unknown callback query")
    return _json(callback.status())


# --------------------------------------------------------------------------- groups


@routes.get("/control/groups")
async def list_groups(request: web.Request) -> web.Response:
    state = _state(request)
    return _json([group_view(state, g) for g in state.groups.values()])


@routes.post("/control/groups")
async def create_group(request: web.Request) -> web.Response:
    state = _state(request)
    params = await _body(request)
    title = params.string("title", max_len=128)
    if not title:
        raise bad_request('field "title" is required')
    member_ids = params.json_list("member_user_ids") or []
    if not all(isinstance(m, int) and not isinstance(m, bool) for m in member_ids):
        raise bad_request('field "member_user_ids" must be an Array of Integers')
    usernames = params.json_list("bot_usernames") or []
    bots = []
    for name in usernames:
        bot = state.bot_by_username(name) if isinstance(name, str) else None
        if bot is None:
            raise bad_request(f"unknown bot {name!r} in bot_usernames")
        bots.append(bot)
    group = state.create_group(
        title,
        member_user_ids=member_ids,
        bots=bots,
        chat_type=params.string("type") or "group",
        username=params.string("username", max_len=33),
        chat_id=params.integer("id"),
    )
    return _json(group_view(state, group), status=201)


@routes.get("/control/groups/{chat_id}")
async def get_group(request: web.Request) -> web.Response:
    state = _state(request)
    try:
        group = state.groups.get(int(request.match_info["chat_id"]))
    except ValueError:
        group = None
    if group is None:
        raise ApiError(404, "Not Found: group does not exist")
    return _json(group_view(state, group))
