"""botkit v2's persistent job scheduler: due jobs, restarts, at-least-once, backoff, no pile-up."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from hypothesis import given
from hypothesis import strategies as st

from otomat.botkit.context import BotContext
from otomat.botkit.scheduler import MAX_ATTEMPTS, Scheduler, next_due, retry_delay
from otomat.botkit.store import MemoryStore, SQLiteStore, Store
from otomat.botkit.testing import TEST_TOKEN

BOT: Any = object()  # handlers get the bot passed through; these tests never call it
T0 = 1_800_000_000.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(
    store: Store | None = None, clock: Clock | None = None, **kwargs: Any
) -> tuple[BotContext, Scheduler, Clock]:
    clock = clock or Clock()
    ctx = BotContext(
        instance_id="i1",
        config={"bot_token": TEST_TOKEN},
        store=store or MemoryStore(),
        log=logging.getLogger("bot.test"),
    )
    sched = Scheduler(ctx, clock=clock, retry_base=2.0, max_sleep=0.02, stop_grace=0.1, **kwargs)
    object.__setattr__(ctx, "scheduler", sched)  # handlers reach it as ctx.scheduler
    return ctx, sched, clock


async def run_until(
    sched: Scheduler, condition: Callable[[], bool], timeout: float = 3.0
) -> asyncio.Event:
    """Run the scheduler until ``condition()`` holds (fails the test after ``timeout``)."""
    stop = asyncio.Event()
    task = asyncio.create_task(sched.run(BOT, stop))
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.005)
    finally:
        stop.set()
        await asyncio.wait_for(task, 2)
    return stop


async def run_for(sched: Scheduler, seconds: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(sched.run(BOT, stop))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait_for(task, 2)


def recorder(sched: Scheduler, kind: str) -> list[dict]:
    seen: list[dict] = []

    @sched.handler(kind)
    async def record(ctx: BotContext, bot: Any, payload: dict) -> None:
        assert isinstance(ctx, BotContext) and bot is BOT
        seen.append(payload)

    return seen


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "store.sqlite3"


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, sqlite_path: Path) -> Store:
    s: Store = MemoryStore() if request.param == "memory" else SQLiteStore(sqlite_path)
    yield s
    s.close()


def test_the_context_has_a_scheduler_over_its_store() -> None:
    ctx = BotContext(instance_id="x", config={}, store=MemoryStore(), log=logging.getLogger())
    assert isinstance(ctx.scheduler, Scheduler)
    assert ctx.scheduler.ctx is ctx and ctx.scheduler.store is ctx.store
    assert ctx.scheduler.kinds == []
    recorder(ctx.scheduler, "b")
    recorder(ctx.scheduler, "a")
    assert ctx.scheduler.kinds == ["a", "b"]


def test_due_jobs_run_once_and_later_ones_wait(store: Store) -> None:
    _, sched, clock = make(store)
    seen = recorder(sched, "note")
    sched.run_at(0, "note", {"n": 1}, key="a")
    sched.run_at(datetime.fromtimestamp(T0 - 5, UTC), "note", {"n": 0})
    sched.run_at(30, "note", {"n": 2}, key="later")

    async def scenario() -> None:
        await run_until(sched, lambda: len(seen) == 2)
        await run_for(sched, 0.05)
        assert [j.key for j in sched.pending()] == ["later"]
        clock.now += 30
        await run_until(sched, lambda: len(seen) == 3)

    asyncio.run(scenario())
    assert seen == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert sched.pending() == []


def test_pending_reports_jobs_with_aware_due_times(store: Store) -> None:
    _, sched, _ = make(store)
    sched.run_every(60, "check", {"s": "a"}, key="check:a", first_in=10)
    sched.run_at(5, "delete", {"m": 1}, key="del:1")
    jobs = sched.pending()
    assert [(j.key, j.kind, j.every, j.attempts) for j in jobs] == [
        ("del:1", "delete", None, 0),
        ("check:a", "check", 60.0, 0),
    ]
    assert jobs[0].due_at == datetime.fromtimestamp(T0 + 5, UTC)
    assert jobs[0].due_at.tzinfo is not None
    assert [j.key for j in sched.pending("check")] == ["check:a"]
    assert sched.cancel("del:1") is True
    assert sched.cancel("del:1") is False
    assert [j.key for j in sched.pending()] == ["check:a"]


def test_a_job_persisted_before_a_restart_runs_after_it(sqlite_path: Path) -> None:
    first = SQLiteStore(sqlite_path)
    _, sched, _ = make(first)
    sched.run_at(60, "delete", {"message": 7}, key="del:7")
    first.close()  # the process goes away

    second = SQLiteStore(sqlite_path)
    _, again, _ = make(second, Clock(T0 + 3600))  # back an hour later
    seen = recorder(again, "delete")
    asyncio.run(run_until(again, lambda: seen == [{"message": 7}]))
    assert again.pending() == []
    second.close()


def test_a_crash_mid_handler_runs_the_job_again_after_restart(sqlite_path: Path) -> None:
    """At-least-once: the process dies (os._exit) inside the handler; the job is still there."""
    script = textwrap.dedent(
        f"""
        import asyncio, logging, os
        from otomat.botkit.context import BotContext
        from otomat.botkit.scheduler import Scheduler
        from otomat.botkit.store import SQLiteStore
        ctx = BotContext(instance_id="i", config={{}}, store=SQLiteStore({str(sqlite_path)!r}),
                         log=logging.getLogger())
        sched = Scheduler(ctx, max_sleep=0.02)
        @sched.handler("work")
        async def work(ctx, bot, payload):
            os._exit(9)  # a crash in the middle of the handler
        sched.run_at(0, "work", {{"n": 1}}, key="w")
        asyncio.run(asyncio.wait_for(sched.run(None, asyncio.Event()), 10))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], timeout=30, capture_output=True)
    assert proc.returncode == 9, proc.stderr.decode()

    store = SQLiteStore(sqlite_path)
    _, sched, _ = make(store, Clock(time.time()))
    assert [j.key for j in sched.pending()] == ["w"]
    seen = recorder(sched, "work")
    asyncio.run(run_until(sched, lambda: seen == [{"n": 1}]))
    assert sched.pending() == []
    store.close()


def test_a_stop_mid_handler_leaves_the_job_due(store: Store) -> None:
    _, sched, _ = make(store)
    started = []

    @sched.handler("slow")
    async def slow(ctx: BotContext, bot: Any, payload: dict) -> None:
        started.append(1)
        await asyncio.sleep(30)

    sched.run_at(0, "slow", key="s")
    asyncio.run(run_until(sched, lambda: bool(started)))  # stop_grace 0.1 s, then cancelled
    [job] = sched.pending()
    assert job.key == "s" and job.attempts == 0


def test_failures_back_off_exponentially_then_the_job_is_dropped(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    _, sched, clock = make(store)
    calls: list[float] = []

    @sched.handler("flaky")
    async def flaky(ctx: BotContext, bot: Any, payload: dict) -> None:
        calls.append(clock.now)
        raise RuntimeError(f"boom with {TEST_TOKEN}")

    sched.run_at(0, "flaky", key="f")

    async def scenario() -> None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            await run_until(sched, lambda a=attempt: len(calls) == a)
            await asyncio.sleep(0.01)
            if attempt < MAX_ATTEMPTS:
                [job] = sched.pending()
                assert job.attempts == attempt
                delay = job.due_at.timestamp() - clock.now
                assert delay == pytest.approx(retry_delay(attempt, 2.0))
                await run_for(sched, 0.05)  # not yet due: nothing runs
                assert len(calls) == attempt
                clock.now += delay

    with caplog.at_level(logging.WARNING, logger="bot.test"):
        asyncio.run(scenario())
    assert [b - a for a, b in itertools.pairwise(calls)] == [2.0, 4.0, 8.0, 16.0]
    assert sched.pending() == []
    assert "dropped after 5 attempts" in caplog.text
    assert "boom with [redacted]" in caplog.text
    assert TEST_TOKEN not in caplog.text


def test_a_repeating_job_that_keeps_failing_skips_to_its_next_period(store: Store) -> None:
    _, sched, clock = make(store)
    sched.retry_base = 0.001
    calls = []

    @sched.handler("bad")
    async def bad(ctx: BotContext, bot: Any, payload: dict) -> None:
        calls.append(1)
        raise ValueError("nope")

    def advanced() -> bool:
        clock.now += 0.01  # let the tiny backoff elapse while polling
        return len(calls) == MAX_ATTEMPTS

    sched.run_every(60, "bad", key="r")
    asyncio.run(run_until(sched, advanced))
    [job] = sched.pending()
    assert job.attempts == 0 and job.every == 60
    assert job.due_at.timestamp() > clock.now


def test_timeouts_and_unknown_kinds_count_as_failures(store: Store) -> None:
    _, sched, _ = make(store)

    @sched.handler("hang", timeout=0.05)
    async def hang(ctx: BotContext, bot: Any, payload: dict) -> None:
        await asyncio.sleep(10)

    sched.run_at(0, "hang", key="h")
    sched.run_at(0, "ghost", key="g")
    asyncio.run(run_until(sched, lambda: all(j.attempts == 1 for j in sched.pending())))
    assert {j.key for j in sched.pending()} == {"h", "g"}


def test_a_repeating_job_runs_once_after_downtime_and_keeps_its_phase(store: Store) -> None:
    _, sched, clock = make(store)
    seen = recorder(sched, "tick")
    sched.run_every(60, "tick", {"s": 1}, key="tick")
    asyncio.run(run_until(sched, lambda: len(seen) == 1))
    [job] = sched.pending()
    assert job.due_at.timestamp() == T0 + 60

    clock.now = T0 + 10 * 60 + 5  # down for ten periods
    asyncio.run(run_until(sched, lambda: len(seen) == 2))
    asyncio.run(run_for(sched, 0.05))
    assert len(seen) == 2  # once, not ten times
    [job] = sched.pending()
    assert job.due_at.timestamp() == T0 + 11 * 60


def test_run_every_is_idempotent_by_key(store: Store) -> None:
    _, sched, clock = make(store)
    sched.run_every(60, "tick", {"v": 1}, key="k", first_in=30)
    clock.now += 20
    sched.run_every(60, "tick", {"v": 1}, key="k", first_in=0)  # a restart registers it again
    [job] = sched.pending()
    assert job.due_at.timestamp() == T0 + 30
    sched.run_every(60, "tick", {"v": 2}, key="k")  # payload changed: kept schedule
    [job] = sched.pending()
    assert (job.payload, job.due_at.timestamp()) == ({"v": 2}, T0 + 30)
    sched.run_every(5, "tick", {"v": 2}, key="k")  # shorter interval pulls the next run in
    [job] = sched.pending()
    assert (job.every, job.due_at.timestamp()) == (5.0, T0 + 25)


def test_run_at_with_a_key_replaces_and_a_replaced_job_survives_its_old_run(store: Store) -> None:
    _, sched, _ = make(store)
    runs = []

    @sched.handler("once")
    async def once(ctx: BotContext, bot: Any, payload: dict) -> None:
        runs.append(payload["v"])
        if payload["v"] == 1:
            # Rescheduled while running: the old run's conclusion must not delete the new job.
            ctx.scheduler.run_at(100, "once", {"v": 2}, key="k")

    sched.run_at(0, "once", {"v": 1}, key="k")
    sched.run_at(0, "once", {"v": 1}, key="k")  # replaced, not duplicated
    asyncio.run(run_until(sched, lambda: runs == [1]))
    [job] = sched.pending()
    assert job.payload == {"v": 2}


def test_one_slow_job_does_not_block_the_others(store: Store) -> None:
    _, sched, _ = make(store)
    done = []

    @sched.handler("slow")
    async def slow(ctx: BotContext, bot: Any, payload: dict) -> None:
        await asyncio.sleep(5)

    @sched.handler("fast")
    async def fast(ctx: BotContext, bot: Any, payload: dict) -> None:
        done.append(payload["n"])

    sched.run_at(0, "slow", key="a-slow")
    for n in range(5):
        sched.run_at(0, "fast", {"n": n})
    asyncio.run(run_until(sched, lambda: len(done) == 5, timeout=2))


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.run_at(datetime(2030, 1, 1), "k"), ValueError),  # naive
        (lambda s: s.run_at(-1, "k"), ValueError),
        (lambda s: s.run_at(float("nan"), "k"), ValueError),
        (lambda s: s.run_at("soon", "k"), TypeError),
        (lambda s: s.run_at(1e12, "k"), ValueError),
        (lambda s: s.run_at(datetime(9999, 1, 1, tzinfo=UTC), "k"), ValueError),
        (lambda s: s.run_at(1, ""), TypeError),
        (lambda s: s.run_at(1, "k", {"x": {1, 2}}), TypeError),
        (lambda s: s.run_at(1, "k", {"x": float("inf")}), ValueError),
        (lambda s: s.run_at(1, "k", ["not", "a", "dict"]), TypeError),
        (lambda s: s.run_at(1, "k", {"x": "y" * 70_000}), ValueError),
        (lambda s: s.run_at(1, "k", key="x" * 301), ValueError),
        (lambda s: s.run_every(0, "k", key="r"), ValueError),
        (lambda s: s.run_every(math.inf, "k", key="r"), ValueError),
        (lambda s: s.run_every(True, "k", key="r"), TypeError),
        (lambda s: s.run_every(5, "k", key="r", first_in=-3), ValueError),
        (lambda s: s.run_every(5, "k", key=""), TypeError),
        (lambda s: s.cancel(""), TypeError),
        (lambda s: s.handler("k", timeout=0), ValueError),
        (lambda s: s.pending(""), TypeError),
    ],
)
def test_bad_input_is_refused_and_stores_nothing(
    store: Store, call: Callable[[Scheduler], Any], error: type[Exception]
) -> None:
    _, sched, _ = make(store)
    with pytest.raises(error):
        call(sched)
    assert sched.pending() == []


def test_running_the_same_scheduler_twice_is_refused() -> None:
    _, sched, _ = make()

    async def scenario() -> None:
        stop = asyncio.Event()
        first = asyncio.create_task(sched.run(BOT, stop))
        await asyncio.sleep(0.01)
        with pytest.raises(RuntimeError, match="already running"):
            await sched.run(BOT, stop)
        stop.set()
        await asyncio.wait_for(first, 2)
        await run_for(sched, 0.01)  # stopped: it can run again

    asyncio.run(scenario())


def test_it_follows_the_real_clock_under_time_machine(store: Store) -> None:
    ctx = BotContext(instance_id="x", config={}, store=store, log=logging.getLogger())
    sched = Scheduler(ctx, max_sleep=0.02)  # default clock: time.time
    seen = recorder(sched, "later")
    with time_machine.travel(datetime(2030, 1, 1, tzinfo=UTC), tick=True) as traveller:
        sched.run_at(timedelta(hours=2).total_seconds(), "later", {"ok": True})
        asyncio.run(run_for(sched, 0.05))
        assert seen == []
        traveller.shift(timedelta(hours=2, seconds=1))
        sched.wake()
        asyncio.run(run_until(sched, lambda: seen == [{"ok": True}]))


@given(
    due=st.floats(min_value=0, max_value=4e9),
    every=st.floats(min_value=0.001, max_value=1e6),
    elapsed=st.floats(min_value=-1e6, max_value=1e8),
)
def test_next_due_is_the_first_period_after_now(due: float, every: float, elapsed: float) -> None:
    now = due + elapsed
    nxt = next_due(due, every, now)
    assert nxt > now
    assert nxt > due
    # On phase (within float error) and no whole period is skipped beyond now.
    slack = 8 * math.ulp(max(abs(nxt), abs(now))) + 1e-9  # float rounding of big timestamps
    periods = round((nxt - due) / every)
    assert periods >= 1
    assert abs((nxt - due) - periods * every) <= slack * max(1, periods)
    assert nxt - every <= max(now, due) + slack * max(1, periods)


@given(st.lists(st.tuples(st.floats(0, 1e6), st.text(min_size=1, max_size=5)), max_size=20))
def test_due_jobs_come_out_earliest_first(jobs: list[tuple[float, str]]) -> None:
    _, sched, _ = make(MemoryStore())
    keys = {}
    for delay, key in jobs:
        sched.run_at(delay, "k", key=key)
        keys[key] = T0 + delay
    due = sched.store.job_due(T0 + 1e6, 100)
    assert [r.key for r in due] == sorted(keys, key=lambda k: (keys[k], k))
