"""Background entry points; each calls one service and is safe to run twice (or at once)."""

from django_tasks import task

from otomat.billing import dunning, payments


@task()
def run_billing_task() -> dict:
    """The periodic dunning run: renew, invoice, remind, suspend, unsuspend, terminate."""
    report = dunning.run_billing()
    return {"processed": report.processed, "failed": report.failed, "actions": report.actions}


@task()
def run_subscription_task(subscription_id: int) -> int:
    """Run one subscription now (e.g. after a payment recorded by another process)."""
    return dunning.run_subscription(subscription_id).processed


@task()
def retry_callbacks_task() -> int:
    """Finish gateway callbacks that failed or were interrupted mid-way."""
    return payments.retry_failed_callbacks()
