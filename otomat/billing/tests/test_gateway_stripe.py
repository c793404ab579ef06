"""Stripe Checkout adapter, through the official SDK, against the local fake Stripe: the session
create request (auth, form fields, IDR in hundredths), errors that never leak the secret key,
webhook events (every kind, and every way a signature or body can be wrong), duplicates, and the
hosted page's Pay and Cancel buttons.

Signatures in the verification tests are computed here from Stripe's documented scheme
(``t=<unix>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>``), not with the fake's or the SDK's
helpers, so that none of the three can share a mistake with the adapter."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from typing import Any

import httpx
import pytest
import stripe

from otomat.billing.gateways import REGISTRY, gateway_class
from otomat.billing.gateways.base import (
    CheckoutRequest,
    GatewayError,
    GatewayEvent,
    SignatureError,
)
from otomat.billing.gateways.fakes.server import FakeServer, Reply, Request
from otomat.billing.gateways.fakes.stripe import FakeStripe, parse_stripe_form
from otomat.billing.gateways.stripe_checkout import StripeGateway
from otomat.billing.money import Money
from otomat.testing.processes import free_port  # nothing listens on it

SECRET_KEY = "sk_test_51OtomatFakeKey0123456789abcdef"
WEBHOOK_SECRET = "whsec_OtomatFakeWebhookSecret0123456789"
RETURN_URL = "https://otomat.example/billing/return/PAY-2025-0001"


@pytest.fixture
def fake():
    with FakeStripe(secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET) as server:
        yield server


@pytest.fixture
def gateway(fake):
    return StripeGateway(**fake.gateway_settings())


@pytest.fixture
def offline():
    """An adapter for the verification-only tests: parse_callback makes no network call, so
    these need no server (and skip its half-second shutdown)."""
    return StripeGateway({"secret_key": SECRET_KEY, "webhook_secret": WEBHOOK_SECRET})


def checkout_request(reference: str = "PAY-2025-0001", **overrides: Any) -> CheckoutRequest:
    fields: dict[str, Any] = {
        "reference": reference,
        "amount": Money(1_250, "USD"),
        "description": "Otomat: Shop bot, 1 month",
        "customer_email": "owner@example.com",
        "customer_name": "Ann Owner",
        "language": "en",
        "return_url": RETURN_URL,
        "notify_url": "https://otomat.example/billing/callback/stripe",
    }
    fields.update(overrides)
    return CheckoutRequest(**fields)


def lower(headers: dict[str, str]) -> dict[str, str]:
    """Headers as the billing view hands them to parse_callback: lower-case keys."""
    return {key.lower(): value for key, value in headers.items()}


def parse(gateway: StripeGateway, notification: tuple[dict[str, str], bytes]) -> GatewayEvent:
    """Feed one of the fake's (headers, body) pairs to the adapter as the billing view would."""
    headers, body = notification
    return gateway.parse_callback(headers=lower(headers), body=body)


def signed(body: bytes, *, secret: str = WEBHOOK_SECRET, t: int | None = None) -> dict[str, str]:
    """A Stripe-Signature header computed from the documented scheme, independently."""
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"stripe-signature": f"t={t},v1={mac}"}


def event_body(event_type: str, obj: dict[str, Any], event_id: str = "evt_1Test") -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2025-03-31.basil",
            "created": 1_767_225_600,  # 2026-01-01T00:00:00Z
            "data": {"object": obj},
            "livemode": False,
            "type": event_type,
        }
    ).encode()


def session_object(**overrides: Any) -> dict[str, Any]:
    session = {
        "id": "cs_test_a1b2c3",
        "object": "checkout.session",
        "amount_total": 1_250,
        "currency": "usd",
        "client_reference_id": "PAY-2025-0001",
        "metadata": {"otomat_reference": "PAY-2025-0001"},
        "payment_intent": "pi_3Test",
        "payment_status": "paid",
        "status": "complete",
    }
    session.update(overrides)
    return session


# -- configuration ---------------------------------------------------------------------------------


def test_it_is_registered_with_its_credentials_and_currencies():
    assert gateway_class("stripe") is StripeGateway
    assert REGISTRY["stripe"].label == "Stripe"
    assert StripeGateway.currencies == {"IDR", "PLN", "USD", "EUR"}
    assert StripeGateway.default_api_base == "https://api.stripe.com"
    fields = {f.name: f for f in StripeGateway.credential_fields}
    assert set(fields) == {"secret_key", "webhook_secret"}
    assert all(f.secret and f.required for f in fields.values())


def test_missing_credentials_are_refused_by_name():
    with pytest.raises(GatewayError, match="Webhook signing secret"):
        StripeGateway({"secret_key": SECRET_KEY})


# -- create_checkout -------------------------------------------------------------------------------


def test_the_sdk_request_reaches_the_fake_with_the_key_and_every_param(fake, gateway):
    checkout = gateway.create_checkout(checkout_request(language="pl"))

    [create] = [r for r in fake.requests if r.path == "/v1/checkout/sessions"]
    assert create.method == "POST"
    assert create.headers["authorization"] == f"Bearer {SECRET_KEY}"
    assert create.headers["content-type"] == "application/x-www-form-urlencoded"
    assert create.headers["stripe-version"]  # the SDK pins its API version
    assert create.headers["idempotency-key"]
    params = parse_stripe_form(create.body)
    assert params == {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": "1250",
                    "product_data": {"name": "Otomat: Shop bot, 1 month"},
                },
                "quantity": "1",
            }
        ],
        "client_reference_id": "PAY-2025-0001",
        "metadata": {"otomat_reference": "PAY-2025-0001"},
        "payment_intent_data": {"metadata": {"otomat_reference": "PAY-2025-0001"}},
        "customer_email": "owner@example.com",
        "success_url": RETURN_URL,
        "cancel_url": RETURN_URL,
        "locale": "pl",
    }

    session = fake.checkouts["PAY-2025-0001"]
    assert checkout.provider_ref == session["id"]
    assert checkout.provider_ref.startswith("cs_test_")
    assert checkout.redirect_url == session["url"]
    assert checkout.redirect_url.startswith(fake.url)
    assert (session["amount_total"], session["currency"]) == (1_250, "usd")
    assert (session["status"], session["payment_status"], session["payment_intent"]) == (
        "open",
        "unpaid",
        None,
    )
    page = httpx.get(checkout.redirect_url)
    assert page.status_code == 200
    assert "12.50 USD" in page.text


def test_it_never_touches_the_sdk_globals(fake, gateway):
    before = (stripe.api_key, stripe.api_base)
    gateway.create_checkout(checkout_request())
    assert (stripe.api_key, stripe.api_base) == before


@pytest.mark.parametrize(("language", "locale"), [("id", "id"), ("en", "en"), ("de", "auto")])
def test_the_page_language_follows_the_customer(fake, gateway, language, locale):
    gateway.create_checkout(checkout_request(language=language))
    assert fake.checkouts["PAY-2025-0001"]["locale"] == locale


def test_an_empty_email_is_left_for_checkout_to_ask(fake, gateway):
    gateway.create_checkout(checkout_request(customer_email=""))
    assert "customer_email" not in parse_stripe_form(fake.requests[-1].body)


def test_idr_goes_out_in_hundredths_and_comes_back_in_whole_rupiah(fake, gateway):
    gateway.create_checkout(checkout_request(amount=Money(150_000, "IDR"), language="id"))
    params = parse_stripe_form(fake.requests[-1].body)
    price = params["line_items"][0]["price_data"]
    assert (price["currency"], price["unit_amount"]) == ("idr", "15000000")
    assert fake.checkouts["PAY-2025-0001"]["amount_total"] == 15_000_000

    headers, body = fake.notification("PAY-2025-0001", "paid")
    event = gateway.parse_callback(headers=lower(headers), body=body)
    assert event.amount == Money(150_000, "IDR")


def test_an_idr_amount_with_sen_is_refused(fake, gateway):
    gateway.create_checkout(checkout_request(amount=Money(150_000, "IDR")))
    headers, body = fake.notification("PAY-2025-0001", "paid", amount=15_000_050)
    with pytest.raises(SignatureError, match="whole number of IDR"):
        gateway.parse_callback(headers=lower(headers), body=body)


def test_a_non_positive_amount_is_refused_without_asking_stripe(fake, gateway):
    with pytest.raises(GatewayError, match="must be positive"):
        gateway.create_checkout(checkout_request(amount=Money(0, "EUR")))
    assert fake.requests == []


def test_a_wrong_key_is_a_gateway_error_that_does_not_contain_the_key(fake):
    wrong = "sk_test_51WrongKeyThatMustNeverBeShown999"
    gateway = StripeGateway(
        {"secret_key": wrong, "webhook_secret": WEBHOOK_SECRET}, api_base=fake.url
    )
    with pytest.raises(GatewayError) as caught:
        gateway.create_checkout(checkout_request())
    message = str(caught.value)
    assert "Stripe refused the secret key" in message
    assert "Invalid API Key provided" in message
    assert wrong not in message
    assert WEBHOOK_SECRET not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert fake.checkouts == {}


def test_stripe_refusing_a_parameter_names_it(fake, gateway):
    with pytest.raises(GatewayError, match=r"parameter success_url.*Missing required param"):
        gateway.create_checkout(checkout_request(return_url=""))
    assert SECRET_KEY not in str(fake.requests[-1].body)


def test_an_unreachable_api_is_a_gateway_error(fake):
    api_base = f"http://127.0.0.1:{free_port()}"
    gateway = StripeGateway(
        {"secret_key": SECRET_KEY, "webhook_secret": WEBHOOK_SECRET}, api_base=api_base
    )
    with pytest.raises(GatewayError, match="could not be reached") as caught:
        gateway.create_checkout(checkout_request())
    assert api_base in str(caught.value)
    assert SECRET_KEY not in str(caught.value)


# -- the fake's API, as Stripe answers it ----------------------------------------------------------


def test_the_fake_takes_basic_auth_and_refuses_a_missing_key_in_stripes_shape(fake):
    form = {
        "mode": "payment",
        "success_url": RETURN_URL,
        "line_items[0][price_data][currency]": "eur",
        "line_items[0][price_data][unit_amount]": "990",
        "line_items[0][price_data][product_data][name]": "Bot",
        "line_items[0][quantity]": "1",
    }
    url = f"{fake.url}/v1/checkout/sessions"
    ok = httpx.post(url, data=form, auth=(SECRET_KEY, ""))
    assert ok.status_code == 200
    assert ok.json()["object"] == "checkout.session"
    assert ok.json()["amount_total"] == 990

    anonymous = httpx.post(url, data=form)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "invalid_request_error"
    assert "did not provide an API key" in anonymous.json()["error"]["message"]

    basic = base64.b64encode(b"sk_test_nope:").decode()
    wrong = httpx.post(url, data=form, headers={"Authorization": f"Basic {basic}"})
    assert wrong.status_code == 401

    incomplete = httpx.post(url, data={"mode": "payment"}, auth=(SECRET_KEY, ""))
    assert incomplete.status_code == 400
    assert incomplete.json()["error"]["param"] == "success_url"


def test_the_sdk_retrieves_a_session_from_the_fake(fake, gateway):
    checkout = gateway.create_checkout(checkout_request())
    client = stripe.StripeClient(SECRET_KEY, base_addresses={"api": fake.url})
    session = client.v1.checkout.sessions.retrieve(checkout.provider_ref)
    assert session.id == checkout.provider_ref
    assert session.client_reference_id == "PAY-2025-0001"
    with pytest.raises(stripe.InvalidRequestError, match=r"No such checkout\.session"):
        client.v1.checkout.sessions.retrieve("cs_test_missing")


# -- parse_callback: every kind --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "stripe_type", "expected"),
    [
        ("paid", "checkout.session.completed", "paid"),
        ("pending", "checkout.session.completed", "pending"),
        ("failed", "checkout.session.async_payment_failed", "failed"),
        ("expired", "checkout.session.expired", "expired"),
        ("refunded", "charge.refunded", "refunded"),
    ],
)
def test_every_event_kind_is_mapped(fake, gateway, kind, stripe_type, expected):
    checkout = gateway.create_checkout(checkout_request(amount=Money(9_900, "PLN")))
    headers, body = fake.notification("PAY-2025-0001", kind)
    payload = json.loads(body)
    assert payload["type"] == stripe_type
    assert payload["id"].startswith("evt_")

    event = gateway.parse_callback(headers=lower(headers), body=body)
    assert event.kind == expected
    assert event.event_id == payload["id"]
    assert event.reference == "PAY-2025-0001"
    assert event.amount == Money(9_900, "PLN")
    assert event.occurred_at is not None
    assert event.occurred_at.timestamp() == payload["created"]
    if kind == "expired":  # no PaymentIntent was ever made: the session names the payment
        assert event.payment_id == checkout.provider_ref
    else:
        assert event.payment_id.startswith("pi_")


def test_the_payment_and_its_refund_share_the_payment_id(fake, gateway):
    gateway.create_checkout(checkout_request())
    paid = parse(gateway, fake.notification("PAY-2025-0001", "paid"))
    refunded = parse(gateway, fake.notification("PAY-2025-0001", "refunded"))
    assert paid.payment_id == refunded.payment_id
    assert paid.event_id != refunded.event_id


def test_async_payment_succeeded_is_paid(offline):
    body = event_body("checkout.session.async_payment_succeeded", session_object())
    event = offline.parse_callback(headers=signed(body), body=body)
    assert (event.kind, event.reference, event.payment_id) == ("paid", "PAY-2025-0001", "pi_3Test")
    assert event.amount == Money(1_250, "USD")


def test_the_reference_falls_back_to_the_metadata(offline):
    body = event_body("checkout.session.completed", session_object(client_reference_id=None))
    assert offline.parse_callback(headers=signed(body), body=body).reference == "PAY-2025-0001"


def refund_body(amount_refunded: int, previous: int | None, event_id: str) -> bytes:
    charge = {
        "id": "ch_3Test",
        "object": "charge",
        "amount": 5_000,
        "amount_refunded": amount_refunded,
        "currency": "eur",
        "metadata": {"otomat_reference": "PAY-2025-0001"},
        "payment_intent": "pi_3Test",
        "refunded": amount_refunded == 5_000,
    }
    payload = json.loads(event_body("charge.refunded", charge, event_id=event_id))
    if previous is not None:
        payload["data"]["previous_attributes"] = {"amount_refunded": previous}
    return json.dumps(payload).encode()


def test_each_partial_refund_reports_its_own_amount(offline):
    # 20.00 then 30.00 of a 50.00 charge: the payments service credits each event's amount,
    # so the second must be 30.00, not the running total of 50.00.
    amounts = []
    for event_id, so_far, before in (("evt_r1", 2_000, 0), ("evt_r2", 5_000, 2_000)):
        body = refund_body(so_far, before, event_id)
        event = offline.parse_callback(headers=signed(body), body=body)
        assert (event.kind, event.reference, event.payment_id) == (
            "refunded",
            "PAY-2025-0001",
            "pi_3Test",
        )
        amounts.append(event.amount)
    assert amounts == [Money(2_000, "EUR"), Money(3_000, "EUR")]


def test_a_refund_without_the_previous_amount_reports_the_running_total(offline):
    body = refund_body(2_000, None, "evt_r1")
    event = offline.parse_callback(headers=signed(body), body=body)
    assert event.amount == Money(2_000, "EUR")
    assert "previous amount unknown" in event.detail


@pytest.mark.parametrize(
    ("event_type", "obj"),
    [
        ("customer.created", {"id": "cus_1", "object": "customer"}),
        ("payment_intent.succeeded", {"id": "pi_1", "object": "payment_intent"}),
        # A session from another integration on the same account (a Payment Link, say).
        (
            "checkout.session.completed",
            session_object(client_reference_id=None, metadata={}),
        ),
        ("checkout.session.completed", session_object(payment_status="no_payment_required")),
    ],
)
def test_other_events_are_ignored(offline, event_type, obj):
    body = event_body(event_type, obj, event_id="evt_other")
    event = offline.parse_callback(headers=signed(body), body=body)
    assert (event.kind, event.event_id) == ("ignored", "evt_other")


# -- parse_callback: verification ------------------------------------------------------------------


def test_an_independently_signed_event_verifies(offline):
    body = event_body("checkout.session.completed", session_object())
    event = offline.parse_callback(headers=signed(body), body=body)
    assert (event.kind, event.event_id, event.amount) == ("paid", "evt_1Test", Money(1_250, "USD"))


def test_the_fakes_signature_is_the_documented_one(fake, gateway):
    gateway.create_checkout(checkout_request())
    t = int(time.time()) - 5
    headers, body = fake.notification("PAY-2025-0001", "paid", timestamp=t)
    assert headers["Stripe-Signature"] == signed(body, t=t)["stripe-signature"]


def test_a_forged_signature_is_refused(fake, gateway):
    gateway.create_checkout(checkout_request())
    headers, body = fake.forged_notification("PAY-2025-0001", "paid")
    with pytest.raises(SignatureError):
        gateway.parse_callback(headers=lower(headers), body=body)


def test_a_tampered_body_is_refused(fake, gateway):
    gateway.create_checkout(checkout_request())
    headers, body = fake.notification("PAY-2025-0001", "paid")
    tampered = body.replace(b'"amount_total": 1250', b'"amount_total": 125000')
    assert tampered != body
    with pytest.raises(SignatureError):
        gateway.parse_callback(headers=lower(headers), body=tampered)


def test_a_stale_timestamp_is_refused_and_a_recent_one_is_not(fake, gateway):
    gateway.create_checkout(checkout_request())
    now = int(time.time())
    headers, body = fake.notification("PAY-2025-0001", "paid", timestamp=now - 400)
    with pytest.raises(SignatureError, match="tolerance"):
        gateway.parse_callback(headers=lower(headers), body=body)
    headers, body = fake.notification("PAY-2025-0001", "paid", timestamp=now - 200)
    assert gateway.parse_callback(headers=lower(headers), body=body).kind == "paid"


@pytest.mark.parametrize(
    "header",
    [
        None,  # missing
        "",
        "garbage",
        "t=notanumber,v1=abc",
        "v1=0123abcd",  # no timestamp
        "t=1767225600",  # no signature
        "t=1767225600,v0=0123abcd",  # another scheme only
    ],
)
def test_a_missing_or_malformed_header_is_refused(offline, header):
    body = event_body("checkout.session.completed", session_object())
    headers = {} if header is None else {"stripe-signature": header}
    with pytest.raises(SignatureError):
        offline.parse_callback(headers=headers, body=body)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'"a string"', b"\xff\xfe not utf-8", b'{"object": "event"}'],
)
def test_a_signed_body_that_is_not_an_event_is_refused(offline, body):
    with pytest.raises(SignatureError):
        offline.parse_callback(headers=signed(body), body=body)


@pytest.mark.parametrize(
    "overrides",
    [
        {"amount_total": "1250"},
        {"amount_total": None},
        {"amount_total": True},
        {"currency": "gbp"},
        {"client_reference_id": 42},
        {"client_reference_id": None, "metadata": "otomat"},
    ],
)
def test_a_signed_session_of_the_wrong_shape_is_refused(offline, overrides):
    body = event_body("checkout.session.completed", session_object(**overrides))
    with pytest.raises(SignatureError):
        offline.parse_callback(headers=signed(body), body=body)


def test_the_webhook_secret_of_another_endpoint_does_not_verify(offline):
    body = event_body("checkout.session.completed", session_object())
    with pytest.raises(SignatureError):
        offline.parse_callback(headers=signed(body, secret="whsec_another"), body=body)


# -- duplicates ------------------------------------------------------------------------------------


def test_a_duplicate_has_the_same_event_id_and_a_suffix_makes_another(fake, gateway):
    gateway.create_checkout(checkout_request())
    first = parse(gateway, fake.notification("PAY-2025-0001", "paid"))
    again = parse(gateway, fake.notification("PAY-2025-0001", "paid"))
    other = parse(gateway, fake.notification("PAY-2025-0001", "paid", event_suffix="-2"))
    assert first.event_id == again.event_id
    assert first == again
    assert other.event_id != first.event_id
    assert other.payment_id == first.payment_id  # the same money movement


# -- the hosted page -------------------------------------------------------------------------------


class Receiver(FakeServer):
    """Otomat's webhook endpoint in miniature: verifies with the adapter, answers as it would."""

    def __init__(self, gateway: StripeGateway) -> None:
        super().__init__()
        self.gateway = gateway
        self.events: list[GatewayEvent | None] = []
        self.route("POST", "/billing/callback/stripe", self._receive)

    def _receive(self, request: Request) -> Reply:
        try:
            event = self.gateway.parse_callback(headers=request.headers, body=request.body)
        except SignatureError:
            event = None
        self.events.append(event)
        status, content_type, text = self.gateway.callback_reply(event)
        return Reply(status, text.encode(), {"Content-Type": content_type})


@pytest.fixture
def receiver(gateway):
    with Receiver(gateway) as server:
        yield server


def _form_action(page: str, button: str) -> str:
    match = re.search(rf'<form method="post" action="([^"]+)"[^>]*><button id="{button}">', page)
    assert match, f"no {button} form on the page"
    return match.group(1)


def test_the_pay_button_delivers_the_signed_event_and_returns_the_customer(fake, gateway, receiver):
    fake.notify_url = f"{receiver.url}/billing/callback/stripe"
    checkout = gateway.create_checkout(checkout_request(amount=Money(75_000, "IDR")))
    page = httpx.get(checkout.redirect_url)
    assert "75000.00 IDR" in page.text

    action = _form_action(page.text, "pay")
    reply = httpx.post(httpx.URL(checkout.redirect_url).join(action), follow_redirects=False)

    assert reply.status_code == 303
    assert reply.headers["location"] == RETURN_URL
    [event] = receiver.events
    assert event is not None, "the delivered event did not verify"
    assert (event.kind, event.reference, event.amount) == (
        "paid",
        "PAY-2025-0001",
        Money(75_000, "IDR"),
    )
    assert [r.status_code for r in fake.callbacks] == [200]
    session = fake.checkouts["PAY-2025-0001"]
    assert (session["status"], session["payment_status"]) == ("complete", "paid")
    assert session["payment_intent"] == event.payment_id

    # The session is complete: the page and a second click no longer work, and nothing is sent.
    assert httpx.get(checkout.redirect_url).status_code == 410
    assert httpx.post(httpx.URL(checkout.redirect_url).join(action)).status_code == 410
    assert len(receiver.events) == 1


def test_the_cancel_button_expires_the_session(fake, gateway, receiver):
    fake.notify_url = f"{receiver.url}/billing/callback/stripe"
    checkout = gateway.create_checkout(checkout_request())
    page = httpx.get(checkout.redirect_url)
    action = _form_action(page.text, "cancel")
    reply = httpx.post(httpx.URL(checkout.redirect_url).join(action), follow_redirects=False)

    assert reply.status_code == 303
    assert reply.headers["location"] == RETURN_URL
    [event] = receiver.events
    assert event is not None
    assert (event.kind, event.payment_id) == ("expired", checkout.provider_ref)
    assert fake.checkouts["PAY-2025-0001"]["status"] == "expired"


def test_deliver_posts_to_the_endpoint_and_a_forgery_is_answered_401(fake, gateway, receiver):
    gateway.create_checkout(checkout_request())
    url = f"{receiver.url}/billing/callback/stripe"
    assert fake.deliver("PAY-2025-0001", "paid", url=url).status_code == 200
    headers, body = fake.forged_notification("PAY-2025-0001")
    assert fake.post_callback(url, body, headers).status_code == 401
    assert [e.kind if e else None for e in receiver.events] == ["paid", None]
    with pytest.raises(ValueError, match="no webhook endpoint"):
        fake.deliver("PAY-2025-0001")
