"""Background entry points; each calls one service and is safe to run twice."""

from django_tasks import task


@task()
def sla_scan_task() -> int:
    """Record SLA warnings, escalations and breaches whose moment has come."""
    from otomat.support.sla import scan

    return scan()


@task()
def poll_imap_task() -> int:
    """Fetch the support mailbox's new mail into tickets (when IMAP is configured)."""
    from otomat.support.inbound import poll_imap

    return poll_imap()
