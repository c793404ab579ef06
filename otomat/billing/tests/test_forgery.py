"""A callback is a hint; the provider's answer is the truth.

The forgeries of an independent check, replayed against the local fake providers: a captured
Midtrans settlement re-sent with a new transaction_id, the same settlement relabelled "refund",
a genuine "cancel" (status_code 200, like a settlement) relabelled "settlement", and a Xendit
callback with the right token and an invented invoice id for an already paid reference. The
Midtrans signature covers only order_id + status_code + gross_amount and Xendit signs nothing
of the body, so each of these verifies; none may credit, refund or pay anything. Beside them,
genuine payments, refunds and chargebacks still work through the confirmation path, and a
provider that cannot be asked leaves the callback stored and retried, never credited."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from otomat.billing import payments
from otomat.billing.gateways.fakes.midtrans import FakeMidtrans
from otomat.billing.gateways.fakes.stripe import FakeStripe
from otomat.billing.gateways.fakes.xendit import FakeXendit
from otomat.billing.invoicing import credit_balance
from otomat.billing.models import (
    BillingAction,
    CheckoutSession,
    CreditNote,
    GatewayCallback,
    GatewayConfig,
    Invoice,
    Payment,
    Plan,
    Subscription,
)
from otomat.billing.tests.conftest import enable_gateway, plan_in
from otomat.testing.processes import free_port

PRICE = 150_000  # IDR


def post(client, code: str, headers: dict[str, str], body: bytes, *, remote_addr="203.0.113.9"):
    """Deliver one callback as the provider's HTTP request."""
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    content_type = headers.get("content-type") or headers.get("Content-Type") or "application/json"
    return client.post(
        reverse("billing:callback", args=[code]),
        data=body,
        content_type=content_type,
        REMOTE_ADDR=remote_addr,
        **extra,
    )


def edited(body: bytes, **fields) -> bytes:
    """A captured notification with unsigned fields changed (the signature left as it was)."""
    return json.dumps({**json.loads(body), **fields}).encode()


@pytest.fixture
def idr_plan(greeter, policy):
    return Plan.objects.create(
        product=greeter.product,
        code="forgery",
        name="Monthly",
        currency="IDR",
        price_minor=PRICE,
        dunning_policy=policy,
    )


@pytest.fixture
def midtrans(db):
    with FakeMidtrans() as fake:
        enable_gateway("midtrans", fake)
        yield fake


@pytest.fixture
def xendit(db):
    with FakeXendit() as fake:
        enable_gateway("xendit", fake)
        yield fake


@pytest.fixture
def stripe(db):
    with FakeStripe() as fake:
        enable_gateway("stripe", fake)
        yield fake


@pytest.fixture
def ordered(order, idr_plan):
    """ordered(code) -> (instance, invoice, checkout): an unpaid order with a checkout."""

    def make(code: str, name: str = "Alice's greeter"):
        instance, invoice = order(plan_=idr_plan, name=name)
        checkout = payments.start_checkout(invoice, code, return_url="http://testserver/x/")
        return instance, invoice, checkout

    return make


def paid_once(invoice: Invoice, account) -> None:
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert Payment.objects.filter(invoice=invoice).count() == 1
    assert credit_balance(account, "IDR").amount_minor == 0
    assert not BillingAction.objects.filter(reason__contains="Paid again").exists()


def status_requests(fake) -> list:
    return [r for r in fake.requests if r.method == "GET" and r.path.endswith("/status")]


# -- the four forgeries ----------------------------------------------------------------------------


def test_a_settlement_replayed_with_a_new_transaction_id_adds_no_payment(
    client, cast, ordered, midtrans, django_capture_on_commit_callbacks
):
    _instance, invoice, checkout = ordered("midtrans")
    headers, body = midtrans.notification(checkout.reference, "paid")
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, "midtrans", headers, body).status_code == 200
    paid_once(invoice, cast.alice.account)
    genuine = Payment.objects.get()

    for n in range(3):  # "it can be repeated without limit"
        forged = edited(body, transaction_id=f"00000000-0000-4000-8000-00000000000{n}")
        with django_capture_on_commit_callbacks(execute=True):
            post(client, "midtrans", headers, forged)
    paid_once(invoice, cast.alice.account)
    assert Payment.objects.get() == genuine  # Midtrans' own transaction id, recorded once
    assert len(status_requests(midtrans)) == 4  # each hint was checked with Get Status
    callback = GatewayCallback.objects.order_by("id").last()
    assert callback.status == "duplicate" and callback.kind == "paid"


def test_a_settlement_relabelled_refund_issues_no_credit_note(client, cast, ordered, midtrans):
    _instance, invoice, checkout = ordered("midtrans")
    headers, body = midtrans.notification(checkout.reference, "paid")
    post(client, "midtrans", headers, body)
    for status in ("refund", "partial_refund", "chargeback"):
        post(client, "midtrans", headers, edited(body, transaction_status=status))
    assert not CreditNote.objects.exists()
    paid_once(invoice, cast.alice.account)


def test_a_cancel_relabelled_settlement_pays_nothing_and_starts_no_bot(
    client, cast, ordered, midtrans, django_capture_on_commit_callbacks
):
    instance, invoice, checkout = ordered("midtrans")
    headers, body = midtrans.notification(checkout.reference, "failed", transaction_status="cancel")
    assert json.loads(body)["status_code"] == "200"  # a cancel is signed like a settlement
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, "midtrans", headers, body).status_code == 200
        post(client, "midtrans", headers, edited(body, transaction_status="settlement"))
        post(client, "midtrans", headers, edited(body, transaction_status="capture"))
    invoice.refresh_from_db()
    instance.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN and not Payment.objects.exists()
    assert CheckoutSession.objects.get().status == "failed"
    assert instance.desired != "running" and instance.state == "pending"
    assert Subscription.objects.get().status == Subscription.Status.PENDING
    assert GatewayCallback.objects.filter(kind="failed").count() == 3  # as Midtrans says


def test_xendit_an_invented_invoice_id_for_a_paid_reference_adds_no_payment(
    client, cast, ordered, xendit
):
    _instance, invoice, checkout = ordered("xendit")
    headers, body = xendit.notification(checkout.reference, "paid")
    assert post(client, "xendit", headers, body).status_code == 200
    paid_once(invoice, cast.alice.account)

    invented = edited(body, id="0123456789abcdef01234567", paid_amount=PRICE)
    headers = {**headers, "webhook-id": "another-delivery"}
    response = post(client, "xendit", headers, invented)
    assert response.status_code == 400
    paid_once(invoice, cast.alice.account)
    forged = GatewayCallback.objects.order_by("id").last()
    assert forged.status == "rejected" and "knows no invoice" in forged.error
    # Nor may an invoice of another reference pay this one.
    _other_instance, other, other_checkout = ordered("xendit", name="Second bot")
    headers, body = xendit.notification(other_checkout.reference, "paid")
    crossed = edited(body, external_id=checkout.reference)
    assert post(client, "xendit", headers, crossed).status_code == 400
    paid_once(invoice, cast.alice.account)
    other.refresh_from_db()
    assert other.status == Invoice.Status.OPEN


# -- genuine money through the confirmation path ---------------------------------------------------


def test_a_genuine_midtrans_payment_is_confirmed_with_get_status(
    client, cast, ordered, midtrans, django_capture_on_commit_callbacks
):
    instance, invoice, checkout = ordered("midtrans")
    pending = midtrans.notification(checkout.reference, "pending")
    assert post(client, "midtrans", *pending).status_code == 200
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN
    with django_capture_on_commit_callbacks(execute=True):
        paid = midtrans.notification(checkout.reference, "paid")
        assert post(client, "midtrans", *paid).status_code == 200
    paid_once(invoice, cast.alice.account)
    instance.refresh_from_db()
    assert instance.desired == "running"
    [first, _second] = status_requests(midtrans)
    assert first.path == f"/v2/{checkout.reference}/status"
    assert first.headers["authorization"].startswith("Basic ")
    payment = Payment.objects.get()
    assert payment.provider_payment_id == json.loads(paid[1])["transaction_id"]


def test_a_late_pending_hint_after_the_payment_changes_nothing(client, cast, ordered, midtrans):
    _instance, invoice, checkout = ordered("midtrans")
    pending = midtrans.notification(checkout.reference, "pending")
    post(client, "midtrans", *midtrans.notification(checkout.reference, "paid"))
    post(client, "midtrans", *pending)  # arrives late
    paid_once(invoice, cast.alice.account)


def test_midtrans_refunds_and_chargebacks_become_credit_notes_once(client, cast, ordered, midtrans):
    _instance, _invoice, checkout = ordered("midtrans")
    post(client, "midtrans", *midtrans.notification(checkout.reference, "paid"))
    first = midtrans.notification(checkout.reference, "refunded", amount=50_000)
    assert post(client, "midtrans", *first).status_code == 200
    post(client, "midtrans", *first)  # retried
    chargeback = midtrans.notification(
        checkout.reference,
        "refunded",
        amount=30_000,
        event_suffix="cb",
        transaction_status="chargeback",
    )
    assert post(client, "midtrans", *chargeback).status_code == 200
    post(client, "midtrans", *first)  # a late copy of the first refund
    notes = list(CreditNote.objects.order_by("id"))
    assert [n.total_minor for n in notes] == [50_000, 30_000]
    assert notes[0].reason == "Refunded at Midtrans"
    assert notes[1].reason == "Chargeback at Midtrans"
    assert all(n.refund_method == "external" for n in notes)


def test_a_refund_of_an_unpaid_order_credits_nothing(client, ordered, midtrans):
    """A refund hint for an order whose payment Otomat never recorded: nothing to credit."""
    _instance, _invoice, checkout = ordered("midtrans")
    refund = midtrans.notification(checkout.reference, "refunded")
    assert post(client, "midtrans", *refund).status_code == 200
    assert not CreditNote.objects.exists() and not Payment.objects.exists()
    assert "review by hand" in GatewayCallback.objects.get().error


def test_a_midtrans_order_never_paid_is_not_confirmed(client, ordered, midtrans):
    """A signed notification for an order Midtrans has no transaction for (here: a checkout
    whose Snap page was never used, its notification made up and signed)."""
    _instance, invoice, checkout = ordered("midtrans")
    headers, body = midtrans.notification(checkout.reference, "paid")
    midtrans.checkouts[checkout.reference].pop("transaction_id")  # Midtrans never saw it
    assert post(client, "midtrans", headers, body).status_code == 400
    callback = GatewayCallback.objects.get()
    assert callback.status == "rejected" and "knows no transaction" in callback.error
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN and not Payment.objects.exists()


def test_a_second_genuine_payment_of_a_paid_invoice_becomes_credit_once(
    client, cast, ordered, xendit
):
    """Two checkouts of one invoice, both really paid at Xendit: the invoice is settled once,
    the second payment is credit, once, however often it is reported."""
    _instance, invoice, first = ordered("xendit")
    CheckoutSession.objects.filter(pk=first.pk).update(
        created_at=timezone.now() - timedelta(hours=2)
    )
    second = payments.start_checkout(invoice, "xendit", return_url="http://testserver/x/")
    assert second.reference != first.reference
    post(client, "xendit", *xendit.notification(first.reference, "paid"))
    for suffix in ("", "retry", "again"):
        post(client, "xendit", *xendit.notification(second.reference, "paid", event_suffix=suffix))
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.amount_paid_minor == PRICE
    assert Payment.objects.filter(invoice=invoice).count() == 2
    assert credit_balance(cast.alice.account, "IDR").amount_minor == PRICE


def test_stripe_refunds_are_read_from_the_charge(client, greeter, policy, order, stripe):
    plan = plan_in(greeter, policy, "USD", 1_000, code="usd", name="USD")
    _instance, invoice = order(plan_=plan)
    checkout = payments.start_checkout(invoice, "stripe", return_url="http://testserver/x/")
    post(client, "stripe", *stripe.notification(checkout.reference, "paid"))
    first = stripe.notification(checkout.reference, "refunded", amount=300)
    second = stripe.notification(checkout.reference, "refunded", amount=200, event_suffix="2")
    for delivery in (second, first, second, first):  # out of order and repeated
        assert post(client, "stripe", *delivery).status_code == 200
    assert sorted(n.total_minor for n in CreditNote.objects.all()) == [200, 300]
    charges = [r for r in stripe.requests if r.path.startswith("/v1/charges/")]
    assert charges and "expand" in str(charges[0].query)


def test_a_stripe_chargeback_becomes_a_credit_note_once(client, greeter, policy, order, stripe):
    plan = plan_in(greeter, policy, "USD", 1_000, code="usd", name="USD")
    _instance, invoice = order(plan_=plan)
    checkout = payments.start_checkout(invoice, "stripe", return_url="http://testserver/x/")
    post(client, "stripe", *stripe.notification(checkout.reference, "paid"))
    dispute = stripe.notification(checkout.reference, "disputed", amount=400)
    assert post(client, "stripe", *dispute).status_code == 200
    post(client, "stripe", *dispute)  # Stripe retries
    note = CreditNote.objects.get()
    assert (note.total_minor, note.reason) == (400, "Chargeback at Stripe")
    callback = GatewayCallback.objects.filter(kind="refunded").first()
    assert callback.reference == checkout.reference  # found from the retrieved charge


# -- a provider that cannot be asked ---------------------------------------------------------------


def test_an_unreachable_provider_leaves_the_callback_stored_and_retried(
    client, cast, ordered, midtrans
):
    _instance, invoice, checkout = ordered("midtrans")
    paid = midtrans.notification(checkout.reference, "paid")
    midtrans.status_down = 503
    assert post(client, "midtrans", *paid).status_code == 500  # Midtrans retries too
    callback = GatewayCallback.objects.get()
    assert callback.status == "failed" and callback.retry_at > timezone.now()
    assert not Payment.objects.exists()
    # Still down at the first retry: the next waits longer.
    with time_machine.travel(callback.retry_at + timedelta(seconds=1)):
        assert payments.retry_failed_callbacks() == 0
    callback.refresh_from_db()
    assert callback.attempts == 2 and callback.status == "failed"
    assert callback.retry_at - timezone.now() > timedelta(seconds=45)
    midtrans.status_down = 0
    with time_machine.travel(callback.retry_at + timedelta(seconds=1)):
        assert payments.retry_failed_callbacks() == 1
    paid_once(invoice, cast.alice.account)


def test_connection_refused_is_a_retry_not_a_credit(client, ordered, midtrans):
    _instance, invoice, checkout = ordered("midtrans")
    paid = midtrans.notification(checkout.reference, "paid")
    config = GatewayConfig.objects.get(code="midtrans")
    credentials = dict(config.credentials)
    good = credentials.get("core_api_base", "")
    credentials["core_api_base"] = f"http://127.0.0.1:{free_port()}"  # nothing listens
    config.credentials = credentials
    config.save()
    assert post(client, "midtrans", *paid).status_code == 500
    callback = GatewayCallback.objects.get()
    assert callback.status == "failed" and "could not be reached" in callback.error
    assert not Payment.objects.exists()
    credentials["core_api_base"] = good
    config.credentials = credentials
    config.save()
    with time_machine.travel(callback.retry_at + timedelta(seconds=1)):
        assert payments.retry_failed_callbacks() == 1
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID


def test_a_stored_xendit_callback_is_retried_without_its_token(client, cast, ordered, xendit):
    """The token is masked before storage; the retry reads the stored callback without it and
    still asks Xendit before anything moves."""
    _instance, invoice, checkout = ordered("xendit")
    xendit.get_down = 502
    headers, body = xendit.notification(checkout.reference, "paid")
    assert post(client, "xendit", headers, body).status_code == 500
    callback = GatewayCallback.objects.get()
    assert callback.headers["x-callback-token"] == "[masked]"
    xendit.get_down = 0
    with time_machine.travel(callback.retry_at + timedelta(seconds=1)):
        assert payments.retry_failed_callbacks() == 1
    paid_once(invoice, cast.alice.account)


def test_a_stored_stripe_refund_is_retried_after_the_signature_tolerance(
    client, greeter, policy, order, stripe
):
    plan = plan_in(greeter, policy, "EUR", 1_900, code="eur", name="EUR")
    _instance, invoice = order(plan_=plan)
    checkout = payments.start_checkout(invoice, "stripe", return_url="http://testserver/x/")
    post(client, "stripe", *stripe.notification(checkout.reference, "paid"))
    stripe.api_down = 503
    assert (
        post(client, "stripe", *stripe.notification(checkout.reference, "refunded")).status_code
        == 500
    )
    stripe.api_down = 0
    callback = GatewayCallback.objects.get(status="failed")
    with time_machine.travel(timezone.now() + timedelta(hours=2)):  # far past Stripe's 300 s
        assert payments.retry_failed_callbacks() == 1
    assert CreditNote.objects.get().total_minor == 1_900
    callback.refresh_from_db()
    assert callback.status == "processed"
