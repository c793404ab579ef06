"""Helpers for unit-testing a product's handlers without any network.

:class:`BotHarness` builds a dispatcher exactly like the host does (context in the workflow data,
update counting, error catching) around a :class:`RecordingSession` that answers Bot API calls
locally and records them::

    async def test_it_greets():
        harness = BotHarness(build_router, {"bot_token": TEST_TOKEN, "welcome_text": "Hi {name}"})
        sent = await harness.send_text("/start", first_name="Alice")
        assert sent[0].text == "Hi Alice"

For end-to-end tests use the Bot API emulator (``otomat.tgemu``): :class:`LiveBot` runs a
product against it in the test's event loop, wired like the host (polling plus the scheduler).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import AsyncGenerator, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.base import BaseSession
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    SendMessage,
    TelegramMethod,
)
from aiogram.types import CallbackQuery, Chat, Message, Update, User

from otomat.botkit.context import BotContext
from otomat.botkit.instrument import Counters, instrument
from otomat.botkit.store import MemoryStore, Store

P = ParamSpec("P")

TEST_TOKEN = "123456789:AAEhBP0av28pRNJvtNOIqYhRZfxoR3UdHLc"  # noqa: S105 - a fake, well-formed token
BOT_USER = User(id=123456789, is_bot=True, first_name="Test Bot", username="test_bot")


def async_test(fn: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an ``async def`` test with ``asyncio.run`` (the project uses no asyncio pytest plugin).

    ``functools.wraps`` keeps the signature, so pytest fixtures still work.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


class RecordingSession(BaseSession):
    """An aiogram session that records every method call and fabricates a plausible result."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[TelegramMethod[Any]] = []
        self._message_ids = itertools.count(1000)

    async def close(self) -> None:
        return None

    async def make_request(
        self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None
    ) -> Any:
        self.requests.append(method)
        if isinstance(method, GetMe):
            return BOT_USER
        if isinstance(method, SendMessage | EditMessageText | EditMessageReplyMarkup):
            chat_id = method.chat_id if isinstance(method.chat_id, int) else 0
            message_id = getattr(method, "message_id", None) or next(self._message_ids)
            return Message(
                message_id=message_id,
                date=datetime.now(UTC),
                chat=Chat(id=chat_id, type="private"),
                from_user=BOT_USER,
                text=getattr(method, "text", None),
                reply_markup=method.reply_markup,
            ).as_(bot)
        return True

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        yield b""


class BotHarness:
    """A product router wired like in production, fed with synthetic updates."""

    def __init__(
        self,
        factory: Callable[[BotContext], Router],
        config: dict[str, Any],
        *,
        store: Store | None = None,
        instance_id: str = "test-instance",
        data_dir: Path = Path("/nonexistent"),
    ) -> None:
        self.session = RecordingSession()
        self.bot = Bot(config.get("bot_token", TEST_TOKEN), session=self.session)
        self.ctx = BotContext(
            instance_id=instance_id,
            config=config,
            store=store if store is not None else MemoryStore(),
            log=logging.getLogger("bot"),
            data_dir=data_dir,
        )
        self.counters = Counters()
        self.errors: list[str] = []
        self.dp = Dispatcher()
        self.dp["ctx"] = self.ctx
        instrument(self.dp, self.counters, log=self.ctx.log, on_error=self.errors.append)
        self.dp.include_router(factory(self.ctx))
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)

    @staticmethod
    def user(user_id: int = 1, first_name: str = "Alice", username: str | None = None) -> User:
        return User(id=user_id, is_bot=False, first_name=first_name, username=username)

    async def feed(self, update: Update) -> list[TelegramMethod[Any]]:
        """Feed one update; return the Bot API calls the handlers made for it."""
        before = len(self.session.requests)
        await self.dp.feed_update(self.bot, update)
        return self.session.requests[before:]

    async def send_text(
        self,
        text: str,
        *,
        user_id: int = 1,
        first_name: str = "Alice",
        username: str | None = None,
    ) -> list[TelegramMethod[Any]]:
        """A private-chat text message from a user."""
        message = Message(
            message_id=next(self._message_ids),
            date=datetime.now(UTC),
            chat=Chat(id=user_id, type="private"),
            from_user=self.user(user_id, first_name, username),
            text=text,
        )
        return await self.feed(Update(update_id=next(self._update_ids), message=message))

    async def press(
        self,
        data: str,
        *,
        message_id: int = 1,
        user_id: int = 1,
        first_name: str = "Alice",
        username: str | None = None,
    ) -> list[TelegramMethod[Any]]:
        """A press on an inline button with callback ``data`` under one of the bot's messages."""
        message = Message(
            message_id=message_id,
            date=datetime.now(UTC),
            chat=Chat(id=user_id, type="private"),
            from_user=BOT_USER,
            text="...",
        )
        query = CallbackQuery(
            id=str(next(self._update_ids)),
            from_user=self.user(user_id, first_name, username),
            chat_instance="test",
            message=message,
            data=data,
        )
        return await self.feed(Update(update_id=next(self._update_ids), callback_query=query))

    @staticmethod
    def texts(calls: list[TelegramMethod[Any]]) -> list[str]:
        """The texts of the messages sent or edited in ``calls``."""
        return [c.text for c in calls if isinstance(c, SendMessage | EditMessageText)]

    @staticmethod
    def answered_callbacks(calls: list[TelegramMethod[Any]]) -> list[AnswerCallbackQuery]:
        return [c for c in calls if isinstance(c, AnswerCallbackQuery)]


class LiveBot:
    """Run a product against a real Bot API server (the emulator) inside the current event loop,
    wired like ``botkit.host``: context in the workflow data, long polling, and
    ``ctx.scheduler.run`` beside it. For end-to-end tests that need to reach into the instance
    (its store, its scheduler) or move time with ``time_machine``::

        async with LiveBot(build_router, config, api_url=emu.url, data_dir=tmp_path) as live:
            await asyncio.to_thread(emu.send, "my_bot", user_id=1, text="/start")
            live.ctx.store.get(...)

    The store is the process runtime's SQLite file in ``data_dir`` unless ``store`` is given.
    ``max_sleep`` is the scheduler's polling bound, short so moved clocks are noticed quickly.
    """

    def __init__(
        self,
        factory: Callable[[BotContext], Router],
        config: dict[str, Any],
        *,
        api_url: str,
        data_dir: Path,
        store: Store | None = None,
        instance_id: str = "live-instance",
        max_sleep: float = 0.05,
    ) -> None:
        from otomat.botkit.scheduler import Scheduler
        from otomat.botkit.store import SQLiteStore

        self.factory = factory
        self.ctx = BotContext(
            instance_id=instance_id,
            config=config,
            store=store if store is not None else SQLiteStore(Path(data_dir) / "store.sqlite3"),
            log=logging.getLogger("bot"),
            api_url=api_url,
            data_dir=Path(data_dir),
        )
        object.__setattr__(self.ctx, "scheduler", Scheduler(self.ctx, max_sleep=max_sleep))
        self.counters = Counters()
        self.errors: list[str] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []

    async def __aenter__(self) -> LiveBot:
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer

        session = AiohttpSession(api=TelegramAPIServer.from_base(self.ctx.api_url))
        self.bot = Bot(self.ctx.config["bot_token"], session=session)
        self.dp = Dispatcher()
        self.dp["ctx"] = self.ctx
        instrument(self.dp, self.counters, log=self.ctx.log, on_error=self.errors.append)
        self.dp.include_router(self.factory(self.ctx))
        self._tasks = [
            asyncio.create_task(
                self.dp.start_polling(
                    self.bot, handle_signals=False, close_bot_session=False, polling_timeout=1
                )
            ),
            asyncio.create_task(self.ctx.scheduler.run(self.bot, self._stop)),
        ]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stop.set()
        with contextlib.suppress(RuntimeError):  # polling not started yet
            await self.dp.stop_polling()
        _, late = await asyncio.wait(self._tasks, timeout=5)
        for task in late:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.bot.session.close()
        self.ctx.store.close()
