"""Inline mode: ``inline_query`` updates, ``answerInlineQuery`` and chosen results.

A person types "@bot query" (control API ``POST /control/bots/<username>/inline_queries``, or the
web chat's composer); the bot gets an ``inline_query`` update and must answer within 10 seconds of
emulator time, once, as on Telegram. Choosing a result posts it into the chat as the person's
message with ``via_bot``, and sends ``chosen_inline_result`` when the bot has inline feedback on
(BotFather's /setinlinefeedback; ``PATCH /control/bots/<username>`` here).

Results of type ``article`` and ``photo`` (by ``photo_url`` or a cached ``photo_file_id``) are
fully emulated; other types are validated for ``type`` and ``id`` and post their title as text.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from .botapi import Call, method
from .control import _body, _bot, _json, _required_int, _state, _wait
from .errors import ApiError, bad_request
from .files import WRONG_FILE_ID
from .formatting import clean_entities, detect_entities, merge_entities, render_text
from .markup import validate_reply_markup
from .models import BotRecord, GroupRecord, InlineQueryRecord, UserRecord
from .state import EmulatorState

MAX_RESULTS = 50
MAX_QUERY_LENGTH = 256
TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
RESULT_TYPES = frozenset(
    {"article", "photo", "gif", "mpeg4_gif", "video", "audio", "voice", "document", "location",
     "venue", "contact", "game", "sticker"}
)  # fmt: skip

routes = web.RouteTableDef()


def _parse_error(field: str, kind: str) -> ApiError:
    return bad_request(f'can\'t parse inline query result: Field "{field}" must be of type {kind}')


def _message_content(content: Any) -> dict[str, Any]:
    """Validate an InputTextMessageContent; returns it with text and entities resolved."""
    if not isinstance(content, dict):
        raise _parse_error("input_message_content", "Object")
    text = content.get("message_text")
    if not isinstance(text, str) or not text.strip():
        raise bad_request("MESSAGE_EMPTY")
    parse_mode = content.get("parse_mode")
    if parse_mode:
        plain, entities = render_text(text, str(parse_mode))
    elif isinstance(content.get("entities"), list):
        plain = text
        entities = merge_entities(clean_entities(content["entities"], text), detect_entities(text))
    else:
        plain, entities = render_text(text, None)
    if len(plain) > 4096:
        raise bad_request("MESSAGE_TOO_LONG")
    return {"text": plain, "entities": entities}


def validate_results(state: EmulatorState, results: Any) -> list[dict[str, Any]]:
    """Check answerInlineQuery's ``results`` the way Telegram does; returns them unchanged."""
    if not isinstance(results, list):
        raise bad_request("can't parse inline query results JSON object")
    if len(results) > MAX_RESULTS:
        raise bad_request("RESULTS_TOO_MUCH")
    seen: set[str] = set()
    for result in results:
        if not isinstance(result, dict):
            raise bad_request("can't parse inline query result")
        kind = result.get("type")
        if not isinstance(kind, str) or kind.lower() not in RESULT_TYPES:
            raise bad_request("RESULT_TYPE_INVALID")
        result_id = result.get("id")
        if not isinstance(result_id, str):
            raise _parse_error("id", "String")
        if not 1 <= len(result_id.encode("utf-8")) <= 64:
            raise bad_request("RESULT_ID_INVALID")
        if result_id in seen:
            raise bad_request("RESULT_ID_DUPLICATE")
        seen.add(result_id)
        if "reply_markup" in result:
            validate_reply_markup(result["reply_markup"], inline_only=True)
        content = result.get("input_message_content")
        if kind == "article":
            if not isinstance(result.get("title"), str) or not result["title"].strip():
                raise _parse_error("title", "String")
            _message_content(content)
        elif kind == "photo":
            if content is not None:
                _message_content(content)
            file_id = result.get("photo_file_id")
            if file_id is not None:
                stored = state.files.get(file_id) if isinstance(file_id, str) else None
                if stored is None or stored.kind != "photo":
                    raise bad_request(WRONG_FILE_ID)
            else:
                if not isinstance(result.get("photo_url"), str):
                    raise _parse_error("photo_url", "String")
                if not isinstance(result.get("thumbnail_url"), str):
                    raise _parse_error("thumbnail_url", "String")
            caption = result.get("caption")
            if caption is not None and (not isinstance(caption, str) or len(caption) > 1024):
                raise bad_request("MEDIA_CAPTION_TOO_LONG")
        elif content is not None:
            _message_content(content)
    return results


@method("answerInlineQuery")
async def answer_inline_query(call: Call) -> bool:
    p, state = call.params, call.state
    query_id = p.string("inline_query_id")
    results = validate_results(
        state, p.json_value("results", error="can't parse inline query results JSON object")
    )
    cache_time = p.integer("cache_time")
    if cache_time is not None and cache_time < 0:
        raise bad_request("cache_time must be non-negative")
    is_personal = p.boolean("is_personal")
    next_offset = p.string("next_offset") or ""
    if len(next_offset.encode("utf-8")) > 64:
        raise bad_request("NEXT_OFFSET_INVALID")
    button = p.json_object("button", error="can't parse InlineQueryResultsButton JSON object")
    query = call.bot.inline_queries.get(query_id or "")
    too_old = query is not None and (
        state.time() - query.created > state.limits.inline_query_ttl_seconds
    )
    if query is None or query.answer is not None or too_old:
        raise bad_request(TOO_OLD)
    query.answer = {
        "results": results,
        "cache_time": 300 if cache_time is None else cache_time,  # Telegram's default
        "is_personal": is_personal,
        "next_offset": next_offset,
        "button": button,
    }
    state._notify(("inline", query.id))
    return True


# ------------------------------------------------------------------ state operations


def start_query(
    state: EmulatorState,
    bot: BotRecord,
    user: UserRecord,
    query: str,
    offset: str,
    group: GroupRecord | None,
) -> InlineQueryRecord:
    """A person types "@bot ``query``"; the bot gets an ``inline_query`` update."""
    if group is None:
        chat_type, chat_id = "sender", user.id
    else:
        chat_type, chat_id = group.type, group.id
    record = InlineQueryRecord(
        id=str(secrets.randbits(63)),
        user_id=user.id,
        query=query,
        offset=offset,
        chat_type=chat_type,
        chat_id=chat_id,
        created=state.time(),
    )
    bot.inline_queries[record.id] = record
    while len(bot.inline_queries) > state.limits.max_inline_queries_per_bot:
        bot.inline_queries.popitem(last=False)
    state.enqueue(
        bot,
        "inline_query",
        {
            "id": record.id,
            "from": user.user_api(),
            "query": query,
            "offset": offset,
            "chat_type": chat_type,
        },
    )
    return record


def choose_result(
    state: EmulatorState,
    bot: BotRecord,
    record: InlineQueryRecord,
    result_id: str,
    group: GroupRecord | None,
) -> dict[str, Any]:
    """Post the chosen result as the person's message ``via_bot``; returns the message view."""
    if record.answer is None:
        raise bad_request("the bot has not answered this inline query")
    result = next((r for r in record.answer["results"] if r.get("id") == result_id), None)
    if result is None:
        raise bad_request(f"result {result_id!r} is not among the bot's answers")
    user = state.users.get(record.user_id)
    if user is None:
        raise ApiError(404, "Not Found: the user of this inline query no longer exists")
    media_kind: str | None = None
    media: Any = None
    content = result.get("input_message_content")
    if content is not None:
        resolved = _message_content(content)
        text, entities = resolved["text"], resolved["entities"]
    elif result.get("type") == "photo":
        caption = result.get("caption") or ""
        text, entities = render_text(caption, result.get("parse_mode")) if caption else ("", [])
        stored = state.files.get(result.get("photo_file_id") or "")
        if stored is not None:
            media_kind, media = "photo", stored.media_api()
        else:
            # The emulator cannot fetch photo_url; the message shows the URL instead.
            text = text or str(result["photo_url"])
            entities = entities or detect_entities(text)
    else:
        text = str(result.get("title") or result.get("type"))
        entities = detect_entities(text)
    markup = result.get("reply_markup")
    conv, message = state.user_sends(
        bot,
        user,
        text,
        group=group,
        media_kind=media_kind,
        media=media,
        via_bot_id=bot.id,
        reply_markup=markup,
        entities=entities,
    )
    record.chosen.append(result_id)
    if markup:
        # Telegram gives an inline message an opaque id only when it has buttons; the bot then
        # edits it and receives its button presses by that id.
        chat_id = group.id if group is not None else user.id
        message.inline_message_id = (
            f"{chat_id}_{message.message_id}_{secrets.token_urlsafe(12).replace('_', '-')}"
        )
        state.message_changed(conv, message)
    if bot.inline_feedback:
        payload: dict[str, Any] = {
            "result_id": result_id,
            "from": user.user_api(),
            "query": record.query,
        }
        if message.inline_message_id:
            payload["inline_message_id"] = message.inline_message_id
        state.enqueue(bot, "chosen_inline_result", payload)
    conv = state.conversations[state.conversation_key(bot, group.id if group else user.id)]
    return state.message_view(conv, message)


# ------------------------------------------------------------------------ control API


def _target_group(state: EmulatorState, user_id: int, chat_id: int | None) -> GroupRecord | None:
    if chat_id is None or chat_id == user_id:
        return None
    if chat_id > 0:
        raise bad_request("chat_id must be the user's own id or a group id")
    group = state.groups.get(chat_id)
    if group is None:
        raise ApiError(404, f"Not Found: chat {chat_id} does not exist")
    if group.is_channel:
        raise bad_request("inline results cannot be posted in a channel by its readers")
    return group


@routes.post("/control/bots/{username}/inline_queries")
async def inline_query_view(request: web.Request) -> web.Response:
    """Body: ``user_id``, ``query`` (≤ 256), optional ``offset``, ``chat_id``, ``first_name``."""
    state, bot = _state(request), _bot(request)
    params = await _body(request)
    user_id = _required_int(params, "user_id")
    query = params.string("query") or ""
    if len(query) > MAX_QUERY_LENGTH:
        raise bad_request(f"query must be at most {MAX_QUERY_LENGTH} characters")
    offset = params.string("offset", max_len=64) or ""
    if not bot.supports_inline_queries:
        raise bad_request(f"@{bot.username} has inline mode switched off")
    group = _target_group(state, user_id, params.integer("chat_id"))
    user = state.upsert_user(user_id, first_name=params.string("first_name", max_len=64))
    record = start_query(state, bot, user, query, offset, group)
    return _json(record.status(), status=201)


def _query(request: web.Request, bot: BotRecord) -> InlineQueryRecord:
    record = bot.inline_queries.get(request.match_info["query_id"])
    if record is None:
        raise ApiError(404, "Not Found: unknown inline query")
    return record


@routes.get("/control/bots/{username}/inline_queries/{query_id}")
async def inline_query_status(request: web.Request) -> web.Response:
    """The query's status; ``wait`` waits for answerInlineQuery."""
    state, bot = _state(request), _bot(request)
    record = _query(request, bot)
    wait = _wait(request)
    if wait > 0:
        await state.wait_until(("inline", record.id), wait, lambda: record.answer is not None)
    return _json(record.status())


@routes.post("/control/bots/{username}/inline_queries/{query_id}/choose")
async def choose_view(request: web.Request) -> web.Response:
    """Body: ``result_id``, optional ``chat_id`` (default: the user's private chat with the bot)."""
    state, bot = _state(request), _bot(request)
    record = _query(request, bot)
    params = await _body(request)
    result_id = params.string("result_id", max_len=64)
    if not result_id:
        raise bad_request('field "result_id" is required')
    chat_id = params.integer("chat_id")
    if chat_id is None:
        chat_id = record.chat_id if record.chat_type != "sender" else record.user_id
    group = _target_group(state, record.user_id, chat_id)
    return _json(choose_result(state, bot, record, result_id, group), status=201)
