"""The per-instance key–value data store offered to products.

Products get a :class:`Store` as ``ctx.store``. Values are anything JSON can encode; keys are
strings. In the ``process`` runtime the store is :class:`SQLiteStore`, a private SQLite file
``store.sqlite3`` in the instance's data directory, so no product needs a database of its own.

The methods are synchronous on purpose: every call is one statement against a local SQLite file
in WAL mode with ``synchronous=NORMAL`` (no fsync per write), which costs tens of microseconds —
cheaper than handing the call to a thread. Call them directly from async handlers; do not store
megabytes under one key.
"""

from __future__ import annotations

import json
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MAX_KEY_LENGTH = 512


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError("store keys must be non-empty strings")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"store keys are at most {MAX_KEY_LENGTH} characters")
    return key


def _encode(value: Any) -> str:
    # allow_nan=False: NaN/Infinity are not JSON and would not round-trip through other readers.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class Store(ABC):
    """A key–value store of JSON values. All methods are cheap synchronous calls."""

    @abstractmethod
    def get(self, key: str, default: Any = None) -> Any:
        """Return the value stored under ``key``, or ``default`` when there is none."""

    @abstractmethod
    def set(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON-encodable, else ``TypeError``/``ValueError``) under ``key``."""

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove ``key``; return whether it existed."""

    @abstractmethod
    def incr(self, key: str, amount: int = 1) -> int:
        """Atomically add ``amount`` to the integer under ``key`` (missing counts as 0) and
        return the new value. Raises ``TypeError`` when the stored value is not an integer."""

    @abstractmethod
    def items(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """Yield ``(key, value)`` pairs whose key starts with ``prefix``, ordered by key."""

    def keys(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, ordered."""
        return [key for key, _ in self.items(prefix)]

    def close(self) -> None:  # noqa: B027 - optional hook, most stores have nothing to release
        """Release resources; the store must not be used afterwards."""


class SQLiteStore(Store):
    """:class:`Store` in one SQLite file, opened lazily on first use.

    One connection per store, used from one thread (the bot's event loop). Autocommit mode:
    each ``set``/``delete`` is durable against a process crash once it returns (WAL), and ``incr``
    runs in its own ``BEGIN IMMEDIATE`` transaction so it stays atomic even if another process
    (an operator's export, say) opens the same file.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                " WITHOUT ROWID"
            )
            self._conn = conn
        return self._conn

    def get(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM kv WHERE key = ?", (_check_key(key),)).fetchone()
        return default if row is None else json.loads(row[0])

    def set(self, key: str, value: Any) -> None:
        encoded = _encode(value)
        self.conn.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (_check_key(key), encoded),
        )

    def delete(self, key: str) -> bool:
        cur = self.conn.execute("DELETE FROM kv WHERE key = ?", (_check_key(key),))
        return cur.rowcount > 0

    def incr(self, key: str, amount: int = 1) -> int:
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise TypeError("incr amount must be an int")
        _check_key(key)
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            current = 0 if row is None else json.loads(row[0])
            if not isinstance(current, int) or isinstance(current, bool):
                raise TypeError(f"store value under {key!r} is not an integer")
            new = current + amount
            conn.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, _encode(new)),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return new

    def items(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        if not isinstance(prefix, str):
            raise TypeError("prefix must be a string")
        # substr() compares characters exactly; LIKE/GLOB would need escaping of % _ * ? [.
        rows = self.conn.execute(
            "SELECT key, value FROM kv WHERE substr(key, 1, ?) = ? ORDER BY key",
            (len(prefix), prefix),
        ).fetchall()
        for key, value in rows:
            yield key, json.loads(value)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class MemoryStore(Store):
    """A :class:`Store` in a dict, for tests and previews (nothing survives the process)."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}

    def get(self, key: str, default: Any = None) -> Any:
        raw = self._data.get(_check_key(key))
        return default if raw is None else json.loads(raw)

    def set(self, key: str, value: Any) -> None:
        self._data[_check_key(key)] = _encode(value)

    def delete(self, key: str) -> bool:
        return self._data.pop(_check_key(key), None) is not None

    def incr(self, key: str, amount: int = 1) -> int:
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise TypeError("incr amount must be an int")
        current = self.get(key, 0)
        if not isinstance(current, int) or isinstance(current, bool):
            raise TypeError(f"store value under {key!r} is not an integer")
        self.set(key, current + amount)
        return current + amount

    def items(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        for key in sorted(self._data):
            if key.startswith(prefix):
                yield key, json.loads(self._data[key])
