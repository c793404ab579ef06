"""The scheduler enqueues every periodic job at once and then again every interval, and only
while it holds the lease."""

from __future__ import annotations

import time

from otomat.ops import leases
from otomat.ops.scheduler import build_scheduler, jobs
from otomat.testing.processes import wait_until


class CountingTask:
    def __init__(self) -> None:
        self.calls = 0

    def enqueue(self) -> None:
        self.calls += 1


def run_for(task: CountingTask, wait) -> None:
    scheduler = build_scheduler("test-holder", [("tick", task, {"seconds": 1})])
    scheduler.start()
    try:
        wait()
    finally:
        scheduler.shutdown(wait=False)


def test_a_job_runs_at_once_and_then_every_interval(monkeypatch):
    monkeypatch.setattr(leases, "acquire", lambda *args: True)
    task = CountingTask()
    # At once, then after one and two seconds; a job that never repeats would stay at 1.
    run_for(task, lambda: wait_until(lambda: task.calls >= 3, 15, message=f"{task.calls} runs"))


def test_without_the_lease_nothing_is_enqueued(monkeypatch):
    monkeypatch.setattr(leases, "acquire", lambda *args: False)
    task = CountingTask()
    run_for(task, lambda: time.sleep(2.5))
    assert task.calls == 0


def test_the_periodic_jobs_are_the_platforms(settings):
    settings.OWNER_BOT_TOKEN = "123:abc"
    names = {name for name, _, _ in jobs()}
    assert {
        "billing-run",
        "sla-scan",
        "deliver-notifications",
        "poll-owner-bot",
        "monitoring-scan",
    } <= names
    settings.MONITORING_SCAN_SECONDS = 7
    assert {name: kw for name, _, kw in jobs()}["monitoring-scan"] == {"seconds": 7}


def test_a_plain_function_runs_in_the_scheduler_itself(monkeypatch):
    """The stale-task check is not enqueued: the workers it checks may be what is gone."""
    monkeypatch.setattr(leases, "acquire", lambda *args: True)
    calls = []
    scheduler = build_scheduler("test-holder", [("check", lambda: calls.append(1), {"hours": 1})])
    scheduler.start()
    try:
        # ... and is done with it (its one-off run removed) before the scheduler stops.
        wait_until(
            lambda: calls and scheduler.get_job("check-now") is None,
            15,
            message="the function did not run",
        )
    finally:
        scheduler.shutdown(wait=False)
