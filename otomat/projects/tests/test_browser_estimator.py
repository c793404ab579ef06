"""Headless Chromium: a visitor picks options on "Estimate your project" and sees the range
change at once (HTMX), is told when an option needs another, leaves their contact and lands on
their estimate's page, while the owner's notice is queued; the owner opens the lead and moves
it on. In English at a desktop width and in
Polish at a phone's."""

from __future__ import annotations

import pytest

from otomat.notify.models import Notification
from otomat.projects.models import Lead
from otomat.testing.browser import log_in, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_an_english_visitor_estimates_and_sends(browser_page, live_server, cast, options):
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{live_server.url}/projects/estimate/")
    weeks, cost = page.get_by_test_id("estimate-weeks"), page.get_by_test_id("estimate-cost")
    expect(weeks).to_have_text("1–2 weeks")
    expect(cost).to_have_text("PLN\xa03,000–5,000")
    page.get_by_label("Online payments").check()
    expect(page.get_by_role("alert")).to_have_text(
        "“Online payments” needs “Online shop”: pick it too."
    )
    page.get_by_label("Online shop").check()
    expect(weeks).to_have_text("5–8.5 weeks")
    expect(cost).to_have_text("PLN\xa018,000–30,000")
    page.get_by_label("Extra languages").fill("2")
    page.get_by_label("Extra languages").press("Tab")
    expect(weeks).to_have_text("6–10.5 weeks")
    expect(cost).to_have_text("PLN\xa021,000–36,000")
    shot(page, "projects-estimator-en-desktop")

    page.get_by_label("Your name").fill("Jane Doe")
    page.get_by_label("Email").fill("jane@example.com")
    page.get_by_role("button", name="Send my estimate").click()
    expect(page.get_by_role("heading", name="Your estimate")).to_be_visible()
    expect(page.get_by_text("Thank you: we have your estimate")).to_be_visible()
    expect(page.get_by_text("6–10.5 weeks, PLN\xa021,000–36,000")).to_be_visible()
    shot(page, "projects-estimate-en-desktop")
    lead = Lead.objects.get()
    assert lead.source == "estimator" and lead.estimates.get().weeks_max == 10.5
    assert lead.timezone != ""  # the browser's zone, or UTC
    assert Notification.objects.filter(user=cast.owner, kind="projects/lead_received").exists()

    # The owner opens the lead from the list, moves it on and leaves a note.
    log_in(page, live_server.url, cast.owner.email, cast.password)
    page.goto(f"{live_server.url}/projects/manage/leads/")
    page.get_by_role("link", name="Jane Doe").click()
    expect(page.get_by_text("6–10.5 weeks, PLN\xa021,000–36,000")).to_be_visible()
    page.get_by_label("Status").select_option("contacted")
    page.get_by_role("button", name="Change the status").click()
    expect(page.get_by_text("status New → Contacted")).to_be_visible()
    page.get_by_label("Note").fill("Sent the booking link.")
    page.get_by_role("button", name="Add the note").click()
    expect(page.get_by_text("Sent the booking link.")).to_be_visible()
    shot(page, "projects-lead-en-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "projects-lead-en-phone")


def test_a_polish_visitor_on_a_phone(browser_page, live_server, cast, options):
    from playwright.sync_api import expect

    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.set_extra_http_headers({"Accept-Language": "pl"})
    page.goto(f"{live_server.url}/projects/estimate/")
    expect(page.get_by_role("heading", name="Wyceń swój projekt")).to_be_visible()
    page.get_by_label("Sklep internetowy").check()
    page.get_by_label("Integracja z Allegro").check()
    weeks, cost = page.get_by_test_id("estimate-weeks"), page.get_by_test_id("estimate-cost")
    expect(weeks).to_have_text("6–11 tygodni")
    expect(cost).to_have_text("23\xa0000–40\xa0000\xa0zł")
    # nothing is wider than the phone's screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "projects-estimator-pl-phone")
    page.get_by_label("Imię i nazwisko").fill("Marta Nowak")
    page.get_by_label("E-mail").fill("marta@example.pl")
    page.get_by_role("button", name="Wyślij moją wycenę").click()
    expect(page.get_by_role("heading", name="Twoja wycena")).to_be_visible()
    expect(page.get_by_text("Mamy je, Marta Nowak")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "projects-estimate-pl-phone")
    assert Lead.objects.get().language == "pl"
