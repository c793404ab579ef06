"""Counting updates and handler errors on a dispatcher (used by every host, process or shared)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import Dispatcher
from aiogram.types import ErrorEvent, TelegramObject

MAX_ERROR_MESSAGE = 500


@dataclass
class Counters:
    """Updates seen and handler errors since the host started (reported in heartbeats)."""

    updates: int = 0
    errors: int = 0
    last_update: float | None = None  # epoch seconds when the last update was handled


def instrument(
    dp: Dispatcher,
    counters: Counters,
    *,
    log: logging.Logger,
    on_error: Callable[[str], None] | None = None,
) -> None:
    """Count every update fed to ``dp`` and catch handler exceptions.

    An exception in a handler is logged with its traceback, counted, passed to ``on_error`` as a
    one-line message (truncated to 500 characters), and then swallowed so the bot keeps running.
    """

    async def count_updates(
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        counters.updates += 1
        try:
            return await handler(event, data)
        finally:
            counters.last_update = time.time()

    dp.update.outer_middleware.register(count_updates)

    @dp.errors()
    async def on_handler_error(event: ErrorEvent) -> bool:
        counters.errors += 1
        exc = event.exception
        log.error(
            "handler failed on update %s: %s: %s",
            event.update.update_id,
            type(exc).__name__,
            exc,
            exc_info=exc,
        )
        if on_error is not None:
            on_error(f"{type(exc).__name__}: {exc}"[:MAX_ERROR_MESSAGE])
        return True
