"""``otomat scheduler``: APScheduler in one process that enqueues tasks on the task queue.

The one job it runs itself is the check of the queue (``otomat.ops.stale``: tasks whose worker
died are queued again), which must not wait for a worker.

Only the holder of the "scheduler" lease enqueues; a second scheduler (another machine, or a
restart that overlaps) stays idle until the lease expires. Jobs are idempotent anyway, so a rare
double enqueue is harmless.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading

from django.conf import settings
from django.db import close_old_connections

from otomat.ops import heartbeats, leases

log = logging.getLogger("otomat.scheduler")
LEASE = "scheduler"
LEASE_SECONDS = 90


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def jobs() -> list[tuple[str, object, dict]]:
    """(name, task, trigger kwargs) of every periodic job. A task is enqueued on the task
    queue; a plain function (the stale-task check, which must not wait on the workers it
    checks) runs in the scheduler process."""
    from django.conf import settings

    from otomat.billing.tasks import retry_callbacks_task, run_billing_task
    from otomat.instances.tasks import expire_sandboxes_task, purge_terminated_data_task
    from otomat.notify.tasks import deliver_pending_task, poll_owner_bot_task
    from otomat.ops.stale import recover_stale_tasks_job
    from otomat.ops.tasks import prune_old_records_task

    found = [
        ("purge-terminated-data", purge_terminated_data_task, {"minutes": 60}),
        ("expire-sandboxes", expire_sandboxes_task, {"minutes": 1}),
        # Cheap when nothing is due (one indexed query), so it can run often: a payment whose
        # immediate follow-up was lost is finished within this interval.
        ("billing-run", run_billing_task, {"seconds": settings.BILLING_RUN_SECONDS}),
        ("retry-callbacks", retry_callbacks_task, {"minutes": 5}),
        ("deliver-notifications", deliver_pending_task, {"minutes": 1}),
        # Retention (otomat.ops.retention): old callbacks, notices, events, actions, results.
        ("prune-old-records", prune_old_records_task, {"hours": 1}),
        ("recover-stale-tasks", recover_stale_tasks_job, {"minutes": 1}),
    ]
    from otomat.support.tasks import poll_imap_task, sla_scan_task

    found.append(("sla-scan", sla_scan_task, {"minutes": 1}))
    from otomat.hooks.tasks import retry_due_task
    from otomat.monitoring.tasks import scan_task

    # Outgoing webhooks: first attempts whose task was lost, and every retry that is due.
    found.append(("webhook-retries", retry_due_task, {"minutes": 1}))

    found.append(("monitoring-scan", scan_task, {"seconds": settings.MONITORING_SCAN_SECONDS}))
    from otomat.projects.booking.tasks import refresh_calendars_task

    # External calendars' busy times (each calendar is read when 15 minutes old).
    found.append(("booking-calendars", refresh_calendars_task, {"minutes": 5}))
    from otomat.projects.board.tasks import remind_releases_task

    # Tomorrow's production releases: each client reminded once (claimed by a conditional update).
    found.append(("board-release-reminders", remind_releases_task, {"minutes": 30}))
    from otomat.projects.offers.tasks import expire_offers_task

    found.append(("offers-expire", expire_offers_task, {"hours": 1}))
    if settings.SUPPORT_IMAP_HOST:
        found.append(("support-imap", poll_imap_task, {"minutes": 1}))
    if settings.OWNER_BOT_TOKEN:
        found.append(("poll-owner-bot", poll_owner_bot_task, {"seconds": 5}))
    return found


def build_scheduler(holder: str, periodic: list[tuple[str, object, dict]]):
    """A (not yet started) APScheduler that enqueues each of ``periodic`` at once and then every
    interval while ``holder`` holds the lease, and keeps renewing the lease."""
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone="UTC")

    def enqueue(name: str, task) -> None:
        close_old_connections()
        try:
            if not leases.acquire(LEASE, holder, LEASE_SECONDS):
                log.debug("not the lease holder; %s skipped", name)
                return
            if hasattr(task, "enqueue"):
                task.enqueue()
                log.info("enqueued %s", name)
            else:
                task()
                log.debug("ran %s", name)
        except Exception:
            log.exception("could not enqueue %s", name)

    for name, task, trigger in periodic:
        # The interval job's first run is one interval from now (never pass next_run_time=None:
        # APScheduler adds such a job paused, and it would never run); the date job runs now.
        scheduler.add_job(
            enqueue,
            "interval",
            args=[name, task],
            id=name,
            **trigger,
            coalesce=True,
            max_instances=1,
        )
        scheduler.add_job(enqueue, "date", args=[name, task], id=f"{name}-now")
    scheduler.add_job(
        lambda: leases.acquire(LEASE, holder, LEASE_SECONDS),
        "interval",
        seconds=LEASE_SECONDS // 3,
        id="renew-lease",
    )
    # This scheduler's sign of life (otomat.ops.heartbeats), lease holder or standby alike.
    scheduler.add_job(
        _beat, "interval", seconds=settings.HEARTBEAT_SECONDS, id="heartbeat", max_instances=1
    )
    scheduler.add_job(_beat, "date", id="heartbeat-now")
    return scheduler


def _beat() -> None:
    close_old_connections()
    try:
        heartbeats.beat(heartbeats.Service.SCHEDULER)
    except Exception:  # a busy database: the next beat tries again
        log.warning("the scheduler's heartbeat was not written", exc_info=True)


def run_scheduler() -> int:
    holder = _holder()
    stop = threading.Event()
    scheduler = build_scheduler(holder, jobs())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    scheduler.start()
    log.info("scheduler started as %s", holder)
    stop.wait()
    scheduler.shutdown(wait=False)
    leases.release(LEASE, holder)
    heartbeats.mark_stopped(heartbeats.Service.SCHEDULER)
    return 0
