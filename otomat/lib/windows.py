"""Counts per key over a fixed window, kept in Django's default cache (per process unless a
shared cache is configured): the payment callbacks' reject throttle and the public project
pages' per-address limits."""

from __future__ import annotations

from django.core.cache import cache


def count(key: str, *, window_seconds: int) -> None:
    """One more for ``key``; the first one starts its window (add), the others keep its expiry
    (incr)."""
    cache.add(key, 0, timeout=window_seconds)
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window_seconds)


def reached(key: str, most: int) -> bool:
    """Whether ``key`` has counted ``most`` or more in its window; ``most <= 0``: never."""
    return most > 0 and (cache.get(key) or 0) >= most
