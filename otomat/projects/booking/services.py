"""Booking's business actions, one function each, atomic, writing their audit rows
(``booking.*``): take a slot, reschedule or cancel it (by the attendee's link before the
cut-off, or by the host at any time), and the host's settings (rules, meeting types, external
calendars, the feed's secret).

No double booking, whatever arrives at once: :func:`book` and :func:`reschedule` lock the
host's row (``select_for_update``; SQLite takes its write lock at BEGIN), check the slot again
inside that transaction, and the database's unique (host, slot_key) refuses a second confirmed
booking at the same start even if a caller skipped the lock.

Errors are :class:`BookingError` with a sentence for a person; nothing changes then.
Invitations (``.ics`` by email to attendee and host) go out after commit (``mail.py``).
"""

from __future__ import annotations

import itertools
import re
import zoneinfo
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from otomat.accounts.models import Account, User
from otomat.accounts.services import record_audit
from otomat.catalog.values import text_problem
from otomat.projects.booking import availability
from otomat.projects.booking.models import (
    Booking,
    DayOff,
    ExternalCalendar,
    Host,
    MeetingType,
    WeeklyHours,
    new_token,
)
from otomat.projects.models import Lead

LANGUAGES = {code for code, _name in settings.LANGUAGES}
MAX_MESSAGE = 2000
MAX_INTERVALS_PER_DAY = 6
MAX_DAYS_OFF = 400


class BookingError(ValueError):
    """A booking action refused; the message says why, for a person."""


class SlotTaken(BookingError):
    """The slot is no longer free (taken meanwhile, or never offered)."""


# -- hosts and their rules -----------------------------------------------------------------------


def host_for(user: User) -> Host:
    """The host row of a staff member (created with defaults the first time)."""
    if not user.is_staff:
        raise BookingError(gettext("Only the owner and staff receive bookings."))
    host, _created = Host.objects.get_or_create(user=user)
    return host


_INTERVAL = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*$")


def parse_intervals(text: str) -> list[tuple[time, time]]:
    """ "09:00-12:00, 13:00-17:00" → [(09:00, 12:00), (13:00, 17:00)]; raises BookingError
    naming the part that is wrong. Empty text: no hours that day. "24:00" ends a day."""
    found: list[tuple[time, time]] = []
    for part in [p for p in (text or "").split(",") if p.strip()]:
        match = _INTERVAL.match(part)
        if not match:
            raise BookingError(
                gettext("“%(part)s” is not an interval like 09:00-17:00.") % {"part": part[:40]}
            )
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
            raise BookingError(gettext("“%(part)s” is not a time of day.") % {"part": part[:40]})
        start = time(h1, m1)
        end = time(23, 59, 59) if h2 == 24 else time(h2, m2)
        if start >= end:
            raise BookingError(
                gettext("“%(part)s” ends before it starts.") % {"part": part.strip()[:40]}
            )
        found.append((start, end))
    found.sort()
    for (_s1, e1), (s2, _e2) in itertools.pairwise(found):
        if s2 < e1:
            raise BookingError(gettext("Two intervals of one day overlap."))
    if len(found) > MAX_INTERVALS_PER_DAY:
        raise BookingError(
            gettext("At most %(n)d intervals per day.") % {"n": MAX_INTERVALS_PER_DAY}
        )
    return found


def format_intervals(host: Host, weekday: int) -> str:
    return ", ".join(
        f"{h.start:%H:%M}-{'24:00' if h.end == time(23, 59, 59) else f'{h.end:%H:%M}'}"
        for h in host.hours.all()
        if h.weekday == weekday
    )


_DAY_OFF = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})\s*(.*)$")


def parse_days_off(text: str) -> list[tuple[date, str]]:
    """One date a line, "2026-12-24 Christmas Eve" (a reason optional); raises BookingError
    naming the line that is wrong."""
    found: dict[date, str] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        match = _DAY_OFF.match(line)
        try:
            day = date.fromisoformat(match.group(1)) if match else None
        except ValueError:
            day = None
        if day is None:
            raise BookingError(
                gettext("Line %(n)d: write a date as 2026-12-24, then a reason if you like.")
                % {"n": number}
            )
        reason = match.group(2).strip()
        if text_problem(reason, multiline=False) or len(reason) > 200:
            raise BookingError(gettext("Line %(n)d: the reason is not usable.") % {"n": number})
        found[day] = reason
    if len(found) > MAX_DAYS_OFF:
        raise BookingError(gettext("At most %(n)d days off.") % {"n": MAX_DAYS_OFF})
    return sorted(found.items())


@transaction.atomic
def save_rules(
    host: Host,
    *,
    actor: User,
    fields: dict,
    weekly: dict[int, str],
    days_off: str,
) -> Host:
    """Replace the host's rules: ``fields`` (time zone, buffers, notice, daily cap, horizon,
    holiday country), ``weekly`` (weekday → "09:00-17:00, …") and ``days_off`` (one date a
    line). Raises BookingError (nothing saved) for any bad part."""
    intervals = {}
    for weekday in range(7):
        try:
            intervals[weekday] = parse_intervals(weekly.get(weekday, ""))
        except BookingError as exc:
            raise BookingError(f"{_weekday_name(weekday)}: {exc}") from None
    dates = parse_days_off(days_off)
    locked = Host.objects.select_for_update().get(pk=host.pk)
    for name, value in fields.items():
        setattr(locked, name, value)
    try:
        locked.full_clean(exclude=["user", "feed_token"])
    except ValidationError as exc:
        raise BookingError(" ".join(exc.messages)) from None
    locked.save()
    WeeklyHours.objects.filter(host=locked).delete()
    WeeklyHours.objects.bulk_create(
        [
            WeeklyHours(host=locked, weekday=weekday, start=start, end=end)
            for weekday, pairs in intervals.items()
            for start, end in pairs
        ]
    )
    DayOff.objects.filter(host=locked).delete()
    DayOff.objects.bulk_create([DayOff(host=locked, date=d, reason=r) for d, r in dates])
    record_audit(
        "booking.rules_saved",
        actor=actor,
        target=locked,
        data={
            "timezone": locked.timezone,
            "intervals": sum(len(p) for p in intervals.values()),
            "days_off": len(dates),
        },
    )
    return locked


def _weekday_name(weekday: int) -> str:
    names = [
        gettext("Monday"),
        gettext("Tuesday"),
        gettext("Wednesday"),
        gettext("Thursday"),
        gettext("Friday"),
        gettext("Saturday"),
        gettext("Sunday"),
    ]
    return names[weekday]


@transaction.atomic
def save_meeting_type(meeting_type: MeetingType, *, actor: User) -> MeetingType:
    """Create or update a meeting type (validated by the model); raises BookingError."""
    try:
        meeting_type.full_clean(exclude=["host"])
    except ValidationError as exc:
        raise BookingError(" ".join(exc.messages)) from None
    created = meeting_type.pk is None
    meeting_type.save()
    record_audit(
        "booking.meeting_type_created" if created else "booking.meeting_type_changed",
        actor=actor,
        target=meeting_type,
        data={"slug": meeting_type.slug, "minutes": meeting_type.duration_minutes},
    )
    return meeting_type


@transaction.atomic
def regenerate_feed_token(host: Host, *, actor: User) -> Host:
    """A new secret for the host's feed; the old URL stops working at once."""
    Host.objects.filter(pk=host.pk).update(feed_token=new_token())
    host.refresh_from_db()
    record_audit("booking.feed_regenerated", actor=actor, target=host)
    return host


@transaction.atomic
def add_calendar(host: Host, *, actor: User, name: str, url: str) -> ExternalCalendar:
    """Add an external calendar by its iCal URL (http or https; ``webcal://`` is read as
    https); it is read on the next scheduled run, or at once with ``calendars.refresh``."""
    name, url = (name or "").strip(), (url or "").strip()
    if url.lower().startswith("webcal://"):
        url = "https://" + url[len("webcal://") :]
    if not name or len(name) > 100 or text_problem(name, multiline=False):
        raise BookingError(gettext("Give the calendar a name (up to 100 characters)."))
    if not re.match(r"^https?://[^\s/]+", url, re.I) or len(url) > 2000:
        raise BookingError(gettext("The iCal address must start with https:// (or http://)."))
    if ExternalCalendar.objects.filter(host=host).count() >= 20:
        raise BookingError(gettext("At most 20 external calendars."))
    calendar = ExternalCalendar.objects.create(host=host, name=name, url=url)
    # The URL is a secret of the host's: the audit row names the calendar, not its address.
    record_audit("booking.calendar_added", actor=actor, target=calendar, data={"name": name})
    return calendar


@transaction.atomic
def remove_calendar(calendar: ExternalCalendar, *, actor: User) -> None:
    record_audit(
        "booking.calendar_removed", actor=actor, target=calendar, data={"name": calendar.name}
    )
    calendar.delete()


# -- bookings ------------------------------------------------------------------------------------


def _clean_attendee(name: str, email: str, language: str, tz: str, message: str) -> dict:
    name, email = (name or "").strip(), (email or "").strip().lower()
    message = (message or "").strip()
    if not name:
        raise BookingError(gettext("Please give your name."))
    if len(name) > 200 or text_problem(name, multiline=False):
        raise BookingError(gettext("The name is too long or holds characters it may not."))
    try:
        validate_email(email)
    except ValidationError:
        raise BookingError(gettext("Please give a valid email address.")) from None
    if len(email) > 254:
        raise BookingError(gettext("Please give a valid email address."))
    if len(message) > MAX_MESSAGE or text_problem(message, multiline=True):
        raise BookingError(
            gettext("The message is longer than %(n)d characters or holds characters it may not.")
            % {"n": MAX_MESSAGE}
        )
    return {
        "attendee_name": name,
        "attendee_email": email,
        "attendee_language": language if language in LANGUAGES else "en",
        "attendee_timezone": clean_zone(tz),
        "message": message,
    }


def clean_zone(value: str | None) -> str:
    """A known IANA zone name, or BookingError."""
    value = (value or "").strip()
    try:
        if not value or len(value) > 64:
            raise ValueError
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise BookingError(gettext("Unknown time zone.")) from None
    return value


def _video_url(meeting_type: MeetingType) -> str:
    template = meeting_type.video_link_template
    return template.replace("{token}", new_token()) if template else ""


def _locked_host(meeting_type: MeetingType) -> Host:
    return Host.objects.select_for_update().get(pk=meeting_type.host_id)


def _take_lead(booking_data: dict, *, lead: Lead | None, account: Account | None, ip) -> Lead:
    """The visitor's lead (from their private link or their account), or a new one of source
    booking; a lead before the offer stage moves to "meeting booked"."""
    if lead is None and account is not None:
        lead = Lead.objects.filter(account=account).order_by("-created_at").first()
    if lead is None:
        lead = Lead.objects.create(
            name=booking_data["attendee_name"],
            email=booking_data["attendee_email"],
            message=booking_data["message"],
            language=booking_data["attendee_language"],
            timezone=booking_data["attendee_timezone"],
            source=Lead.Source.BOOKING,
            status=Lead.Status.MEETING,
            account=account,
        )
        record_audit(
            "projects.lead_received",
            actor_label="public:booking",
            target=lead,
            data={"source": Lead.Source.BOOKING},
            ip=ip,
        )
        return lead
    moved = Lead.objects.filter(
        pk=lead.pk, status__in=[Lead.Status.NEW, Lead.Status.CONTACTED, Lead.Status.LOST]
    ).update(status=Lead.Status.MEETING)
    if moved:
        record_audit(
            "projects.lead_status",
            actor_label="public:booking",
            target=lead,
            data={"from": lead.status, "to": Lead.Status.MEETING},
            ip=ip,
        )
        lead.status = Lead.Status.MEETING
    return lead


def book(
    meeting_type: MeetingType,
    start: datetime,
    *,
    name: str,
    email: str,
    language: str = "en",
    tz: str = "UTC",
    message: str = "",
    lead: Lead | None = None,
    account: Account | None = None,
    actor: User | None = None,
    ip: str | None = None,
    now: datetime | None = None,
) -> Booking:
    """Book ``start`` (an aware moment, one of the meeting type's free slots) for the visitor.
    Raises SlotTaken when it is not free (any more), BookingError for bad details. Ties the
    booking to the visitor's lead (``lead``, else their account's latest, else a new lead of
    source booking) and moves that lead to "meeting booked"; sends the invitations after
    commit."""
    if not meeting_type.is_active:
        raise BookingError(gettext("This meeting type is not offered any more."))
    if start.tzinfo is None:
        raise BookingError(gettext("A time without its time zone cannot be booked."))
    details = _clean_attendee(name, email, language, tz, message)
    now = now or timezone.now()
    with transaction.atomic():
        host = _locked_host(meeting_type)
        meeting_type.host = host
        if not availability.is_free(meeting_type, start, now=now):
            raise SlotTaken(gettext("Sorry, this time is no longer free; please pick another."))
        taken_lead = _take_lead(details, lead=lead, account=account, ip=ip)
        booking = Booking(
            meeting_type=meeting_type,
            host=host,
            lead=taken_lead,
            account=account or taken_lead.account,
            start=start,
            end=start + timedelta(minutes=meeting_type.duration_minutes),
            video_url=_video_url(meeting_type),
            cutoff_hours=meeting_type.cutoff_hours,
            created_at=now,
            **details,
        )
        try:
            with transaction.atomic():
                booking.save(force_insert=True)
        except IntegrityError:  # the same start, taken by a writer that skipped the lock
            raise SlotTaken(
                gettext("Sorry, this time is no longer free; please pick another.")
            ) from None
        record_audit(
            "booking.booked",
            actor=actor,
            actor_label="" if actor else "public:booking",
            account=booking.account,
            target=booking,
            data={"meeting_type": meeting_type.slug, "start": start.isoformat()},
            ip=ip,
        )
        _send_after_commit(booking)
    return booking


def can_change(booking: Booking, *, now: datetime | None = None) -> bool:
    """Whether the attendee may still reschedule or cancel by link."""
    now = now or timezone.now()
    return booking.status == Booking.Status.CONFIRMED and now < booking.changes_until


def _check_cutoff(booking: Booking, *, by_host: bool, now: datetime) -> None:
    if booking.status != Booking.Status.CONFIRMED:
        raise BookingError(gettext("This meeting has been cancelled."))
    if not by_host and now >= booking.changes_until:
        raise BookingError(
            gettext(
                "Changes by link end %(hours)d hours before the meeting; please write to us "
                "instead."
            )
            % {"hours": booking.cutoff_hours}
        )


def reschedule(
    booking: Booking,
    start: datetime,
    *,
    by_host: bool = False,
    actor: User | None = None,
    ip: str | None = None,
    now: datetime | None = None,
) -> Booking:
    """Move ``booking`` to ``start`` (a free slot of its meeting type, its own old time not
    counting as busy). The attendee may do it until the cut-off, the host at any time. The
    same UID with SEQUENCE + 1 goes out to both. Raises BookingError / SlotTaken."""
    if start.tzinfo is None:
        raise BookingError(gettext("A time without its time zone cannot be booked."))
    now = now or timezone.now()
    with transaction.atomic():
        host = _locked_host(booking.meeting_type)
        locked = Booking.objects.select_related("meeting_type").get(pk=booking.pk)
        _check_cutoff(locked, by_host=by_host, now=now)
        if start == locked.start:
            raise BookingError(gettext("The meeting is already at this time."))
        locked.meeting_type.host = host
        if not availability.is_free(locked.meeting_type, start, now=now, exclude=locked):
            raise SlotTaken(gettext("Sorry, this time is no longer free; please pick another."))
        previous = locked.start
        locked.start = start
        locked.end = start + (locked.end - previous)
        locked.sequence += 1
        try:
            with transaction.atomic():
                locked.save()
        except IntegrityError:
            raise SlotTaken(
                gettext("Sorry, this time is no longer free; please pick another.")
            ) from None
        record_audit(
            "booking.rescheduled",
            actor=actor,
            actor_label="" if actor else "public:manage-link",
            account=locked.account,
            target=locked,
            data={"from": previous.isoformat(), "to": start.isoformat()},
            ip=ip,
        )
        _send_after_commit(locked)
    return locked


def cancel(
    booking: Booking,
    *,
    by_host: bool = False,
    actor: User | None = None,
    ip: str | None = None,
    now: datetime | None = None,
) -> Booking:
    """Cancel ``booking`` (the attendee until the cut-off, the host at any time): the slot is
    free again and METHOD:CANCEL goes out to both. Raises BookingError."""
    now = now or timezone.now()
    with transaction.atomic():
        _locked_host(booking.meeting_type)
        locked = Booking.objects.select_related("meeting_type").get(pk=booking.pk)
        _check_cutoff(locked, by_host=by_host, now=now)
        locked.status = Booking.Status.CANCELLED
        locked.cancelled_at = now
        locked.sequence += 1
        locked.save()
        record_audit(
            "booking.cancelled",
            actor=actor,
            actor_label="" if actor else "public:manage-link",
            account=locked.account,
            target=locked,
            data={"start": locked.start.isoformat(), "by_host": by_host},
            ip=ip,
        )
        _send_after_commit(locked)
    return locked


def _send_after_commit(booking: Booking) -> None:
    from otomat.projects.booking.tasks import send_invitation_task

    booking_id, sequence = str(booking.pk), booking.sequence

    def enqueue() -> None:
        send_invitation_task.enqueue(booking_id, sequence)

    transaction.on_commit(enqueue)
