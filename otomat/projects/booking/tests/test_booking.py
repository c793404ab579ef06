"""Taking a slot: the lead moves to "meeting booked" (or one is created), the invitations go to
both with their .ics, a double booking is refused — also when two requests race — and the
attendee reschedules or cancels by link until the cut-off."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
import time_machine
from django.db import IntegrityError, close_old_connections, transaction

from otomat.accounts.models import AuditEvent
from otomat.projects.booking import services
from otomat.projects.booking.models import Booking
from otomat.projects.models import Lead

WARSAW = ZoneInfo("Europe/Warsaw")
MONDAY = date(2027, 1, 11)
NOW = datetime(2027, 1, 4, 10, tzinfo=UTC)


def at(hour: int, minute: int = 0, day: date = MONDAY) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=WARSAW).astimezone(UTC)


def book(call, start, **kwargs):
    kwargs.setdefault("name", "Ann Nowak")
    kwargs.setdefault("email", "ann@example.com")
    kwargs.setdefault("tz", "Asia/Jakarta")
    kwargs.setdefault("language", "pl")
    kwargs.setdefault("now", NOW)
    return services.book(call, start, **kwargs)


@pytest.fixture
def immediate_tasks(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


def test_it_books_a_free_slot_and_creates_a_lead(
    call, immediate_tasks, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        booking = book(call, at(10))
    assert booking.status == Booking.Status.CONFIRMED
    assert booking.end - booking.start == timedelta(minutes=60)
    assert (
        booking.video_url.startswith("https://meet.example.com/") and "{" not in booking.video_url
    )
    lead = booking.lead
    assert lead.source == Lead.Source.BOOKING and lead.status == Lead.Status.MEETING
    assert lead.email == "ann@example.com" and lead.timezone == "Asia/Jakarta"
    assert AuditEvent.objects.filter(action="booking.booked", target_id=str(booking.pk)).exists()
    # One invitation to the attendee, one to the host, both with the .ics.
    assert sorted(m.to[0] for m in mailoutbox) == ["ann@example.com", "owner@example.com"]
    to_ann = next(m for m in mailoutbox if m.to == ["ann@example.com"])
    assert "Rozmowa o projekcie" in to_ann.subject  # the attendee's language
    assert "WIB" in to_ann.body  # her zone, named
    name, content, mimetype = to_ann.attachments[0]
    assert name == "invite.ics" and mimetype.startswith("text/calendar; method=REQUEST")
    parsed = icalendar.Calendar.from_ical(content)
    assert str(parsed["METHOD"]) == "REQUEST"
    event = next(iter(parsed.walk("VEVENT")))
    assert str(event["UID"]) == booking.uid
    assert event.decoded("DTSTART") == booking.start
    assert event.decoded("DTEND") == booking.end
    assert int(event["SEQUENCE"]) == 0
    assert str(event["ORGANIZER"]) == "mailto:owner@example.com"
    assert str(event["ATTENDEE"]) == "mailto:ann@example.com"
    assert str(event["LOCATION"]) == booking.video_url


def test_a_booking_from_the_leads_link_moves_that_lead(call):
    lead = Lead.objects.create(name="Ola", email="ola@example.com", source=Lead.Source.ESTIMATOR)
    booking = book(call, at(10), lead=lead, email="someone-else@example.com")
    lead.refresh_from_db()
    assert booking.lead == lead and lead.status == Lead.Status.MEETING
    assert Lead.objects.count() == 1


def test_a_lead_past_the_offer_keeps_its_status(call):
    lead = Lead.objects.create(
        name="Ola", email="ola@example.com", source=Lead.Source.ESTIMATOR, status=Lead.Status.WON
    )
    book(call, at(10), lead=lead)
    lead.refresh_from_db()
    assert lead.status == Lead.Status.WON


def test_a_customer_booking_is_their_accounts(call, cast):
    booking = book(call, at(10), account=cast.alice.account, actor=cast.alice)
    assert booking.account == cast.alice.account
    assert booking.lead.account == cast.alice.account


def test_a_taken_slot_is_refused(call):
    book(call, at(10))
    with pytest.raises(services.SlotTaken):
        book(call, at(10), email="bob@example.com")
    with pytest.raises(services.SlotTaken):  # overlaps 10:00–11:00
        book(call, at(10, 30), email="bob@example.com")
    assert Booking.objects.count() == 1


def test_the_database_refuses_two_confirmed_bookings_at_one_start(call):
    first = book(call, at(10))
    twin = Booking(
        meeting_type=call,
        host=call.host,
        start=first.start,
        end=first.end,
        attendee_name="X",
        attendee_email="x@example.com",
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        twin.save()
    services.cancel(first, by_host=True, now=NOW)
    twin.save()  # the cancelled one no longer holds the start


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "too long"),
        ({"name": "Ann\x00"}, "characters"),
        ({"email": "not-an-email"}, "email"),
        ({"tz": "Mars/Olympus"}, "time zone"),
        ({"message": "m" * 3000}, "longer"),
    ],
)
def test_bad_details_change_nothing(call, changes, message):
    with pytest.raises(services.BookingError, match=message):
        book(call, at(10), **changes)
    assert Booking.objects.count() == 0 and Lead.objects.count() == 0


def test_times_that_were_never_offered_are_refused(call):
    for start in (
        at(10, 10),
        at(7),
        at(10, day=MONDAY + timedelta(days=5)),
        NOW - timedelta(days=1),
    ):
        with pytest.raises(services.SlotTaken):
            book(call, start)
    with pytest.raises(services.BookingError):
        book(call, datetime(2027, 1, 11, 10))  # naive
    call.is_active = False
    call.save()
    with pytest.raises(services.BookingError):
        book(call, at(10))
    assert Booking.objects.count() == 0


def _race(call, starts):
    barrier = threading.Barrier(len(starts))
    outcomes: list[str] = []

    def attempt(start, n):
        close_old_connections()
        try:
            barrier.wait(timeout=10)
            book(call, start, email=f"racer{n}@example.com")
            outcomes.append("booked")
        except services.SlotTaken:
            outcomes.append("taken")
        finally:
            from django.db import connection

            connection.close()

    threads = [threading.Thread(target=attempt, args=(s, n)) for n, s in enumerate(starts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return sorted(outcomes)


@pytest.mark.django_db(transaction=True)
def test_a_double_booking_race_is_refused(call):
    """Two visitors press "Book" for the same start at once, on two connections."""
    assert _race(call, [at(10), at(10)]) == ["booked", "taken"]
    assert Booking.objects.filter(status="confirmed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_overlap_race_is_refused(call):
    """10:00 and 10:30 start apart but overlap: only the host lock can refuse one of them."""
    assert _race(call, [at(10), at(10, 30), at(10), at(10, 30)]) == [
        "booked",
        "taken",
        "taken",
        "taken",
    ]
    assert Booking.objects.filter(status="confirmed").count() == 1


def test_reschedule_by_link_before_the_cutoff(
    call, immediate_tasks, mailoutbox, django_capture_on_commit_callbacks
):
    booking = book(call, at(10))
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        moved = services.reschedule(booking, at(14), now=NOW)
    assert moved.start == at(14) and moved.sequence == 1 and moved.uid == booking.uid
    assert AuditEvent.objects.filter(action="booking.rescheduled").count() == 1
    event = next(iter(icalendar.Calendar.from_ical(mailoutbox[0].attachments[0][1]).walk("VEVENT")))
    assert int(event["SEQUENCE"]) == 1 and event.decoded("DTSTART") == at(14)
    # The old time is free again, the new one taken.
    with pytest.raises(services.SlotTaken):
        book(call, at(14), email="x@example.com")
    book(call, at(10), email="x@example.com")


def test_reschedule_into_its_own_neighbourhood(call):
    """Moving 10:00 to 10:30 overlaps only the booking itself, which does not count."""
    booking = book(call, at(10))
    assert services.reschedule(booking, at(10, 30), now=NOW).start == at(10, 30)


def test_cancel_by_link_sends_a_cancel(
    call, immediate_tasks, mailoutbox, django_capture_on_commit_callbacks
):
    booking = book(call, at(10))
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = services.cancel(booking, now=NOW)
    assert cancelled.status == Booking.Status.CANCELLED and cancelled.slot_key is None
    parsed = icalendar.Calendar.from_ical(mailoutbox[0].attachments[0][1])
    assert str(parsed["METHOD"]) == "CANCEL"
    event = next(iter(parsed.walk("VEVENT")))
    assert str(event["STATUS"]) == "CANCELLED" and int(event["SEQUENCE"]) == 1
    with pytest.raises(services.BookingError):
        services.cancel(cancelled, now=NOW)  # once is enough
    with pytest.raises(services.BookingError):
        services.reschedule(cancelled, at(14), now=NOW)


def test_the_cutoff_ends_changes_by_link_but_not_the_hosts(call):
    booking = book(call, at(10))
    with time_machine.travel(at(10) - timedelta(hours=23), tick=False):
        assert not services.can_change(booking)
        with pytest.raises(services.BookingError, match="24 hours"):
            services.cancel(booking)
        with pytest.raises(services.BookingError, match="24 hours"):
            services.reschedule(booking, at(14, day=MONDAY + timedelta(days=1)))
        booking.refresh_from_db()
        assert booking.status == Booking.Status.CONFIRMED and booking.start == at(10)
        services.cancel(booking, by_host=True)  # the host may
    with time_machine.travel(at(10) - timedelta(hours=25), tick=False):
        other = book(call, at(12), now=None)
        assert services.can_change(other)


def test_a_late_invitation_task_sends_nothing(call, mailoutbox):
    from otomat.projects.booking.mail import send_invitations

    booking = book(call, at(10))
    services.reschedule(booking, at(14), now=NOW)
    assert send_invitations(str(booking.pk), 0) == 0  # sequence 0 is stale
    assert send_invitations(str(booking.pk), 1) == 2
