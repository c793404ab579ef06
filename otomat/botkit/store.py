"""The per-instance key–value data store offered to products.

Products get a :class:`Store` as ``ctx.store``. Values are anything JSON can encode; keys are
strings. In the ``process`` runtime the store is :class:`SQLiteStore`, a private SQLite file
``store.sqlite3`` in the instance's data directory, so no product needs a database of its own.
In the ``shared`` runtime it is ``otomat.runtime.hoststore.RemoteStore``: rows of the platform
database namespaced by instance id (``otomat.botdata.store.DatabaseStore``), served by the runner
for a token per instance, since a shared host holds no database credentials.

Every store also persists the instance's scheduled jobs (``job_*`` methods, used only by
:class:`otomat.botkit.scheduler.Scheduler`): in SQLite a ``jobs`` table next to ``kv``.

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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

MAX_KEY_LENGTH = 512
MAX_JOBS_LISTED = 10_000  # job_list() bound: a product with more pending jobs has a bug


@dataclass(frozen=True, slots=True)
class JobRow:
    """One persisted job as the storage layer sees it (the scheduler's ``Job`` is the public view).

    ``due`` is a POSIX timestamp; ``every`` the repeat interval in seconds (None: one-off);
    ``rev`` identifies this occurrence: it changes when the job is replaced (``run_at`` with the
    same key), so a handler finishing for an old occurrence cannot delete or move the new one.
    """

    key: str
    kind: str
    payload: dict[str, Any]
    due: float
    every: float | None
    attempts: int
    rev: str

    def moved(self, **changes: Any) -> JobRow:
        return replace(self, **changes)


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

    # -- job storage (used by the scheduler; products use ``ctx.scheduler``) -----------------

    def job_put(self, row: JobRow) -> None:
        """Insert or replace the job ``row.key`` with all of ``row``'s fields."""
        raise NotImplementedError(f"{type(self).__name__} cannot persist jobs")

    def job_get(self, key: str) -> JobRow | None:
        """The job stored under ``key``, or None."""
        raise NotImplementedError(f"{type(self).__name__} cannot persist jobs")

    def job_delete(self, key: str) -> bool:
        """Remove the job ``key``; return whether it existed."""
        raise NotImplementedError(f"{type(self).__name__} cannot persist jobs")

    def job_list(self, kind: str | None = None) -> list[JobRow]:
        """Pending jobs (of ``kind`` if given), ordered by due time then key; at most
        ``MAX_JOBS_LISTED``."""
        raise NotImplementedError(f"{type(self).__name__} cannot persist jobs")

    def job_due(self, until: float, limit: int) -> list[JobRow]:
        """Up to ``limit`` jobs due at or before ``until``, earliest first (ties by key)."""
        raise NotImplementedError(f"{type(self).__name__} cannot persist jobs")

    def job_finish(self, key: str, rev: str, due: float | None, attempts: int = 0) -> bool:
        """Conditionally conclude a run: if job ``key`` still has revision ``rev``, delete it
        (``due`` None) or move it to ``due`` with ``attempts``. Returns whether it applied (False
        when the job was cancelled or replaced meanwhile — the replacement is left alone)."""
        raise NotImplementedError(f"{type(self).__name__} cannot persist jobs")


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
            conn.execute(
                "CREATE TABLE IF NOT EXISTS jobs (key TEXT PRIMARY KEY, kind TEXT NOT NULL,"
                " payload TEXT NOT NULL, due REAL NOT NULL, every REAL,"
                " attempts INTEGER NOT NULL DEFAULT 0, rev TEXT NOT NULL)"
            )
            conn.execute("CREATE INDEX IF NOT EXISTS jobs_due ON jobs (due, key)")
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

    @staticmethod
    def _job(row: tuple[Any, ...]) -> JobRow:
        key, kind, payload, due, every, attempts, rev = row
        return JobRow(key, kind, json.loads(payload), due, every, attempts, rev)

    def job_put(self, row: JobRow) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO jobs (key, kind, payload, due, every, attempts, rev) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                row.key,
                row.kind,
                _encode(row.payload),
                row.due,
                row.every,
                row.attempts,
                row.rev,
            ),
        )

    def job_get(self, key: str) -> JobRow | None:
        found = self.conn.execute(
            "SELECT key, kind, payload, due, every, attempts, rev FROM jobs WHERE key = ?", (key,)
        ).fetchone()
        return None if found is None else self._job(found)

    def job_delete(self, key: str) -> bool:
        return self.conn.execute("DELETE FROM jobs WHERE key = ?", (key,)).rowcount > 0

    def job_list(self, kind: str | None = None) -> list[JobRow]:
        if kind is None:
            rows = self.conn.execute(
                "SELECT key, kind, payload, due, every, attempts, rev FROM jobs ORDER BY due, key LIMIT ?",
                (MAX_JOBS_LISTED,),
            )
        else:
            rows = self.conn.execute(
                "SELECT key, kind, payload, due, every, attempts, rev FROM jobs WHERE kind = ? ORDER BY due, key LIMIT ?",
                (kind, MAX_JOBS_LISTED),
            )
        return [self._job(r) for r in rows.fetchall()]

    def job_due(self, until: float, limit: int) -> list[JobRow]:
        rows = self.conn.execute(
            "SELECT key, kind, payload, due, every, attempts, rev FROM jobs WHERE due <= ? ORDER BY due, key LIMIT ?",
            (until, limit),
        )
        return [self._job(r) for r in rows.fetchall()]

    def job_finish(self, key: str, rev: str, due: float | None, attempts: int = 0) -> bool:
        if due is None:
            cur = self.conn.execute("DELETE FROM jobs WHERE key = ? AND rev = ?", (key, rev))
        else:
            cur = self.conn.execute(
                "UPDATE jobs SET due = ?, attempts = ? WHERE key = ? AND rev = ?",
                (due, attempts, key, rev),
            )
        return cur.rowcount > 0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class MemoryStore(Store):
    """A :class:`Store` in a dict, for tests and previews (nothing survives the process)."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}
        self._jobs: dict[str, JobRow] = {}

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

    def job_put(self, row: JobRow) -> None:
        # Round-trip the payload through JSON, as the persistent stores do.
        self._jobs[row.key] = row.moved(payload=json.loads(_encode(row.payload)))

    def job_get(self, key: str) -> JobRow | None:
        return self._jobs.get(key)

    def job_delete(self, key: str) -> bool:
        return self._jobs.pop(key, None) is not None

    def job_list(self, kind: str | None = None) -> list[JobRow]:
        rows = [r for r in self._jobs.values() if kind is None or r.kind == kind]
        return sorted(rows, key=lambda r: (r.due, r.key))[:MAX_JOBS_LISTED]

    def job_due(self, until: float, limit: int) -> list[JobRow]:
        rows = [r for r in self._jobs.values() if r.due <= until]
        return sorted(rows, key=lambda r: (r.due, r.key))[:limit]

    def job_finish(self, key: str, rev: str, due: float | None, attempts: int = 0) -> bool:
        row = self._jobs.get(key)
        if row is None or row.rev != rev:
            return False
        if due is None:
            del self._jobs[key]
        else:
            self._jobs[key] = row.moved(due=due, attempts=attempts)
        return True
