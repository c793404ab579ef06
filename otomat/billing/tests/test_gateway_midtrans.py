"""Midtrans Snap adapter against the local fake Midtrans: the Snap request (shape, Basic auth,
the notification override), notifications (every status, and every way one can be wrong),
refunds, the hosted page's buttons, and errors that never show the server key.

Signatures are computed here with hashlib from Midtrans' documented formula,
SHA512(order_id + status_code + gross_amount + ServerKey), not with the adapter's helper, so
that the adapter, the fake and this test cannot share a mistake."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import httpx
import pytest

from otomat.billing.gateways import REGISTRY, base, gateway_class
from otomat.billing.gateways.base import CheckoutRequest, GatewayError, SignatureError
from otomat.billing.gateways.fakes.midtrans import FakeMidtrans
from otomat.billing.gateways.fakes.server import FakeServer, Reply, Request
from otomat.billing.gateways.midtrans import SANDBOX_API_BASE, MidtransGateway
from otomat.billing.money import Money
from otomat.testing.processes import free_port  # nothing listens on it

SERVER_KEY = "SB-Mid-server-T3stK3y9f8e7d6c5"
REFERENCE = "otm42x9f8e7d6c5b4a"


def documented_signature(order_id: str, status_code: str, gross_amount: str, key: str) -> str:
    return hashlib.sha512(f"{order_id}{status_code}{gross_amount}{key}".encode()).hexdigest()


def signed(data: dict, key: str = SERVER_KEY) -> bytes:
    """``data`` as a notification body, signed as Midtrans documents it."""
    data = {
        **data,
        "signature_key": documented_signature(
            data["order_id"], data["status_code"], data["gross_amount"], key
        ),
    }
    return json.dumps(data).encode()


def notification_data(**fields) -> dict:
    """A settlement notification like Midtrans' documented samples, with ``fields`` changed."""
    data = {
        "transaction_time": "2026-05-01 14:03:09",
        "transaction_status": "settlement",
        "transaction_id": "6ee793df-9b1d-4343-8eda-cc9663b4222f",
        "status_message": "midtrans payment notification",
        "status_code": "200",
        "payment_type": "bank_transfer",
        "order_id": REFERENCE,
        "merchant_id": "G000000001",
        "gross_amount": "150000.00",
        "fraud_status": "accept",
        "currency": "IDR",
        "settlement_time": "2026-05-01 14:05:11",
    }
    data.update(fields)
    return data


@pytest.fixture
def fake():
    with FakeMidtrans(server_key=SERVER_KEY) as server:
        yield server


@pytest.fixture
def gateway(fake):
    return MidtransGateway(**fake.gateway_settings())


def checkout_request(reference: str = REFERENCE, **overrides) -> CheckoutRequest:
    fields = {
        "reference": reference,
        "amount": Money(150_000, "IDR"),
        "description": "Otomat: Shop bot, 1 month",
        "customer_email": "budi@example.com",
        "customer_name": "Budi Santoso",
        "language": "id",
        "return_url": "https://otomat.example/billing/return/42",
        "notify_url": "https://otomat.example/billing/callback/midtrans",
    }
    fields.update(overrides)
    return CheckoutRequest(**fields)


@pytest.fixture
def checkout(fake, gateway):
    return gateway.create_checkout(checkout_request())


def parse(gateway: MidtransGateway, headers: dict[str, str], body: bytes):
    return gateway.parse_callback(headers=headers, body=body)


# -- configuration ---------------------------------------------------------------------------------


def test_it_is_registered_for_idr_with_its_credentials():
    assert gateway_class("midtrans") is MidtransGateway
    assert REGISTRY["midtrans"].label == "Midtrans"
    assert MidtransGateway.currencies == frozenset({"IDR"})
    fields = {f.name: f for f in MidtransGateway.credential_fields}
    assert fields["server_key"].secret and fields["server_key"].required
    assert not fields["client_key"].secret and not fields["client_key"].required
    with pytest.raises(GatewayError, match="Server key"):
        MidtransGateway({"client_key": "SB-Mid-client-x"})


def test_the_api_base_follows_the_key_unless_given():
    assert MidtransGateway({"server_key": "Mid-server-live"}).api_base == "https://app.midtrans.com"
    assert MidtransGateway({"server_key": "SB-Mid-server-x"}).api_base == SANDBOX_API_BASE
    explicit = MidtransGateway({"server_key": "SB-Mid-server-x"}, api_base="http://127.0.0.1:9/")
    assert explicit.api_base == "http://127.0.0.1:9"


# -- checkout --------------------------------------------------------------------------------------


def test_it_creates_the_snap_transaction_as_documented(fake, gateway):
    request = checkout_request()
    checkout = gateway.create_checkout(request)

    [sent] = [r for r in fake.requests if r.path == "/snap/v1/transactions"]
    assert sent.method == "POST"
    basic = base64.b64encode(f"{SERVER_KEY}:".encode()).decode()
    assert sent.headers["authorization"] == f"Basic {basic}"  # server key, empty password
    assert sent.headers["x-override-notification"] == request.notify_url
    assert sent.headers["content-type"] == "application/json"
    body = sent.json()
    assert body["transaction_details"] == {"order_id": REFERENCE, "gross_amount": 150_000}
    assert type(body["transaction_details"]["gross_amount"]) is int  # whole rupiah, no float
    assert body["customer_details"] == {"first_name": "Budi Santoso", "email": "budi@example.com"}
    assert body["callbacks"] == {"finish": request.return_url}
    assert sum(i["price"] * i["quantity"] for i in body["item_details"]) == 150_000
    assert SERVER_KEY not in sent.body.decode()

    stored = fake.checkouts[REFERENCE]
    assert checkout.provider_ref == stored["provider_ref"]
    assert checkout.redirect_url == stored["redirect_url"]
    assert checkout.redirect_url.startswith(f"{fake.url}/snap/v4/redirection/")
    assert stored["amount"] == Money(150_000, "IDR")
    assert stored["notify_url"] == request.notify_url


def test_without_a_notify_url_no_override_is_sent(fake, gateway):
    gateway.create_checkout(checkout_request(notify_url="", customer_email=""))
    [sent] = fake.requests
    assert "x-override-notification" not in sent.headers
    assert "email" not in sent.json()["customer_details"]
    assert fake.checkouts[REFERENCE]["notify_url"] == ""


def test_the_hosted_page_shows_the_amount(fake, checkout):
    page = httpx.get(checkout.redirect_url)
    assert page.status_code == 200
    assert "Rp150.000" in page.text
    assert httpx.get(f"{fake.url}/snap/v4/redirection/{'0' * 36}").status_code == 404


def test_a_wrong_server_key_is_refused_without_showing_the_key(fake):
    wrong = "SB-Mid-server-WrongKey000"
    gateway = MidtransGateway({"server_key": wrong}, api_base=fake.url)
    with pytest.raises(GatewayError, match="HTTP 401") as excinfo:
        gateway.create_checkout(checkout_request())
    assert "Access denied" in str(excinfo.value)
    assert wrong not in str(excinfo.value) and SERVER_KEY not in str(excinfo.value)
    assert fake.checkouts == {}


def test_a_reused_order_id_is_refused(fake, gateway):
    gateway.create_checkout(checkout_request())
    with pytest.raises(GatewayError, match="order_id has already been taken"):
        gateway.create_checkout(checkout_request())


def test_midtrans_validation_errors_are_reported(gateway):
    with pytest.raises(GatewayError, match=r"HTTP 400.*order_id contains invalid characters"):
        gateway.create_checkout(checkout_request(reference="INV/2026/42"))
    with pytest.raises(GatewayError, match="email format is invalid"):
        gateway.create_checkout(checkout_request(customer_email="not an address"))


@pytest.mark.parametrize("amount", [Money(1_000, "USD"), Money(15_000, "PLN")])
def test_another_currency_is_refused_before_any_request(fake, gateway, amount):
    with pytest.raises(GatewayError, match="IDR only"):
        gateway.create_checkout(checkout_request(amount=amount))
    assert fake.requests == []


def test_a_zero_amount_is_refused_before_any_request(fake, gateway):
    with pytest.raises(GatewayError, match="minimum"):
        gateway.create_checkout(checkout_request(amount=Money(0, "IDR")))
    assert fake.requests == []


def test_an_unreachable_midtrans_is_a_gateway_error():
    gateway = MidtransGateway(
        {"server_key": SERVER_KEY}, api_base=f"http://127.0.0.1:{free_port()}"
    )
    with pytest.raises(GatewayError, match="could not be reached") as excinfo:
        gateway.create_checkout(checkout_request())
    assert SERVER_KEY not in str(excinfo.value)
    assert excinfo.value.__cause__ is None  # the request (and its auth header) is not chained


def test_requests_use_a_ten_second_timeout(monkeypatch, gateway):
    seen = {}

    def fake_request(method, url, **kwargs):  # every adapter request goes through http_client()
        seen.update(kwargs, url=url)
        raise httpx.ConnectTimeout("timed out")

    monkeypatch.setattr(base, "http_client", lambda: SimpleNamespace(request=fake_request))
    with pytest.raises(GatewayError, match="ConnectTimeout"):
        gateway.create_checkout(checkout_request())
    assert seen["timeout"] == 10
    assert seen["url"].endswith("/snap/v1/transactions")


def test_a_non_json_or_tokenless_answer_is_a_gateway_error():
    replies = iter([Reply(201, "<html>maintenance</html>"), Reply(201, {"redirect_url": "x"})])
    with FakeServer() as server:
        server.route("POST", r"/snap/v1/transactions", lambda request: next(replies))
        gateway = MidtransGateway({"server_key": SERVER_KEY}, api_base=server.url)
        with pytest.raises(GatewayError, match="not a JSON object"):
            gateway.create_checkout(checkout_request())
        with pytest.raises(GatewayError, match="without a Snap token"):
            gateway.create_checkout(checkout_request())


def test_an_error_echoing_the_key_is_scrubbed():
    echo = Reply(500, {"error_messages": [f"internal error for key {SERVER_KEY}"]})
    with FakeServer() as server:
        server.route("POST", r"/snap/v1/transactions", lambda request: echo)
        gateway = MidtransGateway({"server_key": SERVER_KEY}, api_base=server.url)
        with pytest.raises(GatewayError) as excinfo:
            gateway.create_checkout(checkout_request())
    message = str(excinfo.value)
    assert "HTTP 500" in message and "internal error" in message
    assert SERVER_KEY not in message


# -- notifications ---------------------------------------------------------------------------------


def test_the_fake_signs_with_the_documented_formula(fake, checkout):
    headers, body = fake.notification(REFERENCE, "paid")
    data = json.loads(body)
    assert headers["content-type"] == "application/json"
    assert data["gross_amount"] == "150000.00"  # as Midtrans writes it
    assert data["signature_key"] == documented_signature(REFERENCE, "200", "150000.00", SERVER_KEY)


def test_a_notification_signed_from_the_documented_formula_verifies(gateway):
    event = parse(gateway, {}, signed(notification_data()))
    assert event.kind == "paid"
    assert event.reference == REFERENCE
    assert event.payment_id == "6ee793df-9b1d-4343-8eda-cc9663b4222f"
    assert event.event_id == "6ee793df-9b1d-4343-8eda-cc9663b4222f:settlement"
    assert event.amount == Money(150_000, "IDR")
    assert event.occurred_at == datetime(2026, 5, 1, 14, 5, 11, tzinfo=ZoneInfo("Asia/Jakarta"))
    assert event.detail == "settlement via bank_transfer"


@pytest.mark.parametrize(
    ("kind", "status", "status_code"),
    [
        ("paid", "settlement", "200"),
        ("pending", "pending", "201"),
        ("failed", "deny", "202"),
        ("expired", "expire", "202"),
        ("refunded", "refund", "200"),
    ],
)
def test_every_kind_of_the_fake_is_mapped(fake, gateway, checkout, kind, status, status_code):
    headers, body = fake.notification(REFERENCE, kind)
    data = json.loads(body)
    assert (data["transaction_status"], data["status_code"]) == (status, status_code)
    event = parse(gateway, headers, body)
    assert event.kind == kind
    assert event.reference == REFERENCE
    assert event.payment_id == data["transaction_id"]
    assert event.event_id.startswith(f"{data['transaction_id']}:{status}")
    assert event.amount == Money(150_000, "IDR")


@pytest.mark.parametrize(
    ("status", "fraud_status", "status_code", "kind"),
    [
        ("capture", "accept", "200", "paid"),
        ("capture", "challenge", "201", "pending"),
        ("capture", "deny", "202", "failed"),
        ("capture", None, "200", "pending"),  # undecided is not paid
        ("settlement", None, "200", "paid"),
        ("cancel", None, "200", "failed"),
        ("failure", None, "202", "failed"),
        ("partial_refund", "accept", "200", "refunded"),
        ("chargeback", "accept", "200", "refunded"),
        ("authorize", "accept", "200", "ignored"),
        ("something_new", None, "200", "ignored"),
    ],
)
def test_every_documented_status_is_mapped(gateway, status, fraud_status, status_code, kind):
    data = notification_data(
        transaction_status=status, fraud_status=fraud_status, status_code=status_code
    )
    event = parse(gateway, {}, signed(data))
    assert event.kind == kind
    assert event.event_id == f"{data['transaction_id']}:{status}"


def test_duplicates_share_the_event_id_and_other_events_do_not(fake, gateway, checkout):
    first = parse(gateway, *fake.notification(REFERENCE, "paid"))
    again = parse(gateway, *fake.notification(REFERENCE, "paid"))
    expired = parse(gateway, *fake.notification(REFERENCE, "expired"))
    retry = parse(gateway, *fake.notification(REFERENCE, "paid", event_suffix="-2"))
    assert again.event_id == first.event_id
    assert again.payment_id == first.payment_id
    assert expired.event_id != first.event_id
    assert expired.payment_id == first.payment_id  # the same transaction, another status
    assert retry.event_id != first.event_id and retry.payment_id != first.payment_id


def test_an_amount_override_is_signed_and_reported(fake, gateway, checkout):
    headers, body = fake.notification(REFERENCE, "paid", amount=Money(100_000, "IDR"))
    assert json.loads(body)["gross_amount"] == "100000.00"
    assert parse(gateway, headers, body).amount == Money(100_000, "IDR")
    assert parse(gateway, *fake.notification(REFERENCE, "paid", amount=90_000)).amount == Money(
        90_000, "IDR"
    )


def test_a_partial_refund_reports_the_refunded_amount(fake, gateway, checkout):
    headers, body = fake.notification(REFERENCE, "refunded", amount=Money(50_000, "IDR"))
    data = json.loads(body)
    assert (data["transaction_status"], data["gross_amount"]) == ("partial_refund", "150000.00")
    event = parse(gateway, headers, body)
    assert (event.kind, event.amount) == ("refunded", Money(50_000, "IDR"))


def test_each_refund_is_its_own_event_and_its_bank_confirmation_a_duplicate(gateway):
    refund_1 = {"refund_chargeback_id": 1, "refund_amount": "50000.00", "refund_key": "r1"}
    refund_2 = {"refund_chargeback_id": 2, "refund_amount": "30000.00", "refund_key": "r2"}
    base = {"transaction_status": "partial_refund", "status_code": "200"}
    first = parse(
        gateway,
        {},
        signed(notification_data(**base, refund_amount="50000.00", refunds=[refund_1])),
    )
    confirmed = parse(
        gateway,
        {},
        signed(
            notification_data(
                **base,
                refund_amount="50000.00",
                refunds=[{**refund_1, "bank_confirmed_at": "2026-05-02 10:00:00"}],
            )
        ),
    )
    second = parse(
        gateway,
        {},
        signed(notification_data(**base, refund_amount="80000.00", refunds=[refund_1, refund_2])),
    )
    assert confirmed.event_id == first.event_id
    assert second.event_id != first.event_id
    assert (first.amount, second.amount) == (Money(50_000, "IDR"), Money(30_000, "IDR"))
    # Without a refund list, the (only) refund_amount; without even that, the provider's word
    # is "refunded" and the billing code decides how much.
    bare = notification_data(transaction_status="refund", refund_amount="150000.00")
    assert parse(gateway, {}, signed(bare)).amount == Money(150_000, "IDR")
    assert parse(gateway, {}, signed(notification_data(transaction_status="refund"))).amount is None


def test_a_refund_larger_than_the_transaction_is_refused(gateway):
    data = notification_data(
        transaction_status="refund",
        refunds=[{"refund_chargeback_id": 1, "refund_amount": "150001.00"}],
    )
    with pytest.raises(SignatureError, match="exceeds"):
        parse(gateway, {}, signed(data))


def test_a_forged_notification_is_refused(fake, gateway, checkout):
    with pytest.raises(SignatureError, match="does not verify"):
        parse(gateway, *fake.forged_notification(REFERENCE, "paid"))
    other_key = MidtransGateway({"server_key": "SB-Mid-server-other"}, api_base=fake.url)
    with pytest.raises(SignatureError):
        parse(other_key, *fake.notification(REFERENCE, "paid"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gross_amount", "1500000.00"),  # amount changed after signing
        ("gross_amount", "150000"),  # the same amount written differently is another string
        ("status_code", "201"),
        ("order_id", "otm43x000000000000"),
        ("signature_key", "0" * 128),
        ("signature_key", "ł" * 128),  # non-ASCII must not crash compare_digest
    ],
)
def test_a_tampered_notification_is_refused(fake, gateway, checkout, field, value):
    headers, body = fake.notification(REFERENCE, "paid")
    data = {**json.loads(body), field: value}
    with pytest.raises(SignatureError):
        parse(gateway, headers, json.dumps(data).encode())


def test_a_pending_notification_relabelled_as_paid_is_refused(fake, gateway, checkout):
    # transaction_status is not signed; status_code is, and a payment has 200.
    headers, body = fake.notification(REFERENCE, "pending")
    data = {**json.loads(body), "transaction_status": "settlement"}
    with pytest.raises(SignatureError, match="status_code"):
        parse(gateway, headers, json.dumps(data).encode())


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'"settlement"',
        b"null",
        b"{}",
        b"\xff\xfe{}",
        b'{"gross_amount": NaN}',
        b"[" * 100_000,
        b'{"pad": "' + b"x" * 70_000 + b'"}',  # larger than any notification
        "{}".encode("utf-16"),
    ],
    ids=lambda b: repr(b[:20]),
)
def test_malformed_notifications_are_signature_errors(gateway, body):
    with pytest.raises(SignatureError):
        parse(gateway, {}, body)


@pytest.mark.parametrize(
    "field", ["order_id", "status_code", "gross_amount", "transaction_status", "transaction_id"]
)
def test_a_notification_missing_a_field_is_refused(gateway, field):
    data = notification_data()
    body = signed(data)
    data = {**json.loads(body)}
    del data[field]
    with pytest.raises(SignatureError):
        parse(gateway, {}, json.dumps(data).encode())
    without_signature = {k: v for k, v in json.loads(body).items() if k != "signature_key"}
    with pytest.raises(SignatureError):
        parse(gateway, {}, json.dumps(without_signature).encode())


@pytest.mark.parametrize(
    "fields",
    [
        {"gross_amount": 150000},  # a number, not the string Midtrans signs
        {"order_id": 42},
        {"transaction_id": ["x"]},
        {"fraud_status": 1},
        {"currency": "USD"},
        {"refunds": "all", "transaction_status": "refund"},
    ],
    ids=str,
)
def test_wrongly_typed_or_foreign_notifications_are_refused(gateway, fields):
    data = notification_data()
    body = json.loads(signed(data))
    body.update(fields)
    with pytest.raises(SignatureError):
        parse(gateway, {}, json.dumps(body).encode())


@pytest.mark.parametrize("gross_amount", ["150000.50", "1e5", "-150000.00", " 150000.00", "0x10"])
def test_only_whole_rupiah_amounts_are_accepted_even_when_signed(gateway, gross_amount):
    with pytest.raises(SignatureError, match="gross_amount"):
        parse(gateway, {}, signed(notification_data(gross_amount=gross_amount)))


def test_a_lone_surrogate_is_a_signature_error(gateway):
    body = signed(notification_data()).replace(b'"otm42', b'"\\ud800otm42', 1)
    with pytest.raises(SignatureError):
        parse(gateway, {}, body)


# -- the hosted page and delivery ----------------------------------------------------------------


class Receiver(FakeServer):
    """Otomat's side of the notification: keeps what arrives and answers 200."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Request] = []
        self.route("POST", r"/billing/callback/midtrans", self._receive)

    @property
    def notify_url(self) -> str:
        return f"{self.url}/billing/callback/midtrans"

    def _receive(self, request: Request) -> Reply:
        self.received.append(request)
        return Reply(200, {"ok": True})


def form_actions(html: str) -> tuple[str, str]:
    pay, cancel = re.findall(r'<form method="post" action="([^"]+)"', html)
    return pay, cancel


def test_the_pay_button_notifies_and_sends_the_customer_back(fake, gateway):
    with Receiver() as receiver:
        request = checkout_request(notify_url=receiver.notify_url)
        checkout = gateway.create_checkout(request)
        pay, _ = form_actions(httpx.get(checkout.redirect_url).text)
        answer = httpx.post(pay, follow_redirects=False)

        assert answer.status_code == 303
        assert answer.headers["location"] == (
            f"{request.return_url}?order_id={REFERENCE}&status_code=200"
            f"&transaction_status=settlement"
        )
        [notification] = receiver.received
        assert [r.status_code for r in fake.callbacks] == [200]

    event = parse(gateway, notification.headers, notification.body)
    assert (event.kind, event.reference, event.amount) == (
        "paid",
        REFERENCE,
        Money(150_000, "IDR"),
    )
    # What the page sent is the fake's "paid" notification: a redelivery is a duplicate.
    assert parse(gateway, *fake.notification(REFERENCE, "paid")).event_id == event.event_id
    assert fake.checkouts[REFERENCE]["status"] == "settlement"
    # Paid is final: the page refuses a second payment.
    assert httpx.post(pay, follow_redirects=False).status_code == 409


def test_the_cancel_button_expires_the_order(fake, gateway):
    with Receiver() as receiver:
        request = checkout_request(notify_url=receiver.notify_url)
        _, cancel = form_actions(httpx.get(gateway.create_checkout(request).redirect_url).text)
        answer = httpx.post(cancel, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith(f"{request.return_url}?order_id={REFERENCE}")
        [notification] = receiver.received
    assert parse(gateway, notification.headers, notification.body).kind == "expired"


def test_an_unreachable_receiver_does_not_stop_the_customer(fake, gateway):
    request = checkout_request(notify_url=f"http://127.0.0.1:{free_port()}/notify")
    pay, _ = form_actions(httpx.get(gateway.create_checkout(request).redirect_url).text)
    answer = httpx.post(pay, follow_redirects=False)
    assert answer.status_code == 303
    assert len(fake.delivery_errors) == 1


def test_deliver_uses_the_override_then_the_dashboard_url(gateway):
    with Receiver() as override, Receiver() as dashboard:
        with FakeMidtrans(server_key=SERVER_KEY, notify_url=dashboard.notify_url) as fake:
            gateway = MidtransGateway(**fake.gateway_settings())
            gateway.create_checkout(
                checkout_request("with-override", notify_url=override.notify_url)
            )
            gateway.create_checkout(checkout_request("dashboard-only", notify_url=""))

            assert fake.deliver("with-override").status_code == 200
            assert fake.deliver("dashboard-only", "expired").status_code == 200
            assert fake.deliver("dashboard-only", url=override.notify_url).status_code == 200
            with pytest.raises(KeyError, match="no checkout"):
                fake.deliver("unknown")
        assert [r.body for r in override.received] == [
            fake.notification("with-override")[1],
            fake.notification("dashboard-only")[1],
        ]
        [expired] = dashboard.received
        assert parse(gateway, expired.headers, expired.body).kind == "expired"


def test_the_fake_refuses_what_midtrans_refuses(fake):
    url = f"{fake.url}/snap/v1/transactions"
    auth = (SERVER_KEY, "")
    assert httpx.post(url, json={}).status_code == 401
    assert httpx.post(url, json={}, auth=("SB-Mid-server-other", "")).json() == {
        "error_messages": [
            "Access denied due to unauthorized transaction, please check client or server key",
            "Visit https://snap-docs.midtrans.com/#request-headers for more details",
        ]
    }
    cases = [
        ({}, "transaction_details is required"),
        ({"transaction_details": {"gross_amount": 1}}, "order_id is required"),
        ({"transaction_details": {"order_id": "a" * 51, "gross_amount": 1}}, "too long"),
        ({"transaction_details": {"order_id": "a"}}, "gross_amount is required"),
        ({"transaction_details": {"order_id": "a", "gross_amount": 1.5}}, "must be an integer"),
        ({"transaction_details": {"order_id": "a", "gross_amount": 0}}, "greater than"),
        (
            {
                "transaction_details": {"order_id": "a", "gross_amount": 10},
                "item_details": [{"id": "x", "name": "x", "price": 3, "quantity": 3}],
            },
            "not equal to the sum of item_details",
        ),
    ]
    for body, message in cases:
        answer = httpx.post(url, json=body, auth=auth)
        assert answer.status_code == 400, body
        assert any(message in m for m in answer.json()["error_messages"]), answer.json()
    assert fake.checkouts == {}
    with pytest.raises(ValueError, match="kind"):
        fake.notification("anything", "chargeback")


# -- Get Status (confirmation) ---------------------------------------------------------------------


def test_the_core_api_host_follows_the_snap_host_unless_set():
    assert MidtransGateway({"server_key": "Mid-server-x"}).core_api_base == (
        "https://api.midtrans.com"
    )
    assert MidtransGateway({"server_key": "SB-Mid-server-x"}).core_api_base == (
        "https://api.sandbox.midtrans.com"
    )
    proxy = MidtransGateway({"server_key": "x"}, api_base="https://proxy.example/")
    assert proxy.core_api_base == "https://proxy.example"  # one host serves both
    explicit = MidtransGateway({"server_key": "x", "core_api_base": "https://core.example/"})
    assert explicit.core_api_base == "https://core.example"


def test_confirm_reads_get_status_and_trusts_only_its_answer(fake, gateway, checkout):
    headers, body = fake.notification(REFERENCE, "paid")
    relabelled = json.loads(body) | {"transaction_status": "refund", "transaction_id": "made-up"}
    hint = parse(gateway, headers, json.dumps(relabelled).encode())
    assert (hint.kind, hint.confirmed) == ("refunded", False)
    confirmed = gateway.confirm(hint)
    assert (confirmed.kind, confirmed.confirmed) == ("paid", True)
    assert confirmed.payment_id == json.loads(body)["transaction_id"]
    assert confirmed.amount == Money(150_000, "IDR") and confirmed.refunds == ()
    [request] = [r for r in fake.requests if r.path.endswith("/status")]
    assert request.path == f"/v2/{REFERENCE}/status"
    expected = base64.b64encode(f"{SERVER_KEY}:".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"


def test_confirm_of_an_unknown_order_is_not_confirmed(fake, gateway, checkout):
    from otomat.billing.gateways.base import GatewayEvent, NotConfirmed

    # The Snap page was never used: Midtrans has no transaction for the order yet.
    answer = httpx.get(f"{fake.url}/v2/{REFERENCE}/status", auth=(SERVER_KEY, ""))
    assert answer.status_code == 404
    assert answer.json()["status_code"] == "404"
    assert answer.json()["status_message"] == "Transaction doesn't exist."
    with pytest.raises(NotConfirmed, match="knows no transaction"):
        gateway.confirm(GatewayEvent(event_id="x", kind="paid", reference=REFERENCE))
    for bad in ("../snap/v1/transactions", "a" * 51, "order id", ""):
        with pytest.raises(NotConfirmed, match="cannot be an order id"):
            gateway.confirm(GatewayEvent(event_id="x", kind="paid", reference=bad))
    assert httpx.get(f"{fake.url}/v2/{REFERENCE}/status").status_code == 401


def test_confirm_failures_of_midtrans_are_gateway_errors(fake, gateway, checkout):
    from otomat.billing.gateways.base import GatewayEvent

    event = GatewayEvent(event_id="x", kind="paid", reference=REFERENCE)
    fake.notification(REFERENCE, "paid")
    fake.status_down = 503
    with pytest.raises(GatewayError, match="HTTP 503"):
        gateway.confirm(event)
    fake.status_down = 0
    wrong_key = MidtransGateway({"server_key": "SB-Mid-server-other"}, api_base=fake.url)
    with pytest.raises(GatewayError, match="HTTP 401"):
        wrong_key.confirm(event)
    with FakeServer() as server:  # a 404 that is not Midtrans' documented answer
        gone = MidtransGateway({"server_key": SERVER_KEY}, api_base=server.url)
        with pytest.raises(GatewayError):
            gone.confirm(event)


def test_a_refund_is_confirmed_with_every_refund_listed(fake, gateway, checkout):
    from otomat.billing.gateways.base import GatewayEvent

    fake.notification(REFERENCE, "paid")
    fake.notification(REFERENCE, "refunded", amount=50_000)
    fake.notification(REFERENCE, "refunded", amount=20_000, event_suffix="2")
    confirmed = gateway.confirm(GatewayEvent(event_id="x", kind="pending", reference=REFERENCE))
    assert confirmed.kind == "refunded"
    assert [(r.refund_id, r.amount.amount_minor) for r in confirmed.refunds] == [
        ("1", 50_000),
        ("2", 20_000),
    ]
    assert confirmed.event_id.endswith(":partial_refund:2")
