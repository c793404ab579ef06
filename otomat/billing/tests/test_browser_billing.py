"""Headless Chromium: a customer orders a subscription, pays on the (fake) Midtrans page, comes
back to Otomat and watches the payment arrive; the owner sees it on the billing dashboard."""

from __future__ import annotations

import pytest

from otomat.billing.gateways.fakes.midtrans import FakeMidtrans
from otomat.billing.models import Invoice, Subscription
from otomat.billing.tests.conftest import GREETER_CONFIG, enable_gateway
from otomat.catalog.checks import CHECKS
from otomat.testing.browser import log_in, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_customer_pays_through_the_gateway_page(
    browser_page,
    live_server,
    cast,
    plan,
    settings,
    monkeypatch,
):
    from playwright.sync_api import expect

    monkeypatch.setitem(CHECKS, "telegram_token", lambda value: "@greeter_bot")
    settings.BASE_URL = live_server.url
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    fake = FakeMidtrans().start()
    try:
        enable_gateway("midtrans", fake)
        page = browser_page
        log_in(page, live_server.url, cast.alice.email, cast.password)
        page.goto(f"{live_server.url}/instances/install/greeter/")
        page.get_by_label("Bot token").fill(GREETER_CONFIG["bot_token"])
        page.get_by_label("Basic").check()
        shot(page, "billing-01-order")
        page.get_by_role("button", name="Order").click()
        expect(page.get_by_role("heading", name="Invoice INV/")).to_be_visible()
        shot(page, "billing-02-pay")
        page.get_by_role("button", name="Pay with Midtrans").click()
        expect(page.get_by_text("A local test payment page")).to_be_visible()
        page.get_by_role("button", name="Pay").click()
        expect(page.get_by_text("Payment received. Thank you!")).to_be_visible(timeout=15_000)
        shot(page, "billing-03-paid")
        invoice = Invoice.objects.get()
        assert invoice.status == Invoice.Status.PAID
        assert Subscription.objects.get().status == Subscription.Status.ACTIVE

        page.context.clear_cookies()
        log_in(page, live_server.url, cast.owner.email, cast.password)
        page.goto(f"{live_server.url}/billing/manage/")
        expect(page.get_by_role("heading", name="Billing", exact=True)).to_be_visible()
        expect(page.get_by_text(f"received by midtrans for {invoice.number}")).to_be_visible()
        shot(page, "billing-04-dashboard")
    finally:
        fake.close()
