"""Tasks whose worker died mid-run: detected and queued again (or failed), visibly.

The database task queue marks a task RUNNING when a worker claims it and SUCCESSFUL or FAILED
when the worker finishes it; a worker killed in between (``kill -9``, out of memory, a lost
machine) leaves it RUNNING for ever, and nothing runs it again. So every worker process writes a
heartbeat for the task it runs (``TaskHeartbeat``: at start, then every
``TASK_HEARTBEAT_SECONDS``; deleted at the end — through the task queue's own started/finished
signals, so ``otomat worker`` and a plain ``db_worker`` both do it), and the scheduler calls
``recover_stale_tasks`` every minute. A RUNNING task has lost its worker when

* its heartbeat names a process on this machine that no longer exists (found at once), or
* its heartbeat is older than ``TASK_HEARTBEAT_TIMEOUT_SECONDS`` (another machine's worker), or
* it has no heartbeat at all and started more than ``TASK_STALE_SECONDS`` ago (a worker that
  died between claiming and starting it, or one without the signal handlers).

Such a task is queued again (READY, for any worker) while it has been started fewer than
``TASK_MAX_ATTEMPTS`` times — our tasks are idempotent by design, so running one again is
safe — and marked FAILED after that, so a task that kills its worker every time does not loop.
Either way the change is a conditional UPDATE (``WHERE status = RUNNING AND started_at = …``),
so two schedulers never recover one task twice, a ``TaskRecovery`` row records it for staff
and a warning is logged.

On RQ (``OTOMAT_TASK_BACKEND=redis``) none of this table work applies: RQ has its own registry
of started jobs with a heartbeat per job, and ``recover_stale_tasks`` runs RQ's abandoned-job
cleanup instead — a lost job is marked FAILED (not queued again; see ``otomat.ops.rq``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from otomat.ops.models import TaskHeartbeat, TaskRecovery

log = logging.getLogger("otomat.ops")


def _machine() -> str:
    """This machine as heartbeats name it: the host name and the kernel's boot id, so two
    machines of one name (or one machine after a reboot) never look like each other."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()[:8]
    except OSError:
        boot = ""
    name = socket.gethostname()
    return f"{name}:{boot}"[:255] if boot else name[:255]


HOSTNAME = _machine()


class WorkerLost(Exception):
    """Recorded as the failure of a task whose worker died too often while running it."""


# -- heartbeats (in the worker process) -----------------------------------------------------


class _Beat:
    """Keeps one running task's heartbeat fresh from a background thread."""

    def __init__(self, task_id: str, worker_id: str) -> None:
        self.task_id = task_id
        self.stop = threading.Event()
        TaskHeartbeat.objects.update_or_create(
            task_id=task_id,
            defaults={
                "worker_id": worker_id[:64],
                "hostname": HOSTNAME,
                "pid": os.getpid(),
                "seen_at": timezone.now(),
            },
        )
        self.thread = threading.Thread(target=self._run, name=f"heartbeat-{task_id}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.wait(settings.TASK_HEARTBEAT_SECONDS):
                try:
                    TaskHeartbeat.objects.filter(task_id=self.task_id).update(
                        seen_at=timezone.now()
                    )
                except Exception:  # a busy database: the next beat tries again
                    log.warning("heartbeat of task %s not written", self.task_id, exc_info=True)
        finally:
            connection.close()

    def end(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        TaskHeartbeat.objects.filter(task_id=self.task_id).delete()


_beats: dict[str, _Beat] = {}


def _from_database_queue(sender) -> bool:
    from django_tasks_db.backend import DatabaseBackend

    cls = sender if isinstance(sender, type) else type(sender)
    return issubclass(cls, DatabaseBackend)


def _from_a_worker(sender) -> bool:
    """Whether tasks of ``sender`` run in a worker process (not inline in the caller's)."""
    from django_tasks.backends.dummy import DummyBackend
    from django_tasks.backends.immediate import ImmediateBackend

    cls = sender if isinstance(sender, type) else type(sender)
    return not issubclass(cls, ImmediateBackend | DummyBackend)


def _from_redis_queue(sender) -> bool:
    cls = sender if isinstance(sender, type) else type(sender)
    return cls.__module__.startswith("django_tasks_rq")


def on_task_started(sender, task_result, **kwargs) -> None:
    """Signal handler: a worker of the database queue starts ``task_result``. Any worker also
    starts its service heartbeat here, once (``otomat.ops.heartbeats``) — except on RQ, where
    the task runs in a forked child that lives for this one job: the worker's main process
    beats (``otomat.ops.rq.Worker``)."""
    if _from_a_worker(sender) and not _from_redis_queue(sender):
        from otomat.ops import heartbeats

        try:
            heartbeats.start(heartbeats.Service.WORKER)
        except Exception:  # never stop the task itself because of a heartbeat
            log.exception("could not start the worker's heartbeat")
    if not _from_database_queue(sender) or not task_result.worker_ids:
        return
    try:
        _beats[str(task_result.id)] = _Beat(str(task_result.id), task_result.worker_ids[-1])
    except Exception:  # never stop the task itself because of its heartbeat
        log.exception("could not start the heartbeat of task %s", task_result.id)


def on_task_finished(sender, task_result, **kwargs) -> None:
    beat = _beats.pop(str(task_result.id), None)
    if beat is not None:
        try:
            beat.end()
        except Exception:
            log.exception("could not end the heartbeat of task %s", task_result.id)


def connect() -> None:
    """Connect the heartbeat to the task queue's signals (called by the ops app at start)."""
    from django_tasks.signals import task_finished, task_started

    task_started.connect(on_task_started, dispatch_uid="otomat.ops.stale.started")
    task_finished.connect(on_task_finished, dispatch_uid="otomat.ops.stale.finished")


# -- detection and recovery (in the scheduler) -----------------------------------------------


def process_gone(pid: int) -> bool:
    """Whether process ``pid`` of this machine is gone (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # someone else's live process
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def why_lost(started_at: datetime | None, beat: TaskHeartbeat | None, now: datetime) -> str:
    """Why a RUNNING task's worker is taken for lost, or "" while it may still be running."""
    if beat is not None:
        if beat.hostname == HOSTNAME and process_gone(beat.pid):
            return f"worker process {beat.pid} on {beat.hostname} is gone"
        limit = timedelta(seconds=settings.TASK_HEARTBEAT_TIMEOUT_SECONDS)
        if beat.seen_at < now - limit:
            return f"no heartbeat from its worker on {beat.hostname} since {beat.seen_at:%Y-%m-%d %H:%M:%S}"
        return ""
    limit = timedelta(seconds=settings.TASK_STALE_SECONDS)
    if started_at is not None and started_at < now - limit:
        return f"running for more than {settings.TASK_STALE_SECONDS} s without a heartbeat"
    return ""


def recover_stale_tasks(*, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Queue again (or fail) up to ``limit`` RUNNING tasks whose worker is gone; returns the
    counts {"requeued": n, "failed": m}. On RQ, RQ's own abandoned-job handling instead
    (``otomat.ops.rq.recover_abandoned``: failed, not queued again); with any other queue
    (immediate, dummy) nothing."""
    from django_tasks import task_backends
    from django_tasks_db.backend import DatabaseBackend
    from django_tasks_db.compat import TaskResultStatus
    from django_tasks_db.models import DBTaskResult
    from django_tasks_db.utils import normalize_uuid

    counts = {"requeued": 0, "failed": 0}
    backend = task_backends["default"]
    if _from_redis_queue(backend):
        from otomat.ops.rq import recover_abandoned

        return recover_abandoned(now=now)
    if not isinstance(backend, DatabaseBackend):
        return counts
    now = now or timezone.now()
    running = list(
        DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING)
        .order_by("started_at")
        .values("id", "task_path", "started_at", "worker_ids")[:limit]
    )
    if not running:
        return counts
    ids = {normalize_uuid(row["id"]): row for row in running}
    beats = {b.task_id: b for b in TaskHeartbeat.objects.filter(task_id__in=list(ids))}
    for task_id, row in ids.items():
        reason = why_lost(row["started_at"], beats.get(task_id), now)
        if not reason:
            continue
        workers = list(row["worker_ids"] or [])
        attempts = len(workers)
        claimed = DBTaskResult.objects.filter(
            pk=row["id"], status=TaskResultStatus.RUNNING, started_at=row["started_at"]
        )
        if attempts < settings.TASK_MAX_ATTEMPTS:
            action = TaskRecovery.Action.REQUEUED
            done = claimed.update(status=TaskResultStatus.READY, started_at=None)
        else:
            action = TaskRecovery.Action.FAILED
            done = claimed.update(
                status=TaskResultStatus.FAILED,
                finished_at=now,
                return_value=None,
                exception_class_path=f"{WorkerLost.__module__}.{WorkerLost.__qualname__}",
                traceback=f"WorkerLost: {reason} (started {attempts} times)\n",
            )
        if not done:
            continue  # it finished meanwhile, or another scheduler got there first
        TaskHeartbeat.objects.filter(task_id=task_id).delete()
        TaskRecovery.objects.create(
            at=now,
            task_id=task_id,
            task_path=row["task_path"][:300],
            worker_id=(workers[-1] if workers else "")[:64],
            attempts=attempts,
            action=action,
            reason=reason[:300],
        )
        counts[action] += 1
        log.warning(
            "task %s (%s) lost its worker: %s; %s after %d attempt(s)",
            task_id,
            row["task_path"],
            reason,
            "queued again" if action == TaskRecovery.Action.REQUEUED else "marked failed",
            attempts,
        )
    return counts


def recover_stale_tasks_job() -> None:
    """The scheduler's job: runs in the scheduler process itself, not on the task queue (whose
    workers may be exactly what is gone)."""
    close_old_connections()
    try:
        counts = recover_stale_tasks()
        if any(counts.values()):
            log.info("stale tasks: %(requeued)d queued again, %(failed)d failed", counts)
    finally:
        close_old_connections()
