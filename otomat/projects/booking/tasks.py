"""Background entry points of booking; each calls one service and is safe to run twice."""

from django_tasks import task


@task()
def send_invitation_task(booking_id: str, sequence: int) -> int:
    """Email the booking's invitation (its ``sequence``) to the attendee and the host."""
    from otomat.projects.booking.mail import send_invitations

    return send_invitations(booking_id, sequence)


@task()
def refresh_calendars_task() -> int:
    """Read every external calendar that is due; returns how many were read."""
    from otomat.projects.booking.calendars import refresh_due

    return refresh_due()
