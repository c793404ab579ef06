"""The store the runner serves to shared hosts: the ``Store`` API over a socket, one capability
token per instance, and refusals of everything else (``otomat.runtime.hoststore``).

The cast: ``alice`` and ``bob`` are two customers' instances whose stores one service serves;
``mallory`` is code holding the socket but no token of its own.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from otomat.botkit.store import JobRow, MemoryStore, Store
from otomat.runtime.hoststore import (
    FRAME,
    MAX_REQUEST_BYTES,
    RemoteStore,
    StoreChannel,
    StoreError,
    StoreService,
)


class Served:
    """A StoreService answering on a background event loop, and the host's end of its socket."""

    def __init__(self, make_store: Callable[[str], Store], on_thread_exit=None) -> None:
        self.service = StoreService(
            "test-host", make_store=make_store, on_thread_exit=on_thread_exit
        )
        self.loop = asyncio.new_event_loop()
        ours, theirs = socket.socketpair()
        self.raw = theirs.dup()  # for hand-made frames (one request at a time, like the channel)
        self.channel = StoreChannel(theirs, timeout=10)
        self.raw.settimeout(10)  # O_NONBLOCK is shared with the channel's descriptor
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.serving = asyncio.run_coroutine_threadsafe(self.service.serve(ours), self.loop)

    def store(self, instance_id: str) -> RemoteStore:
        # grant() belongs to the service's event loop, like everything else of it.
        granted = asyncio.run_coroutine_threadsafe(self._grant(instance_id), self.loop).result()
        return RemoteStore(self.channel, granted)

    async def _grant(self, instance_id: str) -> str:
        return self.service.grant(instance_id)

    def send_raw(self, body: bytes) -> dict:
        self.raw.sendall(FRAME.pack(len(body)) + body)
        (size,) = FRAME.unpack(self._recv(FRAME.size))
        return json.loads(self._recv(size))

    def _recv(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.raw.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def close(self) -> None:
        self.channel.close()
        self.raw.close()
        self.serving.result(timeout=10)
        asyncio.run_coroutine_threadsafe(self.service.close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture
def backing() -> dict[str, MemoryStore]:
    return {}


@pytest.fixture
def served(backing: dict[str, MemoryStore]) -> Iterator[Served]:
    server = Served(lambda iid: backing.setdefault(iid, MemoryStore()))
    yield server
    server.close()


def test_it_behaves_like_the_other_stores(served: Served) -> None:
    alice = served.store("alice")
    value = {"a": [1, 2.5, "ż", None, True], "b": {"c": "d"}}
    alice.set("k", value)
    assert alice.get("k") == value
    assert alice.get("missing", 7) == 7
    alice.set("nothing", None)
    assert alice.get("nothing", 7) is None  # a stored null is not "missing"
    assert alice.incr("n") == 1 and alice.incr("n", 5) == 6
    for key in ("user:2", "user:1", "users", "user%x"):
        alice.set(key, 1)
    assert alice.keys("user:") == ["user:1", "user:2"]
    assert dict(alice.items("user%")) == {"user%x": 1}
    assert alice.delete("users") is True and alice.delete("users") is False
    with pytest.raises(TypeError):
        alice.set("k", {1, 2})
    with pytest.raises(ValueError):
        alice.set("k", float("nan"))
    with pytest.raises(TypeError):
        alice.get("")
    alice.set("s", "text")
    with pytest.raises(TypeError, match="not an integer"):
        alice.incr("s")  # refused by the server's store, raised as the same error
    assert alice.get("s") == "text" and alice.get("k") == value


def test_jobs_round_trip_and_finish_only_their_revision(served: Served) -> None:
    alice = served.store("alice")
    row = JobRow("j1", "remind", {"chat": 5}, 100.0, None, 0, "rev1")
    alice.job_put(row)
    alice.job_put(JobRow("j2", "other", {}, 50.0, 60.0, 1, "rev2"))
    assert alice.job_get("j1") == row
    assert [r.key for r in alice.job_list()] == ["j2", "j1"]
    assert [r.key for r in alice.job_list("remind")] == ["j1"]
    assert [r.key for r in alice.job_due(60.0, 10)] == ["j2"]
    assert alice.job_finish("j1", "old-rev", None) is False
    assert alice.job_finish("j2", "rev2", 200.0, 2) is True
    assert alice.job_get("j2").due == 200.0 and alice.job_get("j2").attempts == 2
    assert alice.job_delete("j1") is True and alice.job_get("j1") is None


def test_each_token_reaches_only_its_own_instance(
    served: Served, backing: dict[str, MemoryStore]
) -> None:
    alice, bob = served.store("alice"), served.store("bob")
    alice.set("secret", "alice's")
    bob.set("secret", "bob's")
    assert alice.get("secret") == "alice's" and bob.get("secret") == "bob's"
    assert backing["alice"].get("secret") == "alice's"
    assert backing["bob"].get("secret") == "bob's"


def test_forged_and_revoked_tokens_are_refused(
    served: Served, backing: dict[str, MemoryStore]
) -> None:
    alice = served.store("alice")
    alice.set("k", 1)
    mallory = RemoteStore(served.channel, "x" * 43)
    with pytest.raises(StoreError, match="unknown store token"):
        mallory.get("k")
    with pytest.raises(StoreError, match="unknown store token"):
        mallory.set("k", 2)
    asyncio.run_coroutine_threadsafe(_revoke(served.service, "alice"), served.loop).result()
    with pytest.raises(StoreError, match="unknown store token"):
        alice.set("k", 3)
    assert backing["alice"].get("k") == 1
    assert served.service.refused == 3


async def _revoke(service: StoreService, instance_id: str) -> None:
    service.revoke(instance_id)


def test_malformed_requests_are_refused_and_change_nothing(
    served: Served, backing: dict[str, MemoryStore]
) -> None:
    alice = served.store("alice")
    alice.set("k", "kept")
    token = alice._token

    def request(**fields) -> dict:
        return served.send_raw(json.dumps(fields).encode())

    refusals = [
        # naming another instance is not part of the protocol: the token alone decides
        (request(t=token, op="set", a=["k", "x"], instance_id="bob"), "exactly {t, op, a}"),
        (request(t=token, op="drop_table", a=[]), "unknown store operation"),
        (request(t=token, op="set", a=["k"]), "set takes 2 argument(s)"),
        (request(t=token, op="set", a="k"), "set takes 2 argument(s)"),
        (request(t=None, op="set", a=["k", "x"]), "unknown store token"),
        (served.send_raw(b"not json"), "a request is a JSON object"),
        (served.send_raw(b'{"t": "' + token.encode() + b'", "op": "set", "a": ["k", NaN]}'),
         "a request is a JSON object"),
    ]  # fmt: skip
    for answer, message in refusals:
        assert answer["e"] == "StoreError" and message in answer["m"], answer
    bad_jobs = [
        (["j", "kind", [], 1.0, None, 0, "rev"], "payload must be an object"),
        (["j", "kind", {}, "soon", None, 0, "rev"], "due must be a number"),
        (["j", "kind", {}, 1.0, None, -1, "rev"], "attempts must be a non-negative integer"),
        (["j", "kind", {}, 1.0, None, 0, "r" * 33], "job revision must be a string"),
        (["", "kind", {}, 1.0, None, 0, "rev"], "job key must be a string"),
    ]
    for args, message in bad_jobs:
        answer = request(t=token, op="job_put", a=args)
        assert answer["e"] == "ValueError" and message in answer["m"], answer
    answer = request(t=token, op="set", a=["x" * 600, 1])
    assert answer["e"] == "ValueError" and "at most 512" in answer["m"]
    assert backing["alice"].get("k") == "kept"
    assert backing["alice"].keys() == ["k"] and backing["alice"].job_list() == []


def test_an_oversized_request_closes_the_connection_and_stores_nothing(
    served: Served, backing: dict[str, MemoryStore]
) -> None:
    alice = served.store("alice")
    with pytest.raises(ValueError, match="store request over"):
        alice.set("big", "x" * MAX_REQUEST_BYTES)  # refused before it is sent
    assert alice.get("big") is None
    served.raw.sendall(FRAME.pack(MAX_REQUEST_BYTES + 1))
    with pytest.raises(ConnectionError):
        served._recv(1)  # the server hung up: the framing can no longer be trusted
    assert backing["alice"].keys() == []


@pytest.mark.django_db(transaction=True)
def test_the_default_backing_store_is_the_instance_namespace_in_the_database() -> None:
    from django.db import connections

    from otomat.botdata.models import Job, KeyValue
    from otomat.botdata.store import DatabaseStore

    server = Served(DatabaseStore, on_thread_exit=connections.close_all)
    try:
        alice, bob = server.store("alice"), server.store("bob")
        alice.set("k", {"v": 1})
        assert alice.incr("n") == 1
        bob.set("k", "bob's")
        alice.job_put(JobRow("j", "remind", {"chat": 1}, 10.0, None, 0, "rev"))
        assert alice.get("k") == {"v": 1} and bob.get("k") == "bob's"
        assert bob.job_get("j") is None
    finally:
        server.close()
    rows = set(KeyValue.objects.values_list("instance_id", "key", "value"))
    assert rows == {("alice", "k", '{"v":1}'), ("alice", "n", "1"), ("bob", "k", '"bob\'s"')}
    assert list(Job.objects.values_list("instance_id", "key")) == [("alice", "j")]
