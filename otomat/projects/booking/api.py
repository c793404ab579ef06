"""Booking endpoints of the REST API (/api/v1/projects/booking): the bookable meeting types,
their free slots, booking a slot for the token's person, and the bookings they may see — a
customer their account's, staff every host's. Another account's booking is a 404."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time, timedelta
from typing import Annotated
from uuid import UUID

from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status
from pydantic import Field

from otomat.api.lists import Offset, narrowed, ranged, rows_limit, window
from otomat.api.schemas import Error, Line, Text, answers, line
from otomat.lib import dates
from otomat.projects.booking import availability, services
from otomat.projects.booking.models import Booking, MeetingType
from otomat.projects.models import Lead

router = Router(tags=["projects"])
Limit = rows_limit(50, most=200)
Days = ranged(1, 31, 7, "How many days from `from`")


class MeetingTypeOut(Schema):
    slug: str
    name: str
    description: str
    duration_minutes: int
    host: str
    host_timezone: str


class SlotOut(Schema):
    start: datetime = Field(description="UTC.")
    end: datetime
    local_start: str = Field(description="The start in `timezone`, ISO 8601 with its offset.")
    zone: str = Field(description="The zone's name at that moment: WIB, CET, or the IANA name.")


class SlotsOut(Schema):
    timezone: str
    slots: list[SlotOut]


class BookingIn(Schema):
    meeting_type: Line = line(64, description="The meeting type's slug.")
    start: datetime = Field(description="One of the offered slots' `start`, with its offset.")
    name: Line = line(200)
    email: Line = line(254)
    timezone: Line = line(64, default="UTC", description="The attendee's IANA zone.")
    language: Line = line(8, default="en")
    message: Text = Field("", max_length=services.MAX_MESSAGE)
    lead: Line = line(64, default="", description="The lead's private token, to tie it.")


class BookingOut(Schema):
    id: UUID
    meeting_type: str
    status: str
    start: datetime
    end: datetime
    attendee_name: str
    attendee_email: str
    attendee_timezone: str
    video_url: str
    manage_url: str
    changes_until: datetime
    uid: str
    sequence: int


def _out(booking: Booking) -> dict:
    from otomat.projects.booking.mail import manage_url

    return {
        "id": booking.pk,
        "meeting_type": booking.meeting_type.slug,
        "status": booking.status,
        "start": booking.start,
        "end": booking.end,
        "attendee_name": booking.attendee_name,
        "attendee_email": booking.attendee_email,
        "attendee_timezone": booking.attendee_timezone,
        "video_url": booking.video_url,
        "manage_url": manage_url(booking),
        "changes_until": booking.changes_until,
        "uid": booking.uid,
        "sequence": booking.sequence,
    }


def _scoped(request):
    qs = Booking.objects.select_related("meeting_type")
    if request.user.is_staff:
        return qs
    account = request.user.account
    return qs.filter(account=account) if account else qs.none()


@router.get("/types", response=answers({200: list[MeetingTypeOut]}, 413, 422))
def list_types(request, language: Annotated[Line, Query("en", max_length=8)] = "en"):
    return [
        {
            "slug": t.slug,
            "name": t.text("name", language),
            "description": t.text("description", language),
            "duration_minutes": t.duration_minutes,
            "host": str(t.host.user),
            "host_timezone": t.host.timezone,
        }
        for t in MeetingType.objects.filter(is_active=True).select_related("host__user")
    ]


@router.get(
    "/types/{slug}/slots",
    response=answers({200: SlotsOut}, 400, 404, 413, 422),
    description="Free slots of the meeting type for `days` days from the date `from` "
    "(YYYY-MM-DD, in `timezone`; today by default), shown in `timezone`.",
)
def list_slots(
    request,
    slug: Line,
    timezone: Annotated[Line, Query("UTC", max_length=64)] = "UTC",
    from_: Annotated[str, Query("", alias="from", max_length=10)] = "",
    days: Days = 7,
):
    meeting_type = get_object_or_404(
        MeetingType.objects.select_related("host"), slug=slug, is_active=True
    )
    try:
        zone_name = services.clean_zone(timezone)
    except services.BookingError as exc:
        return Status(400, {"detail": str(exc)})
    if not 1 <= days <= 31:
        return Status(400, {"detail": "days must be 1–31"})
    zone = zoneinfo.ZoneInfo(zone_name)
    try:
        first = date.fromisoformat(from_) if from_ else None
    except ValueError:
        return Status(400, {"detail": "from must be a date, YYYY-MM-DD"})
    first = first or datetime.now(zone).date()
    start = datetime.combine(first, time(0), tzinfo=zone)
    slots = availability.free_slots(meeting_type, start, start + timedelta(days=days))
    out = []
    for slot in slots:
        local = slot.start.astimezone(zone)
        out.append(
            {
                "start": slot.start,
                "end": slot.end,
                "local_start": local.isoformat(),
                "zone": dates.zone_label(local),
            }
        )
    return {"timezone": zone_name, "slots": out}


@router.post("/bookings", response=answers({201: BookingOut, 409: Error}, 400, 404, 413, 422))
def create_booking(request, body: BookingIn):
    meeting_type = get_object_or_404(
        MeetingType.objects.select_related("host"), slug=body.meeting_type, is_active=True
    )
    lead = None
    if body.lead:
        lead = Lead.objects.filter(token=body.lead).first()
        if lead is None:
            return Status(400, {"detail": "Unknown lead token."})
    account = None if request.user.is_staff else request.user.account
    if lead is not None and account is not None and lead.account_id not in (None, account.pk):
        return Status(400, {"detail": "Unknown lead token."})
    try:
        booking = services.book(
            meeting_type,
            body.start,
            name=body.name,
            email=body.email,
            language=body.language,
            tz=body.timezone,
            message=body.message,
            lead=lead,
            account=account,
            actor=request.user,
        )
    except services.SlotTaken as exc:
        return Status(409, {"detail": str(exc)})
    except services.BookingError as exc:
        return Status(400, {"detail": str(exc)})
    return Status(201, _out(booking))


@router.get("/bookings", response=answers({200: list[BookingOut]}, 400, 413, 422))
def list_bookings(request, status: str | None = None, limit: Limit = 50, offset: Offset = 0):
    rows = window(limit, offset, most=200)
    qs = narrowed(_scoped(request), "status", status, Booking.Status.values)
    return [_out(b) for b in qs.order_by("-start", "pk")[rows]]


@router.get("/bookings/{booking_id}", response=answers({200: BookingOut}, 404, 422))
def get_booking(request, booking_id: UUID):
    return _out(get_object_or_404(_scoped(request), pk=booking_id))


@router.post("/bookings/{booking_id}/cancel", response=answers({200: BookingOut}, 400, 404, 422))
def cancel_booking(request, booking_id: UUID):
    """Cancel: a customer until the cut-off, staff at any time."""
    booking = get_object_or_404(_scoped(request), pk=booking_id)
    try:
        booking = services.cancel(booking, by_host=request.user.is_staff, actor=request.user)
    except services.BookingError as exc:
        return Status(400, {"detail": str(exc)})
    return _out(booking)
