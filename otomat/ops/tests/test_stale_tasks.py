"""A task whose worker is killed mid-run no longer stays RUNNING for ever: the scheduler's check
finds it, queues it again (or fails it after too many attempts), records it for staff, and a
new worker runs it to the end."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from otomat.ops import leases
from otomat.ops.models import TaskHeartbeat, TaskRecovery
from otomat.ops.scheduler import build_scheduler, jobs
from otomat.ops.stale import HOSTNAME, recover_stale_tasks, recover_stale_tasks_job
from otomat.ops.tests.slow_tasks import slow_task
from otomat.testing.processes import WorkerProcess, wait_until


@pytest.fixture
def database_queue(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def status_of(result_id) -> str:
    return DBTaskResult.objects.get(pk=result_id).status


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_task_is_picked_up_again_by_a_new_worker(tmp_path, database_queue):
    folder = tmp_path / "task"
    folder.mkdir()
    result = slow_task.enqueue(str(folder))
    first = WorkerProcess(tmp_path, OTOMAT_TASK_HEARTBEAT_SECONDS="0.5").start()
    second = WorkerProcess(tmp_path, OTOMAT_TASK_HEARTBEAT_SECONDS="0.5")
    try:
        wait_until(
            lambda: (folder / "attempt-1").exists() and TaskHeartbeat.objects.exists(),
            60,
            message=f"the first worker did not start the task: {first.output()}",
        )
        beat = TaskHeartbeat.objects.get()
        assert beat.pid == first.pid and beat.hostname == HOSTNAME
        first.kill()  # kill -9 in the middle of the task

        # What the queue left behind: RUNNING, and no worker will ever take it.
        assert status_of(result.id) == "RUNNING"
        lost_worker = DBTaskResult.objects.get(pk=result.id).worker_ids[-1]

        assert recover_stale_tasks() == {"requeued": 1, "failed": 0}
        assert status_of(result.id) == "READY"
        recovery = TaskRecovery.objects.get()
        assert recovery.action == TaskRecovery.Action.REQUEUED
        assert recovery.task_path.endswith("slow_tasks.slow_task")
        assert recovery.worker_id == lost_worker and recovery.attempts == 1
        assert f"worker process {first.pid}" in recovery.reason
        assert recover_stale_tasks() == {"requeued": 0, "failed": 0}  # once only

        (folder / "release").touch()
        second.start()
        wait_until(
            lambda: status_of(result.id) == "SUCCESSFUL",
            60,
            message=f"the second worker did not finish it: {second.output()}",
        )
    finally:
        first.kill()
        second.stop()
    row = DBTaskResult.objects.get(pk=result.id)
    assert row.return_value == "done on attempt 2"
    assert len(row.worker_ids) == 2 and row.worker_ids[0] == lost_worker != row.worker_ids[1]
    assert not TaskHeartbeat.objects.exists()  # the finished task's heartbeat is gone


def running_task(*, started_ago: timedelta, workers: int = 1) -> DBTaskResult:
    result = slow_task.enqueue("/nonexistent")
    DBTaskResult.objects.filter(pk=result.id).update(
        status="RUNNING",
        started_at=timezone.now() - started_ago,
        worker_ids=[f"worker-{n}" for n in range(workers)],
    )
    return DBTaskResult.objects.get(pk=result.id)


def beat(task: DBTaskResult, *, pid: int, host: str = HOSTNAME, ago: timedelta = timedelta(0)):
    return TaskHeartbeat.objects.create(
        task_id=str(uuid.UUID(str(task.id))),
        worker_id=task.worker_ids[-1],
        hostname=host,
        pid=pid,
        seen_at=timezone.now() - ago,
    )


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_task_whose_worker_lives_is_left_alone(db, database_queue):
    task = running_task(started_ago=timedelta(hours=5))
    beat(task, pid=os.getpid())  # this process: alive, heartbeat fresh
    assert recover_stale_tasks() == {"requeued": 0, "failed": 0}
    assert status_of(task.id) == "RUNNING" and not TaskRecovery.objects.exists()


def test_a_task_of_a_silent_worker_elsewhere_is_requeued_after_the_timeout(db, database_queue):
    fresh = running_task(started_ago=timedelta(minutes=5))
    beat(fresh, pid=1, host="other-machine", ago=timedelta(seconds=30))
    silent = running_task(started_ago=timedelta(minutes=5))
    beat(silent, pid=1, host="other-machine", ago=timedelta(minutes=2))
    assert recover_stale_tasks() == {"requeued": 1, "failed": 0}
    assert status_of(fresh.id) == "RUNNING" and status_of(silent.id) == "READY"
    assert "no heartbeat" in TaskRecovery.objects.get().reason


def test_a_task_without_any_heartbeat_is_requeued_after_the_time_limit(db, database_queue):
    recent = running_task(started_ago=timedelta(minutes=10))
    old = running_task(started_ago=timedelta(hours=2))
    assert recover_stale_tasks() == {"requeued": 1, "failed": 0}
    assert status_of(recent.id) == "RUNNING" and status_of(old.id) == "READY"
    assert DBTaskResult.objects.get(pk=old.id).started_at is None


def test_after_too_many_attempts_the_task_is_marked_failed(db, database_queue, settings):
    settings.TASK_MAX_ATTEMPTS = 3
    task = running_task(started_ago=timedelta(minutes=1), workers=3)
    beat(task, pid=dead_pid())
    assert recover_stale_tasks() == {"requeued": 0, "failed": 1}
    row = DBTaskResult.objects.get(pk=task.id)
    assert row.status == "FAILED" and row.finished_at is not None
    assert row.exception_class_path == "otomat.ops.stale.WorkerLost"
    assert "started 3 times" in row.traceback
    recovery = TaskRecovery.objects.get()
    assert recovery.action == TaskRecovery.Action.FAILED and recovery.attempts == 3
    assert not TaskHeartbeat.objects.exists()


def test_without_the_database_queue_there_is_nothing_to_recover(db, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    assert recover_stale_tasks() == {"requeued": 0, "failed": 0}


@pytest.mark.django_db(transaction=True)  # the scheduler's thread has its own connection
def test_the_scheduler_runs_the_check_itself_every_minute(database_queue, monkeypatch):
    assert ("recover-stale-tasks", recover_stale_tasks_job, {"minutes": 1}) in jobs()
    running_task(started_ago=timedelta(hours=2))
    monkeypatch.setattr(leases, "acquire", lambda *args: True)
    scheduler = build_scheduler("test-holder", [("recover", recover_stale_tasks_job, {"hours": 1})])
    scheduler.start()
    try:
        wait_until(
            lambda: TaskRecovery.objects.exists() and scheduler.get_job("recover-now") is None,
            15,
            message="the check did not run",
        )
    finally:
        scheduler.shutdown(wait=False)
