"""The booking pages: a visitor books from the public page (and from a lead's private link,
prefilled) in their own zone, manages the booking by its link, the host runs their rules,
meeting types, calendars and feed; bad input gets a clear error and changes nothing, and
nobody sees another's bookings."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
import time_machine

from otomat.accounts.models import AuditEvent
from otomat.projects.booking import services
from otomat.projects.booking.models import Booking, ExternalCalendar, Host, MeetingType
from otomat.projects.models import Lead

WARSAW = ZoneInfo("Europe/Warsaw")
MONDAY = date(2027, 1, 11)
NOW = datetime(2027, 1, 8, 10, tzinfo=UTC)  # the Friday before


def at(hour, minute=0, day=MONDAY):
    return datetime.combine(day, time(hour, minute), tzinfo=WARSAW).astimezone(UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture(autouse=True)
def no_throttle(settings):
    settings.PROJECTS_LEADS_PER_HOUR = 0


def post_booking(client, call, when, **data):
    form = {
        "start": when.isoformat(),
        "name": "Ann",
        "email": "ann@example.com",
        "tz": "Asia/Jakarta",
        **data,
    }
    return client.post(f"/projects/booking/t/{call.slug}/?from=2027-01-11", form)


def test_the_public_page_shows_slots_in_the_visitors_zone(client, call):
    page = client.get("/projects/booking/t/project-call/?tz=Asia/Jakarta&from=2027-01-11")
    html = page.content.decode()
    assert page.status_code == 200
    # 09:00 in Warsaw (UTC+1) is 15:00 in Jakarta (UTC+7), named WIB.
    assert "15:00" in html and "WIB" in html
    assert at(9).isoformat() in html
    assert client.get("/projects/booking/t/project-call/?tz=Nowhere/Land").status_code == 200
    assert client.get("/projects/booking/t/no-such-type/").status_code == 404


def test_the_page_is_translated(client, call):
    client.cookies["django_language"] = "pl"
    html = client.get(
        "/projects/booking/t/project-call/?from=2027-01-11", HTTP_ACCEPT_LANGUAGE="pl"
    ).content.decode()
    assert "Rozmowa o projekcie" in html


def test_a_visitor_books_and_lands_on_the_manage_page(client, call):
    response = post_booking(client, call, at(10))
    booking = Booking.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/projects/booking/manage/{booking.manage_token}/"
    assert booking.attendee_timezone == "Asia/Jakarta"
    assert booking.lead.source == Lead.Source.BOOKING
    page = client.get(response["Location"]).content.decode()
    assert "WIB" in page and "invite.ics" in page


def test_the_leads_private_link_prefills_and_ties_the_lead(client, call):
    lead = Lead.objects.create(
        name="Ola Kowalska", email="ola@example.com", source="estimator", timezone="Europe/Warsaw"
    )
    response = client.get(f"/projects/booking/lead/{lead.token}/")
    assert response.status_code == 302 and f"lead={lead.token}" in response["Location"]
    page = client.get(response["Location"]).content.decode()
    assert "Ola Kowalska" in page and "ola@example.com" in page
    post = client.post(
        f"/projects/booking/t/{call.slug}/",
        {
            "start": at(11).isoformat(),
            "name": "Ola Kowalska",
            "email": "ola@example.com",
            "tz": "Europe/Warsaw",
            "lead": lead.token,
        },
    )
    assert post.status_code == 302
    lead.refresh_from_db()
    assert lead.status == Lead.Status.MEETING and Booking.objects.get().lead == lead
    assert client.get("/projects/booking/lead/not-a-token/").status_code == 404
    assert client.get(f"/projects/booking/t/{call.slug}/?lead=bogus").status_code == 404


@pytest.mark.parametrize(
    "data, status, text",
    [
        ({"name": ""}, 400, ""),
        ({"email": "nope"}, 400, ""),
        ({"start": "2027-01-11T10:10:00+00:00"}, 409, "no longer free"),
        ({"start": "2027-01-11T10:00:00"}, 400, "offered times"),
        ({"start": "yesterday"}, 400, ""),
        ({"tz": "Mars/Base"}, 400, ""),
        ({"name": "A\x00B"}, 400, "characters"),
    ],
)
def test_bad_booking_input_changes_nothing(client, call, data, status, text):
    response = post_booking(client, call, at(10), **data)
    assert response.status_code == status
    assert text in response.content.decode()
    assert Booking.objects.count() == 0 and Lead.objects.count() == 0


def test_a_taken_slot_is_a_clear_conflict(client, call):
    post_booking(client, call, at(10))
    response = post_booking(client, call, at(10), email="bob@example.com")
    assert response.status_code == 409 and "no longer free" in response.content.decode()
    assert Booking.objects.count() == 1


def test_manage_reschedule_and_cancel_by_link(client, call):
    booking = services.book(call, at(10), name="Ann", email="ann@example.com", tz="Europe/Warsaw")
    url = f"/projects/booking/manage/{booking.manage_token}/"
    page = client.get(url).content.decode()
    assert "Reschedule" in page and "24" in page
    bad = client.post(url, {"action": "reschedule", "start": "nonsense"})
    assert bad.status_code == 400
    moved = client.post(url, {"action": "reschedule", "start": at(14).isoformat()})
    assert moved.status_code == 302
    booking.refresh_from_db()
    assert booking.start == at(14) and booking.sequence == 1
    unconfirmed = client.post(url, {"action": "cancel"})
    assert unconfirmed.status_code == 400 and "confirm" in unconfirmed.content.decode()
    booking.refresh_from_db()
    assert booking.status == "confirmed"
    assert client.post(url, {"action": "explode"}).status_code == 400
    assert client.post(url, {"action": "cancel", "confirm": "on"}).status_code == 302
    booking.refresh_from_db()
    assert booking.status == "cancelled"
    assert "Cancelled" in client.get(url).content.decode()
    assert client.get("/projects/booking/manage/wrong-token/").status_code == 404


def test_past_the_cutoff_the_page_explains_and_refuses(client, call):
    booking = services.book(call, at(10), name="Ann", email="ann@example.com", tz="Europe/Warsaw")
    url = f"/projects/booking/manage/{booking.manage_token}/"
    with time_machine.travel(at(10) - timedelta(hours=3), tick=False):
        page = client.get(url).content.decode()
        assert "Changes by link end 24 hours before the meeting" in page
        response = client.post(url, {"action": "cancel", "confirm": "on"})
        assert response.status_code == 400 and "24 hours" in response.content.decode()
    booking.refresh_from_db()
    assert booking.status == "confirmed"


def test_the_invitation_download(client, call):
    booking = services.book(call, at(10), name="Ann", email="ann@example.com", tz="Europe/Warsaw")
    response = client.get(f"/projects/booking/manage/{booking.manage_token}/invite.ics")
    assert response["Content-Type"].startswith("text/calendar")
    event = next(iter(icalendar.Calendar.from_ical(response.content).walk("VEVENT")))
    assert str(event["UID"]) == booking.uid and event.decoded("DTSTART") == at(10)


def test_the_feed_round_trips_and_its_secret_can_be_replaced(client, call, cast):
    first = services.book(call, at(10), name="Ann", email="ann@example.com", tz="Europe/Warsaw")
    second = services.book(call, at(13), name="Bob", email="bob@example.com", tz="Asia/Jakarta")
    services.reschedule(second, at(15), now=NOW)
    gone = services.book(
        call, at(11, 30, MONDAY + timedelta(days=1)), name="Cy", email="cy@example.com", tz="UTC"
    )
    services.cancel(gone, now=NOW)
    host = Host.objects.get()
    url = f"/projects/booking/feed/{host.feed_token}.ics"
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    parsed = icalendar.Calendar.from_ical(response.content)
    events = {str(e["UID"]): e for e in parsed.walk("VEVENT")}
    second.refresh_from_db()
    assert set(events) == {first.uid, second.uid, gone.uid}
    for booking in (first, second):
        e = events[booking.uid]
        assert e.decoded("DTSTART") == booking.start and e.decoded("DTEND") == booking.end
        assert int(e["SEQUENCE"]) == booking.sequence
        assert str(e["STATUS"]) == "CONFIRMED"
    assert str(events[gone.uid]["STATUS"]) == "CANCELLED"
    # Written again by icalendar, read again: the same calendar.
    again = icalendar.Calendar.from_ical(parsed.to_ical())
    assert [str(e["UID"]) for e in again.walk("VEVENT")] == [
        str(e["UID"]) for e in parsed.walk("VEVENT")
    ]
    # Our own feed read back as an external calendar blocks nothing twice (own UIDs skipped).
    from otomat.projects.booking import ical

    assert (
        ical.busy_times(response.content, zone=WARSAW, window=(NOW, NOW + timedelta(days=30))) == []
    )
    # Regenerate: the host must confirm; then the old address is gone.
    client.force_login(cast.owner)
    assert client.post("/projects/booking/host/feed/", {}).status_code == 400
    assert client.get(url).status_code == 200
    assert client.post("/projects/booking/host/feed/", {"confirm": "on"}).status_code == 302
    assert client.get(url).status_code == 404
    host.refresh_from_db()
    assert client.get(f"/projects/booking/feed/{host.feed_token}.ics").status_code == 200
    assert AuditEvent.objects.filter(action="booking.feed_regenerated").count() == 1


def test_the_host_pages(client, call, cast):
    client.force_login(cast.owner)
    for url in [
        "/projects/booking/host/",
        "/projects/booking/host/availability/",
        "/projects/booking/host/types/",
        "/projects/booking/host/types/new/",
        "/projects/booking/host/calendars/",
        "/projects/booking/host/feed/",
        f"/projects/booking/host/types/{call.pk}/",
    ]:
        assert client.get(url).status_code == 200, url


def test_the_host_saves_rules_with_clear_errors(client, call, cast):
    client.force_login(cast.owner)
    form = {
        "timezone": "Europe/Warsaw",
        "buffer_before_minutes": 0,
        "buffer_after_minutes": 10,
        "min_notice_minutes": 60,
        "max_per_day": 3,
        "horizon_days": 30,
        "holiday_country": "pl",
        "day_0": "09:00-12:00, 13:00-17:00",
        "day_4": "10:00-14:00",
        "days_off": "2027-01-12 Dentist",
    }
    assert client.post("/projects/booking/host/availability/", form).status_code == 302
    host = Host.objects.get()
    assert host.max_per_day == 3 and host.holiday_country == "PL"
    assert services.format_intervals(host, 0) == "09:00-12:00, 13:00-17:00"
    assert services.format_intervals(host, 1) == ""
    assert host.days_off.get().reason == "Dentist"
    for bad, text in [
        ({"day_1": "17:00-09:00"}, "ends before it starts"),
        ({"day_2": "9-5"}, "not an interval"),
        ({"day_2": "09:00-12:00, 11:00-13:00"}, "overlap"),
        ({"day_3": "25:00-26:00"}, "not a time of day"),
        ({"days_off": "tomorrow"}, "Line 1"),
        ({"timezone": "Mars/Base"}, ""),
        ({"holiday_country": "XX"}, "No public holidays"),
        ({"buffer_after_minutes": -5}, ""),
        ({"horizon_days": 0}, ""),
    ]:
        response = client.post("/projects/booking/host/availability/", {**form, **bad})
        assert response.status_code == 400, bad
        assert text in response.content.decode(), bad
    host.refresh_from_db()
    assert host.max_per_day == 3 and services.format_intervals(host, 1) == ""
    assert AuditEvent.objects.filter(action="booking.rules_saved").count() == 1


def test_the_host_edits_meeting_types(client, host, cast):
    client.force_login(cast.owner)
    form = {
        "name": "Intro call",
        "slug": "intro",
        "duration_minutes": 30,
        "slot_step_minutes": 15,
        "video_link_template": "https://meet.example.com/{token}",
        "cutoff_hours": 12,
        "is_active": "on",
        "name_pl": "Rozmowa wstępna",
        "name_id": "Obrolan perkenalan",
    }
    assert client.post("/projects/booking/host/types/new/", form).status_code == 302
    made = MeetingType.objects.get(slug="intro")
    assert made.host == host and made.text("name", "pl") == "Rozmowa wstępna"
    for bad in [
        {"video_link_template": "javascript:alert(1)"},
        {"video_link_template": "https://x.example/{room}"},
        {"duration_minutes": 0},
        {"slug": "not a slug"},
        {"name": ""},
        {"slug": "intro-x", "slot_step_minutes": 100000},
    ]:
        response = client.post(
            "/projects/booking/host/types/new/", {**form, "slug": "other", **bad}
        )
        assert response.status_code == 400, bad
    assert MeetingType.objects.count() == 1
    assert client.post("/projects/booking/host/types/new/", form).status_code == 400  # slug taken


def test_the_host_adds_calendars_with_clear_errors(client, host, cast):
    client.force_login(cast.owner)
    assert (
        client.post(
            "/projects/booking/host/calendars/",
            {"name": "Google", "url": "webcal://calendar.example.com/x.ics"},
        ).status_code
        == 302
    )
    assert ExternalCalendar.objects.get().url == "https://calendar.example.com/x.ics"
    for bad in [
        {"name": "", "url": "https://x.example/a.ics"},
        {"name": "X", "url": "file:///etc/passwd"},
        {"name": "X", "url": "ftp://x/y"},
    ]:
        assert client.post("/projects/booking/host/calendars/", bad).status_code == 400
    assert ExternalCalendar.objects.count() == 1
    audit = AuditEvent.objects.get(action="booking.calendar_added")
    assert "calendar.example.com" not in str(audit.data)  # the secret URL is not in the log


def test_customers_and_outsiders_see_only_their_own(client, call, cast):
    alices = services.book(
        call, at(10), name="Alice", email="alice@example.com", tz="UTC", account=cast.alice.account
    )
    charlies = services.book(
        call,
        at(12),
        name="Charlie",
        email="charlie@example.com",
        tz="UTC",
        account=cast.charlie.account,
    )
    client.force_login(cast.charlie)
    page = client.get("/projects/booking/mine/").content.decode()
    assert charlies.manage_token in page and alices.manage_token not in page
    for url in [
        "/projects/booking/host/",
        "/projects/booking/host/availability/",
        "/projects/booking/host/feed/",
    ]:
        assert client.get(url).status_code == 404
    assert (
        client.post(
            f"/projects/booking/host/bookings/{alices.pk}/cancel/", {"confirm": "yes"}
        ).status_code
        == 404
    )
    client.force_login(cast.bob)  # alice's teammate
    assert alices.manage_token in client.get("/projects/booking/mine/").content.decode()


def test_staff_hosts_see_their_own_bookings_the_owner_all(client, call, cast):
    booking = services.book(call, at(10), name="Ann", email="ann@example.com", tz="UTC")
    client.force_login(cast.staff)
    assert "ann@example.com" not in client.get("/projects/booking/host/").content.decode()
    assert (
        client.post(
            f"/projects/booking/host/bookings/{booking.pk}/cancel/", {"confirm": "yes"}
        ).status_code
        == 404
    )
    client.force_login(cast.owner)
    assert "ann@example.com" in client.get("/projects/booking/host/").content.decode()
    client.post(f"/projects/booking/host/bookings/{booking.pk}/cancel/", {})
    booking.refresh_from_db()
    assert booking.status == "confirmed"  # not confirmed: nothing happens
    client.post(f"/projects/booking/host/bookings/{booking.pk}/cancel/", {"confirm": "yes"})
    booking.refresh_from_db()
    assert booking.status == "cancelled"
