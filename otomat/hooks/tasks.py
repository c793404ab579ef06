"""Background entry points of webhooks (the scheduler enqueues ``retry_due_task`` every minute)."""

from __future__ import annotations

from django_tasks import task

from otomat.hooks import delivery


@task()
def deliver_task(delivery_id: int) -> bool:
    return delivery.attempt(delivery_id)


@task()
def retry_due_task() -> int:
    """Attempt every delivery that is due; each attempt claims its row, so two workers running
    this at once never send one delivery twice."""
    sent = 0
    for pk in delivery.due():
        sent += bool(delivery.attempt(pk))
    return sent
