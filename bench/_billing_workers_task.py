"""The task bench/billing_workers.py enqueues: the dunning run alone, without the bounded batch
of PDFs that ``run_billing_task`` stores after it (200 documents, which would dominate)."""

from django_tasks import task


@task()
def dunning_run_task() -> int:
    from otomat.billing.dunning import run_billing

    return run_billing().processed
