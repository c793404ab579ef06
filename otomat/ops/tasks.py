"""Housekeeping of the platform itself, run by the scheduler."""

from __future__ import annotations

from django.core.management import call_command
from django_tasks import task, task_backends

# The scheduler enqueues tens of thousands of small tasks a day (the owner bot is polled every
# 5 s): their results are kept a day to look at, failures two weeks.
KEEP_SUCCESSFUL_DAYS = 1
KEEP_FAILED_DAYS = 14


def prune_task_results() -> bool:
    """Delete finished task results older than what is kept; False when the task queue does
    not keep results in the database (Redis, the immediate backend)."""
    from django_tasks_db.backend import DatabaseBackend

    if not isinstance(task_backends["default"], DatabaseBackend):
        return False
    call_command(
        "prune_db_task_results",
        queue_name="*",
        min_age_days=KEEP_SUCCESSFUL_DAYS,
        failed_min_age_days=KEEP_FAILED_DAYS,
        verbosity=0,
    )
    return True


@task()
def prune_task_results_task() -> bool:
    return prune_task_results()
