"""Headless Chromium: a visitor picks a free time in their zone (Jakarta, WIB), books, lands on
the manage page and cancels (screenshots under $OTOMAT_SCREENSHOTS)."""

from __future__ import annotations

import pytest

from otomat.projects.booking.models import Booking
from otomat.testing.browser import shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_visitor_books_and_cancels(browser_page, live_server, call, settings):
    settings.PROJECTS_LEADS_PER_HOUR = 0
    page = browser_page
    page.goto(f"{live_server.url}/projects/booking/t/{call.slug}/?tz=Asia/Jakarta")
    page.get_by_text("All times in WIB").wait_for()
    shot(page, "booking-1-slots")
    page.get_by_role("link", name="Later →").click()  # next week: well before the cut-off
    page.get_by_text("All times in WIB").wait_for()
    page.locator(".slot label").first.click()
    page.get_by_label("Your name").fill("Sari Wulandari")
    page.get_by_label("Your email").fill("sari@example.com")
    shot(page, "booking-2-form")
    page.get_by_role("button", name="Book this time").click()
    page.get_by_text("Your meeting is booked").wait_for()
    assert "WIB" in page.content()
    shot(page, "booking-3-manage")
    booking = Booking.objects.get()
    assert (
        booking.attendee_email == "sari@example.com" and booking.attendee_timezone == "Asia/Jakarta"
    )
    page.get_by_label("Yes, cancel this meeting").check()
    page.get_by_role("button", name="Cancel the meeting").click()
    page.get_by_text("The meeting is cancelled").wait_for()
    shot(page, "booking-4-cancelled")
    booking.refresh_from_db()
    assert booking.status == "cancelled"
