"""Telegram's flood limits: ``429 Too Many Requests: retry after N`` for bots that send too fast.

Telegram does not publish exact numbers; its FAQ gives the figures used as defaults here: about
30 messages per second per bot overall, one message per second per private chat (short bursts
pass), and 20 messages per minute per group or channel. Each is a token bucket: it holds up to
``burst`` sends and refills at the steady rate, so a short burst passes and a sustained flood is
refused with the number of whole seconds until the next send would pass (``retry_after``).

Only the bot's sending methods count (sendMessage, sendPhoto, sendDocument, also when called from
a webhook reply); a chosen inline result is the user's message and does not. A refused call
changes nothing and consumes no token.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import ApiError, bad_request

MAX_BUCKETS = 100_000  # buckets of idle chats are forgotten beyond this (they would be full anyway)


@dataclass
class RateLimits:
    """Send-rate settings; ``enabled=False`` switches every limit off (for benchmarks)."""

    enabled: bool = True
    bot_per_second: float = 30.0
    private_chat_per_second: float = 1.0
    private_chat_burst: int = 5
    group_per_minute: float = 20.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def updated(self, changes: dict[str, Any]) -> RateLimits:
        """A copy with ``changes`` applied; raises 400 for unknown names or out-of-range values."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise bad_request(f"unknown rate limit setting(s): {', '.join(unknown)}")
        data = self.to_json()
        for name, value in changes.items():
            if name == "enabled":
                if not isinstance(value, bool):
                    raise bad_request('field "enabled" must be of type Boolean')
            elif (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or not 0 < value <= 1_000_000
            ):
                raise bad_request(f'field "{name}" must be a positive number up to 1000000')
            elif name == "private_chat_burst" and not float(value).is_integer():
                raise bad_request('field "private_chat_burst" must be an Integer')
            data[name] = value
        data["private_chat_burst"] = int(data["private_chat_burst"])
        return RateLimits(**data)


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets per bot and per (bot, chat); :meth:`check` raises the 429 or takes a token."""

    def __init__(self, limits: RateLimits | None = None) -> None:
        self.limits = limits or RateLimits()
        self._buckets: OrderedDict[tuple[Any, ...], _Bucket] = OrderedDict()

    def configure(self, limits: RateLimits) -> None:
        self.limits = limits
        self._buckets.clear()  # new capacities; start everyone full

    def _level(self, key: tuple[Any, ...], rate: float, burst: float, at: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=burst, stamp=at)
            self._buckets[key] = bucket
            while len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        else:
            bucket.tokens = min(burst, bucket.tokens + (at - bucket.stamp) * rate)
            bucket.stamp = at
            self._buckets.move_to_end(key)
        return bucket

    def check(self, bot_id: int, chat_id: int, *, private: bool) -> None:
        """Account one message from ``bot_id`` to ``chat_id`` or raise Telegram's 429."""
        limits = self.limits
        if not limits.enabled:
            return
        at = time.monotonic()
        if private:
            chat_rate, chat_burst = limits.private_chat_per_second, float(limits.private_chat_burst)
        else:
            chat_rate = limits.group_per_minute / 60.0
            chat_burst = max(1.0, limits.group_per_minute)
        checks = [
            (("bot", bot_id), limits.bot_per_second, max(1.0, limits.bot_per_second)),
            (("chat", bot_id, chat_id), chat_rate, chat_burst),
        ]
        buckets = [(self._level(key, rate, burst, at), rate) for key, rate, burst in checks]
        wait = max(((1.0 - b.tokens) / rate for b, rate in buckets if b.tokens < 1.0), default=0)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise ApiError(
                429,
                f"Too Many Requests: retry after {retry_after}",
                parameters={"retry_after": retry_after},
            )
        for bucket, _ in buckets:
            bucket.tokens -= 1.0
