"""``python -m otomat.botkit.host``: runs one botkit product instance in its own process.

Protocol (full description in docs/botkit.md)::

    python -m otomat.botkit.host --source DIR --entry package.module:factory

1. Puts ``DIR`` on ``sys.path``, imports aiogram and the product module, writes
   ``{"event": "spare"}`` to the control fd (``OTOMAT_CONTROL_FD``) and blocks on stdin. A warm
   spare sits here, already paid for the ~3 s of imports.
2. Reads ONE JSON line ``{"instance_id", "config", "api_url", "data_dir"}`` (optional
   ``"heartbeat_seconds"``). Secrets travel only here, never in argv, environment or files.
3. Calls getMe (retrying network errors with backoff; a 401/404 exits with
   ``EXIT_INVALID_TOKEN``), builds the router with ``factory(ctx)``, starts long polling and
   writes ``{"event": "ready"}``, then ``{"event": "heartbeat", "updates", "errors"}``
   periodically and ``{"event": "error", "message"}`` per handler exception.
   Beside polling it runs the instance's persisted jobs (``ctx.scheduler.run``).
4. SIGTERM/SIGINT stop polling and the scheduler gracefully and exit 0.

The wrapper is lean on purpose (json, logging, sqlite3 beyond what aiogram already loads): the
budget is under 10 MiB RSS above a bare aiogram polling bot.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otomat.botkit.context import BotContext
from otomat.botkit.control import ControlChannel
from otomat.botkit.protocol import (
    DEFAULT_HEARTBEAT_SECONDS,
    EVENT_ERROR,
    EVENT_FATAL,
    EVENT_HEARTBEAT,
    EVENT_READY,
    EVENT_SPARE,
    EXIT_CONFIG_ERROR,
    EXIT_INVALID_TOKEN,
)
from otomat.botkit.store import SQLiteStore

if TYPE_CHECKING:
    from aiogram import Bot, Router
    from aiogram.types import User

log = logging.getLogger("otomat.host")

MAX_START_LINE = 1 << 20  # 1 MiB: a configuration is a few KiB; refuse anything absurd
GET_ME_BACKOFF_MAX = 30.0
STOP_TIMEOUT = 5.0

RouterFactory = Callable[[BotContext], "Router"]


class InvalidTokenError(Exception):
    """The Bot API refused the token (permanent: restarting cannot help)."""


@dataclass(frozen=True)
class StartLine:
    """The JSON line a host reads on stdin."""

    instance_id: str
    config: dict[str, Any]
    api_url: str
    data_dir: Path
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS

    @classmethod
    def parse(cls, raw: bytes) -> StartLine:
        """Parse and check one start line; raises ``ValueError`` with a message safe to log
        (it never includes the line itself, which holds secrets)."""
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"start line is not JSON ({type(exc).__name__})") from None
        if not isinstance(data, dict):
            raise ValueError("start line must be a JSON object")
        missing = [k for k in ("instance_id", "config", "api_url", "data_dir") if k not in data]
        if missing:
            raise ValueError(f"start line lacks {', '.join(missing)}")
        if not isinstance(data["config"], dict):
            raise ValueError("start line config must be an object")
        if not isinstance(data["config"].get("bot_token"), str):
            raise ValueError("config has no bot_token string")
        beat = data.get("heartbeat_seconds", DEFAULT_HEARTBEAT_SECONDS)
        if not isinstance(beat, int | float) or not 0.1 <= beat <= 3600:
            raise ValueError("heartbeat_seconds must be a number between 0.1 and 3600")
        return cls(
            instance_id=str(data["instance_id"]),
            config=data["config"],
            api_url=str(data["api_url"]),
            data_dir=Path(str(data["data_dir"])),
            heartbeat_seconds=float(beat),
        )


def load_entry(source: Path, entry: str) -> RouterFactory:
    """Import ``package.module:factory`` with ``source`` first on ``sys.path``.

    Raises ``ValueError`` for a malformed entry, ``ImportError``/``AttributeError`` when it does
    not resolve, and whatever the product module raises on import.
    """
    module_name, sep, attr = entry.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"entry {entry!r} is not of the form 'package.module:factory'")
    if str(source) not in sys.path:
        sys.path.insert(0, str(source))
    module = importlib.import_module(module_name)
    factory = getattr(module, attr)
    if not callable(factory):
        raise TypeError(f"entry {entry!r} is not callable")
    return factory


def setup_logging() -> None:
    """Plain lines on stderr; the runtime adds the timestamp when it captures them."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # aiogram logs one INFO line per handled update; that would flood the customer's log view.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)


def _warm_up() -> None:
    """Import what the bot needs after the start line, so a spare has paid for it already."""
    import aiogram.client.session.aiohttp
    import aiogram.exceptions
    import aiogram.methods  # noqa: F401


async def get_me(bot: Bot, stop: asyncio.Event) -> User | None:
    """Call getMe until it succeeds (returns the bot user) or ``stop`` is set (returns None).

    Network trouble and server errors are retried with backoff (1 s doubling to 30 s) because the
    Bot API being briefly unreachable is not the customer's fault; 401/404 raise
    :class:`InvalidTokenError` at once.
    """
    from aiogram.exceptions import TelegramNotFound, TelegramUnauthorizedError

    delay = 1.0
    stopping = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            asking = asyncio.create_task(bot.me())
            # A SIGTERM must not wait for a slow getMe (the session timeout is 60 s).
            await asyncio.wait({asking, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not asking.done():
                asking.cancel()
                return None
            try:
                return asking.result()
            except (TelegramUnauthorizedError, TelegramNotFound) as exc:
                raise InvalidTokenError(type(exc).__name__) from None
            except Exception as exc:
                log.warning(
                    "Bot API not reachable (%s: %s); retrying in %.0f s",
                    type(exc).__name__,
                    exc,
                    delay,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(stopping), delay)
            delay = min(delay * 2, GET_ME_BACKOFF_MAX)
    finally:
        stopping.cancel()
    return None


async def _heartbeats(control: ControlChannel, counters: Any, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        control.send(
            EVENT_HEARTBEAT,
            updates=counters.updates,
            errors=counters.errors,
            last_update=counters.last_update,
        )


async def run(start: StartLine, factory: RouterFactory, control: ControlChannel) -> int:
    """Run the bot until SIGTERM/SIGINT; return the process exit code."""
    from aiogram import Bot, Dispatcher
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.utils.token import TokenValidationError

    from otomat.botkit.flood import honour_flood_limits
    from otomat.botkit.instrument import Counters, instrument

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    store = SQLiteStore(start.data_dir / "store.sqlite3")
    ctx = BotContext(
        instance_id=start.instance_id,
        config=start.config,
        store=store,
        log=logging.getLogger("bot"),
        api_url=start.api_url,
        data_dir=start.data_dir,
    )
    session = AiohttpSession(api=TelegramAPIServer.from_base(start.api_url))
    honour_flood_limits(session)
    try:
        try:
            bot = Bot(start.config["bot_token"], session=session)
        except TokenValidationError:
            raise InvalidTokenError("malformed token") from None
        me = await get_me(bot, stop)
    except InvalidTokenError as exc:
        log.error("invalid bot token: the Bot API refused it (%s); not restarting", exc)
        control.send(EVENT_FATAL, reason="invalid_token", message=f"invalid bot token ({exc})")
        await session.close()
        return EXIT_INVALID_TOKEN
    if me is None:
        await session.close()
        return 0

    counters = Counters()
    dp = Dispatcher()
    dp["ctx"] = ctx
    instrument(dp, counters, log=log, on_error=lambda msg: control.send(EVENT_ERROR, message=msg))
    try:
        dp.include_router(factory(ctx))
    except Exception:
        log.exception("the product's router factory failed")
        control.send(EVENT_FATAL, reason="config", message="router factory failed")
        await session.close()
        return EXIT_CONFIG_ERROR

    async def on_startup() -> None:
        log.info("polling as @%s", me.username)
        control.send(EVENT_READY, username=me.username, bot_id=me.id)

    dp.startup.register(on_startup)
    polling = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, close_bot_session=False)
    )
    beats = asyncio.create_task(_heartbeats(control, counters, start.heartbeat_seconds))
    # botkit v2: persisted jobs run beside polling and stop with it (``stop`` is the same event
    # SIGTERM sets, so both wind down together; jobs in progress get a short grace period).
    jobs = asyncio.create_task(ctx.scheduler.run(bot, stop))
    stopper = asyncio.create_task(stop.wait())
    code = 0
    try:
        done, _ = await asyncio.wait({polling, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if polling in done:
            # start_polling only returns on its own if it crashed; let the runtime restart us.
            exc = polling.exception()
            log.error("polling ended unexpectedly: %r", exc)
            code = 1
        else:
            log.info("stopping on signal")
            with contextlib.suppress(RuntimeError):  # "Polling is not started" yet
                await dp.stop_polling()
            try:
                await asyncio.wait_for(asyncio.shield(polling), STOP_TIMEOUT)
            except TimeoutError:
                polling.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await polling
    finally:
        stop.set()
        try:
            await asyncio.wait_for(jobs, ctx.scheduler.stop_grace + 1.0)
        except (TimeoutError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("the job scheduler failed")
        beats.cancel()
        stopper.cancel()
        control.send(
            EVENT_HEARTBEAT,
            updates=counters.updates,
            errors=counters.errors,
            last_update=counters.last_update,
        )
        await bot.session.close()
        store.close()
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (see ``otomat.botkit.protocol``)."""
    parser = argparse.ArgumentParser(prog="python -m otomat.botkit.host", description=__doc__)
    parser.add_argument("--source", type=Path, required=True, help="product version directory")
    parser.add_argument("--entry", required=True, help="package.module:factory")
    args = parser.parse_args(argv)

    setup_logging()
    control = ControlChannel.from_env()
    try:
        factory = load_entry(args.source, args.entry)
        _warm_up()
    except Exception:
        log.exception("cannot load entry point %s from %s", args.entry, args.source)
        control.send(EVENT_FATAL, reason="entry", message=f"cannot load {args.entry}")
        return EXIT_CONFIG_ERROR

    control.send(EVENT_SPARE)
    raw = sys.stdin.buffer.readline(MAX_START_LINE)
    if not raw.strip():
        log.info("stdin closed before a start line arrived; exiting")
        return 0
    try:
        start = StartLine.parse(raw)
    except ValueError as exc:
        log.error("bad start line: %s", exc)
        control.send(EVENT_FATAL, reason="config", message=str(exc))
        return EXIT_CONFIG_ERROR
    del raw  # the only copy of the secrets outside start.config
    return asyncio.run(run(start, factory, control))


if __name__ == "__main__":
    exit_code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalisation: tearing down aiogram's thousands of pydantic classes takes
    # ~0.6 s, which every stop and restart would wait for. Everything is closed by now.
    os._exit(exit_code)
