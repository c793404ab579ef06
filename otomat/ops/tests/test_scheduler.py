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
    assert {"billing-run", "sla-scan", "deliver-notifications", "poll-owner-bot"} <= names


def test_old_task_results_are_pruned(db, settings):
    from datetime import timedelta

    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from otomat.instances.tasks import expire_sandboxes_task
    from otomat.ops.tasks import prune_task_results

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    now = timezone.now()
    ages = {"old-ok": ("SUCCESSFUL", 2), "new-ok": ("SUCCESSFUL", 0.5), "old-failed": ("FAILED", 2)}
    ages |= {"ancient-failed": ("FAILED", 15), "waiting": ("READY", 30)}
    for name, (status, days) in ages.items():
        result = expire_sandboxes_task.enqueue()
        finished = None if status == "READY" else now - timedelta(days=days)
        DBTaskResult.objects.filter(pk=result.id).update(
            status=status, finished_at=finished, traceback=name
        )
    assert prune_task_results() is True
    left = set(DBTaskResult.objects.values_list("traceback", flat=True))
    assert left == {"new-ok", "old-failed", "waiting"}
    assert "prune-task-results" in {name for name, _, _ in jobs()}


def test_pruning_needs_the_database_queue(settings):
    from otomat.ops.tasks import prune_task_results

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    assert prune_task_results() is False
