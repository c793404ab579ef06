"""Meeting booking: a host's availability (weekly hours in their zone, buffers, notice, a daily
cap, days off), the meeting types visitors book, the bookings themselves, and the external
calendars whose busy times are imported by iCal URL.

Times are UTC in the database; a host's hours are wall-clock times in ``Host.timezone`` and are
turned into moments day by day (``availability.py``), so a DST change moves nothing a person
would notice. No two confirmed bookings of a host start at the same moment: ``slot_key`` (the
start while confirmed, NULL once cancelled) is unique per host — a plain unique constraint that
SQLite, PostgreSQL and MariaDB all enforce, where a partial index would not work on MariaDB.
Overlaps that do not start at the same moment are refused by ``services.book`` under a lock
on the ``Host`` row.
"""

from __future__ import annotations

import secrets
import uuid
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone as dj_timezone
from django.utils.translation import gettext_lazy as _

from otomat.accounts.models import TIMEZONE_CHOICES, Account
from otomat.lib.choices import ChoiceLabels
from otomat.projects.models import Lead


def new_token() -> str:
    """An unguessable link secret (about 144 bits)."""
    return secrets.token_urlsafe(18)


def zone_of(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone ``name``; raises ValidationError for an unknown one."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValidationError(_("Unknown time zone: %(zone)s"), params={"zone": name}) from None


class Host(models.Model):
    """Somebody people book meetings with (the owner, or a staff member) and their rules. The
    row is also the lock every booking of this host takes (``select_for_update``), so two
    bookings of one host are decided one after the other."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="booking_host"
    )
    timezone = models.CharField(
        _("time zone"), max_length=64, choices=TIMEZONE_CHOICES, default="Europe/Warsaw"
    )
    buffer_before_minutes = models.PositiveSmallIntegerField(
        _("free time before a meeting (minutes)"),
        default=0,
        validators=[MaxValueValidator(240)],
    )
    buffer_after_minutes = models.PositiveSmallIntegerField(
        _("free time after a meeting (minutes)"),
        default=15,
        validators=[MaxValueValidator(240)],
    )
    min_notice_minutes = models.PositiveIntegerField(
        _("minimum notice (minutes)"),
        default=12 * 60,
        validators=[MaxValueValidator(60 * 24 * 60)],
        help_text=_("No slot starts sooner than this after the moment of booking."),
    )
    max_per_day = models.PositiveSmallIntegerField(
        _("most meetings per day"),
        default=0,
        validators=[MaxValueValidator(100)],
        help_text=_("0: no limit. Counted per day in the host's time zone."),
    )
    horizon_days = models.PositiveSmallIntegerField(
        _("bookable days ahead"),
        default=60,
        validators=[MinValueValidator(1), MaxValueValidator(366)],
    )
    # Public holidays of this country (the ``holidays`` library) are days off too; "" for none.
    holiday_country = models.CharField(_("public holidays of"), max_length=2, blank=True)
    # The secret of the iCal feed of this host's bookings; regenerating it ends old links.
    feed_token = models.CharField(max_length=32, unique=True, default=new_token, editable=False)
    created_at = models.DateTimeField(default=dj_timezone.now)

    def __str__(self) -> str:
        return str(self.user)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zone_of(self.timezone)


class WeeklyHours(models.Model):
    """One interval of working hours on a weekday, in the host's zone (several per day)."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField(
        choices=[(i, str(i)) for i in range(7)], validators=[MaxValueValidator(6)]
    )  # 0 = Monday (datetime.weekday())
    start = models.TimeField()
    end = models.TimeField()  # after start, the same day

    class Meta:
        ordering = ["weekday", "start"]

    def clean(self) -> None:
        if self.start >= self.end:
            raise ValidationError(_("An interval must end after it starts."))


class DayOff(models.Model):
    """A date (in the host's zone) without meetings: a holiday, a day away."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="days_off")
    date = models.DateField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(fields=["host", "date"], name="booking_one_day_off_per_date")
        ]


class MeetingType(models.Model):
    """What visitors book ("Project call, 60 minutes, video"). ``translations`` holds the other
    languages: ``{"id": {"name": ..., "description": ...}, "pl": {...}}``; English is the
    fields. ``video_link_template`` may contain ``{token}``, replaced by a value unique to each
    booking (``https://meet.example.com/{token}``)."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="meeting_types")
    slug = models.SlugField(_("address"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    translations = models.JSONField(default=dict, blank=True)
    duration_minutes = models.PositiveSmallIntegerField(
        _("length (minutes)"),
        default=60,
        validators=[MinValueValidator(5), MaxValueValidator(8 * 60)],
    )
    slot_step_minutes = models.PositiveSmallIntegerField(
        _("slot step (minutes)"),
        default=30,
        validators=[MinValueValidator(5), MaxValueValidator(8 * 60)],
        help_text=_("How far apart the offered start times are."),
    )
    video_link_template = models.CharField(
        _("video link"),
        max_length=300,
        blank=True,
        help_text=_("e.g. https://meet.example.com/{token}; {token} is unique per booking."),
    )
    cutoff_hours = models.PositiveSmallIntegerField(
        _("changes allowed until (hours before)"),
        default=24,
        validators=[MaxValueValidator(24 * 30)],
        help_text=_("Rescheduling and cancelling by link end this long before the meeting."),
    )
    is_active = models.BooleanField(_("bookable"), default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.name

    def text(self, field: str, language: str | None) -> str:
        """``name`` or ``description`` in ``language``, English when not translated."""
        translated = (self.translations or {}).get((language or "en")[:2], {}).get(field)
        return translated or getattr(self, field)

    def clean(self) -> None:
        template = self.video_link_template
        if template and not template.startswith(("https://", "http://")):
            raise ValidationError(
                {"video_link_template": _("The video link must start with https://.")}
            )
        if template and (
            "{" in template.replace("{token}", "") or "}" in template.replace("{token}", "")
        ):
            raise ValidationError({"video_link_template": _("Only {token} may stand in braces.")})


class Booking(ChoiceLabels, models.Model):
    class Status(models.TextChoices):
        CONFIRMED = "confirmed", _("Confirmed")
        CANCELLED = "cancelled", _("Cancelled")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    meeting_type = models.ForeignKey(MeetingType, on_delete=models.PROTECT, related_name="bookings")
    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="bookings")
    lead = models.ForeignKey(
        Lead, null=True, blank=True, on_delete=models.SET_NULL, related_name="bookings"
    )
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="bookings"
    )
    start = models.DateTimeField()  # UTC
    end = models.DateTimeField()  # UTC, start + the meeting type's length when booked
    # The start while confirmed, NULL once cancelled: unique per host, so the database itself
    # refuses a second confirmed booking of a host at the same moment (NULLs never collide).
    slot_key = models.DateTimeField(null=True, blank=True, editable=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CONFIRMED)
    attendee_name = models.CharField(_("name"), max_length=200)
    attendee_email = models.EmailField(_("email"))
    attendee_language = models.CharField(max_length=8, choices=settings.LANGUAGES, default="en")
    attendee_timezone = models.CharField(max_length=64, choices=TIMEZONE_CHOICES, default="UTC")
    message = models.TextField(_("message"), blank=True)
    video_url = models.CharField(max_length=400, blank=True)
    # The secret of the attendee's manage link (reschedule, cancel, the .ics download).
    manage_token = models.CharField(max_length=32, unique=True, default=new_token, editable=False)
    # iCalendar identity: UID never changes; SEQUENCE goes up with every change sent out.
    uid = models.CharField(max_length=120, unique=True, editable=False)
    sequence = models.PositiveIntegerField(default=0)
    # Copied from the meeting type when booked: the attendee's link keeps the rule they read.
    cutoff_hours = models.PositiveSmallIntegerField(default=24)
    created_at = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["start"]
        constraints = [
            models.UniqueConstraint(fields=["host", "slot_key"], name="booking_one_per_host_start")
        ]
        indexes = [
            # Availability: the host's confirmed bookings overlapping a window.
            models.Index(fields=["host", "status", "start"], name="booking_host_window"),
            models.Index(fields=["account", "-start"], name="booking_account_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.meeting_type} · {self.attendee_name} · {self.start:%Y-%m-%d %H:%M} UTC"

    def save(self, *args, **kwargs):
        if not self.uid:
            self.uid = f"booking-{self.id}@otomat"
        self.slot_key = self.start if self.status == self.Status.CONFIRMED else None
        super().save(*args, **kwargs)

    @property
    def changes_until(self):
        """The last moment the attendee may reschedule or cancel by link."""
        from datetime import timedelta

        return self.start - timedelta(hours=self.cutoff_hours)


class ExternalCalendar(models.Model):
    """Another calendar of the host's (Google, Outlook, Booking.com…) read by its secret iCal
    URL on a schedule; its busy times block slots here. The URL is a secret of the host's: it
    is shown to them only, and never logged."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="calendars")
    name = models.CharField(_("name"), max_length=100)
    url = models.URLField(_("iCal address"), max_length=2000)
    is_active = models.BooleanField(_("read it"), default=True)
    etag = models.CharField(max_length=300, blank=True)
    last_modified = models.CharField(max_length=100, blank=True)
    last_fetch_at = models.DateTimeField(null=True, blank=True)  # every attempt
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)  # "" after a good fetch
    busy_count = models.PositiveIntegerField(default=0)  # busy times kept from the last good read
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


class BusyTime(models.Model):
    """One busy interval read from an external calendar (an occurrence of a recurring event is
    one row). Only the times are kept, not what the event was."""

    calendar = models.ForeignKey(ExternalCalendar, on_delete=models.CASCADE, related_name="busy")
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="+")  # = calendar.host
    start = models.DateTimeField()
    end = models.DateTimeField()

    class Meta:
        indexes = [
            # Availability: WHERE host = … AND start < window end AND end > window start.
            models.Index(fields=["host", "start"], name="booking_busy_window"),
        ]
