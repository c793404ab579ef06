"""Movie Search Bot: the aiogram router (entry ``movie_search.bot:build_router``).

Per-instance state lives only in the instance's context: the search index in
``ctx.data_dir / "index.sqlite3"``, search sessions for pagination in ``ctx.store``
(``q:<id>``), and jobs in ``ctx.scheduler`` — so the ``shared`` runtime can host many instances
in one process. Module globals are constants and pure helpers only.

Jobs:

* ``reindex`` — repeating every ``reindex_hours`` (key ``reindex``), plus a one-off
  ``reindex:now`` at the first start and whenever the configured site list changed;
* ``delete_message`` — one per answer when ``auto_delete_minutes`` > 0 (key
  ``del:<chat>:<message>``), persisted, so an answer is deleted even if the platform restarted
  in between. "Message to delete not found" and the 48-hour "can't be deleted" count as done;
  other errors raise, so the scheduler retries them with backoff.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiogram import Bot, F, Router
from aiogram.enums import ChatType, ParseMode
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQuery,
    InlineQueryResultArticle,
    InputTextMessageContent,
    LinkPreviewOptions,
    Message,
)

from movie_search.index import MAX_QUERY, Hit, Index, SiteResult, reindex
from movie_search.sources import KIND_LABELS, Fetcher
from movie_search.texts import LANGUAGES, TEXTS
from otomat.botkit import BotContext

INDEX_FILE = "index.sqlite3"
JOB_DELETE = "delete_message"
JOB_REINDEX = "reindex"
# Telegram lets a bot delete a message for everyone only within 48 hours; a minute of margin.
MAX_DELETE_SECONDS = 48 * 3600 - 60
QUERY_TTL = 48 * 3600  # pagination buttons of older searches answer "expired"
INLINE_PAGE = 20
CALLBACK = re.compile(r"^ms:([0-9a-z]{1,12}):([0-9]{1,4})$")  # ms:<search id>:<page>
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
SITE_FETCH_BUDGET = 120.0  # seconds for all requests of one site in one indexing run


@dataclass(frozen=True)
class Settings:
    """The configuration with the schema's defaults applied."""

    sites: tuple[str, ...]
    language: str
    auto_delete_minutes: float  # whole minutes on the form; fractions accepted (tests use them)
    reindex_hours: float
    results_per_page: int
    delete_group_queries: bool
    admins: frozenset[str]

    @classmethod
    def of(cls, ctx: BotContext) -> Settings:
        config: dict[str, Any] = ctx.config
        language = config.get("language", "en")
        return cls(
            sites=tuple(s.strip() for s in config.get("sites") or [] if isinstance(s, str)),
            language=language if language in LANGUAGES else "en",
            auto_delete_minutes=max(0.0, float(config.get("auto_delete_minutes", 0))),
            reindex_hours=max(0.01, float(config.get("reindex_hours", 6))),
            results_per_page=min(10, max(1, int(config.get("results_per_page", 5)))),
            delete_group_queries=bool(config.get("delete_group_queries", False)),
            admins=frozenset(a.lstrip("@").lower() for a in config.get("admins") or []),
        )

    def t(self, key: str, **values: Any) -> str:
        return TEXTS[self.language][key].format(**values)

    def is_admin(self, user: Any) -> bool:
        username = (getattr(user, "username", None) or "").lower()
        return bool(username) and username in self.admins


def index_of(ctx: BotContext) -> Index:
    return Index(Path(ctx.data_dir) / INDEX_FILE)


async def search(ctx: BotContext, query: str) -> list[Hit]:
    """Search off the event loop: scoring thousands of candidates takes 10–40 ms, which in the
    shared runtime would delay every other bot of the process."""
    return await asyncio.to_thread(lambda: index_of(ctx).search(query))


# ---------------------------------------------------------------------- rendering


def format_hit(hit: Hit, settings: Settings, number: int | None = None) -> str:
    """One result as HTML: "3. <b>Title</b> (year)" and a line with the site and the links."""
    title = html.escape(hit.title)
    year = f" ({hit.year})" if hit.year and str(hit.year) not in hit.title else ""
    links = [f'<a href="{html.escape(hit.url)}">{settings.t("open")}</a>']
    if hit.poster:
        links.append(f'<a href="{html.escape(hit.poster)}">{settings.t("poster")}</a>')
    prefix = f"{number}. " if number is not None else ""
    return f"{prefix}<b>{title}</b>{year}\n    {html.escape(hit.site)} · {' · '.join(links)}"


def render_page(
    hits: list[Hit], query: str, page: int, search_id: str, settings: Settings
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The text and buttons of page ``page`` (0-based, clamped) of ``hits``."""
    per = settings.results_per_page
    pages = max(1, -(-len(hits) // per))
    page = min(max(page, 0), pages - 1)
    shown = hits[page * per : (page + 1) * per]
    head = settings.t(
        "header",
        q=html.escape(query),
        first=page * per + 1,
        last=page * per + len(shown),
        total=len(hits),
    )
    lines = [format_hit(h, settings, page * per + i + 1) for i, h in enumerate(shown)]
    text = head + "\n\n" + "\n".join(lines)
    buttons = []
    if page > 0:
        buttons.append(
            InlineKeyboardButton(
                text=settings.t("prev"), callback_data=f"ms:{search_id}:{page - 1}"
            )
        )
    if page < pages - 1:
        buttons.append(
            InlineKeyboardButton(
                text=settings.t("next"), callback_data=f"ms:{search_id}:{page + 1}"
            )
        )
    return text, InlineKeyboardMarkup(inline_keyboard=[buttons]) if buttons else None


def new_search_id(ctx: BotContext, query: str) -> str:
    """Remember ``query`` for the pagination buttons; returns a short base-36 id."""
    n = ctx.store.incr("seq:search")
    digits, alphabet = "", "0123456789abcdefghijklmnopqrstuvwxyz"
    while True:
        n, rest = divmod(n, 36)
        digits = alphabet[rest] + digits
        if n == 0:
            break
    ctx.store.set(f"q:{digits}", {"q": query, "t": time.time()})
    return digits


def saved_query(ctx: BotContext, search_id: str) -> str | None:
    saved = ctx.store.get(f"q:{search_id}")
    if not isinstance(saved, dict) or not isinstance(saved.get("q"), str):
        return None
    if time.time() - float(saved.get("t", 0)) > QUERY_TTL:
        ctx.store.delete(f"q:{search_id}")
        return None
    return saved["q"]


def forget_old_searches(ctx: BotContext) -> int:
    """Drop expired search sessions (run with every re-index); returns how many."""
    dropped = 0
    for key, value in ctx.store.items("q:"):
        if not isinstance(value, dict) or time.time() - float(value.get("t", 0)) > QUERY_TTL:
            ctx.store.delete(key)
            dropped += 1
    return dropped


# ---------------------------------------------------------------------- auto-delete


def schedule_delete(ctx: BotContext, chat_id: int, message_id: int) -> str | None:
    """Persist the deletion of one message after ``auto_delete_minutes``; returns the job key,
    or ``None`` when auto-delete is off."""
    minutes = Settings.of(ctx).auto_delete_minutes
    if minutes <= 0:
        return None
    delay = minutes * 60
    if delay > MAX_DELETE_SECONDS:
        ctx.log.info(
            "auto-delete after %g minutes is beyond Telegram's 48-hour limit; deleting after 47 h 59 min",
            minutes,
        )
        delay = MAX_DELETE_SECONDS
    return ctx.scheduler.run_at(
        delay,
        JOB_DELETE,
        {"chat_id": chat_id, "message_id": message_id},
        key=f"del:{chat_id}:{message_id}",
    )


async def delete_message_job(ctx: BotContext, bot: Bot, payload: dict) -> None:
    """Delete one message. Done (no retry) when it is already gone or too old to delete;
    raises for anything else so the scheduler retries with backoff."""
    chat_id, message_id = payload.get("chat_id"), payload.get("message_id")
    if not isinstance(chat_id, int) or not isinstance(message_id, int):
        ctx.log.error("auto-delete job with a bad payload dropped: %r", payload)
        return
    try:
        await bot.delete_message(chat_id=chat_id, message_id=message_id)
    except TelegramBadRequest as exc:
        text = exc.message.lower()
        if "message to delete not found" in text or "message not found" in text:
            return  # someone deleted it already: the goal is reached
        if "can't be deleted" in text or "cant be deleted" in text:
            ctx.log.warning(
                "auto-delete: message %d in chat %d can't be deleted (older than 48 hours, "
                "or not the bot's own message in a group without admin rights); giving up",
                message_id,
                chat_id,
            )
            return
        raise
    except TelegramForbiddenError:
        ctx.log.warning("auto-delete: the bot is no longer in chat %d; giving up", chat_id)


# ---------------------------------------------------------------------- indexing


def _fetcher() -> Fetcher:
    return Fetcher(total_timeout=SITE_FETCH_BUDGET)


async def run_reindex(ctx: BotContext) -> list[SiteResult]:
    """Index every configured site in a worker thread (never blocks the event loop)."""
    settings = Settings.of(ctx)
    results = await asyncio.to_thread(
        reindex, index_of(ctx), list(settings.sites), fetcher_factory=_fetcher
    )
    for result in results:
        if result.error:
            ctx.log.warning("indexing %s failed: %s", result.url, result.error)
        else:
            ctx.log.info("indexed %s (%s): %d items", result.url, result.kind, result.items)
    forget_old_searches(ctx)
    return results


async def reindex_job(ctx: BotContext, bot: Bot, payload: dict) -> None:
    """Re-index all sites; with ``chat_id`` in the payload (``/reindex``), report there."""
    results = await run_reindex(ctx)
    chat_id = payload.get("chat_id")
    if isinstance(chat_id, int):
        settings = Settings.of(ctx)
        ok = [r for r in results if not r.error]
        summary = settings.t(
            "reindexed", items=sum(r.items for r in ok), ok=len(ok), n=len(results)
        )
        await bot.send_message(chat_id, summary + "\n\n" + stats_text(ctx, settings))


# ---------------------------------------------------------------------- answering


async def first_index_done(ctx: BotContext) -> bool:
    """Whether any configured site was ever read (indexed, or tried and found unreadable)."""

    def done() -> bool:
        return any(s.indexed_at or s.checked_at for s in index_of(ctx).sites())

    return await asyncio.to_thread(done)


async def answer_search(message: Message, ctx: BotContext, query: str) -> None:
    settings = Settings.of(ctx)
    query = " ".join(query.split())
    if not query:
        sent = await message.answer(settings.t("usage"))
    elif len(query) > MAX_QUERY:
        sent = await message.answer(settings.t("too_long"))
    else:
        hits = await search(ctx, query)
        if not hits and not await first_index_done(ctx):
            # "Nothing found" before the first indexing run ends would be a false answer.
            sent = await message.answer(settings.t("still_indexing"), parse_mode=None)
        elif not hits:
            sent = await message.answer(settings.t("nothing", q=query), parse_mode=None)
        else:
            text, markup = render_page(hits, query, 0, new_search_id(ctx, query), settings)
            sent = await message.answer(
                text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                link_preview_options=NO_PREVIEW,
            )
    schedule_delete(ctx, sent.chat.id, sent.message_id)
    if message.chat.type != ChatType.PRIVATE and settings.delete_group_queries:
        schedule_delete(ctx, message.chat.id, message.message_id)


def inline_results(
    hits: list[Hit], settings: Settings, first: int = 0
) -> list[InlineQueryResultArticle]:
    """Article results; ids are positions in the whole result list (unique across pages)."""
    results = []
    for n, hit in enumerate(hits, start=first):
        year = f" ({hit.year})" if hit.year and str(hit.year) not in hit.title else ""
        results.append(
            InlineQueryResultArticle(
                id=f"r{n}",
                title=f"{hit.title}{year}"[:200],
                description=hit.site,
                url=hit.url,
                thumbnail_url=hit.poster or None,
                input_message_content=InputTextMessageContent(
                    message_text=format_hit(hit, settings),
                    parse_mode=ParseMode.HTML,
                    link_preview_options=NO_PREVIEW,
                ),
            )
        )
    return results


def build_router(ctx: BotContext) -> Router:
    """The product's entry point: registers the job handlers, schedules re-indexing, and
    returns the router."""
    router = Router(name=f"movie-search:{ctx.instance_id}")
    settings = Settings.of(ctx)
    ctx.scheduler.handler(JOB_DELETE)(delete_message_job)
    ctx.scheduler.handler(JOB_REINDEX, timeout=max(600.0, SITE_FETCH_BUDGET * 12))(reindex_job)
    # Idempotent by key: a restart keeps the schedule; a changed interval is applied.
    period = settings.reindex_hours * 3600
    ctx.scheduler.run_every(period, JOB_REINDEX, key=JOB_REINDEX, first_in=period)
    # The first start, and a restart after the customer edited the site list, index at once
    # instead of waiting for the next period.
    sites = sorted(settings.sites)
    if ctx.store.get("config:sites") != sites:
        ctx.store.set("config:sites", sites)
        ctx.scheduler.run_at(0, JOB_REINDEX, key=f"{JOB_REINDEX}:now")

    @router.message(CommandStart())
    @router.message(Command("help"))
    async def on_help(message: Message, ctx: BotContext, bot: Bot) -> None:
        settings = Settings.of(ctx)
        me = await bot.me()
        sites = ", ".join(s.split("://", 1)[-1].rstrip("/") for s in settings.sites) or "—"
        sent = await message.answer(settings.t("help", sites=sites, bot=me.username or "bot"))
        schedule_delete(ctx, sent.chat.id, sent.message_id)

    @router.message(Command("search"))
    async def on_search(message: Message, ctx: BotContext, command: CommandObject) -> None:
        await answer_search(message, ctx, command.args or "")

    @router.message(Command("stats"))
    async def on_stats(message: Message, ctx: BotContext) -> None:
        settings = Settings.of(ctx)
        if not settings.is_admin(message.from_user):
            await message.answer(settings.t("not_admin"))
            return
        await message.answer(stats_text(ctx, settings), parse_mode=None)

    @router.message(Command("reindex"))
    async def on_reindex(message: Message, ctx: BotContext) -> None:
        settings = Settings.of(ctx)
        if not settings.is_admin(message.from_user):
            await message.answer(settings.t("not_admin"))
            return
        # As a job, not in the handler: reading ten sites may take minutes, longer than a
        # host lets one update run; the job has its own timeout and survives a restart.
        ctx.scheduler.run_at(0, JOB_REINDEX, {"chat_id": message.chat.id}, key=f"{JOB_REINDEX}:now")
        await message.answer(settings.t("reindexing", n=len(settings.sites)))

    @router.message(F.chat.type == ChatType.PRIVATE, F.text, ~F.text.startswith("/"))
    async def on_private_text(message: Message, ctx: BotContext) -> None:
        await answer_search(message, ctx, message.text or "")

    @router.callback_query(F.data.startswith("ms:"))
    async def on_page(query: CallbackQuery, ctx: BotContext) -> None:
        settings = Settings.of(ctx)
        match = CALLBACK.match(query.data or "")
        saved = saved_query(ctx, match.group(1)) if match else None
        if not match or saved is None or not isinstance(query.message, Message):
            await query.answer(settings.t("expired"), show_alert=False)
            return
        hits = await search(ctx, saved)
        if not hits:
            await query.answer(settings.t("expired"))
            return
        text, markup = render_page(hits, saved, int(match.group(2)), match.group(1), settings)
        await query.answer()
        try:
            await query.message.edit_text(
                text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                link_preview_options=NO_PREVIEW,
            )
        except TelegramBadRequest as exc:
            if "not modified" not in exc.message:  # a double click on the same button
                raise

    @router.inline_query()
    async def on_inline(inline: InlineQuery, ctx: BotContext, bot: Bot) -> None:
        settings = Settings.of(ctx)
        query = " ".join(inline.query.split())[:MAX_QUERY]
        if not query:
            me = await bot.me()
            hint = InlineQueryResultArticle(
                id="hint",
                title=settings.t("inline_hint"),
                input_message_content=InputTextMessageContent(
                    message_text=settings.t("inline_hint_text", bot=me.username or "bot")
                ),
            )
            await inline.answer([hint], cache_time=300, is_personal=False)
            return
        offset = int(inline.offset) if inline.offset.isdigit() and len(inline.offset) < 5 else 0
        hits = await search(ctx, query)
        page = hits[offset : offset + INLINE_PAGE]
        next_offset = str(offset + INLINE_PAGE) if offset + INLINE_PAGE < len(hits) else ""
        await inline.answer(
            inline_results(page, settings, first=offset),
            cache_time=60,
            is_personal=False,
            next_offset=next_offset,
        )

    return router


def stats_text(ctx: BotContext, settings: Settings) -> str:
    """Per-site status for the owner: kind, items, last index time, last error."""
    index = index_of(ctx)
    known = {s.url: s for s in index.sites()}
    lines = [settings.t("stats_head", sites=len(settings.sites), items=index.count())]
    for site in settings.sites:
        status = known.get(site)
        name = site.split("://", 1)[-1].rstrip("/")
        if status is None:
            lines.append(settings.t("stats_never", site=name))
        elif status.indexed_at:
            when = status.indexed_at.replace("T", " ").replace("+00:00", " UTC")
            kind = KIND_LABELS.get(status.kind or "", status.kind or "?")
            lines.append(
                settings.t("stats_ok", site=name, kind=kind, items=status.items, when=when)
            )
            if status.error:
                lines.append(settings.t("stats_err_old", error=status.error))
        else:
            lines.append(settings.t("stats_err", site=name, error=status.error or "?"))
    lines.append(settings.t("stats_pending", n=len(ctx.scheduler.pending(JOB_DELETE))))
    return "\n".join(lines)
