"""The task queue on Redis (RQ, ``OTOMAT_TASK_BACKEND=redis``): the worker class and what the
scheduler, monitoring and retention read from the queue instead of the database queue's table.

Imported only when RQ is in use (``settings.TASKS_USE_RQ``): ``rq`` and ``django_rq`` come with
the ``redis`` extra.

* ``Worker`` — RQ's forking worker that beats for the worker service
  (``otomat.ops.heartbeats``) from its main process, from its start and while idle. RQ runs
  each job in a forked child (the "work horse") that lives only for that job; the horse must not
  beat (its row would look like a crashed worker the moment it exits). ``otomat worker`` uses
  it; a plain ``manage.py rqworker`` should be given ``--worker-class otomat.ops.rq.Worker``.
* ``recover_abandoned`` — the scheduler's stale-task recovery on RQ. One job is taken by one
  worker (RQ pops its id from the Redis list atomically), so several workers never run one job
  twice. A work horse killed mid-run (``kill -9``, out of memory) is seen at once by its worker,
  which marks the job FAILED. A whole worker killed leaves its job STARTED in RQ's
  StartedJobRegistry until the job's heartbeat there expires (at most a minute and a half);
  RQ's own cleanup then marks it FAILED (``AbandonedJobError``). We run that cleanup every
  minute from the scheduler (RQ's workers do it only every ten minutes) and record each such
  job as a ``TaskRecovery`` (action "failed") with a warning in the log. A lost job is not
  queued again: our periodic tasks (billing, notices, monitoring) are enqueued again by the
  scheduler every minute and are idempotent, so the next one does the work, once.
* ``queue_state`` — the queue's depth and the age of its oldest waiting job, for monitoring.
* ``prune_failed`` — retention of failed jobs (RQ keeps finished ones ``result_ttl``, 500 s,
  by itself, and failed ones for a year).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import django_rq
from django.utils import timezone
from rq.job import JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.worker import Worker as RQWorker

from otomat.ops.models import TaskRecovery

log = logging.getLogger("otomat.ops")

QUEUE = "default"


def _queue():
    return django_rq.get_queue(QUEUE)


class Worker(RQWorker):
    """RQ's worker, beating for the worker service from its main process."""

    def work(self, *args, **kwargs):
        from otomat.ops import heartbeats

        if not self.is_horse:
            heartbeats.start(heartbeats.Service.WORKER)
        return super().work(*args, **kwargs)


def recover_abandoned(*, now: datetime | None = None) -> dict[str, int]:
    """Mark FAILED the started jobs whose worker is gone (their heartbeat in RQ's registry
    expired before ``now``); returns {"requeued": 0, "failed": n}."""
    now = now or timezone.now()
    queue = _queue()
    registry = StartedJobRegistry(queue=queue)
    cutoff = now.timestamp()
    expired = registry.get_expired_job_ids(cutoff)
    counts = {"requeued": 0, "failed": 0}
    if not expired:
        return counts
    jobs = {}
    for entry in expired:
        job_id = entry.split(":", 1)[0]
        job = queue.fetch_job(job_id)
        if job is not None and job.get_status() == JobStatus.STARTED:
            jobs[job_id] = (job.func_name or "", job.worker_name or "", job.started_at)
    registry.cleanup(timestamp=cutoff)
    for job_id, (path, worker, started_at) in jobs.items():
        job = queue.fetch_job(job_id)
        if job is None or job.get_status() != JobStatus.FAILED:
            continue  # it finished meanwhile
        TaskRecovery.objects.create(
            at=now,
            task_id=job_id,
            task_path=path[:300],
            worker_id=worker[:64],
            attempts=1,
            action=TaskRecovery.Action.FAILED,
            reason="its RQ worker stopped beating (abandoned job)",
        )
        counts["failed"] += 1
        log.warning(
            "task %s (%s) lost its RQ worker %s (started %s): marked failed; "
            "a periodic task is enqueued again by the scheduler",
            job_id,
            path,
            worker,
            started_at,
        )
    return counts


def queue_state(now: datetime) -> tuple[int, float]:
    """(jobs waiting in the queue, age in seconds of the oldest of them). Jobs deferred to
    later (RQ's ScheduledJobRegistry) are not waiting until their time has come."""
    queue = _queue()
    waiting = queue.count
    scheduled = ScheduledJobRegistry(queue=queue)
    due_ids = scheduled.get_job_ids(0, -1)
    oldest: datetime | None = None
    first = queue.get_job_ids(0, 1)
    if first:
        job = queue.fetch_job(first[0])
        if job is not None and job.enqueued_at is not None:
            oldest = _aware(job.enqueued_at)
    late = 0
    for job_id in due_ids[:1000]:
        when = scheduled.get_scheduled_time(job_id)
        if when is not None and _aware(when) <= now:
            late += 1
            oldest = min(oldest, _aware(when)) if oldest else _aware(when)
    lag = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
    return waiting + late, lag


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def prune_failed(*, now: datetime, days: int, max_rows: int) -> int:
    """Delete failed jobs that ended more than ``days`` ago (0 keeps them); returns how many."""
    if not days:
        return 0
    queue = _queue()
    registry = FailedJobRegistry(queue=queue)
    cutoff = now - timedelta(days=days)
    removed = 0
    for job_id in registry.get_job_ids(0, max_rows * 4):
        if removed >= max_rows:
            break
        job = queue.fetch_job(job_id)
        if job is None:
            registry.remove(job_id)
            continue
        ended = job.ended_at or job.enqueued_at
        if ended is not None and _aware(ended) < cutoff:
            registry.remove(job_id, delete_job=True)
            removed += 1
    return removed
