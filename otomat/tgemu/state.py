"""The emulator's whole world: bots, users, groups, conversations and pending updates.

All mutation happens on the event loop thread through the methods here, so no locks are needed.
Methods raise :class:`~otomat.tgemu.errors.ApiError` with Telegram's wording for anything a client
got wrong, which lets the Bot API and the control API share the same rules.

Memory is bounded by :class:`Limits`: old messages, updates and callback queries are evicted, and
creating more bots, users, groups or chats than allowed is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import bad_request, forbidden
from .filestore import FileStore
from .formatting import detect_entities
from .models import (
    BotRecord,
    CallbackRecord,
    Conversation,
    GroupRecord,
    MessageRecord,
    UpdateRecord,
    UserRecord,
)
from .ratelimit import RateLimiter, RateLimits

STATE_VERSION = 1
TOKEN_ALPHABET = string.ascii_letters + string.digits + "_-"
# BotFather's rule: 5–32 characters, letters, digits and underscores, ending in "bot".
BOT_USERNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{1,28}[Bb][Oo][Tt]$")
USER_USERNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
TOKEN_RE = re.compile(r"^(\d{1,19}):[A-Za-z0-9_-]{1,128}$")


@dataclass(frozen=True)
class Limits:
    """Caps that keep a long-running emulator's memory bounded."""

    max_messages_per_chat: int = 1000
    max_pending_updates: int = 1000
    update_ttl_seconds: int = 24 * 3600  # Telegram keeps undelivered updates for 24 hours.
    max_callbacks_per_bot: int = 1000
    max_bots: int = 1000
    max_users: int = 100_000
    max_groups: int = 10_000
    max_conversations: int = 100_000
    max_inline_queries_per_bot: int = 1000
    inline_query_ttl_seconds: float = 10.0  # answerInlineQuery later than this is refused
    delete_age_seconds: int = 48 * 3600  # bots cannot delete messages older than this
    # Files (Telegram's Bot API: 50 MB uploads, 10 MB photos, 20 MB downloads through getFile).
    max_upload_bytes: int = 50 * 1024 * 1024
    max_photo_bytes: int = 10 * 1024 * 1024
    max_download_bytes: int = 20 * 1024 * 1024
    max_files: int = 1000
    max_file_store_bytes: int = 256 * 1024 * 1024


class Changes:
    """What changed since the state was last written: ids and keys, not copies.

    A key whose record no longer exists means "delete it". ``full`` asks for a rewrite of
    everything (after a reset); ``removed_updates`` names updates taken out of the middle of a
    queue (webhook deliveries), which trimming the queue's head would not catch.
    """

    def __init__(self) -> None:
        self.full = False
        self.meta = False
        self.bots: set[int] = set()
        self.users: set[int] = set()
        self.groups: set[int] = set()
        self.conversations: set[tuple[Any, ...]] = set()
        self.messages: set[tuple[tuple[Any, ...], int]] = set()
        self.removed_updates: set[tuple[int, int]] = set()

    def __bool__(self) -> bool:
        return bool(
            self.full
            or self.meta
            or self.bots
            or self.users
            or self.groups
            or self.conversations
            or self.messages
            or self.removed_updates
        )

    def add(self, record: Any) -> None:
        if isinstance(record, BotRecord):
            self.bots.add(record.id)
        elif isinstance(record, UserRecord):
            self.users.add(record.id)
        elif isinstance(record, GroupRecord):
            self.groups.add(record.id)
        elif isinstance(record, Conversation):
            self.conversations.add(record.key)
        else:
            raise TypeError(f"not a persisted record: {record!r}")


class EmulatorState:
    """Everything the emulator knows, plus the hooks that react to changes.

    ``path`` is the state store :func:`~otomat.tgemu.persistence.open_state` loaded, if any.
    ``on_change`` is called after every mutation that should reach the store (what changed is
    recorded in ``changes`` while a store is attached);
    ``on_bot_event(bot, event)`` is called with ``"webhook"`` when a bot's webhook settings change
    and ``"deleted"`` when a bot goes away (the webhook deliverer uses it).
    """

    def __init__(
        self,
        *,
        path: Path | None = None,
        limits: Limits | None = None,
        rate_limits: RateLimits | None = None,
    ) -> None:
        self.path = path  # state store; None keeps everything in memory only
        self.limits = limits or Limits()
        self.files = FileStore(
            max_files=self.limits.max_files, max_total_bytes=self.limits.max_file_store_bytes
        )
        self.rate_limiter = RateLimiter(rate_limits)
        # Seconds added to the wall clock: tests move the emulator's time with /control/clock.
        self.clock_offset = 0.0
        self.bots: dict[int, BotRecord] = {}
        self.users: dict[int, UserRecord] = {}
        self.groups: dict[int, GroupRecord] = {}
        self.conversations: dict[tuple[Any, ...], Conversation] = {}
        self._watchers: dict[tuple[Any, ...], set[asyncio.Event]] = {}
        self.closing = False  # set while the server shuts down: long waits return at once
        self.on_change: Callable[[], None] | None = None
        # What changed since the last write; set by the persistence layer only (None: no store).
        self.changes: Changes | None = None
        self.on_bot_event: Callable[[BotRecord, str], None] | None = None

    # --------------------------------------------------------------------------- clock

    def time(self) -> float:
        """The emulator's current Unix time (the wall clock plus :attr:`clock_offset`)."""
        return time.time() + self.clock_offset

    def now(self) -> int:
        """The emulator's current Unix time in whole seconds, for every Bot API date."""
        return int(self.time())

    # ----------------------------------------------------------------- change notification

    def changed(self, *records: Any) -> None:
        """Tell the persistence layer what changed: bot, user, group or conversation records.

        With no records, every bot and group and the clock are written again (settings calls that
        touch several of them); neither costs more than the limits allow, whatever the history.
        Messages are recorded by :meth:`add_message` and :meth:`touch_message`.
        """
        changes = self.changes
        if changes is not None:
            if not records:
                changes.bots.update(self.bots)
                changes.groups.update(self.groups)
                changes.meta = True
            for record in records:
                changes.add(record)
        if self.on_change is not None:
            self.on_change()

    def changed_everything(self) -> None:
        """The whole state was replaced (reset): the store is rewritten from scratch."""
        if self.changes is not None:
            self.changes.full = True
        if self.on_change is not None:
            self.on_change()

    def _notify(self, key: tuple[Any, ...]) -> None:
        for event in self._watchers.get(key, ()):
            event.set()

    async def wait_until(
        self, key: tuple[Any, ...], timeout: float, ready: Callable[[], bool]
    ) -> bool:
        """Wait up to ``timeout`` seconds for ``ready()`` to hold, rechecking on changes to ``key``.

        Returns ``ready()``'s final value. Keys are ``conversation_key(...)`` tuples or
        ``("callback", id)``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while not ready():
            remaining = deadline - loop.time()
            if self.closing:
                return False
            if remaining <= 0:
                return False
            event = asyncio.Event()
            self._watchers.setdefault(key, set()).add(event)
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                pass
            finally:
                watchers = self._watchers.get(key)
                if watchers is not None:
                    watchers.discard(event)
                    if not watchers:
                        del self._watchers[key]
        return True

    def shutdown(self) -> None:
        """End every long poll and wait now, so a server shutdown is not held up for 50 s."""
        self.closing = True
        for bot in self.bots.values():
            if bot.poller is not None:
                bot.poller.end("shutdown")
        for key in list(self._watchers):
            self._notify(key)

    def open(self) -> None:
        """Prepare for serving on the running loop (also after a previous server used the state)."""
        self.closing = False
        for bot in self.bots.values():
            # Events bind to the loop that first waits on them; give each run fresh ones.
            bot.update_signal = asyncio.Event()

    # --------------------------------------------------------------------------- bots

    def bot_by_token(self, token: str) -> BotRecord | None:
        match = TOKEN_RE.match(token)
        if not match:
            return None
        bot = self.bots.get(int(match.group(1)))
        # Compare the whole token in constant time: the id part alone is public.
        if bot is None or not secrets.compare_digest(bot.token, token):
            return None
        return bot

    def bot_by_username(self, username: str) -> BotRecord | None:
        name = username.removeprefix("@").lower()
        return next((b for b in self.bots.values() if b.username.lower() == name), None)

    def create_bot(
        self,
        username: str,
        first_name: str,
        *,
        token: str | None = None,
        can_read_all_group_messages: bool = False,
        welcome: dict[str, Any] | None = None,
    ) -> BotRecord:
        """Register a bot like BotFather does. Raises 400 on a bad or taken username/token.
        ``welcome``: what its chat page greets people with (checked by the control API)."""
        username = username.removeprefix("@")
        if not BOT_USERNAME_RE.match(username):
            raise bad_request(
                "invalid bot username: use 5-32 letters, digits or underscores, start with a "
                "letter and end in 'bot' (e.g. tetris_bot)"
            )
        if self.bot_by_username(username) is not None:
            raise bad_request(f"username @{username} is already taken by another bot")
        if not first_name.strip() or len(first_name) > 64:
            raise bad_request("first_name must be 1-64 characters")
        if len(self.bots) >= self.limits.max_bots:
            raise bad_request(f"too many bots (limit {self.limits.max_bots})")
        if token is None:
            bot_id = self._new_bot_id()
            secret = "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(35))
            token = f"{bot_id}:{secret}"
        else:
            match = TOKEN_RE.match(token)
            if not match:
                raise bad_request("invalid token: expected '<digits>:<letters, digits, _ or ->'")
            bot_id = int(match.group(1))
            if bot_id == 0 or bot_id in self.bots or bot_id in self.users:
                raise bad_request(f"invalid token: id {bot_id} is already used")
        bot = BotRecord(
            id=bot_id,
            token=token,
            username=username,
            first_name=first_name.strip(),
            can_read_all_group_messages=can_read_all_group_messages,
            welcome=dict(welcome or {}),
            # Telegram's update ids do not start at 1; bots must not assume they do.
            next_update_id=100_000_000 + secrets.randbelow(800_000_000),
        )
        self.bots[bot_id] = bot
        self.changed(bot)
        return bot

    def _new_bot_id(self) -> int:
        while True:
            candidate = 6_000_000_000 + secrets.randbelow(2_999_999_999)
            if candidate not in self.bots and candidate not in self.users:
                return candidate

    def delete_bot(self, bot: BotRecord) -> None:
        """Remove a bot with its private chats; waiting getUpdates calls end with 401."""
        self.bots.pop(bot.id, None)
        if bot.poller is not None:
            bot.poller.end("gone")
        gone = [
            self.conversations[k]
            for k in self.conversations
            if k[0] == "private" and k[1] == bot.id
        ]
        for conv in gone:
            del self.conversations[conv.key]
            self._notify(conv.key)
        groups = [g for g in self.groups.values() if bot.id in g.bot_ids]
        for group in groups:
            group.bot_ids.remove(bot.id)
        if self.on_bot_event is not None:
            self.on_bot_event(bot, "deleted")
        self.changed(bot, *gone, *groups)

    def reset(self) -> None:
        """Forget everything (used between tests)."""
        for bot in list(self.bots.values()):
            self.delete_bot(bot)
        self.users.clear()
        self.groups.clear()
        self.conversations.clear()
        self.files.clear()
        self.clock_offset = 0.0
        for key in list(self._watchers):
            self._notify(key)
        self.changed_everything()

    # ------------------------------------------------------------------ users and groups

    def upsert_user(
        self,
        user_id: int,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> UserRecord:
        """Return the user, creating it or updating the given profile fields."""
        if user_id <= 0 or user_id > 2**52:
            raise bad_request("user_id must be a positive integer below 2**52")
        if user_id in self.bots:
            raise bad_request(f"user_id {user_id} belongs to a bot")
        for name, value, limit in (("first_name", first_name, 64), ("last_name", last_name, 64)):
            if value is not None and len(value) > limit:
                raise bad_request(f"{name} must be at most {limit} characters")
        if username is not None and not USER_USERNAME_RE.match(username.removeprefix("@")):
            raise bad_request("invalid username: use 5-32 letters, digits or underscores")
        user = self.users.get(user_id)
        if user is None:
            if len(self.users) >= self.limits.max_users:
                raise bad_request(f"too many users (limit {self.limits.max_users})")
            user = UserRecord(
                id=user_id, first_name=(first_name or "").strip() or f"User {user_id}"
            )
            self.users[user_id] = user
        elif first_name and first_name.strip():
            user.first_name = first_name.strip()
        if last_name is not None:
            user.last_name = last_name or None
        if username is not None:
            user.username = username.removeprefix("@") or None
        if language_code is not None:
            user.language_code = language_code or None
        self.changed(user)
        return user

    def create_group(
        self,
        title: str,
        *,
        member_user_ids: list[int],
        bots: list[BotRecord],
        chat_type: str = "group",
        username: str | None = None,
        chat_id: int | None = None,
    ) -> GroupRecord:
        """Create a group with members; each bot gets the ``my_chat_member`` update Telegram sends."""
        if not title.strip() or len(title) > 128:
            raise bad_request("title must be 1-128 characters")
        if chat_type not in ("group", "supergroup"):
            raise bad_request("type must be 'group' or 'supergroup'")
        if len(self.groups) >= self.limits.max_groups:
            raise bad_request(f"too many groups (limit {self.limits.max_groups})")
        if username is not None:
            username = username.removeprefix("@")
            if not USER_USERNAME_RE.match(username):
                raise bad_request("invalid group username")
            if any((g.username or "").lower() == username.lower() for g in self.groups.values()):
                raise bad_request(f"username @{username} is already taken")
        if chat_id is None:
            chat_id = self._new_group_id(chat_type)
        elif chat_id >= 0 or chat_id in self.groups:
            raise bad_request("group id must be a negative integer not used by another group")
        for uid in member_user_ids:
            # Check every id before creating any user, so a bad list changes nothing.
            if uid <= 0 or uid > 2**52 or uid in self.bots:
                raise bad_request(f"member_user_ids: {uid} is not a valid user id")
        members = [self.upsert_user(uid) for uid in dict.fromkeys(member_user_ids)]
        group = GroupRecord(
            id=chat_id,
            title=title.strip(),
            type=chat_type,
            username=username,
            member_user_ids=[m.id for m in members],
            bot_ids=list(dict.fromkeys(b.id for b in bots)),
        )
        self.groups[chat_id] = group
        self._ensure_conversation(("group", chat_id), chat_id)
        if members:
            for bot in bots:
                self.enqueue(
                    bot,
                    "my_chat_member",
                    {
                        "chat": group.chat_api(),
                        "from": members[0].user_api(),
                        "date": self.now(),
                        "old_chat_member": {"status": "left", "user": bot.user_api()},
                        "new_chat_member": {"status": "member", "user": bot.user_api()},
                    },
                )
        self.changed(group, self.conversations[("group", chat_id)])
        return group

    def _new_group_id(self, chat_type: str) -> int:
        # Basic groups look like -4xxxxxxxxx, supergroups like -100xxxxxxxxxx, as in Telegram.
        base, span = (
            (4_000_000_000, 999_999_999)
            if chat_type == "group"
            else (1_000_000_000_000, 9_999_999_999)
        )
        while True:
            candidate = -(base + secrets.randbelow(span))
            if candidate not in self.groups:
                return candidate

    # ------------------------------------------------------------------- conversations

    @staticmethod
    def conversation_key(bot: BotRecord, chat_id: int) -> tuple[Any, ...]:
        """Private chats are per (bot, user); a group's history is shared by its bots."""
        return ("private", bot.id, chat_id) if chat_id > 0 else ("group", chat_id)

    def _ensure_conversation(self, key: tuple[Any, ...], chat_id: int) -> Conversation:
        conv = self.conversations.get(key)
        if conv is None:
            if len(self.conversations) >= self.limits.max_conversations:
                raise bad_request(f"too many chats (limit {self.limits.max_conversations})")
            conv = Conversation(key=key, chat_id=chat_id)
            self.conversations[key] = conv
            self.changed(conv)
        return conv

    def conversation_for_bot(self, bot: BotRecord, ref: int | str) -> Conversation:
        """Resolve a Bot API ``chat_id`` for ``bot`` with Telegram's error for each failure."""
        if isinstance(ref, str):
            name = ref.removeprefix("@").lower()
            group = next(
                (g for g in self.groups.values() if (g.username or "").lower() == name), None
            )
            if group is None:
                raise bad_request("chat not found")
            ref = group.id
        if ref > 0:
            conv = self.conversations.get(("private", bot.id, ref))
            if conv is not None:
                return conv
            if ref in self.bots:
                raise forbidden("bot can't send messages to bots")
            if ref in self.users:
                raise forbidden("bot can't initiate conversation with a user")
            raise bad_request("chat not found")
        group = self.groups.get(ref)
        if group is None:
            raise bad_request("chat not found")
        if bot.id not in group.bot_ids:
            raise forbidden(f"bot is not a member of the {group.type} chat")
        return self._ensure_conversation(("group", ref), ref)

    def check_can_send(self, bot: BotRecord, conv: Conversation) -> None:
        """Refuse a send Telegram would refuse: a user who blocked the bot, or a flood (429)."""
        if conv.is_private and conv.chat_id in bot.blocked_by:
            raise forbidden("bot was blocked by the user")
        self.rate_limiter.check(bot.id, conv.chat_id, private=conv.is_private)

    def chat_api(self, conv: Conversation) -> dict[str, Any]:
        if conv.is_private:
            user = self.users.get(conv.chat_id)
            if user is None:  # Only after a reset races with a request; keep the shape valid.
                return {"id": conv.chat_id, "type": "private", "first_name": "Deleted Account"}
            return user.private_chat_api()
        group = self.groups.get(conv.chat_id)
        if group is None:
            return {"id": conv.chat_id, "type": "group", "title": "Deleted group"}
        return group.chat_api()

    def _sender_api(self, record: MessageRecord) -> dict[str, Any]:
        if record.sender_kind == "bot":
            bot = self.bots.get(record.sender_id)
            if bot is not None:
                return bot.user_api()
            return {"id": record.sender_id, "is_bot": True, "first_name": "Deleted Bot"}
        user = self.users.get(record.sender_id)
        if user is not None:
            return user.user_api()
        return {"id": record.sender_id, "is_bot": False, "first_name": "Deleted Account"}

    def message_api(
        self, conv: Conversation, record: MessageRecord, *, include_reply: bool = True
    ) -> dict[str, Any]:
        """The Telegram ``Message`` object for ``record``."""
        chat = self.chat_api(conv)
        data: dict[str, Any] = {"message_id": record.message_id}
        if chat["type"] == "channel":
            # Channel posts are signed by the channel, not by a person or the bot.
            data["sender_chat"] = chat
        else:
            data["from"] = self._sender_api(record)
        data["chat"] = chat
        data["date"] = record.date
        if record.forward_origin is not None:
            data["forward_origin"] = record.forward_origin
        if record.media_group_id is not None:
            data["media_group_id"] = record.media_group_id
        if record.edit_date is not None:
            data["edit_date"] = record.edit_date
        if include_reply and record.reply_to_message_id is not None:
            target = conv.live(record.reply_to_message_id)
            if target is not None:
                data["reply_to_message"] = self.message_api(conv, target, include_reply=False)
        if record.via_bot_id is not None:
            via = self.bots.get(record.via_bot_id)
            if via is not None:
                data["via_bot"] = via.user_api()
        if record.media_kind is not None:
            data[record.media_kind] = record.media
            if record.text:
                data["caption"] = record.text
                if record.entities:
                    data["caption_entities"] = record.entities
        else:
            data["text"] = record.text
            if record.entities:
                data["entities"] = record.entities
        if record.inline_keyboard is not None:
            data["reply_markup"] = record.inline_keyboard
        return data

    def message_view(self, conv: Conversation, record: MessageRecord) -> dict[str, Any]:
        """The control API's message: the Telegram object plus what a test needs to assert."""
        data = self.message_api(conv, record)
        if record.inline_message_id:
            data["inline_message_id"] = record.inline_message_id
        data.update(
            from_bot=record.sender_kind == "bot",
            deleted=record.deleted,
            edited=record.edit_date is not None,
            rev=record.rev,
            reply_markup=record.reply_markup,
        )
        return data

    def add_message(
        self,
        conv: Conversation,
        *,
        sender_kind: str,
        sender_id: int,
        text: str,
        entities: list[dict[str, Any]],
        reply_markup: dict[str, Any] | None = None,
        reply_to_message_id: int | None = None,
        media_kind: str | None = None,
        media: Any = None,
        via_bot_id: int | None = None,
        media_group_id: str | None = None,
        forward_origin: dict[str, Any] | None = None,
    ) -> MessageRecord:
        """Append a message with the chat's next id, evicting the oldest beyond the limit.

        ``media_kind``/``media`` make it a media message (photo, document, video…) whose caption
        is ``text``; ``forward_origin`` marks a forwarded one.
        """
        conv.rev += 1
        record = MessageRecord(
            message_id=conv.next_message_id,
            date=self.now(),
            media_kind=media_kind,
            media=media,
            via_bot_id=via_bot_id,
            sender_kind=sender_kind,
            sender_id=sender_id,
            text=text,
            entities=entities,
            reply_markup=reply_markup,
            reply_to_message_id=reply_to_message_id,
            rev=conv.rev,
            media_group_id=media_group_id,
            forward_origin=forward_origin,
        )
        conv.next_message_id += 1
        conv.messages[record.message_id] = record
        while len(conv.messages) > self.limits.max_messages_per_chat:
            conv.messages.popitem(last=False)
        self._notify(conv.key)
        self.message_changed(conv, record)
        return record

    def message_changed(self, conv: Conversation, record: MessageRecord) -> None:
        """Record that ``record`` must be written again (without a new revision)."""
        if self.changes is not None:
            self.changes.messages.add((conv.key, record.message_id))
        self.changed(conv)

    def touch_message(self, conv: Conversation, record: MessageRecord) -> None:
        """Record that ``record`` was edited or deleted in place and wake the watchers."""
        conv.rev += 1
        record.rev = conv.rev
        self._notify(conv.key)
        self.message_changed(conv, record)

    def user_sends(
        self,
        bot: BotRecord,
        user: UserRecord,
        text: str,
        *,
        group: GroupRecord | None = None,
        reply_to_message_id: int | None = None,
        media_kind: str | None = None,
        media: Any = None,
        via_bot_id: int | None = None,
        reply_markup: dict[str, Any] | None = None,
        entities: list[dict[str, Any]] | None = None,
    ) -> tuple[Conversation, MessageRecord]:
        """A person sends ``text`` to ``bot`` privately or in ``group``; bots get ``message`` updates.

        In a group every member bot with privacy mode off gets the update; the others only get
        commands (``/cmd`` or ``/cmd@their_name``) and replies to their own messages.
        ``media_kind``/``media`` make it a photo or document with ``text`` as its caption;
        ``via_bot_id`` marks a chosen inline result (then ``bot`` need not be in ``group``);
        ``entities`` replaces the detected ones. Writing privately to a bot the user blocked
        unblocks it first (``my_chat_member``), like Telegram's "Restart bot".
        """
        if group is None:
            conv = self._ensure_conversation(("private", bot.id, user.id), user.id)
            recipients = [bot]
        elif group.is_channel:
            raise bad_request("only the channel's owner posts in a channel: use /control/channels")
        else:
            # Inline bots post into any chat the person is in, member or not.
            if bot.id not in group.bot_ids and via_bot_id is None:
                raise bad_request(f"bot @{bot.username} is not a member of this group")
            conv = self._ensure_conversation(("group", group.id), group.id)
            recipients = [self.bots[b] for b in group.bot_ids if b in self.bots]
        target = None
        if reply_to_message_id is not None:
            target = conv.live(reply_to_message_id)
            if target is None:
                raise bad_request("message to be replied not found")
        if group is not None and user.id not in group.member_user_ids:
            group.member_user_ids.append(user.id)  # writing in a group makes you a member
        if group is None and user.id in bot.blocked_by:
            # Writing to a bot you blocked restarts it, as Telegram's "Restart" button does.
            self.set_blocked(bot, user, blocked=False)
        if entities is None:
            entities = detect_entities(text)
        record = self.add_message(
            conv,
            sender_kind="user",
            sender_id=user.id,
            text=text,
            entities=entities,
            reply_to_message_id=reply_to_message_id,
            media_kind=media_kind,
            media=media,
            via_bot_id=via_bot_id,
            reply_markup=reply_markup,
        )
        payload = self.message_api(conv, record)
        for recipient in recipients:
            if group is None or self._bot_sees(recipient, text, entities, target):
                self.enqueue(recipient, "message", payload)
        return conv, record

    def user_edits(
        self, conv: Conversation, record: MessageRecord, user: UserRecord, text: str
    ) -> None:
        """``user`` edits their message ``record`` (its text, or a media message's caption).

        Bots that would have received the message get an ``edited_message`` update, as on
        Telegram. Raises 400 for someone else's message, an empty text or no change.
        """
        if record.sender_kind != "user" or record.sender_id != user.id:
            raise bad_request("message can't be edited")
        if not text.strip() and record.media_kind is None:
            raise bad_request("message text is empty")
        entities = detect_entities(text)
        if (text, entities) == (record.text, record.entities):
            raise bad_request(
                "message is not modified: specified new message content is exactly the same as "
                "the current content of the message"
            )
        record.text, record.entities = text, entities
        record.edit_date = self.now()
        self.touch_message(conv, record)
        if conv.is_private:
            bot = self.bots.get(conv.key[1])
            recipients = [bot] if bot is not None else []
        else:
            group = self.groups.get(conv.chat_id)
            bot_ids = group.bot_ids if group is not None else []
            target = conv.live(record.reply_to_message_id)
            recipients = [
                self.bots[b]
                for b in bot_ids
                if b in self.bots and self._bot_sees(self.bots[b], text, entities, target)
            ]
        payload = self.message_api(conv, record)
        for bot in recipients:
            self.enqueue(bot, "edited_message", payload)

    @staticmethod
    def _bot_sees(
        bot: BotRecord, text: str, entities: list[dict[str, Any]], target: MessageRecord | None
    ) -> bool:
        """Telegram's group privacy mode, simplified to commands and replies."""
        if bot.can_read_all_group_messages:
            return True
        if target is not None and target.sender_kind == "bot" and target.sender_id == bot.id:
            return True
        units = text.encode("utf-16-le")
        for entity in entities:
            if entity["type"] != "bot_command":
                continue
            start, end = entity["offset"] * 2, (entity["offset"] + entity["length"]) * 2
            command = units[start:end].decode("utf-16-le")
            _, _, addressee = command.partition("@")
            if not addressee or addressee.lower() == bot.username.lower():
                return True
        return False

    def set_blocked(self, bot: BotRecord, user: UserRecord, *, blocked: bool) -> bool:
        """A user blocks or unblocks ``bot``; the bot gets ``my_chat_member`` (kicked/member).

        Returns False (and sends nothing) when nothing changes.
        """
        if (user.id in bot.blocked_by) == blocked:
            return False
        if blocked:
            bot.blocked_by.add(user.id)
        else:
            bot.blocked_by.discard(user.id)
        member = {"status": "member", "user": bot.user_api()}
        banned = {"status": "kicked", "user": bot.user_api(), "until_date": 0}
        self.enqueue(
            bot,
            "my_chat_member",
            {
                "chat": user.private_chat_api(),
                "from": user.user_api(),
                "date": self.now(),
                "old_chat_member": member if blocked else banned,
                "new_chat_member": banned if blocked else member,
            },
        )
        self.changed(bot)
        return True

    # ---------------------------------------------------------------- callback queries

    def press_button(
        self, bot: BotRecord, user: UserRecord, conv: Conversation, record: MessageRecord, data: str
    ) -> CallbackRecord:
        """A person presses an inline button; the bot gets a ``callback_query`` update."""
        query_id = str(secrets.randbits(63))
        callback = CallbackRecord(
            id=query_id,
            user_id=user.id,
            chat_id=conv.chat_id,
            message_id=record.message_id,
            data=data,
        )
        bot.callbacks[query_id] = callback
        while len(bot.callbacks) > self.limits.max_callbacks_per_bot:
            bot.callbacks.popitem(last=False)
        digest = hashlib.sha256(f"{bot.id}:{conv.chat_id}".encode()).digest()
        self.enqueue(
            bot,
            "callback_query",
            {
                "id": query_id,
                "from": user.user_api(),
                # Buttons under an inline-sent message identify it by inline_message_id only.
                **(
                    {"inline_message_id": record.inline_message_id}
                    if record.inline_message_id
                    else {"message": self.message_api(conv, record)}
                ),
                # Stable per chat, like Telegram's: games and dedup logic key on it.
                "chat_instance": str(int.from_bytes(digest[:8], "big", signed=True)),
                "data": data,
            },
        )
        return callback

    def answer_callback(self, bot: BotRecord, query_id: str, answer: dict[str, Any]) -> None:
        """Store the bot's answer; unknown or already answered ids get Telegram's error."""
        callback = bot.callbacks.get(query_id)
        if callback is None or callback.answer is not None:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        callback.answer = answer
        self._notify(("callback", query_id))

    # ----------------------------------------------------------------------- updates

    def enqueue(self, bot: BotRecord, kind: str, payload: dict[str, Any]) -> UpdateRecord | None:
        """Create an update for ``bot`` unless its ``allowed_updates`` excludes ``kind``.

        Like Telegram, the filter applies when the update is created, and the oldest pending
        update is dropped when the queue is full.
        """
        if not bot.accepts(kind):
            return None
        update = UpdateRecord(update_id=bot.next_update_id, kind=kind, payload=payload)
        bot.next_update_id += 1
        bot.updates.append(update)
        while len(bot.updates) > self.limits.max_pending_updates:
            bot.updates.popleft()
        if bot.poller is not None:
            bot.poller.event.set()
        bot.update_signal.set()
        self.changed(bot)
        return update

    def pending_updates(self, bot: BotRecord) -> list[UpdateRecord]:
        """Pending updates after dropping the ones older than the retention time."""
        horizon = time.time() - self.limits.update_ttl_seconds
        while bot.updates and bot.updates[0].created < horizon:
            bot.updates.popleft()
        return list(bot.updates)

    def confirm_updates(self, bot: BotRecord, offset: int) -> None:
        """Apply getUpdates' ``offset``: forget confirmed updates.

        A positive offset confirms every update with a smaller id; a negative one keeps only the
        last ``-offset`` updates (Bot API: "all previous updates will be forgotten").
        """
        before = len(bot.updates)
        if offset < 0:
            while len(bot.updates) > -offset:
                bot.updates.popleft()
        else:
            while bot.updates and bot.updates[0].update_id < offset:
                bot.updates.popleft()
        if len(bot.updates) != before:
            self.changed(bot)

    def drop_pending_updates(self, bot: BotRecord) -> None:
        if bot.updates:
            bot.updates.clear()
            self.changed(bot)

    def remove_update(self, bot: BotRecord, update: UpdateRecord) -> None:
        """Forget one delivered update, wherever it is in the queue (webhooks deliver in
        parallel). Raises ValueError when it is already gone."""
        bot.updates.remove(update)
        if self.changes is not None:
            self.changes.removed_updates.add((bot.id, update.update_id))
        self.changed(bot)

    # --------------------------------------------------------------------- persistence

    def to_json(self) -> dict[str, Any]:
        """The whole state as JSON-compatible data (the state file's content)."""
        return {
            "version": STATE_VERSION,
            "saved_at": self.now(),
            "bots": [b.to_json() for b in self.bots.values()],
            "users": [u.to_json() for u in self.users.values()],
            "groups": [g.to_json() for g in self.groups.values()],
            "conversations": [c.to_json() for c in self.conversations.values()],
            "clock_offset": self.clock_offset,
        }

    def load_json(self, data: dict[str, Any]) -> None:
        """Replace the state with ``data`` from :meth:`to_json`. Raises ValueError if malformed."""
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported state file (expected version {STATE_VERSION})")
        try:
            bots = [BotRecord.from_json(b) for b in data.get("bots", [])]
            users = [UserRecord.from_json(u) for u in data.get("users", [])]
            groups = [GroupRecord.from_json(g) for g in data.get("groups", [])]
            convs = [Conversation.from_json(c) for c in data.get("conversations", [])]
            clock_offset = max(0.0, float(data.get("clock_offset") or 0.0))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"malformed state file: {exc!r}") from exc
        self.bots = {b.id: b for b in bots}
        self.users = {u.id: u for u in users}
        self.groups = {g.id: g for g in groups}
        self.conversations = {c.key: c for c in convs}
        # Kept so that emulator time never goes backwards across a restart.
        self.clock_offset = clock_offset
