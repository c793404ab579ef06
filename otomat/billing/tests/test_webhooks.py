"""Webhook replay: for every gateway, a recorded stream of callbacks with duplicates, reordering
and forged signatures, delivered to Otomat's callback endpoint in several orders, credits the
payment exactly once and rejects every forgery; everything received is stored."""

from __future__ import annotations

import itertools
import json
import random

import pytest
from django.test import Client
from django.urls import reverse

from otomat.billing import payments
from otomat.billing.gateways.fakes.midtrans import FakeMidtrans
from otomat.billing.gateways.fakes.przelewy24 import FakePrzelewy24
from otomat.billing.gateways.fakes.stripe import FakeStripe
from otomat.billing.gateways.fakes.xendit import FakeXendit
from otomat.billing.invoicing import credit_balance
from otomat.billing.models import (
    CheckoutSession,
    GatewayCallback,
    Invoice,
    Payment,
    Plan,
    ProcessedEvent,
)
from otomat.billing.tests.conftest import enable_gateway, plan_in

pytestmark = pytest.mark.smoke

GATEWAYS = {
    "midtrans": (FakeMidtrans, "IDR", 150_000),
    "xendit": (FakeXendit, "IDR", 99_000),
    "przelewy24": (FakePrzelewy24, "PLN", 4_999),
    "stripe": (FakeStripe, "EUR", 1_900),
}


@pytest.fixture(params=list(GATEWAYS))
def gateway(request, greeter, policy):
    code = request.param
    fake_class, currency, price = GATEWAYS[code]
    fake = fake_class().start()
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
    fake.close()


def post(client: Client, code: str, headers: dict[str, str], body: bytes):
    """Deliver one callback as the provider's HTTP request (headers as sent)."""
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    content_type = headers.get("Content-Type") or headers.get("content-type") or "application/json"
    return client.post(
        reverse("billing:callback", args=[code]), data=body, content_type=content_type, **extra
    )


def stream(fake, reference: str, code: str) -> list[tuple[str, dict, bytes]]:
    """What a provider may send for one paid checkout: the payment notice several times, a
    stale status arriving late, and forgeries (one claiming a payment, one tampered)."""
    events = [("paid", *fake.notification(reference, "paid"))] * 3
    if code in ("midtrans", "xendit", "stripe"):
        events.append(("late", *fake.notification(reference, "expired")))
    if code in ("midtrans", "stripe"):
        events.append(("late", *fake.notification(reference, "pending")))
    if code in ("xendit", "stripe"):  # the same payment reported by another event id
        events.append(("same-payment", *fake.notification(reference, "paid", event_suffix="b")))
    events.append(("forged", *fake.forged_notification(reference, "paid")))
    if code != "xendit":  # Xendit signs nothing in the body; its token is checked above
        headers, body = fake.notification(reference, "paid")
        events.append(("forged", headers, tamper(code, body)))
    return events


def tamper(code: str, body: bytes) -> bytes:
    """The provider's signed notification with the amount changed after signing."""
    data = json.loads(body)
    if code == "midtrans":
        data["gross_amount"] = "1.00"
    elif code == "przelewy24":
        data["amount"] = 1
    elif code == "stripe":
        data["data"]["object"]["amount_total"] = 1
    return json.dumps(data).encode()


def test_a_replayed_stream_credits_each_payment_once(gateway, cast, order, client):
    code, fake, plan = gateway
    orders = []
    for i in range(3):
        _instance, invoice = order(plan_=plan, name=f"{code} bot {i}")
        checkout = payments.start_checkout(
            invoice, code, return_url=f"http://testserver/billing/pay/{invoice.token}/return/"
        )
        assert checkout.redirect_url.startswith(fake.url)
        orders.append((invoice, stream(fake, checkout.reference, code)))

    # Three orders, each stream delivered in a different order (one of them reversed).
    rng = random.Random(4)
    deliveries = []
    for n, (invoice, events) in enumerate(orders):
        events = list(reversed(events)) if n == 0 else rng.sample(events, len(events))
        deliveries.append((invoice, events))
    for _invoice, events in deliveries:
        for label, headers, body in events:
            response = post(client, code, headers, body)
            if label == "forged":
                assert response.status_code in (400, 401, 403), (label, response.content)
            else:
                assert response.status_code == 200, (label, response.content)

    for invoice, _events in deliveries:
        invoice.refresh_from_db()
        assert invoice.status == Invoice.Status.PAID
        assert invoice.amount_paid_minor == invoice.total_minor
        assert Payment.objects.filter(invoice=invoice).count() == 1
        assert CheckoutSession.objects.get(invoice=invoice).status == "paid"
    assert (
        credit_balance(cast.alice.account, plan.currency).amount_minor == 0
    )  # none credited twice
    received = sum(len(events) for _, events in deliveries)
    assert GatewayCallback.objects.count() == received  # everything stored, forgeries too
    rejected = GatewayCallback.objects.filter(status="rejected").count()
    assert rejected == sum(1 for _, events in deliveries for e in events if e[0] == "forged")
    assert GatewayCallback.objects.filter(status="processed", kind="paid").count() >= 3
    assert (
        ProcessedEvent.objects.filter(gateway=code).count()
        == GatewayCallback.objects.exclude(status__in=["rejected", "duplicate"]).count()
    )


def test_a_forgery_alone_changes_nothing(gateway, order, client):
    code, fake, plan = gateway
    _instance, invoice = order(plan_=plan)
    checkout = payments.start_checkout(invoice, code, return_url="http://testserver/x/")
    for headers, body in [
        fake.forged_notification(checkout.reference, "paid"),
        ({"Content-Type": "application/json"}, b"{}"),
        ({"Content-Type": "application/json"}, b"not json at all"),
        ({}, b""),
        ({"Content-Type": "application/json"}, b"[" * 5000),
    ]:
        assert post(client, code, headers, body).status_code in (400, 401, 403)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN and not Payment.objects.exists()
    assert GatewayCallback.objects.filter(status="rejected").count() == 5
    huge = b'{"x": "' + b"a" * 70_000 + b'"}'
    assert post(client, code, {"Content-Type": "application/json"}, huge).status_code == 413
    assert post(client, "nonsense", {}, b"{}").status_code == 404


@pytest.mark.parametrize(
    "order_of_arrival", list(itertools.permutations(["paid", "expired", "dup"]))
)
def test_reordering_never_undoes_a_payment(order_of_arrival, greeter, policy, order, client):
    fake = FakeMidtrans().start()
    try:
        enable_gateway("midtrans", fake)
        plan = plan_in(greeter, policy, "IDR", 10_000, code="m", name="M")
        _instance, invoice = order(plan_=plan)
        checkout = payments.start_checkout(invoice, "midtrans", return_url="http://testserver/x/")
        notes = {
            "paid": fake.notification(checkout.reference, "paid"),
            "dup": fake.notification(checkout.reference, "paid"),
            "expired": fake.notification(checkout.reference, "expired"),
        }
        for name in order_of_arrival:
            assert post(client, "midtrans", *notes[name]).status_code == 200
        invoice.refresh_from_db()
        assert invoice.status == Invoice.Status.PAID and Payment.objects.count() == 1
        assert CheckoutSession.objects.get().status == "paid"
    finally:
        fake.close()


def test_a_failed_callback_is_kept_and_finished_later(greeter, policy, order, client, monkeypatch):
    """A crash (here: an error) after storing the callback leaves it retryable; the retry
    credits the payment once."""
    fake = FakePrzelewy24().start()
    try:
        enable_gateway("przelewy24", fake)
        plan = plan_in(greeter, policy, "PLN", 4_999, code="p", name="P")
        _instance, invoice = order(plan_=plan)
        checkout = payments.start_checkout(invoice, "przelewy24", return_url="http://testserver/x/")
        fake.refuse_verify = True  # P24 is down when we confirm
        response = post(client, "przelewy24", *fake.notification(checkout.reference))
        assert response.status_code == 500  # P24 retries the notification later
        callback = GatewayCallback.objects.get()
        assert callback.status == "failed" and not Payment.objects.exists()
        fake.refuse_verify = False
        assert payments.retry_failed_callbacks() == 0  # not before its backoff ends
        assert callback.retry_at is not None
        GatewayCallback.objects.update(
            received_at=callback.received_at.replace(year=2020),
            retry_at=callback.retry_at.replace(year=2020),
        )
        assert payments.retry_failed_callbacks() == 1
        assert payments.retry_failed_callbacks() == 0
        invoice.refresh_from_db()
        assert invoice.status == Invoice.Status.PAID and Payment.objects.count() == 1
        # P24's own retry of the same notification is now a harmless duplicate.
        assert post(client, "przelewy24", *fake.notification(checkout.reference)).status_code == 200
        assert Payment.objects.count() == 1
    finally:
        fake.close()


def test_a_refund_at_the_provider_becomes_a_credit_note(greeter, policy, order, client):
    fake = FakeStripe().start()
    try:
        enable_gateway("stripe", fake)
        plan = plan_in(greeter, policy, "USD", 1_000, code="s", name="S")
        _instance, invoice = order(plan_=plan)
        checkout = payments.start_checkout(invoice, "stripe", return_url="http://testserver/x/")
        post(client, "stripe", *fake.notification(checkout.reference, "paid"))
        refund = fake.notification(checkout.reference, "refunded")
        post(client, "stripe", *refund)
        post(client, "stripe", *refund)
        invoice.refresh_from_db()
        (note,) = invoice.credit_notes.all()
        assert note.total_minor == 1_000 and note.refund_method == "external"
    finally:
        fake.close()
