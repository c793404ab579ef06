"""Subscribers, quiet hours and the paced, never-dropping delivery of alerts.

Store layout (all in ``ctx.store``):

* ``sub:<chat_id>`` → ``{"title", "type", "quiet": "22:00-07:00" | None, "tz": "Asia/Jakarta"}``
* ``out:<chat_id>:<seq>`` → ``{"text", "at", "held"}``: the outbox. An alert is written here for
  every subscriber *before* anything is sent and deleted only after Telegram accepted it, so a
  crash or a 429 never loses one (at worst a message is sent twice after a crash).

Delivery is one job kind, ``deliver``, triggered right after alerts are queued
(``deliver:now``), at the end of each subscriber's quiet hours (``deliver:quiet:<chat>``) and
every minute as a safety net (``deliver:tick``). Runs are serialised by a per-instance lock so
two never send the same outbox entry. Sends are paced to ``send_rate_per_second`` and a 429
waits the ``retry_after`` Telegram asks for. During a subscriber's quiet hours nothing is sent
to that chat; what was held is sent as one summary when they end.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
)

if TYPE_CHECKING:
    from aiogram import Bot

    from otomat.botkit import BotContext

MAX_MESSAGE = 4000  # Telegram allows 4096 characters; keep room for the header
RUN_BUDGET = 200.0  # seconds of sending per run; the job's timeout is 300 s
MAX_OUTBOX_SCAN = 5000  # entries looked at per run; the rest wait for the next run
MAX_RETRY_AFTER = 60.0
_QUIET = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)$")


def now_utc() -> datetime:
    """The current time (a function so tests can move it with time_machine)."""
    return datetime.now(UTC)


# -- quiet hours --------------------------------------------------------------------------------


def parse_quiet(spec: str, tz: str = "UTC") -> tuple[str, str]:
    """Validate ``22:00-07:00`` and a time zone name; return them normalised.

    Raises ``ValueError`` with a message for the user.
    """
    match = _QUIET.match(spec.strip())
    if not match:
        raise ValueError("quiet hours look like 22:00-07:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if (h1, m1) == (h2, m2):
        raise ValueError("quiet hours must start and end at different times")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r}; use a name like Europe/Warsaw") from None
    return f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}", tz


def _bounds(sub: dict[str, Any]) -> tuple[dtime, dtime, ZoneInfo] | None:
    quiet = sub.get("quiet")
    if not quiet:
        return None
    start, end = quiet.split("-")
    try:
        zone = ZoneInfo(sub.get("tz") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return dtime.fromisoformat(start), dtime.fromisoformat(end), zone


def in_quiet(sub: dict[str, Any], now: datetime) -> bool:
    """Whether ``now`` falls in the subscriber's quiet hours (in their time zone)."""
    bounds = _bounds(sub)
    if bounds is None:
        return False
    start, end, zone = bounds
    local = now.astimezone(zone).time().replace(tzinfo=None)
    if start < end:
        return start <= local < end
    return local >= start or local < end  # over midnight


def quiet_end(sub: dict[str, Any], now: datetime) -> datetime:
    """The next moment (UTC) the subscriber's quiet hours end after ``now``."""
    bounds = _bounds(sub)
    if bounds is None:
        return now
    _, end, zone = bounds
    local = now.astimezone(zone)
    candidate = datetime.combine(local.date(), end, tzinfo=zone)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=zone)
    return candidate.astimezone(UTC)


# -- subscribers and the outbox -------------------------------------------------------------


def subscribers(ctx: BotContext) -> dict[int, dict[str, Any]]:
    return {int(key.split(":", 1)[1]): value for key, value in ctx.store.items("sub:")}


def enqueue(ctx: BotContext, texts: list[str]) -> int:
    """Queue ``texts`` for every subscriber and trigger delivery; return the entries written."""
    if not texts:
        return 0
    now = now_utc()
    written = 0
    for chat_id, sub in subscribers(ctx).items():
        held = in_quiet(sub, now)
        for text in texts:
            seq = ctx.store.incr("outseq")
            ctx.store.set(
                f"out:{chat_id}:{seq:012d}", {"text": text, "at": now.timestamp(), "held": held}
            )
            written += 1
        if held:
            schedule_after_quiet(ctx, chat_id, sub, now)
    if written:
        ctx.scheduler.run_at(0, "deliver", key="deliver:now")
    return written


def schedule_after_quiet(ctx: BotContext, chat_id: int, sub: dict[str, Any], now: datetime) -> None:
    # One second late, so the delivery run is certainly outside the quiet window.
    ctx.scheduler.run_at(
        quiet_end(sub, now) + timedelta(seconds=1), "deliver", key=f"deliver:quiet:{chat_id}"
    )


def drop_chat(ctx: BotContext, chat_id: int) -> None:
    """Forget a subscriber and its undelivered alerts (it left, blocked us, or unsubscribed)."""
    ctx.store.delete(f"sub:{chat_id}")
    for key in ctx.store.keys(f"out:{chat_id}:"):
        ctx.store.delete(key)


def compose(entries: list[dict[str, Any]]) -> list[str]:
    """Turn a chat's queued alerts into as few messages as fit (≤ MAX_MESSAGE characters)."""
    held = sum(1 for e in entries if e.get("held"))
    texts = [str(e.get("text", ""))[:MAX_MESSAGE] for e in entries]
    if len(texts) == 1 and not held:
        return texts
    header = (
        f"🌙 {len(texts)} alert(s) held during your quiet hours:"
        if held
        else f"🔔 {len(texts)} alerts:"
    )
    messages: list[str] = []
    current = header
    for text in texts:
        block = f"\n\n{text}"
        if len(current) + len(block) > MAX_MESSAGE:
            messages.append(current)
            current = text
        else:
            current += block
    messages.append(current)
    return messages


async def deliver(ctx: BotContext, bot: Bot, payload: dict) -> None:
    """The ``deliver`` job: send every chat's queued alerts that may be sent now."""
    lock = ctx.local.setdefault("alert_bot:deliver", asyncio.Lock())
    async with lock:
        await _deliver(ctx, bot)


async def _deliver(ctx: BotContext, bot: Bot) -> None:
    rate = float(ctx.setting("send_rate_per_second", 20) or 20)
    gap = 1.0 / max(rate, 0.1)
    deadline = time.monotonic() + RUN_BUDGET
    by_chat: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    for count, (key, entry) in enumerate(ctx.store.items("out:")):
        if count >= MAX_OUTBOX_SCAN:
            ctx.scheduler.run_at(1, "deliver", key="deliver:now")  # continue in another run
            break
        by_chat.setdefault(int(key.split(":")[1]), []).append((key, entry))
    subs = subscribers(ctx)
    now = now_utc()
    for chat_id, entries in by_chat.items():
        sub = subs.get(chat_id)
        if sub is None:  # unsubscribed since the alerts were queued
            for key, _ in entries:
                ctx.store.delete(key)
            continue
        if in_quiet(sub, now):
            schedule_after_quiet(ctx, chat_id, sub, now)
            continue
        messages = compose([e for _, e in entries])
        outcome = await _send_all(ctx, bot, chat_id, messages, gap, deadline)
        if outcome == "later":
            return  # out of time or Telegram unreachable: a run is scheduled, nothing lost
        if outcome == "gone":
            drop_chat(ctx, chat_id)
            continue
        for key, _ in entries:
            ctx.store.delete(key)


async def _send_all(
    ctx: BotContext, bot: Bot, chat_id: int, messages: list[str], gap: float, deadline: float
) -> str:
    """Send ``messages`` to one chat: ``"sent"``, ``"gone"`` (the chat is unreachable for good)
    or ``"later"`` (stop this run; a retry is scheduled)."""
    for text in messages:
        while True:
            if time.monotonic() > deadline:
                ctx.scheduler.run_at(1, "deliver", key="deliver:now")
                return "later"
            try:
                await bot.send_message(chat_id, text, disable_web_page_preview=True)
            except TelegramRetryAfter as exc:
                wait = float(exc.retry_after)
                if wait > MAX_RETRY_AFTER or time.monotonic() + wait > deadline:
                    ctx.scheduler.run_at(wait, "deliver", key="deliver:now")
                    return "later"
                ctx.log.info("Telegram asked to slow down; waiting %.0f s", wait)
                await asyncio.sleep(wait)
                continue
            except TelegramForbiddenError:
                ctx.log.warning("chat %s blocked the bot or removed it; unsubscribed", chat_id)
                return "gone"
            except TelegramBadRequest as exc:
                if "not found" in str(exc).lower():
                    ctx.log.warning("chat %s no longer exists; unsubscribed", chat_id)
                    return "gone"
                # Anything else is a message Telegram will never accept: log it, move on.
                ctx.log.error("alert to chat %s refused: %s", chat_id, exc)
                break
            except Exception as exc:  # network trouble, 5xx: keep everything for later
                ctx.log.warning("cannot reach Telegram (%s); retrying in 10 s", type(exc).__name__)
                ctx.scheduler.run_at(10, "deliver", key="deliver:now")
                return "later"
            await asyncio.sleep(gap)
            break
    return "sent"
