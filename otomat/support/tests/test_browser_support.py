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
DESKTOP = {"width": 1200, "height": 900}

# The bounding box of the first row's cell in the column headed ``header`` of the first table
# that has such a column (None when there is none), found by the headers, not by data-label.
CELL_BOX = """header => {
  for (const table of document.querySelectorAll("main table")) {
    const names = Array.from(table.querySelectorAll("thead th"), th => th.textContent.trim());
    const column = names.indexOf(header);
    const row = table.querySelector("tbody tr");
    if (column < 0 || !row || !row.cells[column]) continue;
    const box = row.cells[column].getBoundingClientRect();
    return {left: box.left, right: box.right, width: box.width};
  }
  return null;
}"""

# What sticks out past the left edge (which makes no scroll bar, so scrollWidth misses it).
LEFT_OF_SCREEN = """Array.from(document.querySelectorAll("main *"))
  .filter(e => e.getBoundingClientRect().width > 0 && e.getBoundingClientRect().left < -1)
  .map(e => e.tagName + "." + e.className + " " + e.textContent.trim().slice(0, 30))"""


def _phone_pages(page, live_server, cast, ticket, instance, open_invoice):
    """(who, path, what must be on the screen: column headers and link/button names)."""
    return [
        (cast.alice, "/billing/", ["Due", "Status"], [f"Pay {open_invoice.number}"]),
        (cast.alice, "/billing/invoices/", ["Due", "Due now", "Status"], [open_invoice.number]),
        (cast.alice, f"/billing/invoices/{open_invoice.id}/", ["Amount"], ["PDF"]),
        (cast.alice, "/support/", [], [ticket.number]),
        (cast.alice, "/support/new/", [], []),
        (cast.alice, f"/support/t/{ticket.number}/", [], []),
        (cast.alice, "/instances/", [], [instance.name]),
        (cast.alice, f"/instances/{instance.id}/", [], []),
        (cast.alice, f"/catalog/{instance.version.product.slug}/", [], []),
        (cast.alice, "/accounts/members/", [], []),
        (cast.alice, "/accounts/audit/", [], []),
        (cast.owner, "/", [], []),
        (cast.owner, "/billing/manage/", [], []),
        (cast.owner, "/billing/manage/invoices/", ["Due", "Status"], [open_invoice.number]),
        (cast.owner, "/support/manage/", [], [ticket.number]),
        (cast.owner, f"/support/t/{ticket.number}/", [], []),
        (cast.owner, "/instances/manage/", [], [instance.name]),
        (cast.owner, f"/instances/{instance.id}/", [], []),
    ]


def test_pages_fit_a_phone_screen(
    browser_page, live_server, cast, department, sla_policy, installed, greeter, plan
):
    """Nothing makes the page wider than a phone's screen, and what a row is for stays on it:
    tables stack into labelled cards (the due date and the actions of the first invoice are
    within the screen's width), side panels drop below the form, and the main menu folds behind
    one "Menu" button so the owner's bar takes one row."""
    from playwright.sync_api import expect

    from otomat.billing.subscriptions import place_order
    from otomat.billing.tests.conftest import greeter_config

    instance = installed()
    _, open_invoice = place_order(
        account=cast.alice.account,
        version=greeter,
        plan=plan,
        name="Second bot",
        config=greeter_config(),
        actor=cast.alice,
    )
    ticket = tickets.open_ticket(
        account=cast.alice.account,
        requester=cast.alice,
        subject="A long question about the monthly invoice and the plan",
        body="?",
        instance=instance,
    )
    page = browser_page
    page.set_viewport_size(PHONE)
    width = PHONE["width"]
    problems: dict[str, object] = {}
    signed_in = None
    for user, path, columns, names in _phone_pages(
        page, live_server, cast, ticket, instance, open_invoice
    ):
        if user != signed_in:
            page.context.clear_cookies()
            log_in(page, live_server.url, user.email, cast.password)
            signed_in = user
        page.goto(f"{live_server.url}{path}")
        key = f"{user.email} {path}"
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        if overflow:
            problems[key] = f"{overflow}px wider than the screen"
        if page.evaluate(LEFT_OF_SCREEN):
            problems[f"{key} left"] = page.evaluate(LEFT_OF_SCREEN)
        for header in columns:
            box = page.evaluate(CELL_BOX, header)
            if box is None or box["width"] <= 0 or box["left"] < 0 or box["right"] > width:
                problems[f"{key} column {header!r}"] = box
        for name in names:
            target = page.locator("main").get_by_role("link", name=name)
            if not target.count():
                target = page.locator("main").get_by_role("button", name=name)
            box = target.first.bounding_box() if target.count() else None
            if box is None or box["x"] < 0 or box["x"] + box["width"] > width:
                problems[f"{key} {name!r}"] = box
        if path == "/" and user == cast.owner:
            bar = page.locator(".topbar").bounding_box()
            brand = page.locator(".topbar .brand").bounding_box()
            if bar["height"] > 2.5 * brand["height"]:
                problems[f"{key} menu bar height"] = bar["height"]
            shot(page, "phone-03-owner-overview")
        if path == "/billing/invoices/":
            shot(page, "phone-01-customer-invoices")
        if path == "/billing/manage/invoices/":
            shot(page, "phone-02-staff-invoices")
        if path.startswith(("/catalog/", "/accounts/")):
            shot(page, "phone-05" + path.replace("/", "-").rstrip("-"))
    assert problems == {}

    # The owner's menu: one button, then the links, and Escape folds them again.
    page.goto(f"{live_server.url}/")
    menu = page.get_by_role("button", name="Menu")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_role("link", name="Audit log")).to_be_hidden()
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_role("link", name="Audit log")).to_be_visible()
    shot(page, "phone-04-owner-menu-open")
    page.keyboard.press("Escape")
    expect(page.get_by_role("link", name="Audit log")).to_be_hidden()
    expect(menu).to_be_focused()


@pytest.mark.parametrize("language", ["id", "pl"])
def test_pages_fit_a_phone_screen_in_indonesian_and_polish(
    browser_page, live_server, cast, department, sla_policy, installed, language
):
    """Longer words do not widen the pages either; on a desktop the menu stays in the bar and
    the tables stay tables. The customer's path (catalog, install and order form, invoices,
    ticket, instance) and the owner's, with screenshots at both widths."""
    instance = installed()
    ticket = tickets.open_ticket(
        account=cast.alice.account, requester=cast.alice, subject="Pertanyaan", body="?"
    )
    invoice = cast.alice.account.invoices.order_by("id").first()
    for user in (cast.alice, cast.owner):
        user.language = language
        user.save(update_fields=["language"])
    page = browser_page
    pages = {
        cast.alice: ["/catalog/", f"/instances/install/{instance.version.product.slug}/",
                     "/billing/", "/billing/invoices/", f"/billing/invoices/{invoice.id}/",
                     "/support/", f"/support/t/{ticket.number}/", "/instances/",
                     f"/instances/{instance.id}/"],
        cast.owner: ["/", "/billing/manage/invoices/", "/support/manage/", "/instances/manage/",
                     f"/support/t/{ticket.number}/"],
    }  # fmt: skip
    overflow = {}
    for user, paths in pages.items():
        page.context.clear_cookies()
        log_in(page, live_server.url, user.email, cast.password)
        for path in paths:
            page.set_viewport_size(PHONE)
            page.goto(f"{live_server.url}{path}")
            overflow[path] = (
                page.evaluate("document.documentElement.scrollWidth - window.innerWidth"),
                page.evaluate(LEFT_OF_SCREEN),
            )
            name = ("owner-" if user.is_staff else "customer-") + (
                path.strip("/").replace("/", "-") or "home"
            )
            shot(page, f"phone-{language}-{name}")
            page.set_viewport_size(DESKTOP)
            assert not page.locator(".nav-toggle").is_visible()
            assert (
                page.locator("main table thead").first.is_visible()
                or not page.locator("main table thead").count()
            )
            shot(page, f"desktop-{language}-{name}")
    assert overflow == dict.fromkeys(overflow, (0, []))
