"""The shared runtime's instance store served by the runner (``OTOMAT_SHARED_STORE=database``).

A shared host holds no database URL, no key and no Django settings (docs/decisions/0003). It
reaches its instances' data through one socket to the runner, created per host at spawn (a
socketpair: no path, no port, nothing else can connect), and every request carries the
capability token the runner granted to one instance when it added it to that host::

    request:  !I length + JSON {"t": token, "op": "get", "a": [args...]}
    answer:   !I length + JSON {"r": result} | {"e": "TypeError"|"ValueError"|"StoreError", "m": text}

The server (:class:`StoreService`, one per host) maps the token to the instance it was granted
for and serves only that instance's rows through ``otomat.botdata.store.DatabaseStore``; a
request cannot name an instance, an unknown or revoked token is refused, and tokens of one host
mean nothing on another host's socket. Requests of one host are answered in order by a thread
of its own (one database connection per host, as before), so the runner's event loop never
waits on the database.

:class:`RemoteStore` is the host's side: the same synchronous ``Store`` API as the SQLite store
(products call ``ctx.store.get`` straight from handlers), one blocking round trip per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from otomat.botkit.store import JobRow, Store, _check_key, _encode

log = logging.getLogger("otomat.runtime.shared")

STORE_FD_ENV = "OTOMAT_STORE_FD"
FRAME = struct.Struct("!I")
MAX_REQUEST_BYTES = 8 << 20  # one value of a few MiB at most; the store is for small values
MAX_ANSWER_BYTES = 256 << 20  # items() of a large prefix; far beyond any sane product
CLIENT_TIMEOUT = 30.0  # a runner that does not answer within this is treated as gone
MAX_JOB_KEY = 300  # the botdata.Job columns
MAX_JOB_KIND = 100
MAX_JOB_REV = 32


class StoreError(RuntimeError):
    """The runner refused the request (unknown token, malformed request) or is unreachable."""


_ERRORS: dict[str, type[Exception]] = {"TypeError": TypeError, "ValueError": ValueError}


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(data: bytes | str) -> Any:
    """JSON without NaN/Infinity (not JSON, and they would not round-trip)."""
    return json.loads(data, parse_constant=_no_constants)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


# -- the host's side ------------------------------------------------------------------------


class StoreChannel:
    """The host's end of the socket: one request at a time, blocking (a lock for threads)."""

    def __init__(self, sock: socket.socket, *, timeout: float = CLIENT_TIMEOUT) -> None:
        sock.setblocking(True)
        sock.settimeout(timeout)
        self._sock = sock
        self._lock = threading.Lock()

    @classmethod
    def from_fd(cls, fd: int) -> StoreChannel:
        return cls(socket.socket(fileno=fd))

    def _recv(self, n: int) -> bytes:
        chunks: list[bytes] = []
        while n > 0:
            chunk = self._sock.recv(min(n, 1 << 20))
            if not chunk:
                raise StoreError("the runner closed the store connection")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def call(self, token: str, op: str, args: list[Any]) -> Any:
        """Send one request and return its result; raises the server's ``TypeError`` /
        ``ValueError`` as such, ``StoreError`` for refusals and a lost connection."""
        payload = _dumps({"t": token, "op": op, "a": args})  # TypeError/ValueError like _encode
        if len(payload) > MAX_REQUEST_BYTES:
            raise ValueError(f"store request over {MAX_REQUEST_BYTES >> 20} MiB")
        with self._lock:
            try:
                self._sock.sendall(FRAME.pack(len(payload)) + payload)
                (size,) = FRAME.unpack(self._recv(FRAME.size))
                if size > MAX_ANSWER_BYTES:
                    raise StoreError("store answer too large")
                answer = _loads(self._recv(size))
            except OSError as exc:  # includes a timeout
                raise StoreError(f"store unreachable ({type(exc).__name__})") from None
        if "e" in answer:
            raise _ERRORS.get(answer["e"], StoreError)(answer.get("m", "store error"))
        return answer.get("r")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


class RemoteStore(Store):
    """One instance's :class:`~otomat.botkit.store.Store`, served by the runner (see module)."""

    def __init__(self, channel: StoreChannel, token: str) -> None:
        self._channel = channel
        self._token = token

    def __repr__(self) -> str:
        return "RemoteStore()"  # never the token

    def _call(self, op: str, *args: Any) -> Any:
        return self._channel.call(self._token, op, list(args))

    def get(self, key: str, default: Any = None) -> Any:
        found, value = self._call("get", _check_key(key))
        return value if found else default

    def set(self, key: str, value: Any) -> None:
        _encode(value)  # the same TypeError/ValueError as every other store, before the trip
        self._call("set", _check_key(key), value)

    def delete(self, key: str) -> bool:
        return bool(self._call("delete", _check_key(key)))

    def incr(self, key: str, amount: int = 1) -> int:
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise TypeError("incr amount must be an int")
        return int(self._call("incr", _check_key(key), amount))

    def items(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        if not isinstance(prefix, str):
            raise TypeError("prefix must be a string")
        yield from ((key, value) for key, value in self._call("items", prefix))

    @staticmethod
    def _row(fields: list[Any] | None) -> JobRow | None:
        return None if fields is None else JobRow(*fields)

    def job_put(self, row: JobRow) -> None:
        self._call(
            "job_put", row.key, row.kind, row.payload, row.due, row.every, row.attempts, row.rev
        )

    def job_get(self, key: str) -> JobRow | None:
        return self._row(self._call("job_get", key))

    def job_delete(self, key: str) -> bool:
        return bool(self._call("job_delete", key))

    def job_list(self, kind: str | None = None) -> list[JobRow]:
        return [JobRow(*r) for r in self._call("job_list", kind)]

    def job_due(self, until: float, limit: int) -> list[JobRow]:
        return [JobRow(*r) for r in self._call("job_due", until, limit)]

    def job_finish(self, key: str, rev: str, due: float | None, attempts: int = 0) -> bool:
        return bool(self._call("job_finish", key, rev, due, attempts))


# -- the runner's side ----------------------------------------------------------------------


def _str(value: Any, limit: int, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ValueError(f"{what} must be a string of 1 to {limit} characters")
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number")
    return float(value)


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer")
    return value


def _fields(row: JobRow) -> list[Any]:
    return [row.key, row.kind, row.payload, row.due, row.every, row.attempts, row.rev]


_MISSING = object()


def _get(store: Store, key: Any) -> list[Any]:
    value = store.get(key, _MISSING)
    return [False, None] if value is _MISSING else [True, value]


def _job_put(store: Store, key, kind, payload, due, every, attempts, rev) -> None:
    if not isinstance(payload, dict):
        raise ValueError("job payload must be an object")
    store.job_put(
        JobRow(
            key=_str(key, MAX_JOB_KEY, "job key"),
            kind=_str(kind, MAX_JOB_KIND, "job kind"),
            payload=payload,
            due=_number(due, "due"),
            every=None if every is None else _number(every, "every"),
            attempts=_count(attempts, "attempts"),
            rev=_str(rev, MAX_JOB_REV, "job revision"),
        )
    )


def _job_list(store: Store, kind: Any) -> list[list[Any]]:
    if kind is not None:
        _str(kind, MAX_JOB_KIND, "job kind")
    return [_fields(r) for r in store.job_list(kind)]


def _job_due(store: Store, until: Any, limit: Any) -> list[list[Any]]:
    limit = _count(limit, "limit")
    return [_fields(r) for r in store.job_due(_number(until, "until"), min(limit, 10_000))]


def _job_finish(store: Store, key: Any, rev: Any, due: Any, attempts: Any) -> bool:
    return store.job_finish(
        _str(key, MAX_JOB_KEY, "job key"),
        _str(rev, MAX_JOB_REV, "job revision"),
        None if due is None else _number(due, "due"),
        _count(attempts, "attempts"),
    )


# op name → (number of arguments, handler(store, *args)). The DatabaseStore checks keys.
_OPS: dict[str, tuple[int, Callable[..., Any]]] = {
    "get": (1, _get),
    "set": (2, lambda s, key, value: s.set(key, value)),
    "delete": (1, lambda s, key: s.delete(key)),
    "incr": (2, lambda s, key, amount: s.incr(key, amount)),
    "items": (1, lambda s, prefix: [[k, v] for k, v in s.items(prefix)]),
    "job_put": (7, _job_put),
    "job_get": (
        1,
        lambda s, key: (r := s.job_get(_str(key, MAX_JOB_KEY, "job key"))) and _fields(r),
    ),
    "job_delete": (1, lambda s, key: s.job_delete(_str(key, MAX_JOB_KEY, "job key"))),
    "job_list": (1, _job_list),
    "job_due": (2, _job_due),
    "job_finish": (4, _job_finish),
}


def _database_store(instance_id: str) -> Store:
    from otomat.botdata.store import DatabaseStore

    return DatabaseStore(instance_id)


def _close_database_connections() -> None:
    from django.db import connections

    connections.close_all()


class StoreService:
    """The runner's end of one host's store socket. See the module docstring.

    :meth:`grant` gives an instance a fresh token (sent to the host in its ``add`` command) and
    :meth:`revoke` withdraws it when the instance leaves the host. ``make_store(instance_id)``
    builds the backing store (``DatabaseStore`` by default); it and every store call run in this
    service's own thread, and ``on_thread_exit`` (closing that thread's database connection)
    runs there when the service closes.
    """

    def __init__(
        self,
        name: str,
        *,
        make_store: Callable[[str], Store] = _database_store,
        on_thread_exit: Callable[[], None] | None = _close_database_connections,
    ) -> None:
        self.name = name
        self._make_store = make_store
        self._on_thread_exit = on_thread_exit
        self._tokens: dict[bytes, str] = {}  # sha256(token) → instance id
        self._stores: dict[str, Store] = {}  # used only in the worker thread
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="otomat-store")
        self.requests = 0
        self.refused = 0

    @staticmethod
    def _digest(token: str) -> bytes:
        # Looked up by digest: a dictionary probe on the token itself would compare secrets
        # with a short-circuiting ==.
        return hashlib.sha256(token.encode()).digest()

    def grant(self, instance_id: str) -> str:
        """A new unguessable token for ``instance_id`` (previous tokens stay until revoked)."""
        token = secrets.token_urlsafe(32)
        self._tokens[self._digest(token)] = instance_id
        return token

    def revoke(self, instance_id: str) -> None:
        """Withdraw every token of ``instance_id``; its next request is refused."""
        for digest in [d for d, iid in self._tokens.items() if iid == instance_id]:
            del self._tokens[digest]

    async def serve(self, sock: socket.socket) -> None:
        """Answer requests on ``sock`` until the host closes it (or breaks the framing)."""
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=1 << 16)
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    (size,) = FRAME.unpack(await reader.readexactly(FRAME.size))
                    if size > MAX_REQUEST_BYTES:
                        log.error("%s: store request of %d bytes; closing", self.name, size)
                        return
                    body = await reader.readexactly(size)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                answer = await self._answer(loop, body)
                writer.write(FRAME.pack(len(answer)) + answer)
                await writer.drain()
        except ConnectionError:
            return
        finally:
            writer.close()

    async def _answer(self, loop: asyncio.AbstractEventLoop, body: bytes) -> bytes:
        self.requests += 1
        try:
            request = _loads(body)
            if not isinstance(request, dict) or set(request) != {"t", "op", "a"}:
                raise _Refused("a request is exactly {t, op, a}")
            token, op, args = request["t"], request["op"], request["a"]
            instance_id = self._tokens.get(self._digest(token)) if isinstance(token, str) else None
            if instance_id is None:
                raise _Refused("unknown store token")
            arity, handler = _OPS.get(op, (None, None)) if isinstance(op, str) else (None, None)
            if handler is None:
                raise _Refused("unknown store operation")
            if not isinstance(args, list) or len(args) != arity:
                raise _Refused(f"{op} takes {arity} argument(s)")
        except _Refused as exc:
            self.refused += 1
            return _dumps({"e": "StoreError", "m": str(exc)})
        except (ValueError, UnicodeDecodeError):
            self.refused += 1
            return _dumps({"e": "StoreError", "m": "a request is a JSON object"})
        return await loop.run_in_executor(self._executor, self._run, instance_id, handler, args)

    def _run(self, instance_id: str, handler: Callable[..., Any], args: list[Any]) -> bytes:
        """In the worker thread: one store call, its result or its error as an answer."""
        try:
            store = self._stores.get(instance_id)
            if store is None:
                store = self._stores[instance_id] = self._make_store(instance_id)
            return _dumps({"r": handler(store, *args)})
        except (TypeError, ValueError) as exc:
            return _dumps({"e": type(exc).__name__, "m": str(exc)[:500]})
        except Exception as exc:
            # Database trouble: the host learns that it failed, not the database's message.
            log.warning("%s: store call failed: %s: %s", self.name, type(exc).__name__, exc)
            return _dumps({"e": "StoreError", "m": f"store call failed ({type(exc).__name__})"})

    def _shutdown_thread(self) -> None:
        for store in self._stores.values():
            with contextlib.suppress(Exception):
                store.close()
        self._stores.clear()
        if self._on_thread_exit is not None:
            self._on_thread_exit()

    async def close(self) -> None:
        """Close the stores and the thread's database connection; the tokens stop working."""
        self._tokens.clear()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            await loop.run_in_executor(self._executor, self._shutdown_thread)
        self._executor.shutdown(wait=False)


class _Refused(Exception):
    pass
