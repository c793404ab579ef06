"""Booking pages. Public: the meeting types, a type's free slots in the visitor's zone with the
booking form (reachable from a lead's private link, prefilled), the attendee's manage page by
its secret link (reschedule, cancel, the .ics), the host's feed by its secret. Customers: their
account's bookings. Staff: their bookings, rules, meeting types, external calendars, feed.

Views are thin: parse, call ``services``, render. An unknown or foreign secret is a 404."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time, timedelta
from functools import wraps
from itertools import groupby

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from otomat.accounts.models import TIMEZONE_CHOICES
from otomat.accounts.throttle import client_ip
from otomat.projects import throttle
from otomat.projects.booking import availability, calendars, ical, services
from otomat.projects.booking.forms import (
    BookForm,
    CalendarForm,
    CancelForm,
    ConfirmForm,
    MeetingTypeForm,
    RescheduleForm,
    RulesForm,
)
from otomat.projects.booking.models import Booking, ExternalCalendar, Host, MeetingType
from otomat.projects.models import Lead

DAYS_SHOWN = 7
ZONES = {name for name, _label in TIMEZONE_CHOICES}


def staff_required(view):
    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not request.user.is_staff:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def _language() -> str:
    return (translation.get_language() or "en")[:2]


def _visitor_zone(request: HttpRequest, *, lead: Lead | None = None, fallback: str) -> str:
    """The zone slots are shown in: ?tz= (the picker, or the browser's own zone), the signed-in
    person's, the lead's, else the host's."""
    asked = (request.GET.get("tz") or request.POST.get("tz") or "").strip()
    if asked in ZONES:
        return asked
    user = request.user
    if user.is_authenticated and user.timezone and user.timezone != "UTC":
        return user.timezone
    if lead is not None and lead.timezone and lead.timezone != "UTC":
        return lead.timezone
    return fallback


def _first_day(request: HttpRequest, zone) -> date:
    today = timezone.now().astimezone(zone).date()
    try:
        asked = date.fromisoformat(request.GET.get("from", ""))
    except ValueError:
        return today
    return min(max(asked, today), today + timedelta(days=366))


def _week(meeting_type: MeetingType, zone_name: str, first: date, *, exclude=None):
    """The free slots of the 7 days from ``first`` (in the visitor's zone), grouped by day."""
    zone = zoneinfo.ZoneInfo(zone_name)
    start = datetime.combine(first, time(0), tzinfo=zone)
    end = datetime.combine(first + timedelta(days=DAYS_SHOWN), time(0), tzinfo=zone)
    slots = availability.free_slots(meeting_type, start, end, exclude=exclude)
    days = []
    for day, group in groupby(slots, key=lambda s: s.start.astimezone(zone).date()):
        days.append({"day": day, "slots": list(group)})
    return days


def _lead_from(request: HttpRequest) -> Lead | None:
    token = (request.GET.get("lead") or request.POST.get("lead") or "").strip()
    if not token:
        return None
    lead = Lead.objects.filter(token=token[:64]).first()
    if lead is None:
        raise Http404
    return lead


def _week_nav(first: date) -> dict:
    today = timezone.now().date()
    previous = first - timedelta(days=DAYS_SHOWN)
    return {
        "previous": previous.isoformat() if first > today else "",
        "next": (first + timedelta(days=DAYS_SHOWN)).isoformat(),
        "first": first,
        "last": first + timedelta(days=DAYS_SHOWN - 1),
    }


# -- public ---------------------------------------------------------------------------------------


def meeting_types(request: HttpRequest) -> HttpResponse:
    lead = _lead_from(request)
    types = MeetingType.objects.filter(is_active=True).select_related("host__user")
    return render(
        request,
        "booking/types.html",
        {"types": types, "lead": lead, "language": _language()},
    )


def lead_link(request: HttpRequest, token: str) -> HttpResponse:
    """The lead's private booking link: straight to the meeting type when there is one."""
    lead = get_object_or_404(Lead, token=token)
    types = list(MeetingType.objects.filter(is_active=True)[:2])
    if len(types) == 1:
        return redirect(f"{reverse('booking:book', args=[types[0].slug])}?lead={lead.token}")
    return redirect(f"{reverse('booking:types')}?lead={lead.token}")


def book_page(request: HttpRequest, slug: str) -> HttpResponse:
    meeting_type = get_object_or_404(
        MeetingType.objects.select_related("host__user"), slug=slug, is_active=True
    )
    lead = _lead_from(request)
    zone_name = _visitor_zone(request, lead=lead, fallback=meeting_type.host.timezone)
    zone = zoneinfo.ZoneInfo(zone_name)
    first = _first_day(request, zone)
    initial = {"tz": zone_name}
    if lead is not None:
        initial.update(name=lead.name, email=lead.email)
    elif request.user.is_authenticated and not request.user.is_staff:
        initial.update(name=request.user.get_full_name(), email=request.user.email)
    form = BookForm(request.POST or None, initial=initial)
    error = ""
    status = 200
    if request.method == "POST":
        if throttle.over_limit(request, "lead"):
            return throttle.too_many(request)
        if form.is_valid():
            data = form.cleaned_data
            account = None
            if request.user.is_authenticated and not request.user.is_staff:
                account = request.user.account
            try:
                booking = services.book(
                    meeting_type,
                    data["start"],
                    name=data["name"],
                    email=data["email"],
                    language=_language(),
                    tz=data["tz"],
                    message=data["message"],
                    lead=lead,
                    account=account,
                    actor=request.user if account else None,
                    ip=client_ip(request),
                )
            except services.BookingError as exc:
                error, status = str(exc), 409 if isinstance(exc, services.SlotTaken) else 400
            else:
                throttle.count(request, "lead")
                messages.success(
                    request, _("Your meeting is booked. The invitation is on its way by email.")
                )
                return redirect("booking:manage", token=booking.manage_token)
        else:
            status = 400
    with timezone.override(zone):
        return render(
            request,
            "booking/book.html",
            {
                "meeting_type": meeting_type,
                "name": meeting_type.text("name", _language()),
                "description": meeting_type.text("description", _language()),
                "lead": lead,
                "form": form,
                "error": error,
                "zone_name": zone_name,
                "zones": TIMEZONE_CHOICES,
                # A first visit without a zone asked for shows the browser's own (zone.js).
                "auto_zone": request.method == "GET" and not request.GET.get("tz"),
                "days": _week(meeting_type, zone_name, first),
                "nav": _week_nav(first),
                "picked": request.POST.get("start", ""),
            },
            status=status,
        )


def _booking_by_token(token: str) -> Booking:
    return get_object_or_404(
        Booking.objects.select_related("meeting_type", "host__user"), manage_token=token
    )


def manage(request: HttpRequest, token: str) -> HttpResponse:
    booking = _booking_by_token(token)
    zone_name = _visitor_zone(request, fallback=booking.attendee_timezone)
    zone = zoneinfo.ZoneInfo(zone_name)
    first = _first_day(request, zone)
    error, status = "", 200
    cancel_form = CancelForm(request.POST if request.POST.get("action") == "cancel" else None)
    move_form = RescheduleForm(request.POST if request.POST.get("action") == "reschedule" else None)
    if request.method == "POST":
        try:
            if request.POST.get("action") == "cancel":
                if not cancel_form.is_valid():
                    raise services.BookingError(_("Tick the box to confirm the cancellation."))
                services.cancel(booking, ip=client_ip(request))
                messages.success(
                    request, _("The meeting is cancelled. We have let both sides know.")
                )
                return redirect("booking:manage", token=token)
            if request.POST.get("action") == "reschedule":
                if not move_form.is_valid():
                    raise services.BookingError(_("Pick one of the offered times."))
                services.reschedule(booking, move_form.cleaned_data["start"], ip=client_ip(request))
                messages.success(
                    request, _("The meeting has a new time. A new invitation is on its way.")
                )
                return redirect("booking:manage", token=token)
            raise services.BookingError(_("Unknown action."))
        except services.BookingError as exc:
            error = str(exc)
            status = 409 if isinstance(exc, services.SlotTaken) else 400
            booking.refresh_from_db()
    changeable = services.can_change(booking)
    with timezone.override(zone):
        return render(
            request,
            "booking/manage.html",
            {
                "booking": booking,
                "name": booking.meeting_type.text("name", _language()),
                "changeable": changeable,
                "error": error,
                "zone_name": zone_name,
                "zones": TIMEZONE_CHOICES,
                "days": _week(booking.meeting_type, zone_name, first, exclude=booking)
                if changeable
                else [],
                "nav": _week_nav(first),
                "cancel_form": cancel_form,
            },
            status=status,
        )


def invite_ics(request: HttpRequest, token: str) -> HttpResponse:
    booking = _booking_by_token(token)
    response = HttpResponse(ical.invitation(booking), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="invite.ics"'
    return response


def feed(request: HttpRequest, token: str) -> HttpResponse:
    """The host's bookings as iCal, for their calendar to subscribe to: from 30 days back to
    the horizon; cancelled ones stay (STATUS:CANCELLED) so subscribers drop them."""
    host = get_object_or_404(Host.objects.select_related("user"), feed_token=token)
    since = timezone.now() - timedelta(days=30)
    bookings = (
        Booking.objects.filter(host=host, end__gte=since)
        .select_related("meeting_type", "host__user")
        .order_by("start")[:2000]
    )
    response = HttpResponse(ical.feed(host, bookings), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="bookings.ics"'
    response["Cache-Control"] = "private, max-age=300"
    return response


# -- the customer's own ---------------------------------------------------------------------------


@login_required
def my_bookings(request: HttpRequest) -> HttpResponse:
    account = request.user.account
    bookings = (
        Booking.objects.filter(account=account).select_related("meeting_type")
        if account
        else Booking.objects.none()
    )
    return render(
        request,
        "booking/mine.html",
        {"bookings": bookings.order_by("-start")[:200], "language": _language()},
    )


# -- staff ----------------------------------------------------------------------------------------


def _host(request: HttpRequest) -> Host:
    return services.host_for(request.user)


@staff_required
def host_bookings(request: HttpRequest) -> HttpResponse:
    host = _host(request)
    past = request.GET.get("past") == "1"
    now = timezone.now()
    bookings = Booking.objects.select_related("meeting_type", "host__user", "lead")
    if not request.user.is_superuser:  # the owner sees every host's bookings
        bookings = bookings.filter(host=host)
    bookings = (
        bookings.filter(end__lt=now).order_by("-start")
        if past
        else bookings.filter(end__gte=now).order_by("start")
    )
    with timezone.override(host.zone):
        return render(
            request,
            "booking/host/bookings.html",
            {"bookings": bookings[:300], "past": past, "host": host, "tab": "bookings"},
        )


@staff_required
@require_POST
def host_cancel(request: HttpRequest, pk) -> HttpResponse:
    bookings = Booking.objects.all()
    if not request.user.is_superuser:
        bookings = bookings.filter(host__user=request.user)
    booking = get_object_or_404(bookings, pk=pk)
    if request.POST.get("confirm") != "yes":
        messages.error(request, _("Tick the box to confirm the cancellation."))
        return redirect("booking:host")
    try:
        services.cancel(booking, by_host=True, actor=request.user, ip=client_ip(request))
    except services.BookingError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("The meeting is cancelled; the attendee gets the notice."))
    return redirect("booking:host")


@staff_required
def host_rules(request: HttpRequest) -> HttpResponse:
    host = _host(request)
    form = RulesForm(request.POST or None, instance=host)
    if request.method == "POST" and form.is_valid():
        try:
            services.save_rules(
                host,
                actor=request.user,
                fields=form.rule_fields(),
                weekly=form.weekly(),
                days_off=form.cleaned_data["days_off"],
            )
        except services.BookingError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Availability saved."))
            return redirect("booking:host_rules")
    elif request.method == "POST":
        host.refresh_from_db()
    weekdays = [form[f"day_{d}"] for d in range(7)]
    return render(
        request,
        "booking/host/rules.html",
        {
            "form": form,
            "weekdays": weekdays,
            "host": host,
            "tab": "rules",
        },
        status=400 if request.method == "POST" else 200,
    )


@staff_required
def host_types(request: HttpRequest) -> HttpResponse:
    host = _host(request)
    return render(
        request,
        "booking/host/types.html",
        {"types": host.meeting_types.all(), "host": host, "tab": "types"},
    )


@staff_required
def host_type_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    host = _host(request)
    meeting_type = (
        get_object_or_404(MeetingType, pk=pk, host=host) if pk else MeetingType(host=host)
    )
    form = MeetingTypeForm(request.POST or None, instance=meeting_type)
    if request.method == "POST" and form.is_valid():
        try:
            services.save_meeting_type(form.save(commit=False), actor=request.user)
        except services.BookingError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Meeting type saved."))
            return redirect("booking:host_types")
    return render(
        request,
        "booking/host/type_edit.html",
        {"form": form, "meeting_type": meeting_type, "tab": "types"},
        status=400 if request.method == "POST" else 200,
    )


@staff_required
def host_calendars(request: HttpRequest) -> HttpResponse:
    host = _host(request)
    form = CalendarForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.add_calendar(
                    host,
                    actor=request.user,
                    name=form.cleaned_data["name"],
                    url=form.cleaned_data["url"],
                )
            except services.BookingError as exc:
                form.add_error("url", str(exc))
            else:
                messages.success(request, _("Calendar added; it is read within a few minutes."))
                return redirect("booking:host_calendars")
        status = 400
    with timezone.override(host.zone):
        return render(
            request,
            "booking/host/calendars.html",
            {"form": form, "calendars": host.calendars.all(), "host": host, "tab": "calendars"},
            status=status,
        )


@staff_required
@require_POST
def host_calendar_action(request: HttpRequest, pk: int) -> HttpResponse:
    host = _host(request)
    calendar = get_object_or_404(ExternalCalendar, pk=pk, host=host)
    action = request.POST.get("action")
    if action == "remove":
        services.remove_calendar(calendar, actor=request.user)
        messages.success(request, _("Calendar removed; its busy times no longer count."))
    elif action == "refresh":
        if calendars.refresh(calendar):
            messages.success(request, _("Calendar read."))
        else:
            calendar.refresh_from_db()
            messages.error(
                request,
                _("The calendar could not be read: %(reason)s") % {"reason": calendar.last_error},
            )
    else:
        messages.error(request, _("Unknown action."))
    return redirect("booking:host_calendars")


@staff_required
def host_feed(request: HttpRequest) -> HttpResponse:
    host = _host(request)
    form = ConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.regenerate_feed_token(host, actor=request.user)
        messages.success(request, _("A new feed address is ready; update your calendar."))
        return redirect("booking:host_feed")
    url = request.build_absolute_uri(reverse("booking:feed", args=[host.feed_token]))
    return render(
        request,
        "booking/host/feed.html",
        {
            "form": form,
            "feed_url": url,
            "webcal_url": "webcal://" + url.split("://", 1)[1],
            "host": host,
            "tab": "feed",
        },
        status=400 if request.method == "POST" else 200,
    )
