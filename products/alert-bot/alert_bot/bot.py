"""Alert Bot: the router, the commands and the scheduled checks.

All state lives in ``ctx`` (``ctx.store`` for data, ``ctx.scheduler`` for checks and deliveries,
``ctx.local`` for the delivery lock), so the same code runs in the ``process`` and ``shared``
runtimes. Store layout:

* ``src:<id>`` → ``{"line": canonical source line, "origin": "config" | "admin"}``
* ``state:<id>`` → the last check's state (see ``checks.evaluate``) plus ``checked`` (time)
* ``config_errors`` → the configured lines that could not be parsed, with the reason
* ``sub:*``, ``out:*``, ``outseq`` → subscribers and the outbox (see ``delivery``)

Each source is checked by a repeating ``check`` job keyed ``check:<id>``; deliveries are
``deliver`` jobs (see ``delivery``). Both survive restarts.
"""

from __future__ import annotations

import time
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import Message

from alert_bot import delivery
from alert_bot.checks import evaluate
from alert_bot.fetch import fetch
from alert_bot.sources import Source, SourceError, parse_line, parse_lines
from otomat.botkit import BotContext

MAX_SOURCES = 100
CHECK_TIMEOUT = 90.0  # the job's bound: the fetch timeout (≤ 60 s) plus parsing
DELIVER_TIMEOUT = 300.0

HELP = """I watch web pages, feeds and APIs and alert this chat when something changes.

/subscribe — receive alerts in this chat
/unsubscribe — stop receiving them
/quiet 22:00-07:00 Europe/Warsaw — hold alerts at night, get a summary after
/quiet off — no quiet hours

For the bot's admins:
/sources — what is watched, and its status
/watch up https://example.com every 60 — watch something (see the README for the line format)
/unwatch <id> — stop watching a source
/subscribe @channel — send alerts to a channel (add me as its admin first)
/quiet @channel 22:00-07:00 Europe/Warsaw — quiet hours for a channel"""


# -- configuration and sources ------------------------------------------------------------------


def min_every(ctx: BotContext) -> float:
    return float(ctx.setting("min_interval_seconds", 60))


def fetch_limits(ctx: BotContext) -> tuple[float, int]:
    return float(ctx.setting("fetch_timeout_seconds", 10)), int(
        ctx.setting("max_page_kb", 2048)
    ) * 1024


def add_source(ctx: BotContext, source: Source, origin: str) -> None:
    ctx.store.set(f"src:{source.id}", {"line": source.line, "origin": origin})
    ctx.scheduler.run_every(source.every, "check", {"id": source.id}, key=f"check:{source.id}")


def remove_source(ctx: BotContext, source_id: str) -> None:
    ctx.store.delete(f"src:{source_id}")
    ctx.store.delete(f"state:{source_id}")
    ctx.scheduler.cancel(f"check:{source_id}")


def sync_configured_sources(ctx: BotContext) -> list[str]:
    """Make the stored sources match the configuration; return the configuration's errors.

    Sources added by admins with /watch are kept; configured ones no longer configured are
    removed. Re-registering a check is idempotent, so a restart keeps every schedule.
    """
    lines = ctx.setting("sources", []) or []
    sources, errors = parse_lines(list(lines), min_every=min_every(ctx))
    for error in errors:
        ctx.log.warning("source %s", error)
    ctx.store.set("config_errors", errors)
    wanted = {s.id: s for s in sources[:MAX_SOURCES]}
    for key, value in list(ctx.store.items("src:")):
        source_id = key.split(":", 1)[1]
        if value.get("origin") == "config" and source_id not in wanted:
            remove_source(ctx, source_id)
    for source in wanted.values():
        add_source(ctx, source, "config")
    for key, value in ctx.store.items("src:"):  # admin sources: make sure their job exists
        if value.get("origin") == "admin":
            try:
                add_source(ctx, parse_line(value["line"], min_every=0), "admin")
            except SourceError:
                remove_source(ctx, key.split(":", 1)[1])
    return errors


# -- jobs ------------------------------------------------------------------------------------------


async def check(ctx: BotContext, bot: Bot, payload: dict) -> None:
    """The ``check`` job: check one source, store its state, queue alerts for changes."""
    source_id = str(payload.get("id", ""))
    stored = ctx.store.get(f"src:{source_id}")
    if stored is None:  # removed meanwhile
        ctx.scheduler.cancel(f"check:{source_id}")
        return
    source = parse_line(stored["line"], min_every=0)
    state = ctx.store.get(f"state:{source_id}", {})
    timeout, max_bytes = fetch_limits(ctx)
    new, alerts = await evaluate(source, state, fetch, timeout=timeout, max_bytes=max_bytes)
    new["checked"] = time.time()
    # Queue first, then remember the state: a crash in between repeats an alert rather than
    # losing it.
    delivery.enqueue(ctx, alerts)
    ctx.store.set(f"state:{source_id}", new)
    if new.get("error") and new.get("error") != state.get("error"):
        ctx.log.warning("source %s (%s): %s", source_id, source.describe(), new["error"])


# -- commands --------------------------------------------------------------------------------------


def is_admin(ctx: BotContext, message: Message) -> bool:
    user = message.from_user
    if user is None:
        return False
    names = {str(a).lstrip("@").lower() for a in ctx.setting("admins", []) or []}
    return str(user.id) in names or (user.username or "").lower() in names - {""}


def _target(arg: str) -> int | str | None:
    arg = arg.strip()
    if arg.startswith("@") and 5 <= len(arg) <= 33:
        return arg
    if arg.lstrip("-").isdigit() and len(arg) < 20:
        return int(arg)
    return None


def find_subscriber(ctx: BotContext, arg: str) -> int | None:
    """The subscribed chat named by ``@username`` or numeric id, or None."""
    target = _target(arg)
    if isinstance(target, str):
        wanted = target.lstrip("@").lower()
        return next(
            (c for c, sub in delivery.subscribers(ctx).items() if sub.get("username") == wanted),
            None,
        )
    if target is not None and ctx.store.get(f"sub:{target}") is not None:
        return target
    return None


def source_status(ctx: BotContext, source_id: str, stored: dict[str, Any]) -> str:
    try:
        source = parse_line(stored["line"], min_every=0)
    except SourceError as exc:
        return f"{source_id}: unusable ({exc})"
    state = ctx.store.get(f"state:{source_id}", {})
    if "checked" not in state:
        status = "not checked yet"
    elif state.get("error"):
        status = f"⚠️ {state['error']}"
    elif source.kind == "up":
        status = "🟢 up" if state.get("ok") else "🔴 down"
    elif source.kind == "feed":
        status = f"✅ ok, {len(state.get('seen') or [])} items seen"
    else:
        status = "🔔 condition met" if state.get("ok") else "✅ ok, condition not met"
    origin = "settings" if stored.get("origin") == "config" else "/watch"
    return f"{source_id} — {source.line}\n   {status} (from {origin})"


def build_router(ctx: BotContext) -> Router:
    """The product's entry point: registers job handlers, syncs sources, returns the router."""
    ctx.scheduler.handler("check", timeout=CHECK_TIMEOUT)(check)
    ctx.scheduler.handler("deliver", timeout=DELIVER_TIMEOUT)(delivery.deliver)
    sync_configured_sources(ctx)
    ctx.scheduler.run_every(60, "deliver", key="deliver:tick")

    router = Router()

    @router.message(CommandStart())
    @router.message(Command("help"))
    async def help_(message: Message) -> None:
        await message.answer(HELP)

    @router.message(Command("subscribe"))
    async def subscribe(message: Message, command: CommandObject, ctx: BotContext) -> None:
        if command.args:  # a channel (or another chat) named by an admin
            if not is_admin(ctx, message):
                await message.answer("Only the bot's admins can subscribe other chats.")
                return
            target = _target(command.args)
            if target is None:
                await message.answer("Give the channel as @username or its numeric id.")
                return
            try:
                sent = await message.bot.send_message(
                    target, "✅ This chat now receives alerts from this bot."
                )
            except TelegramAPIError as exc:
                await message.answer(
                    f"I cannot post in {command.args.strip()}: {exc.message}. "
                    "Add me to it as an admin allowed to post, then try again."
                )
                return
            chat = sent.chat
            ctx.store.set(
                f"sub:{chat.id}",
                {
                    "title": chat.title or chat.username or str(chat.id),
                    "username": (chat.username or "").lower(),
                    "type": chat.type,
                    "quiet": None,
                    "tz": "UTC",
                },
            )
            await message.answer(f"Subscribed {command.args.strip()}.")
            return
        if not ctx.setting("public_subscriptions", True) and not is_admin(ctx, message):
            await message.answer("Only the bot's admins can subscribe chats.")
            return
        chat = message.chat
        key = f"sub:{chat.id}"
        if ctx.store.get(key) is not None:
            await message.answer("This chat is already subscribed.")
            return
        user = message.from_user
        title = chat.title or (user.full_name if user else "") or str(chat.id)
        ctx.store.set(key, {"title": title, "type": chat.type, "quiet": None, "tz": "UTC"})
        await message.answer("Subscribed: this chat will receive alerts. /unsubscribe to stop.")

    @router.message(Command("unsubscribe"))
    async def unsubscribe(message: Message, command: CommandObject, ctx: BotContext) -> None:
        chat_id: int | str | None = message.chat.id
        if command.args:
            if not is_admin(ctx, message):
                await message.answer("Only the bot's admins can unsubscribe other chats.")
                return
            chat_id = find_subscriber(ctx, command.args)
            if chat_id is None:
                await message.answer("That chat is not subscribed.")
                return
        if ctx.store.get(f"sub:{chat_id}") is None:
            await message.answer("That chat is not subscribed.")
            return
        delivery.drop_chat(ctx, int(chat_id))
        await message.answer("Unsubscribed. No more alerts here.")

    @router.message(Command("quiet"))
    async def quiet(message: Message, command: CommandObject, ctx: BotContext) -> None:
        args = (command.args or "").split()
        chat_id: int | None = message.chat.id
        if args and _target(args[0]) is not None and not args[0][0].isdigit():
            # "/quiet @channel 22:00-07:00 TZ": an admin sets a channel's quiet hours.
            if not is_admin(ctx, message):
                await message.answer("Only the bot's admins can set other chats' quiet hours.")
                return
            chat_id = find_subscriber(ctx, args.pop(0))
            if chat_id is None:
                await message.answer("That chat is not subscribed.")
                return
        key = f"sub:{chat_id}"
        sub = ctx.store.get(key)
        if sub is None:
            await message.answer("Subscribe this chat first (/subscribe).")
            return
        if args == ["off"]:
            ctx.store.set(key, sub | {"quiet": None})
            ctx.scheduler.run_at(0, "deliver", key="deliver:now")  # release anything held
            await message.answer("Quiet hours are off.")
            return
        if not 1 <= len(args) <= 2:
            await message.answer("Usage: /quiet 22:00-07:00 Europe/Warsaw, or /quiet off")
            return
        try:
            spec, tz = delivery.parse_quiet(args[0], args[1] if len(args) == 2 else "UTC")
        except ValueError as exc:
            await message.answer(f"{exc}. Usage: /quiet 22:00-07:00 Europe/Warsaw")
            return
        ctx.store.set(key, sub | {"quiet": spec, "tz": tz})
        await message.answer(f"Quiet hours set: {spec} ({tz}). Alerts then wait until they end.")

    @router.message(Command("sources"))
    async def sources(message: Message, ctx: BotContext) -> None:
        if not is_admin(ctx, message):
            await message.answer("Only the bot's admins can see the sources.")
            return
        lines = [source_status(ctx, k.split(":", 1)[1], v) for k, v in ctx.store.items("src:")]
        errors = ctx.store.get("config_errors", [])
        text = "\n\n".join(lines) if lines else "Nothing is watched yet."
        if errors:
            text += "\n\nProblems in the settings:\n" + "\n".join(f"• {e}" for e in errors)
        for start in range(0, len(text), delivery.MAX_MESSAGE):
            await message.answer(text[start : start + delivery.MAX_MESSAGE])

    @router.message(Command("watch"))
    async def watch(message: Message, command: CommandObject, ctx: BotContext) -> None:
        if not is_admin(ctx, message):
            await message.answer("Only the bot's admins can add sources.")
            return
        try:
            source = parse_line(command.args or "", min_every=min_every(ctx))
        except SourceError as exc:
            await message.answer(f"Cannot watch that: {exc}.")
            return
        if ctx.store.get(f"src:{source.id}") is not None:
            await message.answer(f"Already watched as {source.id}.")
            return
        if len(ctx.store.keys("src:")) >= MAX_SOURCES:
            await message.answer(f"At most {MAX_SOURCES} sources; /unwatch one first.")
            return
        add_source(ctx, source, "admin")
        await message.answer(f"Watching {source.describe()} (id {source.id}).")

    @router.message(Command("unwatch"))
    async def unwatch(message: Message, command: CommandObject, ctx: BotContext) -> None:
        if not is_admin(ctx, message):
            await message.answer("Only the bot's admins can remove sources.")
            return
        source_id = (command.args or "").strip()
        stored = ctx.store.get(f"src:{source_id}") if source_id else None
        if stored is None:
            await message.answer("No such source; /sources lists the ids.")
            return
        if stored.get("origin") == "config":
            await message.answer("That source comes from the bot's settings; remove it there.")
            return
        remove_source(ctx, source_id)
        await message.answer(f"Stopped watching {source_id}.")

    @router.message(F.text.startswith("/"))
    async def unknown(message: Message) -> None:
        if message.chat.type == "private":
            await message.answer("Unknown command. /help lists what I can do.")

    return router
