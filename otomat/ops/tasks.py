"""Housekeeping of the platform itself, run by the scheduler."""

from __future__ import annotations

from django_tasks import task

from otomat.ops.retention import prune_old_records


@task()
def prune_old_records_task() -> dict[str, int]:
    """Retention: delete what is older than kept (``otomat.ops.retention``)."""
    return prune_old_records()
