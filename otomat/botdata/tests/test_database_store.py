"""``DatabaseStore``: the shared runtime's store behaves like the SQLite file store, per instance."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from otomat.botdata.models import Job, KeyValue
from otomat.botdata.store import DatabaseStore, close_worker_connection
from otomat.botkit.context import BotContext
from otomat.botkit.scheduler import Scheduler
from otomat.botkit.store import JobRow

# The store hands ORM calls made inside an event loop to a worker thread, whose connection must
# see committed rows: these tests run outside a wrapping transaction.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _close_worker_connection() -> None:
    yield
    close_worker_connection()  # lets pytest-django drop the test database afterwards


def test_it_round_trips_json_values_and_refuses_bad_ones() -> None:
    store = DatabaseStore("inst-a")
    value = {"a": [1, 2.5, "ż", None, True], "b": {"c": "d"}}
    store.set("k", value)
    assert store.get("k") == value
    assert store.get("missing", 7) == 7
    store.set("k", "replaced")
    assert store.get("k") == "replaced"
    with pytest.raises(TypeError):
        store.set("other", {1, 2})
    with pytest.raises(ValueError):
        store.set("other", float("nan"))
    with pytest.raises(TypeError):
        store.get("")
    with pytest.raises(ValueError):
        store.set("x" * 513, 1)
    assert store.get("other") is None
    assert KeyValue.objects.count() == 1
    assert store.delete("k") is True
    assert store.delete("k") is False


def test_instances_cannot_see_each_others_keys_or_jobs() -> None:
    a, b = DatabaseStore("inst-a"), DatabaseStore("inst-b")
    a.set("secret", "a's")
    b.set("secret", "b's")
    a.job_put(JobRow("j", "kind", {"who": "a"}, 100.0, None, 0, "r1"))
    assert a.get("secret") == "a's" and b.get("secret") == "b's"
    assert b.job_get("j") is None and b.job_list() == [] and b.job_due(1e12, 10) == []
    assert b.delete("secret") is True
    assert a.get("secret") == "a's"
    assert b.job_delete("j") is False and a.job_get("j") is not None
    a.purge()
    assert a.get("secret") is None and a.job_list() == []
    assert Job.objects.count() == 0 and KeyValue.objects.count() == 0


def test_items_and_keys_filter_by_exact_prefix_in_order() -> None:
    store = DatabaseStore("inst-a")
    for key in ("user:2", "user:1", "User:3", "user_x", "stats", "user%"):
        store.set(key, key)
    assert store.keys("user:") == ["user:1", "user:2"]  # case-sensitive, even on SQLite
    assert store.keys("user%") == ["user%"]  # no wildcards
    assert dict(store.items("stats")) == {"stats": "stats"}
    assert len(store.keys()) == 6
    with pytest.raises(TypeError):
        list(store.items(3))  # type: ignore[arg-type]


def test_incr_is_atomic_and_refuses_non_integers() -> None:
    store = DatabaseStore("inst-a")
    assert store.incr("n") == 1
    assert store.incr("n", 5) == 6
    store.set("s", "text")
    with pytest.raises(TypeError):
        store.incr("s")
    with pytest.raises(TypeError):
        store.incr("n", 1.5)  # type: ignore[arg-type]
    assert store.get("s") == "text" and store.get("n") == 6


def test_incr_from_many_threads_loses_no_update() -> None:
    store = DatabaseStore("inst-a")
    errors: list[BaseException] = []

    def bump() -> None:
        from django.db import connection

        try:
            for _ in range(10):
                store.incr("hits")
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert store.get("hits") == 40


def test_job_rows_round_trip_and_finish_only_their_own_revision() -> None:
    store = DatabaseStore("inst-a")
    store.job_put(JobRow("b", "k", {"n": 2}, 200.0, 60.0, 0, "r-b"))
    store.job_put(JobRow("a", "k", {"n": 1}, 100.5, None, 0, "r-a"))
    store.job_put(JobRow("c", "other", {}, 300.0, None, 0, "r-c"))
    assert [r.key for r in store.job_list()] == ["a", "b", "c"]
    assert [r.key for r in store.job_list("k")] == ["a", "b"]
    assert [r.key for r in store.job_due(200.0, 10)] == ["a", "b"]
    assert [r.key for r in store.job_due(1e9, 1)] == ["a"]
    assert store.job_get("a") == JobRow("a", "k", {"n": 1}, 100.5, None, 0, "r-a")
    assert store.job_finish("a", "stale-rev", None) is False
    assert store.job_finish("b", "r-b", 260.0, 0) is True
    assert store.job_get("b").due == 260.0
    assert store.job_finish("a", "r-a", None) is True
    assert store.job_get("a") is None


def test_the_scheduler_runs_jobs_over_the_database_inside_an_event_loop() -> None:
    """The shared host's path: ORM calls from inside a running loop go through the worker."""
    store = DatabaseStore("inst-a")
    ctx = BotContext(instance_id="inst-a", config={}, store=store, log=logging.getLogger("t"))
    sched = Scheduler(ctx, max_sleep=0.02)
    object.__setattr__(ctx, "scheduler", sched)
    seen: list[dict[str, Any]] = []

    @sched.handler("note")
    async def note(ctx: BotContext, bot: Any, payload: dict) -> None:
        seen.append(payload)
        ctx.store.incr("notes")

    async def scenario() -> None:
        sched.run_at(0, "note", {"n": 1}, key="one")
        sched.run_every(3600, "note", {"n": 2}, key="hourly")
        stop = asyncio.Event()
        task = asyncio.create_task(sched.run(object(), stop))
        async with asyncio.timeout(5):
            while len(seen) < 2:
                await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 3)
        assert [j.key for j in sched.pending()] == ["hourly"]

    asyncio.run(scenario())
    assert sorted(p["n"] for p in seen) == [1, 2]
    assert store.get("notes") == 2


def test_a_bad_instance_id_is_refused() -> None:
    with pytest.raises(ValueError):
        DatabaseStore("")
    with pytest.raises(ValueError):
        DatabaseStore("x" * 65)
