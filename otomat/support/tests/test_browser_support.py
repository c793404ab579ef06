"""Headless Chromium: a customer types a ticket subject and sees the matching article and
their company's earlier ticket appear (HTMX), picks the instance and sees what the plan
includes, sends the ticket; staff answer it from the workload page."""

from __future__ import annotations

import pytest

from otomat.support import tickets
from otomat.support.models import Article, KbCategory, Ticket
from otomat.testing.browser import log_in, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_suggestions_while_typing_then_a_ticket_and_its_answer(
    browser_page, live_server, cast, department, sla_policy, installed
):
    from playwright.sync_api import expect

    instance = installed()
    category = KbCategory.objects.create(name="Start", slug="start")
    Article.objects.create(
        category=category,
        title="Bot does not answer after a restart",
        slug="silent",
        body="Check the token.",
        status=Article.Status.PUBLISHED,
    )
    tickets.open_ticket(
        account=cast.alice.account,
        requester=cast.alice,
        subject="Restart made the bot silent",
        body="?",
        instance=instance,
    )
    page = browser_page
    log_in(page, live_server.url, cast.bob.email, cast.password)
    page.goto(f"{live_server.url}/support/new/")
    page.get_by_label("About").select_option(label=instance.name)
    expect(page.get_by_text("0 of 3 used")).to_be_visible()
    page.get_by_label("Subject").press_sequentially("bot restart silent", delay=20)
    suggestions = page.locator("#suggestions")
    expect(suggestions.get_by_text("Bot does not answer after a restart")).to_be_visible()
    expect(suggestions.get_by_text("Restart made the bot silent")).to_be_visible()
    shot(page, "support-01-suggestions")
    page.get_by_label("What is it?").select_option("change")
    page.get_by_label("Message").fill("Please make the welcome text bold.")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("Ticket T-")).to_be_visible()
    ticket = Ticket.objects.get(requester=cast.bob)
    expect(page.get_by_text("1 of 3 used")).to_be_visible()
    shot(page, "support-02-ticket")

    page.context.clear_cookies()
    log_in(page, live_server.url, cast.staff.email, cast.password)
    page.goto(f"{live_server.url}/support/manage/")
    page.get_by_role("link", name=ticket.number).first.click()
    page.get_by_label("Reply", exact=True).fill("Done: the welcome text is bold now.")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_text("Waiting on the customer").first).to_be_visible()
    shot(page, "support-03-answered")
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.PENDING and ticket.first_response_at is not None


PHONE = {"width": 390, "height": 800}


def test_pages_fit_a_phone_screen(
    browser_page, live_server, cast, department, sla_policy, installed
):
    """Nothing makes the page wider than a phone's screen: wide tables scroll inside their card
    and the side panels drop below the form."""
    instance = installed()
    ticket = tickets.open_ticket(
        account=cast.alice.account,
        requester=cast.alice,
        subject="A long question about the monthly invoice and the plan",
        body="?",
        instance=instance,
    )
    page = browser_page
    page.set_viewport_size(PHONE)

    def overflow(path: str) -> int:
        page.goto(f"{live_server.url}{path}")
        return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")

    log_in(page, live_server.url, cast.alice.email, cast.password)
    customer_pages = [
        "/support/new/",
        f"/support/t/{ticket.number}/",
        "/support/",
        "/billing/",
        "/billing/invoices/",
        "/instances/",
    ]
    assert {path: overflow(path) for path in customer_pages} == dict.fromkeys(customer_pages, 0)
    shot(page, "phone-01-customer-instances")
    page.context.clear_cookies()
    log_in(page, live_server.url, cast.staff.email, cast.password)
    staff_pages = ["/support/manage/", f"/support/t/{ticket.number}/", "/billing/manage/"]
    assert {path: overflow(path) for path in staff_pages} == dict.fromkeys(staff_pages, 0)
    shot(page, "phone-02-billing-dashboard")
