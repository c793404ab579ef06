"""``DatabaseStore``: the shared runtime's ``ctx.store`` (and job storage) in the platform database.

It runs in the runner, never in a shared host: the runner's ``otomat.runtime.hoststore`` serves
it to each host's instances over a socket, for a token per instance (hosts hold no database
credentials; docs/decisions/0003-shared-host-isolation.md).

Every query is filtered by the store's ``instance_id``, and the object offers no way to name
another id, so one instance's code cannot read or change another's keys or jobs.

The ``Store`` API is synchronous (products call ``ctx.store.get`` straight from async handlers),
but Django refuses ORM calls from a thread running an event loop. Calls made from inside a loop
are therefore handed to one dedicated worker thread and waited for; the loop is blocked for the
duration of one indexed query (well under a millisecond on a local PostgreSQL or SQLite), the
same trade the SQLite store makes. Outside a loop (management commands, tests) they run
directly. Only the ORM is used, so the same code runs on SQLite, PostgreSQL and MySQL; ``incr``
locks the row (``select_for_update``) and job conclusions are conditional updates.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    transaction,
)

from otomat.botdata.models import Job, KeyValue
from otomat.botkit.store import MAX_JOBS_LISTED, JobRow, Store, _check_key, _encode

T = TypeVar("T")

MAX_INSTANCE_ID_LENGTH = 64

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _worker() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            # One thread: one database connection for all instances of a host, queries in order.
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="otomat-botdata")
        return _executor


def _in_worker(fn: Callable[[], T]) -> T:
    """Run ``fn`` (ORM work) where Django allows it; retry once on a dropped connection."""

    def attempt() -> T:
        try:
            return fn()
        except (InterfaceError, OperationalError):
            # A connection the database server closed (restart, idle timeout): reconnect once.
            close_old_connections()
            from django.db import connection

            connection.close()
            return fn()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return attempt()
    return _worker().submit(attempt).result()


_MAX_TIMESTAMP = 253_402_300_799.0  # 9999-12-31T23:59:59Z, the end of datetime's range


def close_worker_connection() -> None:
    """Close the worker thread's database connection (at host shutdown, and after tests, so the
    test database can be dropped). The next call from a loop opens a new one."""
    with _executor_lock:
        executor = _executor
    if executor is not None:
        from django.db import connections

        executor.submit(connections.close_all).result()


def _aware(ts: float) -> datetime:
    # Clamped: "everything due before the end of time" is a legitimate query bound.
    return datetime.fromtimestamp(min(max(ts, 0.0), _MAX_TIMESTAMP), UTC)


class DatabaseStore(Store):
    """:class:`~otomat.botkit.store.Store` of one instance in the ``otomat.botdata`` tables."""

    def __init__(self, instance_id: str) -> None:
        instance_id = str(instance_id)
        if not instance_id or len(instance_id) > MAX_INSTANCE_ID_LENGTH:
            raise ValueError(f"instance id must be 1 to {MAX_INSTANCE_ID_LENGTH} characters")
        self.instance_id = instance_id

    def __repr__(self) -> str:
        return f"DatabaseStore({self.instance_id!r})"

    # -- key–value --------------------------------------------------------------------------

    def _kv(self) -> Any:
        return KeyValue.objects.filter(instance_id=self.instance_id)

    def get(self, key: str, default: Any = None) -> Any:
        _check_key(key)
        raw = _in_worker(lambda: self._kv().filter(key=key).values_list("value", flat=True).first())
        return default if raw is None else json.loads(raw)

    def set(self, key: str, value: Any) -> None:
        _check_key(key)
        encoded = _encode(value)
        _in_worker(
            lambda: KeyValue.objects.update_or_create(
                instance_id=self.instance_id, key=key, defaults={"value": encoded}
            )
        )

    def delete(self, key: str) -> bool:
        _check_key(key)
        return _in_worker(lambda: self._kv().filter(key=key).delete()[0] > 0)

    def incr(self, key: str, amount: int = 1) -> int:
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise TypeError("incr amount must be an int")
        _check_key(key)

        def add() -> int:
            for _ in range(3):  # a concurrent first insert loses the race at most once
                try:
                    with transaction.atomic():
                        row = self._kv().select_for_update().filter(key=key).first()
                        current = 0 if row is None else json.loads(row.value)
                        if not isinstance(current, int) or isinstance(current, bool):
                            raise TypeError(f"store value under {key!r} is not an integer")
                        new = current + amount
                        if row is None:
                            KeyValue.objects.create(
                                instance_id=self.instance_id, key=key, value=_encode(new)
                            )
                        else:
                            row.value = _encode(new)
                            row.save(update_fields=["value"])
                        return new
                except IntegrityError:
                    continue
            raise RuntimeError(f"incr of {key!r} kept conflicting")

        return _in_worker(add)

    def items(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        if not isinstance(prefix, str):
            raise TypeError("prefix must be a string")
        rows = _in_worker(
            lambda: list(self._kv().filter(key__startswith=prefix).values_list("key", "value"))
        )
        # SQLite's LIKE ignores ASCII case and databases collate differently: filter and order
        # in Python so every backend answers exactly like the SQLite file store.
        for key, value in sorted(r for r in rows if r[0].startswith(prefix)):
            yield key, json.loads(value)

    # -- jobs --------------------------------------------------------------------------------

    def _jobs(self) -> Any:
        return Job.objects.filter(instance_id=self.instance_id)

    @staticmethod
    def _row(job: Job) -> JobRow:
        return JobRow(
            key=job.key,
            kind=job.kind,
            payload=json.loads(job.payload),
            due=job.due_at.timestamp(),
            every=job.every,
            attempts=job.attempts,
            rev=job.rev,
        )

    def job_put(self, row: JobRow) -> None:
        fields = {
            "kind": row.kind,
            "payload": _encode(row.payload),
            "due_at": _aware(row.due),
            "every": row.every,
            "attempts": row.attempts,
            "rev": row.rev,
        }
        _in_worker(
            lambda: Job.objects.update_or_create(
                instance_id=self.instance_id, key=row.key, defaults=fields
            )
        )

    def job_get(self, key: str) -> JobRow | None:
        job = _in_worker(lambda: self._jobs().filter(key=key).first())
        return None if job is None else self._row(job)

    def job_delete(self, key: str) -> bool:
        return _in_worker(lambda: self._jobs().filter(key=key).delete()[0] > 0)

    def job_list(self, kind: str | None = None) -> list[JobRow]:
        def fetch() -> list[Job]:
            jobs = self._jobs() if kind is None else self._jobs().filter(kind=kind)
            return list(jobs.order_by("due_at", "key")[:MAX_JOBS_LISTED])

        return [self._row(j) for j in _in_worker(fetch)]

    def job_due(self, until: float, limit: int) -> list[JobRow]:
        # Served by the (instance_id, due_at) index; LIMIT keeps it bounded.
        def fetch() -> list[Job]:
            jobs = self._jobs().filter(due_at__lte=_aware(until)).order_by("due_at", "key")
            return list(jobs[:limit])

        return [self._row(j) for j in _in_worker(fetch)]

    def job_finish(self, key: str, rev: str, due: float | None, attempts: int = 0) -> bool:
        def conclude() -> bool:
            # Conditional on the revision: a job replaced or cancelled meanwhile is left alone.
            jobs = self._jobs().filter(key=key, rev=rev)
            if due is None:
                return jobs.delete()[0] > 0
            return jobs.update(due_at=_aware(due), attempts=attempts) > 0

        return _in_worker(conclude)

    def purge(self) -> None:
        """Delete all of this instance's keys and jobs (the instance was deleted for good)."""

        def wipe() -> None:
            with transaction.atomic():
                self._kv().delete()
                self._jobs().delete()

        _in_worker(wipe)
