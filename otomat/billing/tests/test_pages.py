"""The billing pages as customers and staff use them: ordering through the install form, paying,
proofs, plan changes and cancellation; isolation between accounts; staff configuration that
never shows a stored secret; bad input changes nothing."""

from __future__ import annotations

import io

import pytest
import time_machine
from django.urls import reverse

from otomat.billing.models import (
    BillingAction,
    Coupon,
    GatewayConfig,
    Invoice,
    Payment,
    Plan,
    Subscription,
    TransferProof,
)
from otomat.billing.tests.conftest import GREETER_CONFIG, T0, pay
from otomat.catalog.checks import CHECKS
from otomat.instances.models import Instance
from otomat.testing.forms import greeter_install_form

pytestmark = pytest.mark.smoke

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def install_form(chosen, **extra):
    return greeter_install_form(GREETER_CONFIG["bot_token"], **{"plan": str(chosen.pk), **extra})


def test_ordering_through_the_install_form_leads_to_payment(client, cast, plan, monkeypatch):
    monkeypatch.setitem(CHECKS, "telegram_token", lambda value: "@greeter_bot")
    client.force_login(cast.alice)
    page = client.get(reverse("instances:install", args=["greeter"])).content.decode()
    assert "Basic" in page and 'name="plan"' in page and 'name="coupon"' in page
    response = client.post(reverse("instances:install", args=["greeter"]), install_form(plan))
    assert response.status_code == 302, response.content.decode()[:3000]
    invoice = Invoice.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("billing:pay", args=[invoice.token])
    instance = Instance.objects.get()
    assert instance.state == "pending" and instance.desired == "stopped"
    # The customer cannot start it before paying.
    client.post(reverse("instances:action", args=[instance.id, "start"]))
    instance.refresh_from_db()
    assert instance.state == "pending"
    detail = client.get(reverse("instances:detail", args=[instance.id])).content.decode()
    assert invoice.number in detail and "starts as soon as its order is paid" in detail


def test_install_refuses_a_bad_coupon_and_stores_nothing(client, cast, plan, monkeypatch):
    monkeypatch.setitem(CHECKS, "telegram_token", lambda value: "@greeter_bot")
    client.force_login(cast.alice)
    response = client.post(
        reverse("instances:install", args=["greeter"]), install_form(plan, coupon="NOPE")
    )
    assert response.status_code == 400
    assert "This coupon code is not valid." in response.content.decode()
    assert not Instance.objects.exists() and not Invoice.objects.exists()
    response = client.post(
        reverse("instances:install", args=["greeter"]), install_form(plan, **{"plan": "999"})
    )
    assert response.status_code == 400 and "Choose a plan." in response.content.decode()
    assert not Instance.objects.exists()


def test_a_full_coupon_starts_the_bot_without_payment(client, cast, plan, monkeypatch):
    monkeypatch.setitem(CHECKS, "telegram_token", lambda value: "@greeter_bot")
    coupon = Coupon.objects.create(code="FREE100", percent_off=100, max_redemptions=1)
    plan.setup_fee_minor = 0
    plan.save()
    client.force_login(cast.alice)
    response = client.post(
        reverse("instances:install", args=["greeter"]), install_form(plan, coupon="free100")
    )
    instance = Instance.objects.get()
    assert response["Location"] == reverse("instances:detail", args=[instance.id])
    assert instance.state == "provisioning"
    assert Invoice.objects.get().status == Invoice.Status.PAID
    coupon.refresh_from_db()
    assert coupon.times_redeemed == 1
    again = client.post(
        reverse("instances:install", args=["greeter"]), install_form(plan, coupon="FREE100")
    )
    assert "used up" in again.content.decode()


def test_customers_see_only_their_own_invoices(client, cast, order, plan):
    _instance, alice_invoice = order()
    _other, charlie_invoice = order(user=cast.charlie, name="Charlie's bot")
    client.force_login(cast.charlie)
    for name, args in [
        ("billing:invoice", [alice_invoice.id]),
        ("billing:invoice_pdf", [alice_invoice.id]),
        ("billing:upload_proof", [alice_invoice.id]),
        ("billing:change_plan", [alice_invoice.subscription_id]),
        ("billing:cancel", [alice_invoice.subscription_id]),
    ]:
        method = client.post if name in ("billing:upload_proof", "billing:cancel") else client.get
        assert method(reverse(name, args=args)).status_code == 404, name
    listing = client.get(reverse("billing:invoices")).content.decode()
    assert charlie_invoice.number in listing and alice_invoice.number not in listing
    overview = client.get(reverse("billing:overview")).content.decode()
    assert alice_invoice.number not in overview
    assert Subscription.objects.get(account=cast.alice.account).status == "pending"
    # Bob, Alice's teammate, sees Alice's account's invoices.
    client.force_login(cast.bob)
    assert client.get(reverse("billing:invoice", args=[alice_invoice.id])).status_code == 200
    # Staff pages are invisible to customers.
    for name in (
        "billing:dashboard",
        "billing:actions",
        "billing:manage_invoices",
        "billing:proofs",
    ):
        assert client.get(reverse(name)).status_code == 404


def test_the_payment_link_works_without_logging_in_and_guesses_fail(client, cast, order):
    _instance, invoice = order()
    page = client.get(reverse("billing:pay", args=[invoice.token]))
    assert page.status_code == 200 and invoice.number in page.content.decode()
    assert client.get(reverse("billing:pay", args=["not-a-token"])).status_code == 404
    # Logged in to another customer account: not found, like every other foreign object.
    client.force_login(cast.charlie)
    assert client.get(reverse("billing:pay", args=[invoice.token])).status_code == 404
    assert (
        client.post(reverse("billing:pay", args=[invoice.token]), {"method": "x"}).status_code
        == 404
    )
    assert client.get(reverse("billing:pay_return", args=[invoice.token])).status_code == 404
    client.force_login(cast.bob)  # Alice's teammate
    assert client.get(reverse("billing:pay", args=[invoice.token])).status_code == 200
    client.logout()
    # An unknown method is refused with a message, nothing is created.
    response = client.post(reverse("billing:pay", args=[invoice.token]), {"method": "bitcoin"})
    assert response.status_code == 200
    assert "not available" in response.content.decode()


def test_a_transfer_proof_is_checked_reviewed_and_paid_once(
    client, cast, order, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path / "media"
    _instance, invoice = order()
    client.force_login(cast.alice)
    url = reverse("billing:upload_proof", args=[invoice.id])
    bad = io.BytesIO(b"<script>alert(1)</script>")
    bad.name = "proof.png"
    response = client.post(url, {"amount": "200000", "file": bad})
    assert response.status_code == 400 and "must be a PDF, PNG or JPEG" in response.content.decode()
    assert not TransferProof.objects.exists()
    junk = io.BytesIO(PNG)
    junk.name = "proof.png"
    response = client.post(url, {"amount": "12.5.3", "file": junk})
    assert response.status_code == 400 and not TransferProof.objects.exists()
    good = io.BytesIO(PNG)
    good.name = "bukti transfer.png"
    assert client.post(url, {"amount": "200.000", "file": good, "note": "BCA"}).status_code == 302
    proof = TransferProof.objects.get()
    assert proof.amount_minor == 200_000 and proof.content_type == "image/png"

    client.force_login(cast.staff)
    review = reverse("billing:review_proof", args=[proof.id])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(review, {"decision": "approve"})
        client.post(review, {"decision": "approve"})  # a double click
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert Payment.objects.count() == 1
    assert Subscription.objects.get().status == "active"


def test_staff_record_void_and_credit(client, cast, order):
    _instance, invoice = order()
    client.force_login(cast.staff)
    url = reverse("billing:invoice_manage", args=[invoice.id])
    response = client.post(
        url, {"action": "record_payment", "pay-amount": "-5", "pay-reference": "BCA-1"}
    )
    assert response.status_code == 400 and not Payment.objects.exists()
    client.post(url, {"action": "record_payment", "pay-amount": "200000", "pay-reference": "BCA-1"})
    client.post(url, {"action": "record_payment", "pay-amount": "200000", "pay-reference": "BCA-1"})
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and Payment.objects.count() == 1
    response = client.post(
        url,
        {
            "action": "credit_note",
            "cn-amount": "250000",
            "cn-reason": "x",
            "cn-refund_method": "credit",
        },
    )
    assert "at most" in response.content.decode()
    client.post(
        url,
        {
            "action": "credit_note",
            "cn-amount": "50000",
            "cn-reason": "Outage",
            "cn-refund_method": "credit",
        },
    )
    note = invoice.credit_notes.get()
    assert note.number == "CN/2026/000001" and note.total_minor == 50_000
    assert note.tax_minor + note.net_minor == 50_000
    from otomat.billing.invoicing import credit_balance

    assert credit_balance(cast.alice.account, "IDR").amount_minor == 50_000
    pdf = client.get(reverse("billing:credit_note_pdf", args=[note.id]))
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")


def test_plan_change_and_cancel_from_the_overview(client, cast, order, pro_plan):
    _instance, invoice = order()
    with time_machine.travel(T0, tick=False):
        pay(invoice)
    sub = Subscription.objects.get()
    client.force_login(cast.alice)
    with time_machine.travel(
        sub.current_period_start + (sub.current_period_end - sub.current_period_start) / 2,
        tick=False,
    ):
        preview = client.get(reverse("billing:change_plan", args=[sub.id]), {"plan": pro_plan.id})
        assert preview.status_code == 200 and "To pay now" in preview.content.decode()
        response = client.post(reverse("billing:change_plan", args=[sub.id]), {"plan": pro_plan.id})
    upgrade = Invoice.objects.get(kind=Invoice.Kind.PLAN_CHANGE)
    assert response["Location"] == reverse("billing:pay", args=[upgrade.token])
    assert upgrade.total.amount_minor == 75_000  # half a month of the 150,000 difference
    sub.refresh_from_db()
    assert sub.plan == pro_plan
    assert client.post(reverse("billing:cancel", args=[sub.id])).status_code == 302
    sub.refresh_from_db()
    assert not sub.cancel_at_period_end  # not confirmed
    client.post(reverse("billing:cancel", args=[sub.id]), {"confirm": "yes"})
    sub.refresh_from_db()
    assert sub.cancel_at_period_end


def test_staff_pages_render_and_owner_configures(client, cast, order, plan):
    _instance, invoice = order()
    pay(invoice)
    client.force_login(cast.staff)
    for name in (
        "billing:dashboard",
        "billing:actions",
        "billing:manage_invoices",
        "billing:proofs",
        "billing:callbacks",
    ):
        response = client.get(reverse(name))
        assert response.status_code == 200, name
    dashboard = client.get(reverse("billing:dashboard")).content.decode()
    assert "<svg" in dashboard and "IDR" in dashboard
    assert client.get(reverse("billing:config", args=["plans"])).status_code == 404  # owner only
    client.force_login(cast.owner)
    response = client.post(
        reverse("billing:config_new", args=["plans"]),
        {
            "product": plan.product_id,
            "code": "yearly",
            "name": "Yearly",
            "currency": "PLN",
            "period_months": 12,
            "trial_days": 0,
            "price": "1 199,00",
            "setup_fee": "0",
            "is_active": "on",
            "position": 1,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Plan.objects.get(code="yearly").price_minor == 119_900
    response = client.post(
        reverse("billing:config_new", args=["plans"]),
        {
            "product": plan.product_id,
            "code": "bad",
            "name": "Bad",
            "currency": "IDR",
            "period_months": 1,
            "trial_days": 0,
            "price": "10.50",
            "setup_fee": "0",
            "position": 1,
        },
    )
    assert response.status_code == 400 and not Plan.objects.filter(code="bad").exists()
    response = client.post(
        reverse("billing:config_new", args=["dunning"]),
        {
            "name": "Strict",
            "invoice_days_before": 3,
            "reminder_days": "-1, 1",
            "suspend_after_days": 10,
            "terminate_after_days": 5,
            "export_notice_days": 1,
            "late_fee_percent": "0",
            "late_fee_after_days": 3,
        },
    )
    assert (
        response.status_code == 400
        and "Termination must come after suspension" in response.content.decode()
    )


def test_gateway_secrets_are_never_shown_again(client, cast):
    client.force_login(cast.owner)
    url = reverse("billing:gateways")
    client.post(
        url, {"code": "midtrans", "enabled": "1", "midtrans-server_key": "SB-Mid-server-SECRET123"}
    )
    config = GatewayConfig.objects.get(code="midtrans")
    assert config.enabled and config.credentials["server_key"] == "SB-Mid-server-SECRET123"
    page = client.get(url).content.decode()
    assert "SECRET123" not in page and "stored — leave blank to keep" in page
    client.post(url, {"code": "midtrans", "enabled": "1", "midtrans-server_key": ""})
    config.refresh_from_db()
    assert config.credentials["server_key"] == "SB-Mid-server-SECRET123"  # blank keeps it
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM billing_gatewayconfig")
        (stored,) = cursor.fetchone()
    assert "SECRET123" not in stored
    response = client.post(url, {"code": "paypal", "enabled": "1"})
    assert response.status_code == 404
    assert not BillingAction.objects.exists()


def test_plan_change_refuses_bad_choices(client, cast, order, greeter, plan, pro_plan):
    from otomat.billing.models import Plan as PlanModel

    _instance, invoice = order()
    pay(invoice)
    sub = Subscription.objects.get()
    client.force_login(cast.alice)
    other = PlanModel.objects.create(
        product=pro_plan.product, code="eur", name="EUR", currency="EUR", price_minor=500
    )
    for bad in ("999999", str(plan.pk), str(other.pk), "abc"):
        response = client.post(reverse("billing:change_plan", args=[sub.id]), {"plan": bad})
        assert response.status_code in (200, 400)
        sub.refresh_from_db()
        assert sub.plan == plan, bad
    assert not Invoice.objects.filter(kind=Invoice.Kind.PLAN_CHANGE).exists()


def test_the_catalog_shows_prices(client, cast, plan):
    page = client.get(reverse("catalog:detail", args=["greeter"])).content.decode()
    assert "Basic" in page and "IDR150,000" in page and "setup IDR50,000" in page


@pytest.mark.parametrize(("lang", "name"), [("en", "Bank transfer"), ("pl", "Przelew bankowy")])
def test_a_payment_is_named_by_its_method_in_the_readers_language(client, cast, order, lang, name):
    _instance, invoice = order()
    pay(invoice)
    client.force_login(cast.alice)
    client.post("/i18n/setlang/", {"language": lang, "next": "/"})
    cast.alice.language = lang
    cast.alice.save(update_fields=["language"])
    page = client.get(reverse("billing:invoice", args=[invoice.id])).content.decode()
    assert f"· {name}</li>" in page and "· manual</li>" not in page
