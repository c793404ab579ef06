"""The invitations: one email to the attendee and one to the host for every change of a
booking (booked, rescheduled, cancelled), each in its reader's language and time zone, with
the booking's ``.ics`` attached (``text/calendar; method=REQUEST`` or ``CANCEL``), so mail
programs offer to add, move or remove the event.

Sent by a task after the change commits (``tasks.send_invitation_task``), through Django's
mail backend like the rest of Otomat's mail (with no mail server configured the staff outbox
keeps it). A task that runs late for an older change sends nothing: only the booking's current
SEQUENCE is sent (a task retried after a mail failure may send that one again)."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import timezone, translation

from otomat.projects.booking import ical
from otomat.projects.booking.models import Booking


def _zone(name: str):
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def manage_url(booking: Booking) -> str:
    return f"{settings.BASE_URL}/projects/booking/manage/{booking.manage_token}/"


def _message(booking: Booking, *, to: str, language: str, tz: str, for_host: bool, data: bytes):
    cancelled = booking.status == Booking.Status.CANCELLED
    kind = "cancelled" if cancelled else ("rescheduled" if booking.sequence else "booked")
    context = {
        "booking": booking,
        "kind": kind,
        "for_host": for_host,
        "meeting_name": booking.meeting_type.text("name", language),
        "manage_url": manage_url(booking),
        "host_name": str(booking.host.user),
        "host_url": f"{settings.BASE_URL}/projects/booking/host/",
    }
    with translation.override(language or "en"), timezone.override(_zone(tz)):
        subject = render_to_string("booking/mail/invitation_subject.txt", context)
        body = render_to_string("booking/mail/invitation_body.txt", context)
    message = EmailMessage(
        " ".join(subject.split())[:200],
        body.strip(),
        settings.DEFAULT_FROM_EMAIL,
        [to],
        reply_to=[booking.attendee_email if for_host else booking.host.user.email],
    )
    method = "CANCEL" if cancelled else "REQUEST"
    message.attach("invite.ics", data, f"text/calendar; method={method}; charset=UTF-8")
    return message


def send_invitations(booking_id: str, sequence: int) -> int:
    """Send the invitation of ``booking_id`` at ``sequence`` to attendee and host; returns how
    many were sent (0 when the booking moved on to a later sequence or is gone)."""
    booking = (
        Booking.objects.select_related("meeting_type", "host__user")
        .filter(pk=booking_id, sequence=sequence)
        .first()
    )
    if booking is None:
        return 0
    data = ical.invitation(booking)
    host = booking.host.user
    messages = [
        _message(
            booking,
            to=booking.attendee_email,
            language=booking.attendee_language,
            tz=booking.attendee_timezone,
            for_host=False,
            data=data,
        ),
        _message(
            booking,
            to=host.email,
            language=host.language,
            tz=booking.host.timezone,
            for_host=True,
            data=data,
        ),
    ]
    sent = 0
    for message in messages:
        sent += message.send()
    return sent
