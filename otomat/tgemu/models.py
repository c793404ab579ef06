"""In-memory records of the emulator and their Bot API / JSON representations.

Identifiers follow Telegram: a private chat's id equals the user's id, group ids are negative,
message ids are per chat and only grow, update ids are per bot and only grow. Because a private
chat's id is the same for every bot, the emulator keeps one :class:`Conversation` per (bot, user)
pair, and one shared conversation per group.

The ``to_json``/``from_json`` pairs define the state file format; ``*_api`` methods produce the
exact Telegram objects that aiogram and python-telegram-bot parse.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

# Types of update Telegram delivers when ``allowed_updates`` is unset or empty (Bot API docs:
# everything except chat_member, message_reaction and message_reaction_count).
DEFAULT_UPDATE_TYPES = frozenset(
    {"message", "edited_message", "channel_post", "edited_channel_post", "business_connection",
     "business_message", "edited_business_message", "deleted_business_messages", "inline_query",
     "chosen_inline_result", "callback_query", "shipping_query", "pre_checkout_query",
     "purchased_paid_media", "poll", "poll_answer", "my_chat_member", "chat_join_request",
     "chat_boost", "removed_chat_boost"}
)  # fmt: skip
ALL_UPDATE_TYPES = DEFAULT_UPDATE_TYPES | {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}


def now() -> int:
    """Current Unix time in whole seconds, the unit of every Bot API date."""
    return int(time.time())


@dataclass
class UserRecord:
    """A person talking to bots. ``id`` is also their private chat's id."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None

    def user_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data

    def private_chat_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        for key in ("last_name", "username"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "username": self.username,
            "language_code": self.language_code,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UserRecord:
        return cls(
            id=int(data["id"]),
            first_name=str(data["first_name"]),
            last_name=data.get("last_name"),
            username=data.get("username"),
            language_code=data.get("language_code"),
        )


@dataclass
class GroupRecord:
    """A group or supergroup; its members see every message, bots see them per privacy mode."""

    id: int  # negative, as in Telegram
    title: str
    type: str = "group"  # "group", "supergroup" or "channel"
    username: str | None = None
    member_user_ids: list[int] = field(default_factory=list)
    bot_ids: list[int] = field(default_factory=list)
    # Bots that are administrators (every bot in a channel is): only they get chat_member updates.
    admin_bot_ids: list[int] = field(default_factory=list)
    owner_user_id: int | None = None  # a channel's creator, the only one who posts in it

    @property
    def is_channel(self) -> bool:
        return self.type == "channel"

    def chat_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type, "title": self.title}
        if self.username:
            data["username"] = self.username
        return data

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "type": self.type,
            "username": self.username,
            "member_user_ids": list(self.member_user_ids),
            "bot_ids": list(self.bot_ids),
            "admin_bot_ids": list(self.admin_bot_ids),
            "owner_user_id": self.owner_user_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GroupRecord:
        return cls(
            id=int(data["id"]),
            title=str(data["title"]),
            type=str(data.get("type", "group")),
            username=data.get("username"),
            member_user_ids=[int(x) for x in data.get("member_user_ids", [])],
            bot_ids=[int(x) for x in data.get("bot_ids", [])],
            admin_bot_ids=[int(x) for x in data.get("admin_bot_ids", [])],
            owner_user_id=data.get("owner_user_id"),
        )


@dataclass
class UpdateRecord:
    """One pending update; ``payload`` is the Update object without ``update_id``."""

    update_id: int
    kind: str  # "message", "callback_query", ...
    payload: dict[str, Any]
    created: float = field(default_factory=time.time)

    def update_api(self) -> dict[str, Any]:
        return {"update_id": self.update_id, self.kind: self.payload}

    def to_json(self) -> dict[str, Any]:
        return {
            "update_id": self.update_id,
            "kind": self.kind,
            "payload": self.payload,
            "created": self.created,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UpdateRecord:
        return cls(
            update_id=int(data["update_id"]),
            kind=str(data["kind"]),
            payload=dict(data["payload"]),
            created=float(data.get("created", time.time())),
        )


@dataclass
class WebhookConfig:
    """What setWebhook stored, plus the delivery status getWebhookInfo reports."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "secret_token": self.secret_token,
            "max_connections": self.max_connections,
            "last_error_date": self.last_error_date,
            "last_error_message": self.last_error_message,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebhookConfig:
        return cls(
            url=str(data["url"]),
            secret_token=data.get("secret_token"),
            max_connections=int(data.get("max_connections", 40)),
            last_error_date=data.get("last_error_date"),
            last_error_message=data.get("last_error_message"),
        )


class Poller:
    """The one getUpdates request allowed to wait for a bot at a time.

    ``outcome`` is set when something other than a new update ends the wait: ``"conflict"`` (a
    newer getUpdates), ``"webhook"`` (setWebhook), ``"gone"`` (the bot was deleted) or
    ``"shutdown"`` (the server is stopping; the call returns what it has).
    """

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.outcome: str | None = None

    def end(self, outcome: str) -> None:
        self.outcome = outcome
        self.event.set()


@dataclass
class CallbackRecord:
    """An inline button press and the bot's answer to it (``answer`` is None until answered)."""

    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    created: float = field(default_factory=time.time)
    answer: dict[str, Any] | None = None

    def status(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "data": self.data,
            "answered": self.answer is not None,
            "answer": self.answer,
        }


@dataclass
class InlineQueryRecord:
    """A person's inline query and the bot's answerInlineQuery (``answer`` None until answered).

    ``created`` is emulator-clock time (see :meth:`EmulatorState.time`), so advancing the clock
    makes a query too old to answer, as Telegram's 10-second limit does.
    """

    id: str
    user_id: int
    query: str
    offset: str
    chat_type: str | None  # "sender", "private", "group", "supergroup", "channel" or None
    chat_id: int | None
    created: float
    answer: dict[str, Any] | None = None
    chosen: list[str] = field(default_factory=list)

    def status(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "query": self.query,
            "offset": self.offset,
            "chat_type": self.chat_type,
            "chat_id": self.chat_id,
            "answered": self.answer is not None,
            "answer": self.answer,
        }


@dataclass
class BotRecord:
    """A bot account: identity, settings, and its queue of pending updates."""

    id: int
    token: str
    username: str
    first_name: str
    can_join_groups: bool = True
    # Telegram's default privacy mode: in groups the bot only sees commands and replies to it.
    can_read_all_group_messages: bool = False
    # commands keyed by "<canonical scope JSON>|<language code>", as setMyCommands scopes them.
    commands: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    # setMyName/setMyDescription/setMyShortDescription values keyed by "<field>|<language code>".
    profile: dict[str, str] = field(default_factory=dict)
    webhook: WebhookConfig | None = None
    allowed_updates: list[str] | None = None
    next_update_id: int = 1
    updates: deque[UpdateRecord] = field(default_factory=deque)
    # BotFather's /setinline and /setinlinefeedback. Inline mode is on by default here so that
    # products can be tried without a settings step; the control API switches it off.
    supports_inline_queries: bool = True
    inline_feedback: bool = False
    blocked_by: set[int] = field(default_factory=set)  # users who blocked the bot
    # setChatMenuButton: "default" and str(chat_id) keys, MenuButton objects as values.
    menu_buttons: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What its chat page greets people with, set by whoever created the bot (the platform, for
    # a trial): {"hint": {lang: text}, "back": url, "back_label": {lang: text}}; see control.py.
    welcome: dict[str, Any] = field(default_factory=dict)
    # Runtime only, never persisted:
    poller: Poller | None = None
    callbacks: OrderedDict[str, CallbackRecord] = field(default_factory=OrderedDict)
    inline_queries: OrderedDict[str, InlineQueryRecord] = field(default_factory=OrderedDict)
    update_signal: asyncio.Event = field(default_factory=asyncio.Event)

    def user_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    def get_me_api(self) -> dict[str, Any]:
        return {
            **self.user_api(),
            "can_join_groups": self.can_join_groups,
            "can_read_all_group_messages": self.can_read_all_group_messages,
            "supports_inline_queries": self.supports_inline_queries,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def accepts(self, kind: str) -> bool:
        """Whether an update of type ``kind`` is created for this bot (``allowed_updates``)."""
        if not self.allowed_updates:
            return kind in DEFAULT_UPDATE_TYPES
        return kind in self.allowed_updates

    def to_json(self, *, updates: bool = True) -> dict[str, Any]:
        """The state file's bot; ``updates=False`` leaves the pending updates out."""
        return {
            "id": self.id,
            "token": self.token,
            "username": self.username,
            "first_name": self.first_name,
            "can_join_groups": self.can_join_groups,
            "can_read_all_group_messages": self.can_read_all_group_messages,
            "commands": self.commands,
            "profile": self.profile,
            "webhook": self.webhook.to_json() if self.webhook else None,
            "allowed_updates": self.allowed_updates,
            "next_update_id": self.next_update_id,
            "updates": [u.to_json() for u in self.updates] if updates else [],
            "supports_inline_queries": self.supports_inline_queries,
            "inline_feedback": self.inline_feedback,
            "blocked_by": sorted(self.blocked_by),
            "menu_buttons": self.menu_buttons,
            "welcome": self.welcome,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BotRecord:
        return cls(
            id=int(data["id"]),
            token=str(data["token"]),
            username=str(data["username"]),
            first_name=str(data["first_name"]),
            can_join_groups=bool(data.get("can_join_groups", True)),
            can_read_all_group_messages=bool(data.get("can_read_all_group_messages", False)),
            commands={str(k): list(v) for k, v in (data.get("commands") or {}).items()},
            profile={str(k): str(v) for k, v in (data.get("profile") or {}).items()},
            webhook=WebhookConfig.from_json(data["webhook"]) if data.get("webhook") else None,
            allowed_updates=data.get("allowed_updates"),
            next_update_id=int(data.get("next_update_id", 1)),
            updates=deque(UpdateRecord.from_json(u) for u in data.get("updates", [])),
            supports_inline_queries=bool(data.get("supports_inline_queries", True)),
            inline_feedback=bool(data.get("inline_feedback", False)),
            blocked_by={int(x) for x in data.get("blocked_by", [])},
            menu_buttons={str(k): dict(v) for k, v in (data.get("menu_buttons") or {}).items()},
            welcome=dict(data.get("welcome") or {}),
        )


@dataclass
class MessageRecord:
    """A message in a conversation, sent by a user or a bot.

    Deleted messages stay (``deleted=True``) so the control API and web chat can show that they
    went away; the Bot API treats them as absent.
    """

    message_id: int
    date: int
    sender_kind: str  # "user" or "bot"
    sender_id: int
    text: str
    entities: list[dict[str, Any]] = field(default_factory=list)
    # The markup as the bot sent it: inline keyboard, reply keyboard, remove or force_reply.
    reply_markup: dict[str, Any] | None = None
    reply_to_message_id: int | None = None
    edit_date: int | None = None
    deleted: bool = False
    rev: int = 0  # conversation revision of the last change, for the control API's change feed
    # A photo or document message: ``media`` is the Bot API value of the ``media_kind`` field
    # (a PhotoSize list or a Document) and ``text``/``entities`` are its caption.
    media_kind: str | None = None
    media: Any = None
    via_bot_id: int | None = None  # set on messages a user sent through an inline bot
    # Set when a chosen inline result carried a keyboard: the bot then edits the message and
    # gets its button presses by this id instead of by chat and message id, as on Telegram.
    inline_message_id: str | None = None
    media_group_id: str | None = None  # shared by the messages of one sendMediaGroup
    forward_origin: dict[str, Any] | None = None  # MessageOrigin of a forwarded message

    @property
    def inline_keyboard(self) -> dict[str, Any] | None:
        """The markup a Message object carries: only inline keyboards are part of a message."""
        if self.reply_markup and self.reply_markup.get("inline_keyboard"):
            return self.reply_markup
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "date": self.date,
            "sender_kind": self.sender_kind,
            "sender_id": self.sender_id,
            "text": self.text,
            "entities": self.entities,
            "reply_markup": self.reply_markup,
            "reply_to_message_id": self.reply_to_message_id,
            "edit_date": self.edit_date,
            "deleted": self.deleted,
            "rev": self.rev,
            "media_kind": self.media_kind,
            "media": self.media,
            "via_bot_id": self.via_bot_id,
            "inline_message_id": self.inline_message_id,
            "media_group_id": self.media_group_id,
            "forward_origin": self.forward_origin,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MessageRecord:
        return cls(
            message_id=int(data["message_id"]),
            date=int(data["date"]),
            sender_kind=str(data["sender_kind"]),
            sender_id=int(data["sender_id"]),
            text=str(data.get("text", "")),
            entities=list(data.get("entities") or []),
            reply_markup=data.get("reply_markup"),
            reply_to_message_id=data.get("reply_to_message_id"),
            edit_date=data.get("edit_date"),
            deleted=bool(data.get("deleted", False)),
            rev=int(data.get("rev", 0)),
            media_kind=data.get("media_kind"),
            media=data.get("media"),
            via_bot_id=data.get("via_bot_id"),
            inline_message_id=data.get("inline_message_id"),
            media_group_id=data.get("media_group_id"),
            forward_origin=data.get("forward_origin"),
        )


@dataclass
class Conversation:
    """The message history of one chat as a bot sees it.

    ``key`` is ``("private", bot_id, user_id)`` or ``("group", group_id)``. ``rev`` increases on
    every change (new message, edit, deletion) so watchers can ask for "changes after rev N".
    """

    key: tuple[Any, ...]
    chat_id: int
    next_message_id: int = 1
    rev: int = 0
    messages: OrderedDict[int, MessageRecord] = field(default_factory=OrderedDict)
    pinned: list[int] = field(default_factory=list)  # pinned message ids, oldest first

    @property
    def is_private(self) -> bool:
        return self.key[0] == "private"

    def live(self, message_id: int | None) -> MessageRecord | None:
        """The message with this id unless it is unknown, evicted or deleted."""
        if message_id is None:
            return None
        record = self.messages.get(message_id)
        return None if record is None or record.deleted else record

    def to_json(self, *, messages: bool = True) -> dict[str, Any]:
        """The state file's chat; ``messages=False`` leaves the history out."""
        return {
            "key": list(self.key),
            "chat_id": self.chat_id,
            "next_message_id": self.next_message_id,
            "rev": self.rev,
            "pinned": list(self.pinned),
            "messages": [m.to_json() for m in self.messages.values()] if messages else [],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Conversation:
        conv = cls(
            key=tuple(data["key"]),
            chat_id=int(data["chat_id"]),
            next_message_id=int(data.get("next_message_id", 1)),
            rev=int(data.get("rev", 0)),
            pinned=[int(x) for x in data.get("pinned", [])],
        )
        for item in data.get("messages", []):
            record = MessageRecord.from_json(item)
            conv.messages[record.message_id] = record
        return conv
