"""Headless Chromium at phone width: the client opens their board (the columns fold into one),
sees whose move each card is, answers a card waiting on them (HTMX, the move comes back to us)
and accepts the card on staging; the owner reads the workshop review."""

from __future__ import annotations

import pytest

from otomat.projects.board import services
from otomat.testing.browser import log_in, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_client_works_the_board_on_a_phone(
    browser_page, live_server, project, on_staging, cast
):
    from playwright.sync_api import expect

    question = services.add_card(project, title="Online payments", actor=cast.staff)
    services.set_status(question, "waiting_client", actor=cast.staff)
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url, cast.alice.email, cast.password)
    page.goto(f"{live_server.url}/projects/board/{project.pk}/")
    expect(page.get_by_role("heading", name="Cottage booking site")).to_be_visible()
    expect(page.get_by_text("0 of 2 used")).to_be_visible()
    # One column at phone width: the cards stack, nothing is cut off sideways.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, width
    shot(page, "board-01-phone")

    page.get_by_role("link", name="Online payments").click()
    page.get_by_label("Your answer").fill("We signed with the operator yesterday.")
    page.get_by_role("button", name="Send").click()
    expect(
        page.locator("#events").get_by_text("We signed with the operator yesterday.")
    ).to_be_visible()
    question.refresh_from_db()
    assert question.whose_move == "us"
    shot(page, "board-02-answered")

    page.goto(f"{live_server.url}/projects/board/cards/{on_staging.pk}/")
    page.get_by_role("button", name="Accept").click()
    expect(page.get_by_text("Accepted. We will schedule its release.")).to_be_visible()
    on_staging.refresh_from_db()
    assert on_staging.status == "accepted"

    page.context.clear_cookies()
    page.set_viewport_size({"width": 1200, "height": 900})
    log_in(page, live_server.url, cast.staff.email, cast.password)
    page.goto(f"{live_server.url}/projects/board/workshop/")
    expect(page.get_by_text("0 on them · 2 on us · 0 blocked")).to_be_visible()
    shot(page, "board-03-workshop")
