"""Callbacks and pay links leak nothing: stored callback headers hold no secret (and rows
stored before are masked by the migration), a source sending callbacks that do not verify is
throttled, and a pay link shows a stranger only what paying needs and stops working once its
invoice is paid or void."""

from __future__ import annotations

import importlib
import json
from datetime import timedelta

import pytest
import time_machine
from django.apps import apps
from django.urls import reverse
from django.utils import timezone

from otomat.billing import payments
from otomat.billing.gateways.fakes.midtrans import FakeMidtrans
from otomat.billing.gateways.fakes.przelewy24 import FakePrzelewy24
from otomat.billing.gateways.fakes.stripe import FakeStripe
from otomat.billing.gateways.fakes.xendit import FakeXendit
from otomat.billing.invoicing import void_invoice
from otomat.billing.models import BillingProfile, CheckoutSession, GatewayCallback, Plan
from otomat.billing.tests.conftest import enable_gateway, pay, plan_in

GATEWAYS = {
    "midtrans": (FakeMidtrans, "IDR", 150_000),
    "xendit": (FakeXendit, "IDR", 99_000),
    "przelewy24": (FakePrzelewy24, "PLN", 4_999),
    "stripe": (FakeStripe, "EUR", 1_900),
}
# Headers a proxy or a forger may add; none of them may be stored as sent.
NOISE = {
    "Authorization": "Bearer sk_live_never-store-me",
    "Cookie": "sessionid=never-store-me",
    "X-Api-Key": "never-store-me",
}


def post(client, code, headers, body, *, remote_addr="198.51.100.7"):
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    content_type = headers.get("content-type") or headers.get("Content-Type") or "application/json"
    return client.post(
        reverse("billing:callback", args=[code]),
        data=body,
        content_type=content_type,
        REMOTE_ADDR=remote_addr,
        **extra,
    )


@pytest.fixture(params=list(GATEWAYS))
def gateway(request, greeter, policy):
    code = request.param
    fake_class, currency, price = GATEWAYS[code]
    with fake_class() as fake:
        enable_gateway(code, fake)
        plan = Plan.objects.create(
            product=greeter.product,
            code=f"plan-{code}",
            name="Monthly",
            currency=currency,
            price_minor=price,
            dunning_policy=policy,
        )
        yield code, fake, plan


def secrets_of(fake) -> list[str]:
    credentials = fake.gateway_settings()["credentials"]
    return [str(v) for k, v in credentials.items() if k not in ("merchant_id", "pos_id") and v]


# -- stored headers --------------------------------------------------------------------------------


def test_no_stored_callback_holds_a_secret(gateway, order, client):
    code, fake, plan = gateway
    _instance, invoice = order(plan_=plan)
    checkout = payments.start_checkout(invoice, code, return_url="http://testserver/x/")
    headers, body = fake.notification(checkout.reference, "paid")
    assert post(client, code, {**headers, **NOISE}, body).status_code == 200
    forged_headers, forged_body = fake.forged_notification(checkout.reference, "paid")
    post(client, code, {**forged_headers, **NOISE}, forged_body)
    stored = list(GatewayCallback.objects.values_list("headers", flat=True))
    assert len(stored) == 2
    text = json.dumps(stored)
    for secret in [*secrets_of(fake), "never-store-me"]:
        assert secret not in text
    for row in stored:
        assert not {"authorization", "cookie", "x-api-key"} & set(row)
    if code == "xendit":  # its token is a header the adapter reads: kept, masked
        assert {row["x-callback-token"] for row in stored} == {"[masked]"}


def test_the_migration_masks_secrets_stored_before(db):
    migration = importlib.import_module("otomat.billing.migrations.0005_callback_confirmation")
    old = GatewayCallback.objects.create(
        gateway="xendit",
        headers={"x-callback-token": "real-token-0123456789", "content-type": "application/json"},
        body="{}",
    )
    clean = GatewayCallback.objects.create(
        gateway="midtrans", headers={"content-type": "application/json"}, body="{}"
    )
    odd = GatewayCallback.objects.create(gateway="stripe", headers=["not", "a", "dict"], body="")
    migration.mask_stored_secrets(apps, None)
    old.refresh_from_db()
    clean.refresh_from_db()
    odd.refresh_from_db()
    assert old.headers == {"x-callback-token": "[masked]", "content-type": "application/json"}
    assert clean.headers == {"content-type": "application/json"}
    assert odd.headers == ["not", "a", "dict"]  # nothing to mask, left as it was


# -- throttling sources of callbacks that do not verify ---------------------------------------------


def test_a_source_of_forgeries_is_throttled_and_genuine_callbacks_are_not(
    settings, order, greeter, policy, client
):
    settings.CALLBACK_REJECTS_PER_SOURCE = 3
    settings.CALLBACK_REJECT_WINDOW_SECONDS = 60
    with FakeMidtrans() as fake:
        enable_gateway("midtrans", fake)
        plan = plan_in(greeter, policy, "IDR", 10_000, code="m", name="M")
        _instance, invoice = order(plan_=plan)
        checkout = payments.start_checkout(invoice, "midtrans", return_url="http://x/")
        forged = fake.forged_notification(checkout.reference, "paid")
        for _ in range(3):
            assert post(client, "midtrans", *forged, remote_addr="192.0.2.66").status_code == 401
        response = post(client, "midtrans", *forged, remote_addr="192.0.2.66")
        assert response.status_code == 429
        assert GatewayCallback.objects.count() == 3  # the throttled one is not stored
        assert post(client, "midtrans", {}, b"{}", remote_addr="192.0.2.66").status_code == 429
        # Another source, and a provider's genuine callbacks, are served as usual.
        genuine = fake.notification(checkout.reference, "paid")
        for _ in range(5):
            assert post(client, "midtrans", *genuine, remote_addr="192.0.2.10").status_code == 200
        # The window ends; the source is heard again.
        with time_machine.travel(timezone.now() + timedelta(seconds=61)):
            assert post(client, "midtrans", *forged, remote_addr="192.0.2.66").status_code == 401


def test_callbacks_the_provider_does_not_confirm_count_too(
    settings, order, greeter, policy, client
):
    settings.CALLBACK_REJECTS_PER_SOURCE = 2
    with FakeXendit() as fake:
        enable_gateway("xendit", fake)
        plan = plan_in(greeter, policy, "IDR", 10_000, code="x", name="X")
        _instance, invoice = order(plan_=plan)
        checkout = payments.start_checkout(invoice, "xendit", return_url="http://x/")
        headers, body = fake.notification(checkout.reference, "paid")
        invented = json.dumps({**json.loads(body), "id": "f" * 24}).encode()
        assert post(client, "xendit", headers, invented).status_code == 400
        assert post(client, "xendit", headers, invented).status_code == 400
        assert post(client, "xendit", headers, body).status_code == 429


def test_the_throttle_can_be_turned_off(settings, client, db):
    settings.CALLBACK_REJECTS_PER_SOURCE = 0
    for _ in range(30):
        assert post(client, "midtrans", {}, b"{}").status_code == 404  # not enabled, not throttled


# -- pay links -------------------------------------------------------------------------------------


@pytest.fixture
def with_profile(cast):
    BillingProfile.objects.create(
        account=cast.alice.account,
        legal_name="PT Alice Sejahtera Abadi",
        address="Jalan Sudirman 12\nJakarta 10220",
        tax_id="01.234.567.8-901.000",
    )


PRIVATE = ("PT Alice Sejahtera Abadi", "Jalan Sudirman 12", "01.234.567.8-901.000", "Alice's Bots")


def test_a_stranger_with_the_link_sees_only_what_paying_needs(client, cast, order, with_profile):
    _instance, invoice = order()
    page = client.get(reverse("billing:pay", args=[invoice.token])).content.decode()
    assert invoice.number in page and "Amount due" in page
    for private in PRIVATE:
        assert private not in page, private
    client.force_login(cast.bob)  # a member of the account sees the whole invoice
    page = client.get(reverse("billing:pay", args=[invoice.token])).content.decode()
    assert "PT Alice Sejahtera Abadi" in page and "01.234.567.8-901.000" in page


def test_the_link_of_a_paid_invoice_stops_working(client, cast, order, midtrans_enabled):
    _instance, invoice = order()
    pay(invoice)
    url = reverse("billing:pay", args=[invoice.token])
    response = client.get(url)
    page = response.content.decode()
    assert response.status_code == 410
    assert "This invoice is paid" in page and 'name="method"' not in page
    response = client.post(url, {"method": "midtrans"})
    assert response.status_code == 410 and not CheckoutSession.objects.exists()
    # The return page says the payment arrived, but names the bot to members only.
    back = client.get(reverse("billing:pay_return", args=[invoice.token])).content.decode()
    assert "Payment received" in back and "Alice&#x27;s greeter" not in back
    client.force_login(cast.alice)
    page = client.get(url).content.decode()
    assert reverse("billing:invoice", args=[invoice.id]) in page
    back = client.get(reverse("billing:pay_return", args=[invoice.token])).content.decode()
    assert "Alice&#x27;s greeter" in back


def test_the_link_of_a_void_invoice_stops_working(client, order, midtrans_enabled):
    _instance, invoice = order()
    void_invoice(invoice, reason="ordered by mistake", actor_label="test")
    response = client.get(reverse("billing:pay", args=[invoice.token]))
    assert response.status_code == 410
    page = response.content.decode()
    assert "cannot be paid" in page and 'name="method"' not in page
    assert (
        client.post(
            reverse("billing:pay", args=[invoice.token]), {"method": "midtrans"}
        ).status_code
        == 410
    )
    assert not CheckoutSession.objects.exists()


def test_an_open_invoice_still_offers_the_methods(client, order, midtrans_enabled):
    _instance, invoice = order()
    page = client.get(reverse("billing:pay", args=[invoice.token])).content.decode()
    assert 'name="method" value="midtrans"' in page


@pytest.fixture
def midtrans_enabled(db):
    with FakeMidtrans() as fake:
        enable_gateway("midtrans", fake)
        yield fake
