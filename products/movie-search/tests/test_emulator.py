"""End to end through the Bot API emulator: private chat, group, pagination, and auto-delete
that survives a restart of the bot (a new store, scheduler and dispatcher on the same data dir,
exactly what a platform restart gives an instance)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from movie_fakesites import FakeSites
from movie_search.bot import build_router
from movie_search.index import Index, reindex

from otomat.botkit import BotContext, SQLiteStore
from otomat.tgemu.testing import EmulatorServer

USER = 1001


@asynccontextmanager
async def running_bot(
    emu: EmulatorServer, token: str, config: dict[str, Any], data_dir: Path
) -> AsyncIterator[BotContext]:
    """The product wired like ``otomat.botkit.host`` does: polling plus the job scheduler."""
    store = SQLiteStore(data_dir / "store.sqlite3")
    ctx = BotContext(
        instance_id="ms-e2e",
        config={"bot_token": token, **config},
        store=store,
        log=logging.getLogger("ms-e2e"),
        api_url=emu.url,
        data_dir=data_dir,
    )
    bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(emu.url)))
    dp = Dispatcher()
    dp["ctx"] = ctx
    dp.include_router(build_router(ctx))
    stop = asyncio.Event()
    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    jobs = asyncio.create_task(ctx.scheduler.run(bot, stop))
    try:
        yield ctx
    finally:
        stop.set()
        await dp.stop_polling()
        await asyncio.wait_for(polling, 10)
        await asyncio.wait_for(jobs, 10)
        await bot.session.close()
        store.close()


async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """The emulator helpers block (urllib): run them off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def wait_for(predicate: Any, timeout: float = 10, *, local: bool = False) -> None:
    """Poll ``predicate`` (in a thread, as it calls the emulator; ``local`` ones run here —
    the store's SQLite connection belongs to this thread)."""
    deadline = time.monotonic() + timeout
    while not (predicate() if local else await call(predicate)):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


def bot_messages(emu: EmulatorServer, bot: str, chat: int) -> list[dict[str, Any]]:
    return [m for m in emu.messages(bot, chat) if m["from_bot"]]


def test_private_search_pagination_and_delete_after_a_restart(
    tmp_path: Path, sites: FakeSites
) -> None:
    config = {"sites": [sites.url("wordpress")], "results_per_page": 1, "auto_delete_minutes": 0.05}
    reindex(Index(tmp_path / "index.sqlite3"), config["sites"])

    async def scenario(emu: EmulatorServer, token: str) -> None:
        async with running_bot(emu, token, config, tmp_path) as ctx:
            await call(emu.send, "movies_bot", user_id=USER, text="/search matirx")
            [reply] = await call(emu.messages, "movies_bot", USER, after=1, wait=10)
            assert reply["text"].startswith(
                "Results for “matirx” — 1–1 of 2\n\n1. The Matrix (1999)"
            )
            await call(
                emu.press, "movies_bot", user_id=USER, message_id=reply["message_id"], data="ms:1:1"
            )
            await wait_for(
                lambda: "The Matrix Reloaded" in bot_messages(emu, "movies_bot", USER)[-1]["text"]
            )
            [job] = ctx.scheduler.pending("delete_message")
            assert job.payload == {"chat_id": USER, "message_id": reply["message_id"]}
        # The bot is down while the deletion falls due (3 s after the answer)...
        await asyncio.sleep(max(0.0, job.due_at.timestamp() - time.time()) + 0.2)
        assert not bot_messages(emu, "movies_bot", USER)[-1]["deleted"]
        # ...and a new instance on the same data dir deletes it at start.
        async with running_bot(emu, token, config, tmp_path) as ctx:
            await wait_for(lambda: bot_messages(emu, "movies_bot", USER)[-1]["deleted"])
            await wait_for(lambda: not ctx.scheduler.pending("delete_message"), local=True)

    with EmulatorServer() as emu:
        token = emu.create_bot("movies_bot")["token"]
        asyncio.run(scenario(emu, token))


def test_group_search_and_deletion_of_what_may_be_deleted(
    tmp_path: Path, sites: FakeSites, caplog: Any
) -> None:
    config = {
        "sites": [sites.url("rss"), sites.url("sitemap")],
        "auto_delete_minutes": 0.02,
        "delete_group_queries": True,
    }
    reindex(Index(tmp_path / "index.sqlite3"), config["sites"])

    async def scenario(emu: EmulatorServer, token: str, group: int) -> None:
        async with running_bot(emu, token, config, tmp_path) as ctx:
            query = await call(
                emu.send, "group_movies_bot", user_id=USER, text="/search amelie", chat_id=group
            )
            [reply] = await call(
                emu.messages, "group_movies_bot", group, after=query["message_id"], wait=10
            )
            assert reply["text"].startswith("Results for “amelie” — 1–2 of 2")
            assert "Amélie (2001)" in reply["text"]
            with caplog.at_level(logging.WARNING):
                await wait_for(lambda: bot_messages(emu, "group_movies_bot", group)[-1]["deleted"])
                await wait_for(lambda: not ctx.scheduler.pending("delete_message"), local=True)
            # Without admin rights the member's message stays; the job still ends (logged).
            [user_message] = [
                m for m in emu.messages("group_movies_bot", group) if not m["from_bot"]
            ]
            assert not user_message["deleted"]
            assert "can't be deleted" in caplog.text

    with EmulatorServer() as emu:
        token = emu.create_bot("group_movies_bot")["token"]
        group = emu.control(
            "POST",
            "/groups",
            {
                "title": "Film club",
                "member_user_ids": [USER],
                "bot_usernames": ["group_movies_bot"],
            },
        )
        asyncio.run(scenario(emu, token, group["id"]))


def test_inline_mode_through_the_emulator(tmp_path: Path, sites: FakeSites) -> None:
    config = {"sites": [sites.url("atom")]}
    reindex(Index(tmp_path / "index.sqlite3"), config["sites"])

    async def ask(emu: EmulatorServer, query: str) -> dict[str, Any]:
        started = await call(
            emu.control,
            "POST",
            "/bots/inline_movies_bot/inline_queries",
            {"user_id": USER, "query": query},
        )
        status = await call(
            emu.control, "GET", f"/bots/inline_movies_bot/inline_queries/{started['id']}?wait=10"
        )
        assert status["answered"], status
        return status

    async def scenario(emu: EmulatorServer, token: str) -> None:
        async with running_bot(emu, token, config, tmp_path):
            status = await ask(emu, "amelei")
            results = status["answer"]["results"]
            assert [r["title"] for r in results] == ["Amélie (2001)"]
            assert results[0]["url"] == sites.url("atom") + "posts/amelie"
            chosen = await call(
                emu.control,
                "POST",
                f"/bots/inline_movies_bot/inline_queries/{status['id']}/choose",
                {"result_id": results[0]["id"]},
            )
            assert "Amélie (2001)" in str(chosen)
            hint = await ask(emu, "")
            assert [r["title"] for r in hint["answer"]["results"]] == ["Type a film title"]

    with EmulatorServer() as emu:
        token = emu.create_bot("inline_movies_bot")["token"]
        asyncio.run(scenario(emu, token))
