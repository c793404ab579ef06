"""Bot API methods that work on existing messages: copy, forward, pin, edit a caption.

- ``copyMessage`` sends a new message with the original's text or media (caption replaceable)
  and no link to it; it returns only the new ``MessageId``.
- ``forwardMessage`` sends the message with a ``forward_origin`` naming who wrote it first.
- ``pinChatMessage``/``unpinChatMessage``/``unpinAllChatMessages`` keep the chat's pinned
  messages (``getChat`` reports the latest as ``pinned_message``); in groups only administrator
  bots may pin.
- ``editMessageCaption`` changes a media message's caption (a text message has none).
"""

from __future__ import annotations

from typing import Any

from .botapi import (
    NOT_MODIFIED,
    Call,
    _apply_inline_markup,
    _check_editable,
    _edit_result,
    _reply_markup,
    _reply_target,
    _target_message,
    method,
)
from .errors import bad_request
from .files import caption_and_entities
from .models import Conversation, MessageRecord
from .params import Params


def _source_message(call: Call, missing: str) -> tuple[Conversation, MessageRecord]:
    """``from_chat_id`` + ``message_id``: a live message in a chat the bot is in."""
    p = call.params
    from_ref = p.raw("from_chat_id")
    if from_ref in (None, ""):
        raise bad_request("chat_id of the source chat is not specified")
    conv = call.state.conversation_for_bot(call.bot, Params({"chat_id": from_ref}).chat_ref())
    message_id = p.integer("message_id")
    if message_id is None:
        raise bad_request("message identifier is not specified")
    record = conv.live(message_id)
    if record is None:
        raise bad_request(missing)
    return conv, record


def _origin(call: Call, conv: Conversation, record: MessageRecord) -> dict[str, Any]:
    """The ``MessageOrigin`` of a forwarded ``record`` (the first author, kept on re-forwards)."""
    if record.forward_origin is not None:
        return record.forward_origin
    state = call.state
    chat = state.chat_api(conv)
    if chat["type"] == "channel":
        return {
            "type": "channel",
            "date": record.date,
            "chat": chat,
            "message_id": record.message_id,
        }
    return {
        "type": "user",
        "date": record.date,
        "sender_user": state.message_api(conv, record)["from"],
    }


@method("copyMessage")
async def copy_message(call: Call) -> dict[str, int]:
    p, state = call.params, call.state
    _, source = _source_message(call, "message to copy not found")
    conv = state.conversation_for_bot(call.bot, p.chat_ref())
    text, entities = source.text, source.entities
    if p.raw("caption") is not None:
        if source.media_kind is None:
            raise bad_request("there is no caption in the message to copy")
        text, entities = caption_and_entities(p)
    markup = _reply_markup(p)
    reply_to = _reply_target(p, conv)
    p.boolean("disable_notification")
    p.boolean("protect_content")
    state.check_can_send(call.bot, conv)
    record = state.add_message(
        conv,
        sender_kind="bot",
        sender_id=call.bot.id,
        text=text,
        entities=list(entities),
        reply_markup=markup if markup is not None else source.inline_keyboard,
        reply_to_message_id=reply_to,
        media_kind=source.media_kind,
        media=source.media,
    )
    return {"message_id": record.message_id}


@method("forwardMessage")
async def forward_message(call: Call) -> dict[str, Any]:
    p, state = call.params, call.state
    source_conv, source = _source_message(call, "message to forward not found")
    conv = state.conversation_for_bot(call.bot, p.chat_ref())
    origin = _origin(call, source_conv, source)
    p.boolean("disable_notification")
    p.boolean("protect_content")
    state.check_can_send(call.bot, conv)
    record = state.add_message(
        conv,
        sender_kind="bot",
        sender_id=call.bot.id,
        text=source.text,
        entities=list(source.entities),
        media_kind=source.media_kind,
        media=source.media,
        forward_origin=origin,
    )
    return state.message_api(conv, record)


def _check_can_pin(call: Call, conv: Conversation) -> None:
    if conv.is_private:
        return
    group = call.state.groups.get(conv.chat_id)
    if group is None or call.bot.id not in group.admin_bot_ids:
        raise bad_request("not enough rights to manage pinned messages in the chat")


@method("pinChatMessage")
async def pin_chat_message(call: Call) -> bool:
    conv, record = _target_message(call, "message to pin not found", allow_inline=False)
    _check_can_pin(call, conv)
    call.params.boolean("disable_notification")
    if record.message_id in conv.pinned:
        conv.pinned.remove(record.message_id)
    conv.pinned.append(record.message_id)
    call.state.changed(conv)
    return True


@method("unpinChatMessage")
async def unpin_chat_message(call: Call) -> bool:
    """Unpin ``message_id``, or the most recently pinned message without it."""
    p, state = call.params, call.state
    conv = state.conversation_for_bot(call.bot, p.chat_ref())
    _check_can_pin(call, conv)
    message_id = p.integer("message_id")
    if message_id is None:
        if conv.pinned:
            conv.pinned.pop()
    else:
        if conv.live(message_id) is None:
            raise bad_request("message to unpin not found")
        if message_id in conv.pinned:
            conv.pinned.remove(message_id)
    state.changed(conv)
    return True


@method("unpinAllChatMessages")
async def unpin_all_chat_messages(call: Call) -> bool:
    conv = call.state.conversation_for_bot(call.bot, call.params.chat_ref())
    _check_can_pin(call, conv)
    conv.pinned.clear()
    call.state.changed(conv)
    return True


@method("editMessageCaption")
async def edit_message_caption(call: Call) -> dict[str, Any] | bool:
    conv, record = _target_message(call, "message to edit not found")
    _check_editable(call, record)
    if record.media_kind is None:
        raise bad_request("there is no caption in the message to edit")
    if record.media_kind == "sticker":
        raise bad_request("there is no caption in the message to edit")
    caption, entities = caption_and_entities(call.params)
    markup = _reply_markup(call.params, inline_only=True)
    new_inline = markup if markup and markup["inline_keyboard"] else None
    if (caption, entities, new_inline) == (record.text, record.entities, record.inline_keyboard):
        raise bad_request(NOT_MODIFIED)
    record.text, record.entities = caption, entities
    _apply_inline_markup(record, markup)
    record.edit_date = call.state.now()
    call.state.touch_message(conv, record)
    return _edit_result(call, conv, record)
