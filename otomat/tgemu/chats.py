"""Channels and membership changes: ``channel_post``, ``my_chat_member`` and ``chat_member``.

Telegram's rules, as emulated here:

- a channel is posted in by its owner; each bot in it is an administrator and gets every post
  as a ``channel_post`` update; a bot may post with sendMessage by id or ``@username``;
- a bot gets ``my_chat_member`` when it is added to or removed from a group or channel, and when a
  user blocks or unblocks it in private (after which sending to that user is
  ``403 Forbidden: bot was blocked by the user``);
- ``chat_member`` (a user joins or leaves) goes only to bots that are administrators of the
  group and asked for it in ``allowed_updates`` (it is not among the default update types).

The control endpoints for all of this are at the end of the module.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .control import _body, _bot, _json, _required_int, _state, group_view
from .errors import ApiError, bad_request
from .models import BotRecord, GroupRecord, UserRecord
from .state import USER_USERNAME_RE, EmulatorState

routes = web.RouteTableDef()

_ADMIN_RIGHTS = {
    "can_be_edited": False,
    "is_anonymous": False,
    "can_manage_chat": True,
    "can_delete_messages": True,
    "can_manage_video_chats": True,
    "can_restrict_members": True,
    "can_promote_members": False,
    "can_change_info": True,
    "can_invite_users": True,
    "can_post_stories": True,
    "can_edit_stories": True,
    "can_delete_stories": True,
    "can_send_welcome_messages": False,  # required by aiogram 3.31's ChatMemberAdministrator
}


def bot_member_api(group: GroupRecord, bot: BotRecord) -> dict[str, Any]:
    """The bot's ChatMember object in ``group`` (administrator, member or left)."""
    if bot.id in group.admin_bot_ids and bot.id in group.bot_ids:
        rights = dict(_ADMIN_RIGHTS)
        if group.is_channel:
            rights.update(can_post_messages=True, can_edit_messages=True)
        else:
            rights.update(can_pin_messages=True)
        return {"status": "administrator", "user": bot.user_api(), **rights}
    if bot.id in group.bot_ids:
        return {"status": "member", "user": bot.user_api()}
    return {"status": "left", "user": bot.user_api()}


def _my_chat_member(
    state: EmulatorState,
    group: GroupRecord,
    bot: BotRecord,
    old: dict[str, Any],
    by_user: UserRecord | None,
) -> None:
    actor = by_user.user_api() if by_user is not None else bot.user_api()
    state.enqueue(
        bot,
        "my_chat_member",
        {
            "chat": group.chat_api(),
            "from": actor,
            "date": state.now(),
            "old_chat_member": old,
            "new_chat_member": bot_member_api(group, bot),
        },
    )


def add_bot(
    state: EmulatorState,
    group: GroupRecord,
    bot: BotRecord,
    *,
    admin: bool,
    by_user: UserRecord | None,
) -> None:
    """Add ``bot`` to ``group`` (or change its admin status); it gets ``my_chat_member``."""
    if group.is_channel and not admin:
        raise bad_request("bots can only be added to channels as administrators")
    old = bot_member_api(group, bot)
    if bot.id not in group.bot_ids:
        group.bot_ids.append(bot.id)
    if admin and bot.id not in group.admin_bot_ids:
        group.admin_bot_ids.append(bot.id)
    elif not admin and bot.id in group.admin_bot_ids:
        group.admin_bot_ids.remove(bot.id)
    if bot_member_api(group, bot) != old:
        _my_chat_member(state, group, bot, old, by_user)
    state.changed(group)


def remove_bot(
    state: EmulatorState, group: GroupRecord, bot: BotRecord, *, by_user: UserRecord | None
) -> None:
    """Remove ``bot`` from ``group`` (kicked by ``by_user``, or it left when None)."""
    if bot.id not in group.bot_ids:
        raise bad_request(f"bot @{bot.username} is not a member of this chat")
    old = bot_member_api(group, bot)
    group.bot_ids.remove(bot.id)
    if bot.id in group.admin_bot_ids:
        group.admin_bot_ids.remove(bot.id)
    _my_chat_member(state, group, bot, old, by_user)
    state.changed(group)


def _chat_member(
    state: EmulatorState, group: GroupRecord, user: UserRecord, old: str, new: str
) -> None:
    for bot_id in group.admin_bot_ids:
        bot = state.bots.get(bot_id)
        if bot is None or bot_id not in group.bot_ids:
            continue
        # enqueue() applies allowed_updates: chat_member is only sent when asked for.
        state.enqueue(
            bot,
            "chat_member",
            {
                "chat": group.chat_api(),
                "from": user.user_api(),
                "date": state.now(),
                "old_chat_member": {"status": old, "user": user.user_api()},
                "new_chat_member": {"status": new, "user": user.user_api()},
            },
        )


def user_joins(state: EmulatorState, group: GroupRecord, user: UserRecord) -> None:
    if user.id in group.member_user_ids:
        raise bad_request(f"user {user.id} is already a member of this chat")
    group.member_user_ids.append(user.id)
    _chat_member(state, group, user, "left", "member")
    state.changed(group)


def user_leaves(state: EmulatorState, group: GroupRecord, user: UserRecord) -> None:
    if user.id not in group.member_user_ids:
        raise bad_request(f"user {user.id} is not a member of this chat")
    group.member_user_ids.remove(user.id)
    _chat_member(state, group, user, "member", "left")
    state.changed(group)


def create_channel(
    state: EmulatorState,
    title: str,
    *,
    owner: UserRecord,
    bots: list[BotRecord],
    username: str | None,
) -> GroupRecord:
    """A channel owned by ``owner`` with ``bots`` as administrators (each gets my_chat_member)."""
    if not title.strip() or len(title) > 128:
        raise bad_request("title must be 1-128 characters")
    if len(state.groups) >= state.limits.max_groups:
        raise bad_request(f"too many chats (limit {state.limits.max_groups})")
    if username is not None:
        username = username.removeprefix("@")
        if not USER_USERNAME_RE.match(username):
            raise bad_request("invalid channel username")
        if any((g.username or "").lower() == username.lower() for g in state.groups.values()):
            raise bad_request(f"username @{username} is already taken")
    channel = GroupRecord(
        id=state._new_group_id("supergroup"),  # channels share supergroups' -100… id range
        title=title.strip(),
        type="channel",
        username=username,
        member_user_ids=[owner.id],
        owner_user_id=owner.id,
    )
    state.groups[channel.id] = channel
    state._ensure_conversation(("group", channel.id), channel.id)
    for bot in {b.id: b for b in bots}.values():
        add_bot(state, channel, bot, admin=True, by_user=owner)
    state.changed(channel)
    return channel


def channel_post(state: EmulatorState, channel: GroupRecord, text: str) -> dict[str, Any]:
    """The owner posts ``text``; every bot in the channel gets a ``channel_post`` update."""
    from .formatting import detect_entities

    assert channel.owner_user_id is not None
    conv = state._ensure_conversation(("group", channel.id), channel.id)
    record = state.add_message(
        conv,
        sender_kind="user",
        sender_id=channel.owner_user_id,
        text=text,
        entities=detect_entities(text),
    )
    payload = state.message_api(conv, record)
    for bot_id in channel.bot_ids:
        bot = state.bots.get(bot_id)
        if bot is not None:
            state.enqueue(bot, "channel_post", payload)
    return state.message_view(conv, record)


# ------------------------------------------------------------------------ control API


def _chat(request: web.Request) -> GroupRecord:
    try:
        chat_id = int(request.match_info["chat_id"])
    except ValueError as exc:
        raise bad_request("chat_id must be an integer") from exc
    group = _state(request).groups.get(chat_id)
    if group is None:
        raise ApiError(404, f"Not Found: chat {chat_id} does not exist")
    return group


def _bot_named(state: EmulatorState, name: Any) -> BotRecord:
    bot = state.bot_by_username(name) if isinstance(name, str) else None
    if bot is None:
        raise bad_request(f"unknown bot {name!r}")
    return bot


def _user(state: EmulatorState, user_id: int) -> UserRecord:
    user = state.users.get(user_id)
    if user is None:
        raise ApiError(404, f"Not Found: user {user_id} does not exist")
    return user


@routes.post("/control/channels")
async def create_channel_view(request: web.Request) -> web.Response:
    """Body: ``title``, ``owner_user_id``, optional ``username``, ``bot_usernames``."""
    state = _state(request)
    params = await _body(request)
    title = params.string("title", max_len=128)
    if not title:
        raise bad_request('field "title" is required')
    owner_id = _required_int(params, "owner_user_id")
    names = params.json_list("bot_usernames") or []
    bots = [_bot_named(state, name) for name in names]
    username = params.string("username", max_len=33)
    if username is not None and not USER_USERNAME_RE.match(username.removeprefix("@")):
        raise bad_request("invalid channel username")  # before the owner is created
    owner = state.upsert_user(owner_id, first_name=params.string("owner_first_name", max_len=64))
    channel = create_channel(state, title, owner=owner, bots=bots, username=username)
    return _json(group_view(state, channel), status=201)


@routes.post("/control/channels/{chat_id}/posts")
async def post_in_channel(request: web.Request) -> web.Response:
    """Body: ``text``. The channel's owner posts; returns the message."""
    state, channel = _state(request), _chat(request)
    if not channel.is_channel:
        raise bad_request(f"chat {channel.id} is not a channel")
    params = await _body(request)
    text = params.string("text")
    if text is None or not text.strip():
        raise bad_request("message text is empty")
    if len(text) > 4096:
        raise bad_request("message is too long")
    return _json(channel_post(state, channel, text), status=201)


@routes.post("/control/groups/{chat_id}/bots")
async def add_bot_view(request: web.Request) -> web.Response:
    """Body: ``username``, optional ``admin`` (default false; channels require true), ``by_user_id``."""
    state, group = _state(request), _chat(request)
    params = await _body(request)
    bot = _bot_named(state, params.string("username", max_len=64))
    by_id = params.integer("by_user_id")
    by_user = _user(state, by_id) if by_id is not None else None
    add_bot(state, group, bot, admin=params.boolean("admin"), by_user=by_user)
    return _json(group_view(state, group))


@routes.delete("/control/groups/{chat_id}/bots/{username}")
async def remove_bot_view(request: web.Request) -> web.Response:
    state, group = _state(request), _chat(request)
    bot = _bot_named(state, request.match_info["username"])
    owner = state.users.get(group.owner_user_id or 0)
    members = [state.users[u] for u in group.member_user_ids if u in state.users]
    by_user = owner or (members[0] if members else None)
    remove_bot(state, group, bot, by_user=by_user)
    return _json(group_view(state, group))


@routes.post("/control/groups/{chat_id}/members")
async def join_view(request: web.Request) -> web.Response:
    """Body: ``user_id``, optional ``first_name``. The user joins; admin bots get chat_member."""
    state, group = _state(request), _chat(request)
    params = await _body(request)
    user_id = _required_int(params, "user_id")
    if user_id in group.member_user_ids:
        raise bad_request(f"user {user_id} is already a member of this chat")
    user = state.upsert_user(user_id, first_name=params.string("first_name", max_len=64))
    user_joins(state, group, user)
    return _json(group_view(state, group))


@routes.delete("/control/groups/{chat_id}/members/{user_id}")
async def leave_view(request: web.Request) -> web.Response:
    state, group = _state(request), _chat(request)
    try:
        user_id = int(request.match_info["user_id"])
    except ValueError as exc:
        raise bad_request("user_id must be an integer") from exc
    user_leaves(state, group, _user(state, user_id))
    return _json(group_view(state, group))


async def _set_block(request: web.Request, blocked: bool) -> web.Response:
    state, bot = _state(request), _bot(request)
    try:
        user_id = int(request.match_info["user_id"])
    except ValueError as exc:
        raise bad_request("user_id must be an integer") from exc
    user = _user(state, user_id)
    if state.conversations.get(("private", bot.id, user_id)) is None:
        raise bad_request(f"user {user_id} never started @{bot.username}")
    changed = state.set_blocked(bot, user, blocked=blocked)
    return _json({"user_id": user_id, "blocked": blocked, "changed": changed})


@routes.post("/control/bots/{username}/users/{user_id}/block")
async def block_view(request: web.Request) -> web.Response:
    """The user blocks the bot; it gets my_chat_member (kicked) and 403 on sending."""
    return await _set_block(request, True)


@routes.post("/control/bots/{username}/users/{user_id}/unblock")
async def unblock_view(request: web.Request) -> web.Response:
    return await _set_block(request, False)
