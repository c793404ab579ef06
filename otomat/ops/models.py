"""Operational state shared by the platform's processes."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Lease(models.Model):
    """A named lease held by one process until ``expires_at`` (e.g. "scheduler"): a second
    scheduler stays idle while the first renews its lease, and takes over when it stops."""

    name = models.CharField(max_length=64, primary_key=True)
    holder = models.CharField(max_length=128)
    expires_at = models.DateTimeField()


class TaskHeartbeat(models.Model):
    """A running task's sign of life, written by the worker process that runs it (see
    ``otomat.ops.stale``): when the task starts, then every few seconds, deleted when it ends.
    A task the queue still calls RUNNING whose heartbeat stopped has lost its worker."""

    task_id = models.CharField(max_length=64, primary_key=True)  # the task result's id (uuid)
    worker_id = models.CharField(max_length=64)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    seen_at = models.DateTimeField()


class TaskRecovery(models.Model):
    """One task found RUNNING after its worker was gone (killed, crashed, its machine lost),
    and what was done: queued again for another worker, or marked failed after too many
    attempts. Shown to staff in the admin; each one is also logged."""

    class Action(models.TextChoices):
        REQUEUED = "requeued", _("Queued again")
        FAILED = "failed", _("Marked failed")

    at = models.DateTimeField(default=timezone.now, db_index=True)
    task_id = models.CharField(max_length=64)
    task_path = models.CharField(max_length=300)
    worker_id = models.CharField(max_length=64, blank=True)  # the worker that was lost
    attempts = models.PositiveSmallIntegerField()  # workers that started it so far
    action = models.CharField(max_length=10, choices=Action.choices)
    reason = models.CharField(max_length=300)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "task recoveries"

    def __str__(self) -> str:
        return f"{self.task_path} {self.get_action_display()}: {self.reason}"


class ServiceHeartbeat(models.Model):
    """One platform process's sign of life (``otomat.ops.heartbeats``): the web server, the
    task worker, the scheduler and the runner each write theirs every ``HEARTBEAT_SECONDS``
    from a background thread, with the health of the machine they run on (``info``). One row
    per process; a process that stops cleanly marks its row stopped, one that dies leaves it
    to go stale (and is taken for dead at once by a check on the same machine, whose pid is
    gone).
    Read by ``/readyz``, ``/metrics`` and monitoring's platform checks."""

    class Service(models.TextChoices):
        WEB = "web", _("Web server")
        WORKER = "worker", _("Task worker")
        SCHEDULER = "scheduler", _("Scheduler")
        RUNNER = "runner", _("Runner")

    service = models.CharField(max_length=16, choices=Service.choices)
    host = models.CharField(max_length=255)  # otomat.ops.stale.HOSTNAME: host name and boot id
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()  # when this process wrote its first beat
    seen_at = models.DateTimeField()
    # This machine's disk (data directory, database), memory and load (otomat.lib.host
    # .snapshot); measurements only, never a secret.
    info = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["service", "host", "pid"], name="ops_heartbeat_process")
        ]

    def __str__(self) -> str:
        return f"{self.service} on {self.host} (pid {self.pid})"
