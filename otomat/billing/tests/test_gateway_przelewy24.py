"""Przelewy24 adapter against the local fake P24: transaction registration (shape, Basic auth,
sign), notifications (verification and every way one can be wrong), transaction/verify, the
hosted page's Pay button, and errors that never leak the API key or CRC key.

The signs are computed here from P24's documented formula written out as literal JSON text, not
with the adapter's helper, so that the adapter and this test cannot share a mistake."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import replace
from types import SimpleNamespace

import httpx
import pytest

from otomat.billing.gateways import REGISTRY, base, gateway_class
from otomat.billing.gateways.base import (
    CheckoutRequest,
    GatewayError,
    GatewayEvent,
    SignatureError,
)
from otomat.billing.gateways.fakes.przelewy24 import FakePrzelewy24
from otomat.billing.gateways.fakes.server import FakeServer, Reply, Request
from otomat.billing.gateways.przelewy24 import Przelewy24Gateway
from otomat.billing.money import Money
from otomat.testing.processes import free_port  # nothing listens on it

MERCHANT = 100200
POS = 100201
API_KEY = "p24-test-api-key-9f8e7d6c5b4a"
CRC = "p24-test-crc-0a1b2c3d4e5f"


def sha384(text: str) -> str:
    return hashlib.sha384(text.encode("utf-8")).hexdigest()


@pytest.fixture
def fake():
    with FakePrzelewy24(merchant_id=MERCHANT, pos_id=POS, api_key=API_KEY, crc=CRC) as server:
        yield server


@pytest.fixture
def gateway(fake):
    return Przelewy24Gateway(**fake.gateway_settings())


def checkout_request(reference: str = "PAY-2025-0001", **overrides) -> CheckoutRequest:
    fields = {
        "reference": reference,
        "amount": Money(12_300, "PLN"),
        "description": "Otomat: Shop bot, 1 month",
        "customer_email": "owner@example.com",
        "customer_name": "Jan Kowalski",
        "language": "pl",
        "return_url": "https://otomat.example/billing/return/PAY-2025-0001",
        "notify_url": "https://otomat.example/billing/callback/przelewy24",
    }
    fields.update(overrides)
    return CheckoutRequest(**fields)


# -- configuration ---------------------------------------------------------------------------------


def test_it_is_registered_with_its_credentials_and_currencies():
    assert gateway_class("przelewy24") is Przelewy24Gateway
    assert REGISTRY["przelewy24"].label == "Przelewy24"
    assert {"PLN", "EUR"} <= Przelewy24Gateway.currencies
    fields = {f.name: f for f in Przelewy24Gateway.credential_fields}
    assert not fields["merchant_id"].secret and not fields["pos_id"].secret
    assert fields["api_key"].secret and fields["crc"].secret
    assert not fields["pos_id"].required
    assert Przelewy24Gateway.default_api_base == "https://secure.przelewy24.pl"
    assert Przelewy24Gateway.sandbox_api_base == "https://sandbox.przelewy24.pl"


def test_it_refuses_incomplete_or_non_numeric_credentials():
    with pytest.raises(GatewayError, match="CRC key"):
        Przelewy24Gateway({"merchant_id": "1", "api_key": "k"})
    with pytest.raises(GatewayError, match="number"):
        Przelewy24Gateway({"merchant_id": "abc", "api_key": "k", "crc": "c"})


def test_a_blank_pos_id_defaults_to_the_merchant_id():
    gateway = Przelewy24Gateway({"merchant_id": "555", "pos_id": "", "api_key": "k", "crc": "c"})
    assert (gateway.merchant_id, gateway.pos_id) == (555, 555)
    assert gateway.api_base == "https://secure.przelewy24.pl"


# -- transaction/register --------------------------------------------------------------------------


def test_it_registers_the_transaction_as_documented(fake, gateway):
    request = checkout_request()
    checkout = gateway.create_checkout(request)

    [sent] = fake.requests
    assert (sent.method, sent.path) == ("POST", "/api/v1/transaction/register")
    # HTTP Basic: the POS ID as user name, the API key as password.
    expected_auth = base64.b64encode(f"{POS}:{API_KEY}".encode()).decode()
    assert sent.headers["authorization"] == f"Basic {expected_auth}"
    assert sent.headers["content-type"].startswith("application/json")

    body = sent.json()
    expected_sign = sha384(
        f'{{"sessionId":"PAY-2025-0001","merchantId":{MERCHANT},"amount":12300,'
        f'"currency":"PLN","crc":"{CRC}"}}'
    )
    assert body == {
        "merchantId": MERCHANT,
        "posId": POS,
        "sessionId": "PAY-2025-0001",
        "amount": 12300,  # grosze
        "currency": "PLN",
        "description": "Otomat: Shop bot, 1 month",
        "email": "owner@example.com",
        "client": "Jan Kowalski",
        "country": "PL",
        "language": "pl",
        "urlReturn": "https://otomat.example/billing/return/PAY-2025-0001",
        "urlStatus": "https://otomat.example/billing/callback/przelewy24",
        "sign": expected_sign,
    }

    token = fake.checkouts["PAY-2025-0001"]["token"]
    assert checkout.provider_ref == token
    assert checkout.redirect_url == f"{fake.url}/trnRequest/{token}"
    assert fake.checkouts["PAY-2025-0001"]["status"] == "registered"


def test_the_sign_keeps_slashes_and_non_ascii_literal(fake, gateway):
    # PHP json_encode with JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES: "/" and "ż" as is.
    gateway.create_checkout(checkout_request("FV/2025/ż/7", amount=Money(995, "EUR")))
    body = fake.requests[-1].json()
    assert body["sign"] == sha384(
        f'{{"sessionId":"FV/2025/ż/7","merchantId":{MERCHANT},"amount":995,'
        f'"currency":"EUR","crc":"{CRC}"}}'
    )
    assert fake.checkouts["FV/2025/ż/7"]["currency"] == "EUR"


@pytest.mark.parametrize(
    ("language", "expected"), [("pl", "pl"), ("en", "en"), ("id", "en"), ("pl-pl", "pl")]
)
def test_it_maps_the_page_language(fake, gateway, language, expected):
    gateway.create_checkout(checkout_request(f"PAY-LANG-{language}", language=language))
    assert fake.checkouts[f"PAY-LANG-{language}"]["language"] == expected


def test_polish_characters_in_the_description_survive(fake, gateway):
    description = "Zamówienie: bot „Pączek” — zażółć gęślą jaźń"
    gateway.create_checkout(checkout_request(description=description, customer_name="Łucja Żak"))
    assert fake.checkouts["PAY-2025-0001"]["description"] == description
    assert fake.checkouts["PAY-2025-0001"]["client"] == "Łucja Żak"
    # Sent as UTF-8 text, and shown on the hosted page as such.
    assert "zażółć gęślą jaźń".encode() in fake.requests[-1].body
    page = httpx.get(f"{fake.url}/trnRequest/{fake.checkouts['PAY-2025-0001']['token']}")
    assert "zażółć gęślą jaźń" in page.text
    assert "123,00 PLN" in page.text


def test_a_wrong_api_key_is_refused_without_showing_the_key(fake):
    settings = fake.gateway_settings()
    wrong_key = "definitely-wrong-api-key-42"
    settings["credentials"]["api_key"] = wrong_key
    with pytest.raises(GatewayError) as excinfo:
        Przelewy24Gateway(**settings).create_checkout(checkout_request())
    message = str(excinfo.value)
    assert "Incorrect authentication" in message and "401" in message
    assert wrong_key not in message and CRC not in message
    assert fake.checkouts == {}


def test_a_wrong_crc_key_fails_the_sign_check(fake):
    settings = fake.gateway_settings()
    settings["credentials"]["crc"] = "another-crc-key-entirely"
    with pytest.raises(GatewayError, match="sign") as excinfo:
        Przelewy24Gateway(**settings).create_checkout(checkout_request())
    assert "another-crc-key-entirely" not in str(excinfo.value)
    assert fake.checkouts == {}


def test_a_reused_session_id_is_refused(fake, gateway):
    gateway.create_checkout(checkout_request())
    with pytest.raises(GatewayError, match="sessionId already used"):
        gateway.create_checkout(checkout_request())
    assert len(fake.checkouts) == 1


@pytest.mark.parametrize("amount", [Money(50_000, "IDR"), Money(1_000, "USD")])
def test_an_unsupported_currency_is_refused_before_any_request(fake, gateway, amount):
    with pytest.raises(GatewayError, match=amount.currency):
        gateway.create_checkout(checkout_request(amount=amount))
    assert fake.requests == []


def test_a_zero_amount_is_refused_before_any_request(fake, gateway):
    with pytest.raises(GatewayError, match="positive"):
        gateway.create_checkout(checkout_request(amount=Money(0, "PLN")))
    assert fake.requests == []


def test_an_unreachable_p24_is_a_gateway_error():
    gateway = Przelewy24Gateway(
        {"merchant_id": "1", "api_key": API_KEY, "crc": CRC},
        api_base=f"http://127.0.0.1:{free_port()}",
    )
    with pytest.raises(GatewayError, match="could not be reached") as excinfo:
        gateway.create_checkout(checkout_request())
    assert API_KEY not in str(excinfo.value)
    assert excinfo.value.__cause__ is None  # the request (and its auth header) is not chained


def test_requests_use_a_ten_second_timeout(monkeypatch, gateway):
    seen = {}

    def fake_request(method, url, **kwargs):
        seen.update(kwargs, method=method, url=url)
        raise httpx.ConnectTimeout("timed out")

    monkeypatch.setattr(base, "http_client", lambda: SimpleNamespace(request=fake_request))
    with pytest.raises(GatewayError, match="ConnectTimeout"):
        gateway.create_checkout(checkout_request())
    assert seen["timeout"] == 10
    assert seen["method"] == "POST"


def test_a_non_json_or_tokenless_answer_is_a_gateway_error():
    replies = iter([Reply(200, "<html>maintenance</html>"), Reply(200, {"data": {}})])
    with FakeServer() as server:
        server.route("POST", r"/api/v1/transaction/register", lambda request: next(replies))
        gateway = Przelewy24Gateway(
            {"merchant_id": "1", "api_key": API_KEY, "crc": CRC}, api_base=server.url
        )
        with pytest.raises(GatewayError, match="not JSON"):
            gateway.create_checkout(checkout_request())
        with pytest.raises(GatewayError, match="no valid token"):
            gateway.create_checkout(checkout_request())


def test_an_error_echoing_the_keys_is_scrubbed():
    echo = Reply(500, {"error": f"internal: key {API_KEY} crc {CRC}", "code": 500})
    with FakeServer() as server:
        server.route("POST", r"/api/v1/transaction/register", lambda request: echo)
        gateway = Przelewy24Gateway(
            {"merchant_id": "1", "api_key": API_KEY, "crc": CRC}, api_base=server.url
        )
        with pytest.raises(GatewayError) as excinfo:
            gateway.create_checkout(checkout_request())
    message = str(excinfo.value)
    assert "HTTP 500" in message and "internal" in message
    assert API_KEY not in message and CRC not in message


# -- notifications ---------------------------------------------------------------------------------


@pytest.fixture
def registered(fake, gateway):
    gateway.create_checkout(checkout_request())
    return "PAY-2025-0001"


def test_a_signed_notification_is_a_paid_event(fake, gateway, registered):
    headers, body = fake.notification(registered)
    sent = json.loads(body)
    event = gateway.parse_callback(headers=headers, body=body)

    assert event.kind == "paid"
    assert event.reference == registered
    assert event.event_id == event.payment_id == str(sent["orderId"])
    assert event.amount == Money(12_300, "PLN")
    assert "sign" not in event.raw and event.raw["orderId"] == sent["orderId"]
    # The fake signs as documented (checked here from the literal formula, not from the fake).
    assert sent["sign"] == sha384(
        f'{{"merchantId":{MERCHANT},"posId":{POS},"sessionId":"{registered}","amount":12300,'
        f'"originAmount":12300,"currency":"PLN","orderId":{sent["orderId"]},'
        f'"methodId":{sent["methodId"]},"statement":"{sent["statement"]}","crc":"{CRC}"}}'
    )


def test_it_verifies_a_notification_signed_from_the_documented_formula(gateway):
    # Built by hand: a statement with Polish letters and a slash, signed as PHP would.
    fields = (
        f'"merchantId":{MERCHANT},"posId":{POS},"sessionId":"FV/2025/7","amount":4999,'
        f'"originAmount":4999,"currency":"EUR","orderId":987654321,"methodId":25,'
        f'"statement":"Płatność ż/ó p24-A1B-C2D"'
    )
    sign = sha384(f'{{{fields},"crc":"{CRC}"}}')
    body = f'{{{fields},"sign":"{sign}"}}'.encode()
    event = gateway.parse_callback(headers={"content-type": "application/json"}, body=body)
    assert (event.reference, event.payment_id) == ("FV/2025/7", "987654321")
    assert event.amount == Money(4999, "EUR")


def test_duplicates_share_the_event_id_and_other_payments_do_not(fake, gateway, registered):
    first = gateway.parse_callback(headers={}, body=fake.notification(registered)[1])
    again = gateway.parse_callback(headers={}, body=fake.notification(registered)[1])
    other = gateway.parse_callback(
        headers={}, body=fake.notification(registered, event_suffix="-2")[1]
    )
    assert first.event_id == again.event_id
    assert other.event_id != first.event_id and other.payment_id != first.payment_id


def test_p24_only_notifies_paid_transactions(fake, registered):
    for kind in ("failed", "expired", "pending", "refunded"):
        with pytest.raises(ValueError, match="only notifies successful"):
            fake.notification(registered, kind)


def test_a_forged_notification_is_refused(fake, gateway, registered):
    headers, body = fake.forged_notification(registered)
    with pytest.raises(SignatureError, match="does not verify"):
        gateway.parse_callback(headers=headers, body=body)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", 1),
        ("originAmount", 1),
        ("sessionId", "PAY-OTHER"),
        ("currency", "EUR"),
        ("orderId", 1),
        ("statement", "p24-XXX"),
    ],
)
def test_a_tampered_notification_is_refused(fake, gateway, registered, field, value):
    headers, body = fake.notification(registered)
    tampered = {**json.loads(body), field: value}
    with pytest.raises(SignatureError, match="does not verify"):
        gateway.parse_callback(headers=headers, body=json.dumps(tampered).encode())


def test_a_notification_for_another_merchant_is_refused(gateway):
    # Correctly signed with the same CRC key, but by another merchant's shop.
    with FakePrzelewy24(merchant_id=MERCHANT + 7, api_key=API_KEY, crc=CRC) as other:
        Przelewy24Gateway(**other.gateway_settings()).create_checkout(checkout_request())
        headers, body = other.notification("PAY-2025-0001")
    with pytest.raises(SignatureError, match="another merchant"):
        gateway.parse_callback(headers=headers, body=body)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b"null",
        b"[]",
        b'"a string"',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"merchantId": 1}',
    ],
)
def test_malformed_notifications_are_signature_errors(gateway, body):
    with pytest.raises(SignatureError):
        gateway.parse_callback(headers={"content-type": "application/json"}, body=body)


@pytest.mark.parametrize(
    "field",
    [
        "merchantId",
        "posId",
        "sessionId",
        "amount",
        "originAmount",
        "currency",
        "orderId",
        "methodId",
        "statement",
        "sign",
    ],
)
def test_a_notification_missing_a_field_is_refused(fake, gateway, registered, field):
    sent = json.loads(fake.notification(registered)[1])
    del sent[field]
    with pytest.raises(SignatureError, match=field):
        gateway.parse_callback(headers={}, body=json.dumps(sent).encode())


@pytest.mark.parametrize(
    ("field", "value"),
    [("amount", "12300"), ("amount", True), ("orderId", 1.5), ("sign", 123), ("sign", "żółw")],
)
def test_a_notification_with_wrongly_typed_fields_is_refused(
    fake, gateway, registered, field, value
):
    sent = {**json.loads(fake.notification(registered)[1]), field: value}
    with pytest.raises(SignatureError):
        gateway.parse_callback(headers={}, body=json.dumps(sent).encode())


def test_a_lone_surrogate_is_a_signature_error(fake, gateway, registered):
    sent = json.loads(fake.notification(registered)[1])
    body = json.dumps({**sent, "statement": "\ud800"}).encode()  # ASCII "\ud800" escape
    with pytest.raises(SignatureError):
        gateway.parse_callback(headers={}, body=body)


# -- transaction/verify ----------------------------------------------------------------------------


def test_confirm_verifies_the_transaction(fake, gateway, registered):
    event = gateway.parse_callback(headers={}, body=fake.notification(registered)[1])
    assert gateway.confirm(event) == replace(event, confirmed=True)

    [verify] = [r for r in fake.requests if r.path == "/api/v1/transaction/verify"]
    assert verify.method == "PUT"
    expected_auth = base64.b64encode(f"{POS}:{API_KEY}".encode()).decode()
    assert verify.headers["authorization"] == f"Basic {expected_auth}"
    order_id = int(event.payment_id)
    assert fake.verified == [
        {
            "merchantId": MERCHANT,
            "posId": POS,
            "sessionId": registered,
            "amount": 12300,
            "currency": "PLN",
            "orderId": order_id,
            "sign": sha384(
                f'{{"sessionId":"{registered}","orderId":{order_id},"amount":12300,'
                f'"currency":"PLN","crc":"{CRC}"}}'
            ),
        }
    ]
    assert fake.checkouts[registered]["status"] == "verified"


def test_confirm_fails_when_p24_refuses(fake, gateway, registered):
    event = gateway.parse_callback(headers={}, body=fake.notification(registered)[1])
    fake.refuse_verify = True
    with pytest.raises(GatewayError, match="verification refused") as excinfo:
        gateway.confirm(event)
    assert API_KEY not in str(excinfo.value) and CRC not in str(excinfo.value)
    assert len(fake.verified) == 1
    assert fake.checkouts[registered]["status"] == "registered"


@pytest.mark.parametrize("paid", [100, Money(100, "PLN"), Money(12_300, "EUR")])
def test_confirm_fails_when_the_paid_amount_is_not_the_registered_one(
    fake, gateway, registered, paid
):
    # A correctly signed notification of another amount (an int in grosze or Money): it
    # verifies, but P24 will not confirm it for a transaction registered at 123.00 PLN.
    headers, body = fake.notification(registered, amount=paid)
    event = gateway.parse_callback(headers=headers, body=body)
    assert event.amount == (paid if isinstance(paid, Money) else Money(paid, "PLN"))
    assert json.loads(body)["originAmount"] == 12_300
    with pytest.raises(GatewayError, match="amount or currency"):
        gateway.confirm(event)
    assert fake.checkouts[registered]["status"] == "registered"


def test_confirm_fails_for_an_order_p24_never_paid(fake, gateway, registered):
    event = GatewayEvent(
        event_id="999",
        kind="paid",
        reference=registered,
        payment_id="999",
        amount=Money(12_300, "PLN"),
    )
    with pytest.raises(GatewayError, match="not found"):
        gateway.confirm(event)


def test_confirm_fails_when_p24_is_unreachable(fake, gateway, registered):
    event = gateway.parse_callback(headers={}, body=fake.notification(registered)[1])
    fake.close()
    with pytest.raises(GatewayError, match="could not be reached"):
        gateway.confirm(event)


# -- hosted payment page ---------------------------------------------------------------------------


class Receiver(FakeServer):
    """Otomat's side of the notification: keeps what arrives and answers 200."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Request] = []
        self.route("POST", r"/p24/notify", self._receive)

    def _receive(self, request: Request) -> Reply:
        self.received.append(request)
        return Reply(200, {"ok": True})


def pay_and_cancel_actions(html: str) -> tuple[str, str]:
    pay, cancel = re.findall(r'<form method="post" action="([^"]+)"', html)
    return pay, cancel


def test_the_pay_button_notifies_and_sends_the_customer_back(fake, gateway):
    with Receiver() as receiver:
        request = checkout_request(notify_url=f"{receiver.url}/p24/notify")
        checkout = gateway.create_checkout(request)

        page = httpx.get(checkout.redirect_url)
        assert page.status_code == 200
        pay, _ = pay_and_cancel_actions(page.text)
        answer = httpx.post(pay, follow_redirects=False)

        assert answer.status_code == 303
        assert answer.headers["location"] == request.return_url
        [notification] = receiver.received
        assert [r.status_code for r in fake.callbacks] == [200]

    event = gateway.parse_callback(headers=notification.headers, body=notification.body)
    assert (event.kind, event.reference, event.amount) == (
        "paid",
        request.reference,
        Money(12_300, "PLN"),
    )
    assert gateway.confirm(event) == replace(event, confirmed=True)
    assert fake.checkouts[request.reference]["status"] == "verified"


def test_the_cancel_button_sends_the_customer_back_without_a_notification(fake, gateway):
    with Receiver() as receiver:
        request = checkout_request(notify_url=f"{receiver.url}/p24/notify")
        page = httpx.get(gateway.create_checkout(request).redirect_url)
        _, cancel = pay_and_cancel_actions(page.text)
        answer = httpx.post(cancel, follow_redirects=False)

        assert answer.status_code == 303
        assert answer.headers["location"] == request.return_url
        assert receiver.received == []
    assert fake.checkouts[request.reference]["status"] == "cancelled"


def test_deliver_posts_to_the_transaction_url_status(fake, gateway):
    with Receiver() as receiver:
        gateway.create_checkout(checkout_request(notify_url=f"{receiver.url}/p24/notify"))
        response = fake.deliver("PAY-2025-0001")
        assert response.status_code == 200
        [notification] = receiver.received
    assert notification.body == fake.notification("PAY-2025-0001")[1]
