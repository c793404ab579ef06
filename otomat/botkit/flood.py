"""Telegram's flood limits, honoured for every product: a call answered ``429 Too Many
Requests: retry after N`` waits N seconds and is sent again (a few times, for at most
``MAX_WAIT`` seconds each), instead of failing the handler that made it. A bot that answers a
backlog of updates at once (after a restart or a restore) then slows down as Telegram asks,
and every answer still goes out."""

from __future__ import annotations

import asyncio
import logging

from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.exceptions import TelegramRetryAfter

log = logging.getLogger(__name__)

MAX_RETRIES = 3
MAX_WAIT = 30  # seconds: a longer wait is Telegram refusing for good; the error is raised


class RetryAfter(BaseRequestMiddleware):
    def __init__(self, *, retries: int = MAX_RETRIES, max_wait: float = MAX_WAIT) -> None:
        self.retries = retries
        self.max_wait = max_wait

    async def __call__(self, make_request, bot, method):
        for attempt in range(self.retries + 1):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if attempt == self.retries or exc.retry_after > self.max_wait:
                    raise
                log.info(
                    "%s: flood limit, retrying in %s s", type(method).__name__, exc.retry_after
                )
                await asyncio.sleep(exc.retry_after)
        raise AssertionError("unreachable")


def honour_flood_limits(session) -> None:
    """Add :class:`RetryAfter` to an aiogram session (once)."""
    if not any(isinstance(m, RetryAfter) for m in session.middleware._middlewares):
        session.middleware(RetryAfter())
