"""Background entry points of offers (the scheduler enqueues them)."""

from __future__ import annotations

from django_tasks import task

from otomat.projects.offers import services


@task()
def expire_offers_task() -> int:
    """Sent offers past their validity date become expired (acceptance checks the date too)."""
    return services.expire_offers()
