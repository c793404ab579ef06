"""The Bot API methods the emulator implements, at ``/bot<token>/<method>``.

Each method is an ``async`` function taking a :class:`Call` and returning the ``result`` value
(or a :class:`Reply` when Telegram also sends a ``description``, as setWebhook does). Failures are
:class:`~otomat.tgemu.errors.ApiError` with Telegram's wording. Method names are matched
case-insensitively, as Telegram does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import ApiError, bad_request, conflict, forbidden, unauthorized
from .formatting import clean_entities, detect_entities, merge_entities, render_text
from .markup import validate_reply_markup
from .models import (
    ALL_UPDATE_TYPES,
    BotRecord,
    Conversation,
    MessageRecord,
    Poller,
    WebhookConfig,
)
from .params import Params
from .state import EmulatorState

MAX_TEXT_LENGTH = 4096
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_POLL_TIMEOUT = 50  # seconds; longer requests would be cut by proxies in front of Telegram
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
CHAT_ACTIONS = frozenset(
    {"typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
     "upload_document", "choose_sticker", "find_location", "record_video_note",
     "upload_video_note"}
)  # fmt: skip
COMMAND_SCOPES = frozenset(
    {"default", "all_private_chats", "all_group_chats", "all_chat_administrators", "chat",
     "chat_administrators", "chat_member"}
)  # fmt: skip
# Every method of the real Bot API (9.x). Those the emulator lacks get a clear 400 instead of the
# 404 an unknown name gets, so a bot author knows the emulator, not their code, is the limit.
BOT_API_METHODS = frozenset(
    {"getUpdates", "setWebhook", "deleteWebhook", "getWebhookInfo", "getMe", "logOut", "close",
     "sendMessage", "forwardMessage", "forwardMessages", "copyMessage", "copyMessages",
     "sendPhoto", "sendAudio", "sendDocument", "sendVideo", "sendAnimation", "sendVoice",
     "sendVideoNote", "sendPaidMedia", "sendMediaGroup", "sendLocation", "sendVenue",
     "sendContact", "sendPoll", "sendChecklist", "sendDice", "sendChatAction",
     "setMessageReaction", "getUserProfilePhotos", "setUserEmojiStatus", "getFile",
     "banChatMember", "unbanChatMember", "restrictChatMember", "promoteChatMember",
     "setChatAdministratorCustomTitle", "banChatSenderChat", "unbanChatSenderChat",
     "setChatPermissions", "exportChatInviteLink", "createChatInviteLink", "editChatInviteLink",
     "createChatSubscriptionInviteLink", "editChatSubscriptionInviteLink",
     "revokeChatInviteLink", "approveChatJoinRequest", "declineChatJoinRequest", "setChatPhoto",
     "deleteChatPhoto", "setChatTitle", "setChatDescription", "pinChatMessage",
     "unpinChatMessage", "unpinAllChatMessages", "leaveChat", "getChat",
     "getChatAdministrators", "getChatMemberCount", "getChatMembersCount", "getChatMember",
     "setChatStickerSet", "deleteChatStickerSet", "getForumTopicIconStickers",
     "createForumTopic", "editForumTopic", "closeForumTopic", "reopenForumTopic",
     "deleteForumTopic", "unpinAllForumTopicMessages", "editGeneralForumTopic",
     "closeGeneralForumTopic", "reopenGeneralForumTopic", "hideGeneralForumTopic",
     "unhideGeneralForumTopic", "unpinAllGeneralForumTopicMessages", "answerCallbackQuery",
     "getUserChatBoosts", "getBusinessConnection", "setMyCommands", "deleteMyCommands",
     "getMyCommands", "setMyName", "getMyName", "setMyDescription", "getMyDescription",
     "setMyShortDescription", "getMyShortDescription", "setChatMenuButton",
     "getChatMenuButton", "setMyDefaultAdministratorRights", "getMyDefaultAdministratorRights",
     "getAvailableGifts", "sendGift", "giftPremiumSubscription", "verifyUser", "verifyChat",
     "removeUserVerification", "removeChatVerification", "readBusinessMessage",
     "deleteBusinessMessages", "setBusinessAccountName", "setBusinessAccountUsername",
     "setBusinessAccountBio", "setBusinessAccountProfilePhoto",
     "removeBusinessAccountProfilePhoto", "setBusinessAccountGiftSettings",
     "getBusinessAccountStarBalance", "transferBusinessAccountStars", "getBusinessAccountGifts",
     "convertGiftToStars", "upgradeGift", "transferGift", "postStory", "editStory",
     "deleteStory", "editMessageText", "editMessageCaption", "editMessageMedia",
     "editMessageLiveLocation", "stopMessageLiveLocation", "editMessageChecklist",
     "editMessageReplyMarkup", "stopPoll", "approveSuggestedPost", "declineSuggestedPost",
     "deleteMessage", "deleteMessages", "sendSticker", "getStickerSet",
     "getCustomEmojiStickers", "uploadStickerFile", "createNewStickerSet", "addStickerToSet",
     "setStickerPositionInSet", "deleteStickerFromSet", "replaceStickerInSet",
     "setStickerEmojiList", "setStickerKeywords", "setStickerMaskPosition",
     "setStickerSetTitle", "setStickerSetThumbnail", "setCustomEmojiStickerSetThumbnail",
     "deleteStickerSet", "answerInlineQuery", "answerWebAppQuery", "savePreparedInlineMessage",
     "sendInvoice", "createInvoiceLink", "answerShippingQuery", "answerPreCheckoutQuery",
     "getMyStarBalance", "getStarTransactions", "refundStarPayment",
     "editUserStarSubscription", "sendGame", "setGameScore", "getGameHighScores",
     "setPassportDataErrors"}
)  # fmt: skip
_BOT_API_LOWER = frozenset(name.lower() for name in BOT_API_METHODS)
NOT_SUPPORTED = "method is not supported by the emulator"
_SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_LANGUAGE_RE = re.compile(r"^[a-z]{2}$")


@dataclass
class Call:
    """One method invocation: the world, the calling bot and its parameters."""

    state: EmulatorState
    bot: BotRecord
    params: Params


@dataclass
class Reply:
    """A result with the ``description`` Telegram adds to some successful answers."""

    result: Any
    description: str | None = None


Method = Callable[[Call], Awaitable[Any]]
METHODS: dict[str, Method] = {}


def method(*names: str) -> Callable[[Method], Method]:
    """Register a handler under Bot API method names (stored lower-cased)."""

    def register(func: Method) -> Method:
        for name in names:
            METHODS[name.lower()] = func
        return func

    return register


async def call_method(state: EmulatorState, token: str, name: str, params: Params) -> Reply:
    """Run method ``name`` for the bot owning ``token``.

    Raises 401 for an unknown token (checked first, like Telegram), 404 for an unknown method and
    400 for a real method this emulator does not implement.
    """
    bot = state.bot_by_token(token)
    if bot is None:
        raise unauthorized()
    handler = METHODS.get(name.lower())
    if handler is None:
        if name.lower() in _BOT_API_LOWER:
            raise bad_request(NOT_SUPPORTED)
        raise ApiError(404, "Not Found")
    result = await handler(Call(state, bot, params))
    return result if isinstance(result, Reply) else Reply(result)


# --------------------------------------------------------------------------- helpers


def _text_and_entities(p: Params, *, text_name: str = "text") -> tuple[str, list[dict[str, Any]]]:
    """Read ``text`` with ``parse_mode``/``entities`` applied; enforce emptiness and length."""
    text = p.string(text_name)
    if text is None or not text.strip():
        raise bad_request("message text is empty")
    parse_mode = p.string("parse_mode")
    raw_entities = p.json_list("entities", error="can't parse entities JSON object")
    if parse_mode:
        plain, entities = render_text(text, parse_mode)
    elif raw_entities:
        plain = text
        entities = merge_entities(clean_entities(raw_entities, text), detect_entities(text))
    else:
        plain, entities = render_text(text, None)
    if not plain.strip():
        raise bad_request("message text is empty")
    if len(plain) > MAX_TEXT_LENGTH:
        raise bad_request("message is too long")
    return plain, entities


def _reply_markup(p: Params, *, inline_only: bool = False) -> dict[str, Any] | None:
    markup = p.json_value("reply_markup", error="can't parse reply keyboard markup JSON object")
    return validate_reply_markup(markup, inline_only=inline_only)


def _reply_target(p: Params, conv: Conversation) -> int | None:
    """The message id to reply to, from ``reply_parameters`` or legacy ``reply_to_message_id``."""
    reply = p.json_object("reply_parameters", error="can't parse reply parameters JSON object")
    if reply is not None:
        sub = Params(reply)
        message_id = sub.integer("message_id")
        if message_id is None:
            raise bad_request("message to be replied not found")
        other_chat = sub.raw("chat_id")
        allow = sub.boolean("allow_sending_without_reply")
        if other_chat is not None and str(other_chat) != str(conv.chat_id):
            # Cross-chat replies need message history this version does not track.
            raise bad_request("message to be replied not found")
    else:
        message_id = p.integer("reply_to_message_id")
        allow = p.boolean("allow_sending_without_reply")
    if message_id is None:
        return None
    if conv.live(message_id) is None:
        if allow:
            return None
        raise bad_request("message to be replied not found")
    return message_id


def _inline_message(
    state: EmulatorState, bot: BotRecord, inline_message_id: str
) -> tuple[Conversation, MessageRecord] | None:
    """The live message ``bot`` sent via inline mode under ``inline_message_id``, if any.

    The id encodes the chat and message (``<chat>_<message>_<random>``), so no index is
    needed; the stored id must match exactly, so ids cannot be guessed or forged.
    """
    chat_text, _, rest = inline_message_id.partition("_")
    message_text, _, _ = rest.partition("_")
    try:
        chat_id, message_id = int(chat_text), int(message_text)
    except ValueError:
        return None
    if chat_id > 0:
        conv = state.conversations.get(("private", bot.id, chat_id))
    else:
        conv = state.conversations.get(("group", chat_id))
    record = conv.live(message_id) if conv is not None else None
    if (
        conv is None
        or record is None
        or record.via_bot_id != bot.id
        or record.inline_message_id != inline_message_id
    ):
        return None
    return conv, record


def _target_message(
    call: Call, missing: str, *, allow_inline: bool = True
) -> tuple[Conversation, MessageRecord]:
    """Resolve ``chat_id`` + ``message_id`` (or ``inline_message_id`` for edits) to a live message."""
    p = call.params
    inline_id = p.string("inline_message_id") if allow_inline else None
    if inline_id is not None:
        found = _inline_message(call.state, call.bot, inline_id)
        if found is None:
            raise bad_request("MESSAGE_ID_INVALID")
        return found
    conv = call.state.conversation_for_bot(call.bot, p.chat_ref())
    message_id = p.integer("message_id")
    if message_id is None:
        raise bad_request("message identifier is not specified")
    record = conv.live(message_id)
    if record is None:
        raise bad_request(missing)
    return conv, record


def _edit_result(call: Call, conv: Conversation, record: MessageRecord) -> dict[str, Any] | bool:
    """Edits return the Message, or just ``true`` for inline messages (as on Telegram)."""
    if call.params.raw("inline_message_id") is not None:
        return True
    return call.state.message_api(conv, record)


def _scope_key(call: Call) -> str:
    """The storage key of setMyCommands' ``scope`` + ``language_code`` pair."""
    p = call.params
    scope = p.json_object("scope", error="can't parse BotCommandScope JSON object") or {
        "type": "default"
    }
    kind = scope.get("type")
    if kind not in COMMAND_SCOPES:
        raise bad_request("unsupported bot command scope type")
    canonical: dict[str, Any] = {"type": kind}
    if kind in ("chat", "chat_administrators", "chat_member"):
        sub = Params(scope)
        conv = call.state.conversation_for_bot(call.bot, sub.chat_ref())
        canonical["chat_id"] = conv.chat_id
        if kind == "chat_member":
            user_id = sub.integer("user_id")
            if user_id is None:
                raise bad_request("user not found")
            canonical["user_id"] = user_id
    language = p.string("language_code") or ""
    if language and not _LANGUAGE_RE.match(language):
        raise bad_request("invalid language code specified")
    return f"{json.dumps(canonical, sort_keys=True)}|{language}"


def _allowed_updates(p: Params) -> list[str] | None:
    values = p.json_list("allowed_updates", error="can't parse allowed updates JSON object")
    if values is None:
        return None
    if not all(isinstance(v, str) for v in values):
        raise bad_request("allowed_updates must be an Array of Strings")
    # Telegram ignores names it does not know.
    return [v for v in dict.fromkeys(values) if v in ALL_UPDATE_TYPES]


# ----------------------------------------------------------------------- identity


@method("getMe")
async def get_me(call: Call) -> dict[str, Any]:
    return call.bot.get_me_api()


@method("logOut", "close")
async def log_out(call: Call) -> bool:
    # Both only matter when moving a bot between servers; the emulator has nothing to release.
    return True


# ------------------------------------------------------------------------ updates


@method("getUpdates")
async def get_updates(call: Call) -> list[dict[str, Any]]:
    """Long polling. Only one call per bot may wait; a newer one ends the older with 409."""
    bot, p, state = call.bot, call.params, call.state
    if bot.webhook is not None:
        raise conflict(
            "can't use getUpdates method while webhook is active; use deleteWebhook to delete "
            "the webhook first"
        )
    offset = p.integer("offset")
    limit = p.integer("limit")
    # Like the Bot API server: absent means 100, anything else is clamped to 1..100.
    limit = 100 if limit is None else min(max(limit, 1), 100)
    timeout = min(max(p.number("timeout") or 0.0, 0.0), MAX_POLL_TIMEOUT)
    allowed = _allowed_updates(p)
    if allowed is not None and allowed != bot.allowed_updates:
        bot.allowed_updates = allowed
        state.changed(bot)
    if bot.poller is not None:
        bot.poller.end("conflict")
    if offset is not None:
        state.confirm_updates(bot, offset)
    poller = Poller()
    bot.poller = poller
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            if poller.outcome == "conflict":
                raise conflict(
                    "terminated by other getUpdates request; make sure that only one bot "
                    "instance is running"
                )
            if poller.outcome == "webhook":
                raise conflict("terminated by setWebhook request")
            if poller.outcome == "gone":
                raise unauthorized()
            updates = state.pending_updates(bot)[:limit]
            remaining = deadline - loop.time()
            if updates or remaining <= 0 or poller.outcome == "shutdown":
                return [u.update_api() for u in updates]
            poller.event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(poller.event.wait(), remaining)
    finally:
        if bot.poller is poller:
            bot.poller = None


@method("setWebhook")
async def set_webhook(call: Call) -> Reply:
    bot, p, state = call.bot, call.params, call.state
    url = p.string("url") or ""
    if url:
        try:
            parts = urlsplit(url)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            valid = False
        if not valid:
            # The emulator also accepts plain http, since local ingresses rarely have TLS.
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = p.string("secret_token")
    if secret is not None and not _SECRET_TOKEN_RE.match(secret):
        raise bad_request("secret token contains unallowed characters")
    max_connections = p.integer("max_connections")
    max_connections = 40 if max_connections is None else max_connections
    if not 1 <= max_connections <= 100:
        raise bad_request("bad webhook: max_connections must be between 1 and 100")
    allowed = _allowed_updates(p)
    drop = p.boolean("drop_pending_updates")
    # Everything is validated; from here on the call cannot fail halfway.
    if allowed is not None:
        bot.allowed_updates = allowed
    if drop:
        state.drop_pending_updates(bot)
    previous = bot.webhook
    if not url:
        bot.webhook = None
        description = "Webhook was deleted" if previous else "Webhook is already deleted"
    else:
        unchanged = previous is not None and (previous.url, previous.secret_token) == (url, secret)
        bot.webhook = WebhookConfig(url=url, secret_token=secret, max_connections=max_connections)
        description = "Webhook is already set" if unchanged else "Webhook was set"
        if bot.poller is not None:
            bot.poller.end("webhook")
    if state.on_bot_event is not None:
        state.on_bot_event(bot, "webhook")
    state.changed(bot)
    return Reply(True, description)


@method("deleteWebhook")
async def delete_webhook(call: Call) -> Reply:
    bot, state = call.bot, call.state
    if call.params.boolean("drop_pending_updates"):
        state.drop_pending_updates(bot)
    description = "Webhook was deleted" if bot.webhook else "Webhook is already deleted"
    bot.webhook = None
    if state.on_bot_event is not None:
        state.on_bot_event(bot, "webhook")
    state.changed(bot)
    return Reply(True, description)


@method("getWebhookInfo")
async def get_webhook_info(call: Call) -> dict[str, Any]:
    bot = call.bot
    info: dict[str, Any] = {
        "url": bot.webhook.url if bot.webhook else "",
        "has_custom_certificate": False,
        "pending_update_count": len(call.state.pending_updates(bot)),
    }
    if bot.webhook is not None:
        info["max_connections"] = bot.webhook.max_connections
        if bot.webhook.last_error_date is not None:
            info["last_error_date"] = bot.webhook.last_error_date
            info["last_error_message"] = bot.webhook.last_error_message or ""
    if bot.allowed_updates:
        info["allowed_updates"] = bot.allowed_updates
    return info


# ----------------------------------------------------------------------- messages


@method("sendMessage")
async def send_message(call: Call) -> dict[str, Any]:
    p, state = call.params, call.state
    conv = state.conversation_for_bot(call.bot, p.chat_ref())
    text, entities = _text_and_entities(p)
    markup = _reply_markup(p)
    reply_to = _reply_target(p, conv)
    # Accepted and type-checked; there is no notification or forwarding to emulate.
    p.boolean("disable_notification")
    p.boolean("protect_content")
    state.check_can_send(call.bot, conv)  # last: a refused send changes nothing
    record = state.add_message(
        conv,
        sender_kind="bot",
        sender_id=call.bot.id,
        text=text,
        entities=entities,
        reply_markup=markup,
        reply_to_message_id=reply_to,
    )
    return state.message_api(conv, record)


def _check_editable(call: Call, record: MessageRecord) -> None:
    if record.inline_message_id and record.via_bot_id == call.bot.id:
        return  # an inline message the bot sent through a user
    if record.sender_kind != "bot" or record.sender_id != call.bot.id:
        raise bad_request("message can't be edited")


def _apply_inline_markup(record: MessageRecord, markup: dict[str, Any] | None) -> None:
    """Editing replaces the inline keyboard (absent = removed); a reply keyboard stays."""
    if (
        markup is not None
        or record.reply_markup is None
        or "inline_keyboard" in record.reply_markup
    ):
        record.reply_markup = markup


@method("editMessageText")
async def edit_message_text(call: Call) -> dict[str, Any] | bool:
    conv, record = _target_message(call, "message to edit not found")
    _check_editable(call, record)
    if record.media_kind is not None:
        raise bad_request("there is no text in the message to edit")
    text, entities = _text_and_entities(call.params)
    markup = _reply_markup(call.params, inline_only=True)
    new_inline = markup if markup and markup["inline_keyboard"] else None
    if (text, entities, new_inline) == (record.text, record.entities, record.inline_keyboard):
        raise bad_request(NOT_MODIFIED)
    record.text, record.entities = text, entities
    _apply_inline_markup(record, markup)
    record.edit_date = call.state.now()
    call.state.touch_message(conv, record)
    return _edit_result(call, conv, record)


@method("editMessageReplyMarkup")
async def edit_message_reply_markup(call: Call) -> dict[str, Any] | bool:
    conv, record = _target_message(call, "message to edit not found")
    _check_editable(call, record)
    markup = _reply_markup(call.params, inline_only=True)
    new_inline = markup if markup and markup["inline_keyboard"] else None
    if new_inline == record.inline_keyboard:
        raise bad_request(NOT_MODIFIED)
    _apply_inline_markup(record, markup)
    record.edit_date = call.state.now()
    call.state.touch_message(conv, record)
    return _edit_result(call, conv, record)


def _check_deletable(call: Call, conv: Conversation, record: MessageRecord) -> None:
    # In private chats a bot may delete both sides; in groups its own messages, and others' only
    # as an administrator.
    own = record.sender_kind == "bot" and record.sender_id == call.bot.id
    if not conv.is_private and not own:
        group = call.state.groups.get(conv.chat_id)
        if group is None or call.bot.id not in group.admin_bot_ids:
            raise bad_request("message can't be deleted")
    if record.date < call.state.now() - call.state.limits.delete_age_seconds:
        # Telegram: a bot may delete messages for everyone only within 48 hours.
        raise bad_request("message can't be deleted for everyone")


@method("deleteMessage")
async def delete_message(call: Call) -> bool:
    # deleteMessage has no inline_message_id: Telegram ignores it and needs chat_id.
    conv, record = _target_message(call, "message to delete not found", allow_inline=False)
    _check_deletable(call, conv, record)
    record.deleted = True
    call.state.touch_message(conv, record)
    return True


@method("deleteMessages")
async def delete_messages(call: Call) -> bool:
    p = call.params
    conv = call.state.conversation_for_bot(call.bot, p.chat_ref())
    ids = p.json_list("message_ids", error="can't parse message identifiers JSON object")
    if not ids or len(ids) > 100:
        raise bad_request("message identifiers are not specified")
    for message_id in ids:
        if isinstance(message_id, bool) or not isinstance(message_id, int):
            raise bad_request("message identifiers must be Integers")
        record = conv.live(message_id)
        if record is not None:
            _check_deletable(call, conv, record)
            record.deleted = True
            call.state.touch_message(conv, record)
    return True


@method("answerCallbackQuery")
async def answer_callback_query(call: Call) -> bool:
    p = call.params
    query_id = p.string("callback_query_id")
    if not query_id:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    text = p.string("text") or ""
    if len(text) > MAX_CALLBACK_ANSWER_LENGTH:
        raise bad_request("MESSAGE_TOO_LONG")
    answer = {
        "text": text,
        "show_alert": p.boolean("show_alert"),
        "url": p.string("url"),
        "cache_time": p.integer("cache_time") or 0,
    }
    call.state.answer_callback(call.bot, query_id, answer)
    return True


@method("sendChatAction")
async def send_chat_action(call: Call) -> bool:
    p = call.params
    conv = call.state.conversation_for_bot(call.bot, p.chat_ref())
    if p.string("action") not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    if conv.is_private and conv.chat_id in call.bot.blocked_by:
        raise forbidden("bot was blocked by the user")
    return True


# -------------------------------------------------------------------------- chats


def _known_chat(call: Call) -> Conversation:
    """Like conversation_for_bot, but reading chat info never says more than "not found"."""
    try:
        return call.state.conversation_for_bot(call.bot, call.params.chat_ref())
    except ApiError as exc:
        if exc.code == 403:
            raise bad_request("chat not found") from exc
        raise


@method("getChat")
async def get_chat(call: Call) -> dict[str, Any]:
    conv = _known_chat(call)
    info = call.state.chat_api(conv)
    # ChatFullInfo's always-present fields (aiogram and PTB refuse the object without them).
    info.update(
        accent_color_id=0,
        max_reaction_count=11,
        accepted_gift_types={
            "unlimited_gifts": False,
            "limited_gifts": False,
            "unique_gifts": False,
            "premium_subscription": False,
            "gifts_from_channels": False,
        },
    )
    for message_id in reversed(conv.pinned):  # the latest pinned message still there
        record = conv.live(message_id)
        if record is not None:
            info["pinned_message"] = call.state.message_api(conv, record, include_reply=False)
            break
    return info


@method("getChatMember")
async def get_chat_member(call: Call) -> dict[str, Any]:
    state = call.state
    conv = _known_chat(call)
    user_id = call.params.integer("user_id")
    if user_id is None:
        raise bad_request("user not found")
    if user_id == call.bot.id:
        if not conv.is_private:
            from .chats import bot_member_api  # late import: chats builds on this module

            return bot_member_api(state.groups[conv.chat_id], call.bot)
        return {"status": "member", "user": call.bot.user_api()}
    user = state.users.get(user_id)
    if user is None:
        raise bad_request("user not found")
    if conv.is_private:
        if user_id != conv.chat_id:
            raise bad_request("user not found")
        return {"status": "member", "user": user.user_api()}
    group = state.groups[conv.chat_id]
    status = "member" if user_id in group.member_user_ids else "left"
    return {"status": status, "user": user.user_api()}


@method("getChatMemberCount", "getChatMembersCount")
async def get_chat_member_count(call: Call) -> int:
    conv = _known_chat(call)
    if conv.is_private:
        return 2
    group = call.state.groups[conv.chat_id]
    return len(group.member_user_ids) + len(group.bot_ids)


@method("leaveChat")
async def leave_chat(call: Call) -> bool:
    conv = _known_chat(call)
    if conv.is_private:
        raise bad_request("chat member status can't be changed in private chats")
    group = call.state.groups[conv.chat_id]
    from .chats import remove_bot  # late import: chats builds on this module

    remove_bot(call.state, group, call.bot, by_user=None)
    return True


# ------------------------------------------------------------------ bot settings


@method("setMyCommands")
async def set_my_commands(call: Call) -> bool:
    commands = call.params.json_list("commands", error="can't parse commands JSON object")
    if commands is None:
        raise bad_request('parameter "commands" is required')
    if len(commands) > 100:
        raise bad_request("too many commands")
    cleaned: list[dict[str, str]] = []
    for item in commands:
        if not isinstance(item, dict):
            raise bad_request("can't parse BotCommand JSON object")
        command, description = item.get("command"), item.get("description")
        if not isinstance(command, str) or not _COMMAND_RE.match(command.removeprefix("/")):
            raise bad_request("BOT_COMMAND_INVALID")
        if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
            raise bad_request("command description must be 1-256 characters")
        cleaned.append({"command": command.removeprefix("/"), "description": description})
    key = _scope_key(call)
    if cleaned:
        call.bot.commands[key] = cleaned
    else:
        call.bot.commands.pop(key, None)
    call.state.changed(call.bot)
    return True


@method("getMyCommands")
async def get_my_commands(call: Call) -> list[dict[str, str]]:
    return call.bot.commands.get(_scope_key(call), [])


@method("deleteMyCommands")
async def delete_my_commands(call: Call) -> bool:
    call.bot.commands.pop(_scope_key(call), None)
    call.state.changed(call.bot)
    return True


def _profile_setter(field: str, limit: int) -> Method:
    async def setter(call: Call) -> bool:
        value = call.params.string(field) or ""
        if len(value) > limit:
            raise bad_request(f"{field} is too long")
        language = call.params.string("language_code") or ""
        key = f"{field}|{language}"
        if value:
            call.bot.profile[key] = value
        else:
            call.bot.profile.pop(key, None)
        call.state.changed(call.bot)
        return True

    return setter


def _profile_getter(field: str) -> Method:
    async def getter(call: Call) -> dict[str, str]:
        language = call.params.string("language_code") or ""
        default = call.bot.first_name if field == "name" else ""
        profile = call.bot.profile
        value = profile.get(f"{field}|{language}") or profile.get(f"{field}|", default)
        return {field: value}

    return getter


for _field, _limit in (("name", 64), ("description", 512), ("short_description", 120)):
    _camel = "".join(part.title() for part in _field.split("_"))
    METHODS[f"setmy{_camel.lower()}"] = _profile_setter(_field, _limit)
    METHODS[f"getmy{_camel.lower()}"] = _profile_getter(_field)


MENU_BUTTON_TYPES = frozenset({"commands", "web_app", "default"})


def _menu_key(call: Call) -> str:
    """``str(chat_id)`` for a private chat's button, ``"default"`` without ``chat_id``."""
    if call.params.raw("chat_id") in (None, ""):
        return "default"
    conv = _known_chat(call)
    if not conv.is_private:
        raise bad_request("chat not found")  # menu buttons exist in private chats only
    return str(conv.chat_id)


@method("setChatMenuButton")
async def set_chat_menu_button(call: Call) -> bool:
    """Kept per private chat (``chat_id``) or as the bot's default; ``default`` resets."""
    key = _menu_key(call)
    button = call.params.json_object("menu_button", error="can't parse menu button JSON object")
    button = button or {"type": "default"}
    kind = button.get("type")
    if kind not in MENU_BUTTON_TYPES:
        raise bad_request("unsupported menu button type")
    cleaned: dict[str, Any] = {"type": kind}
    if kind == "web_app":
        text, web_app = button.get("text"), button.get("web_app")
        if not isinstance(text, str) or not text.strip():
            raise bad_request("menu button text must be non-empty")
        url = web_app.get("url") if isinstance(web_app, dict) else None
        if not isinstance(url, str) or urlsplit(url).scheme != "https":
            raise bad_request("BUTTON_URL_INVALID")
        cleaned.update(text=text, web_app={"url": url})
    if kind == "default":
        call.bot.menu_buttons.pop(key, None)
    else:
        call.bot.menu_buttons[key] = cleaned
    call.state.changed(call.bot)
    return True


@method("getChatMenuButton")
async def get_chat_menu_button(call: Call) -> dict[str, Any]:
    """The chat's own button, else the bot's default, else Telegram's: the commands menu."""
    key = _menu_key(call)
    buttons = call.bot.menu_buttons
    return buttons.get(key) or buttons.get("default") or {"type": "commands"}
