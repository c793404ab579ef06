"""Background entry points; each calls one service and is safe to run twice (or at once)."""

from django_tasks import task

from otomat.billing import documents, dunning, payments


@task()
def run_billing_task() -> dict:
    """The periodic dunning run: renew, invoice, remind, suspend, unsuspend, terminate; then
    store the PDFs of documents issued without one (the bulk renewal path), a bounded batch."""
    report = dunning.run_billing()
    stored = documents.store_missing()
    return {
        "processed": report.processed,
        "failed": report.failed,
        "actions": report.actions,
        "documents_stored": stored,
    }


@task()
def run_subscription_task(subscription_id: int) -> int:
    """Run one subscription now (e.g. after a payment recorded by another process)."""
    return dunning.run_subscription(subscription_id).processed


@task()
def retry_callbacks_task() -> int:
    """Finish gateway callbacks that failed or were interrupted mid-way."""
    return payments.retry_failed_callbacks()


@task()
def store_document_task(kind: str, pk: int) -> str:
    """Render and store the PDF of a just-issued invoice or credit note (once; see documents)."""
    return documents.store_document(kind, pk)
