"""Background entry points; each calls one service and is safe to run twice."""

from django_tasks import task

from otomat.monitoring import alerts


@task()
def scan_task() -> None:
    """Run every check and report what it saw (the scheduler's job, and poked by failures)."""
    alerts.scan()
