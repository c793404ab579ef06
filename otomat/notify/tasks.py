"""Background entry points; each calls one service and is safe to run twice."""

from django_tasks import task

from otomat.notify import services


@task()
def deliver_pending_task() -> int:
    """Send queued notifications (and retry failed ones whose backoff is over)."""
    return services.deliver_pending()


@task()
def poll_owner_bot_task() -> int:
    """Link people's Telegram chats to their accounts from the owner bot's /start messages."""
    return services.poll_owner_bot()
