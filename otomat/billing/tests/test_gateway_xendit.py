"""Xendit Invoices adapter against the local fake Xendit: the invoice request (shape, Basic
auth), callbacks (the callback token, every status, and every way one can be wrong), the hosted
page's buttons, and errors that never show the secret key or the callback token.

Xendit does not sign callback bodies: the account's verification token in ``x-callback-token``
is the whole check, so the tests build callbacks by hand as well as with the fake."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from types import SimpleNamespace

import httpx
import pytest

from otomat.billing.gateways import REGISTRY, base, gateway_class
from otomat.billing.gateways.base import CheckoutRequest, GatewayError, SignatureError
from otomat.billing.gateways.fakes.server import FakeServer, Reply, Request
from otomat.billing.gateways.fakes.xendit import FakeXendit
from otomat.billing.gateways.xendit import XenditGateway
from otomat.billing.money import Money
from otomat.testing.processes import free_port  # nothing listens on it

SECRET_KEY = "xnd_development_T3stK3y9f8e7d6c5b4a3"
CALLBACK_TOKEN = "cb-T0ken-0a1b2c3d4e5f6a7b8c9d"
REFERENCE = "otm42x9f8e7d6c5b4a"


def callback_data(**fields) -> dict:
    """A PAID invoice callback like Xendit's documented sample, with ``fields`` changed."""
    data = {
        "id": "579c8d61f23fa4ca35e52da4",
        "external_id": REFERENCE,
        "user_id": "5781d19b2e2385880609791c",
        "is_high": True,
        "payment_method": "BANK_TRANSFER",
        "status": "PAID",
        "merchant_name": "Otomat",
        "amount": 150000,
        "paid_amount": 150000,
        "bank_code": "PERMATA",
        "paid_at": "2026-05-01T07:05:11.123Z",
        "payer_email": "budi@example.com",
        "description": "Otomat: Shop bot, 1 month",
        "created": "2026-05-01T07:03:09.000Z",
        "updated": "2026-05-01T07:05:11.456Z",
        "currency": "IDR",
        "payment_channel": "PERMATA",
        "payment_destination": "888888888888",
    }
    data.update(fields)
    return data


def token_headers(token: str = CALLBACK_TOKEN, **extra: str) -> dict[str, str]:
    return {"content-type": "application/json", "x-callback-token": token, **extra}


@pytest.fixture
def fake():
    with FakeXendit(secret_key=SECRET_KEY, callback_token=CALLBACK_TOKEN) as server:
        yield server


@pytest.fixture
def gateway(fake):
    return XenditGateway(**fake.gateway_settings())


def checkout_request(reference: str = REFERENCE, **overrides) -> CheckoutRequest:
    fields = {
        "reference": reference,
        "amount": Money(150_000, "IDR"),
        "description": "Otomat: Shop bot, 1 month",
        "customer_email": "budi@example.com",
        "customer_name": "Budi Santoso",
        "language": "id",
        "return_url": "https://otomat.example/billing/return/42",
        "notify_url": "https://otomat.example/billing/callback/xendit",
    }
    fields.update(overrides)
    return CheckoutRequest(**fields)


@pytest.fixture
def checkout(fake, gateway):
    return gateway.create_checkout(checkout_request())


def parse(gateway: XenditGateway, headers: dict[str, str], body: bytes):
    return gateway.parse_callback(headers=headers, body=body)


# -- configuration ---------------------------------------------------------------------------------


def test_it_is_registered_for_idr_with_its_credentials():
    assert gateway_class("xendit") is XenditGateway
    assert REGISTRY["xendit"].label == "Xendit"
    assert XenditGateway.currencies == frozenset({"IDR"})
    assert XenditGateway({"secret_key": "k", "callback_token": "t"}).api_base == (
        "https://api.xendit.co"
    )
    fields = {f.name: f for f in XenditGateway.credential_fields}
    assert fields["secret_key"].secret and fields["callback_token"].secret
    with pytest.raises(GatewayError, match="Callback verification token"):
        XenditGateway({"secret_key": SECRET_KEY})


# -- checkout --------------------------------------------------------------------------------------


def test_it_creates_the_invoice_as_documented(fake, gateway):
    request = checkout_request()
    checkout = gateway.create_checkout(request)

    [sent] = fake.requests
    assert (sent.method, sent.path) == ("POST", "/v2/invoices")
    basic = base64.b64encode(f"{SECRET_KEY}:".encode()).decode()
    assert sent.headers["authorization"] == f"Basic {basic}"  # secret key, empty password
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {
        "external_id": REFERENCE,
        "amount": 150_000,
        "currency": "IDR",
        "description": "Otomat: Shop bot, 1 month",
        "payer_email": "budi@example.com",
        "success_redirect_url": request.return_url,
        "failure_redirect_url": request.return_url,
    }
    assert type(sent.json()["amount"]) is int  # whole rupiah, no float
    assert SECRET_KEY not in sent.body.decode() and CALLBACK_TOKEN not in sent.body.decode()

    stored = fake.checkouts[REFERENCE]
    assert checkout.provider_ref == stored["provider_ref"] == stored["invoice"]["id"]
    assert checkout.redirect_url == stored["invoice"]["invoice_url"]
    assert checkout.redirect_url == f"{fake.url}/web/{checkout.provider_ref}"
    assert stored["invoice"]["status"] == "PENDING"
    assert stored["amount"] == Money(150_000, "IDR")


def test_without_an_email_none_is_sent(fake, gateway):
    gateway.create_checkout(checkout_request(customer_email=""))
    assert "payer_email" not in fake.requests[0].json()


def test_the_hosted_page_shows_the_amount(fake, checkout):
    page = httpx.get(checkout.redirect_url)
    assert page.status_code == 200
    assert "Rp150.000" in page.text
    assert httpx.get(f"{fake.url}/web/{'0' * 24}").status_code == 404


def test_a_wrong_secret_key_is_refused_without_showing_the_key(fake):
    wrong = "xnd_development_WrongKey000"
    gateway = XenditGateway({"secret_key": wrong, "callback_token": "t"}, api_base=fake.url)
    with pytest.raises(GatewayError, match="HTTP 401") as excinfo:
        gateway.create_checkout(checkout_request())
    message = str(excinfo.value)
    assert "INVALID_API_KEY" in message and "not authorized" in message
    assert wrong not in message and SECRET_KEY not in message
    assert fake.checkouts == {}


def test_xendit_validation_errors_are_reported(gateway):
    with pytest.raises(GatewayError, match=r"HTTP 400.*API_VALIDATION_ERROR.*payer_email"):
        gateway.create_checkout(checkout_request(customer_email="not an address"))


def test_a_repeated_external_id_is_a_new_invoice_as_at_xendit(fake, gateway):
    first = gateway.create_checkout(checkout_request())
    second = gateway.create_checkout(checkout_request())
    assert first.provider_ref != second.provider_ref
    assert fake.checkouts[REFERENCE]["provider_ref"] == second.provider_ref


@pytest.mark.parametrize("amount", [Money(1_000, "USD"), Money(15_000, "PLN")])
def test_another_currency_is_refused_before_any_request(fake, gateway, amount):
    with pytest.raises(GatewayError, match="IDR only"):
        gateway.create_checkout(checkout_request(amount=amount))
    assert fake.requests == []


def test_a_zero_amount_is_refused_before_any_request(fake, gateway):
    with pytest.raises(GatewayError, match="minimum"):
        gateway.create_checkout(checkout_request(amount=Money(0, "IDR")))
    assert fake.requests == []


def test_an_unreachable_xendit_is_a_gateway_error():
    gateway = XenditGateway(
        {"secret_key": SECRET_KEY, "callback_token": CALLBACK_TOKEN},
        api_base=f"http://127.0.0.1:{free_port()}",
    )
    with pytest.raises(GatewayError, match="could not be reached") as excinfo:
        gateway.create_checkout(checkout_request())
    assert SECRET_KEY not in str(excinfo.value)
    assert excinfo.value.__cause__ is None  # the request (and its auth header) is not chained


def test_requests_use_a_ten_second_timeout(monkeypatch, gateway):
    seen = {}

    def fake_request(method, url, **kwargs):  # every adapter request goes through http_client()
        seen.update(kwargs, url=url)
        raise httpx.ReadTimeout("timed out")

    monkeypatch.setattr(base, "http_client", lambda: SimpleNamespace(request=fake_request))
    with pytest.raises(GatewayError, match="ReadTimeout"):
        gateway.create_checkout(checkout_request())
    assert seen["timeout"] == 10
    assert seen["url"].endswith("/v2/invoices")


def test_a_non_json_or_incomplete_answer_is_a_gateway_error():
    replies = iter([Reply(200, "<html>maintenance</html>"), Reply(200, {"status": "PENDING"})])
    with FakeServer() as server:
        server.route("POST", r"/v2/invoices", lambda request: next(replies))
        gateway = XenditGateway(
            {"secret_key": SECRET_KEY, "callback_token": CALLBACK_TOKEN}, api_base=server.url
        )
        with pytest.raises(GatewayError, match="not a JSON object"):
            gateway.create_checkout(checkout_request())
        with pytest.raises(GatewayError, match="without an invoice id"):
            gateway.create_checkout(checkout_request())


def test_an_error_echoing_the_secrets_is_scrubbed():
    echo = Reply(
        500, {"error_code": "SERVER_ERROR", "message": f"boom {SECRET_KEY} {CALLBACK_TOKEN}"}
    )
    with FakeServer() as server:
        server.route("POST", r"/v2/invoices", lambda request: echo)
        gateway = XenditGateway(
            {"secret_key": SECRET_KEY, "callback_token": CALLBACK_TOKEN}, api_base=server.url
        )
        with pytest.raises(GatewayError) as excinfo:
            gateway.create_checkout(checkout_request())
    message = str(excinfo.value)
    assert "HTTP 500" in message and "SERVER_ERROR: boom" in message
    assert SECRET_KEY not in message and CALLBACK_TOKEN not in message


# -- callbacks -------------------------------------------------------------------------------------


def test_the_fake_sends_the_token_and_a_webhook_id(fake, checkout):
    headers, body = fake.notification(REFERENCE, "paid")
    assert headers["x-callback-token"] == CALLBACK_TOKEN
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"]
    data = json.loads(body)
    assert (data["id"], data["external_id"], data["status"]) == (
        checkout.provider_ref,
        REFERENCE,
        "PAID",
    )
    assert (data["amount"], data["paid_amount"], data["currency"]) == (150_000, 150_000, "IDR")


def test_a_documented_callback_verifies(gateway):
    event = parse(gateway, token_headers(), json.dumps(callback_data()).encode())
    assert event.kind == "paid"
    assert event.reference == REFERENCE
    assert event.payment_id == "579c8d61f23fa4ca35e52da4"
    assert event.event_id == "579c8d61f23fa4ca35e52da4:PAID"  # no webhook-id header
    assert event.amount == Money(150_000, "IDR")
    assert event.occurred_at == datetime(2026, 5, 1, 7, 5, 11, 123000, tzinfo=UTC)
    assert event.detail == "paid via BANK_TRANSFER (PERMATA)"


def test_the_webhook_id_header_is_the_event_id(gateway):
    body = json.dumps(callback_data()).encode()
    event = parse(gateway, token_headers(**{"webhook-id": "wh-0a1b2c"}), body)
    assert event.event_id == "wh-0a1b2c"
    # Header names are case-insensitive, even if a caller forgets to lower-case them.
    event = parse(gateway, {"X-Callback-Token": CALLBACK_TOKEN, "Webhook-Id": "wh-0a1b2c"}, body)
    assert event.event_id == "wh-0a1b2c"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("PAID", "paid"),
        ("SETTLED", "paid"),
        ("EXPIRED", "expired"),
        ("PENDING", "pending"),
        ("SOMETHING_NEW", "ignored"),
    ],
)
def test_every_status_is_mapped(gateway, status, kind):
    event = parse(gateway, token_headers(), json.dumps(callback_data(status=status)).encode())
    assert event.kind == kind
    assert event.event_id == f"579c8d61f23fa4ca35e52da4:{status}"


@pytest.mark.parametrize("kind", ["paid", "expired"])
def test_every_kind_of_the_fake_is_mapped(fake, gateway, checkout, kind):
    event = parse(gateway, *fake.notification(REFERENCE, kind))
    assert (event.kind, event.reference, event.payment_id) == (
        kind,
        REFERENCE,
        checkout.provider_ref,
    )
    assert event.amount == Money(150_000, "IDR")
    assert event.occurred_at is not None


@pytest.mark.parametrize("kind", ["pending", "failed", "refunded"])
def test_xendit_has_no_other_invoice_callbacks(fake, checkout, kind):
    with pytest.raises(ValueError, match="paid, expired only"):
        fake.notification(REFERENCE, kind)


def test_duplicates_share_the_event_id_and_other_events_do_not(fake, gateway, checkout):
    first = parse(gateway, *fake.notification(REFERENCE, "paid"))
    again = parse(gateway, *fake.notification(REFERENCE, "paid"))
    expired = parse(gateway, *fake.notification(REFERENCE, "expired"))
    another = parse(gateway, *fake.notification(REFERENCE, "paid", event_suffix="-2"))
    assert again.event_id == first.event_id
    assert expired.event_id != first.event_id
    assert another.event_id != first.event_id
    # One invoice is one payment, however many deliveries announce it.
    assert first.payment_id == again.payment_id == another.payment_id == checkout.provider_ref


def test_the_paid_amount_is_what_counts(fake, gateway, checkout):
    headers, body = fake.notification(REFERENCE, "paid", amount=Money(100_000, "IDR"))
    data = json.loads(body)
    assert (data["amount"], data["paid_amount"]) == (150_000, 100_000)
    assert parse(gateway, headers, body).amount == Money(100_000, "IDR")
    assert parse(gateway, *fake.notification(REFERENCE, "expired", amount=90_000)).amount == (
        Money(90_000, "IDR")
    )
    # Without paid_amount, the invoice amount; a float of whole rupiah is fine.
    without = callback_data(paid_amount=None, amount=150000.0)
    assert parse(gateway, token_headers(), json.dumps(without).encode()).amount == Money(
        150_000, "IDR"
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-callback-token": ""},
        {"x-callback-token": "wrong-token"},
        {"x-callback-token": CALLBACK_TOKEN + " "},
        {"x-callback-token": CALLBACK_TOKEN.upper()},
        {"x-callback-token": "tokén"},  # non-ASCII must not crash compare_digest
        {"x-callback-token": "\udcff"},
    ],
    ids=repr,
)
def test_a_callback_without_the_right_token_is_refused(gateway, headers):
    with pytest.raises(SignatureError, match="x-callback-token"):
        parse(gateway, headers, json.dumps(callback_data()).encode())


def test_a_forged_callback_is_refused(fake, gateway, checkout):
    with pytest.raises(SignatureError, match="x-callback-token"):
        parse(gateway, *fake.forged_notification(REFERENCE, "paid"))
    other = XenditGateway({"secret_key": SECRET_KEY, "callback_token": "other"}, api_base=fake.url)
    with pytest.raises(SignatureError):
        parse(other, *fake.notification(REFERENCE, "paid"))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'"PAID"',
        b"null",
        b"{}",
        b"\xff\xfe{}",
        b'{"amount": Infinity}',
        b"[" * 100_000,
        b'{"pad": "' + b"x" * 70_000 + b'"}',  # larger than any callback
        b'{"amount": 1' + b"0" * 5000 + b"}",  # an integer too long to convert
    ],
    ids=lambda b: repr(b[:20]),
)
def test_malformed_callbacks_are_signature_errors(gateway, body):
    with pytest.raises(SignatureError):
        parse(gateway, token_headers(), body)


@pytest.mark.parametrize("field", ["id", "external_id", "status", "amount", "currency"])
def test_a_callback_missing_a_field_is_refused(gateway, field):
    data = callback_data()
    del data[field]
    with pytest.raises(SignatureError, match=field):
        parse(gateway, token_headers(), json.dumps(data).encode())


@pytest.mark.parametrize(
    "fields",
    [
        {"amount": "150000"},  # a string, not a number
        {"amount": True},
        {"paid_amount": "150000"},
        {"paid_amount": 150000.5},  # a fraction of a rupiah
        {"paid_amount": -1},
        {"amount": 1e40},  # absurdly large
        {"external_id": 42},
        {"id": ["x"]},
        {"status": None},
        {"currency": "PHP"},  # Xendit invoices PHP too; Otomat's account takes IDR only
        {"payment_method": {"x": 1}},
    ],
    ids=str,
)
def test_wrongly_typed_or_foreign_callbacks_are_refused(gateway, fields):
    with pytest.raises(SignatureError):
        parse(gateway, token_headers(), json.dumps(callback_data(**fields)).encode())


@pytest.mark.parametrize("webhook_id", ["x" * 201, "line\nbreak"])
def test_an_unusable_webhook_id_is_refused(gateway, webhook_id):
    headers = token_headers(**{"webhook-id": webhook_id})
    with pytest.raises(SignatureError, match="webhook-id"):
        parse(gateway, headers, json.dumps(callback_data()).encode())


def test_a_lone_surrogate_is_a_signature_error_or_a_string(gateway):
    body = json.dumps(callback_data()).encode().replace(b'"PAID"', b'"\\ud800"', 1)
    # Xendit's body is not signed: a lone surrogate is just an unknown status, never a crash.
    assert parse(gateway, token_headers(), body).kind == "ignored"


# -- the hosted page and delivery ----------------------------------------------------------------


class Receiver(FakeServer):
    """Otomat's side of the callback: keeps what arrives and answers 200."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Request] = []
        self.route("POST", r"/billing/callback/xendit", self._receive)

    @property
    def notify_url(self) -> str:
        return f"{self.url}/billing/callback/xendit"

    def _receive(self, request: Request) -> Reply:
        self.received.append(request)
        return Reply(200, {"ok": True})


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


@pytest.fixture
def dashboard_fake(receiver):
    """A fake Xendit whose dashboard sends invoice callbacks to ``receiver``."""
    with FakeXendit(
        secret_key=SECRET_KEY, callback_token=CALLBACK_TOKEN, notify_url=receiver.notify_url
    ) as server:
        yield server


def form_actions(html: str) -> tuple[str, str]:
    pay, cancel = re.findall(r'<form method="post" action="([^"]+)"', html)
    return pay, cancel


def test_the_pay_button_calls_back_and_sends_the_customer_back(dashboard_fake, receiver):
    fake = dashboard_fake
    gateway = XenditGateway(**fake.gateway_settings())
    request = checkout_request(return_url="https://otomat.example/billing/return/42?ok=1")
    checkout = gateway.create_checkout(request)
    pay, _ = form_actions(httpx.get(checkout.redirect_url).text)
    answer = httpx.post(pay, follow_redirects=False)

    assert answer.status_code == 303
    assert answer.headers["location"] == request.return_url
    [callback] = receiver.received
    assert callback.headers["x-callback-token"] == CALLBACK_TOKEN
    assert [r.status_code for r in fake.callbacks] == [200]
    event = parse(gateway, callback.headers, callback.body)
    assert (event.kind, event.reference, event.payment_id, event.amount) == (
        "paid",
        REFERENCE,
        checkout.provider_ref,
        Money(150_000, "IDR"),
    )
    # What the page sent is the fake's "paid" callback: a redelivery is a duplicate.
    assert parse(gateway, *fake.notification(REFERENCE, "paid")).event_id == event.event_id
    assert fake.checkouts[REFERENCE]["status"] == "PAID"
    assert httpx.post(pay, follow_redirects=False).status_code == 409


def test_the_cancel_button_expires_the_invoice(dashboard_fake, receiver):
    gateway = XenditGateway(**dashboard_fake.gateway_settings())
    request = checkout_request(return_url="https://otomat.example/billing/return/42")
    _, cancel = form_actions(httpx.get(gateway.create_checkout(request).redirect_url).text)
    answer = httpx.post(cancel, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == request.return_url  # failure_redirect_url
    [callback] = receiver.received
    assert parse(gateway, callback.headers, callback.body).kind == "expired"


def test_without_a_dashboard_url_the_page_still_returns_the_customer(fake, gateway):
    pay, _ = form_actions(httpx.get(gateway.create_checkout(checkout_request()).redirect_url).text)
    assert httpx.post(pay, follow_redirects=False).status_code == 303
    assert fake.callbacks == [] and fake.delivery_errors == []


def test_deliver_posts_to_the_dashboard_url_or_the_given_one(dashboard_fake, receiver, fake):
    XenditGateway(**dashboard_fake.gateway_settings()).create_checkout(checkout_request())
    assert dashboard_fake.deliver(REFERENCE).status_code == 200
    assert dashboard_fake.deliver(REFERENCE, "expired", url=receiver.notify_url).status_code == 200
    assert [r.body for r in receiver.received] == [
        dashboard_fake.notification(REFERENCE, "paid")[1],
        dashboard_fake.notification(REFERENCE, "expired")[1],
    ]
    # An invoice has no callback URL of its own: without a dashboard URL there is nowhere to go.
    XenditGateway(**fake.gateway_settings()).create_checkout(checkout_request())
    with pytest.raises(ValueError, match="no callback URL"):
        fake.deliver(REFERENCE)
    with pytest.raises(KeyError, match="no invoice"):
        fake.deliver("unknown", url=receiver.notify_url)


def test_the_fake_refuses_what_xendit_refuses(fake):
    url = f"{fake.url}/v2/invoices"
    auth = (SECRET_KEY, "")
    assert httpx.post(url, json={}).json() == {
        "error_code": "INVALID_API_KEY",
        "message": "API key is not authorized for this API service",
    }
    assert httpx.post(url, json={}, auth=("xnd_development_other", "")).status_code == 401
    cases = [
        ({"amount": 1}, "API_VALIDATION_ERROR", "external_id"),
        ({"external_id": "a"}, "API_VALIDATION_ERROR", "amount"),
        ({"external_id": "a", "amount": "1"}, "API_VALIDATION_ERROR", "must be a number"),
        ({"external_id": "a", "amount": 0}, "API_VALIDATION_ERROR", "greater than 0"),
        ({"external_id": "a", "amount": 1.5}, "API_VALIDATION_ERROR", "integer"),
        ({"external_id": "a", "amount": 1, "currency": "EUR"}, "UNSUPPORTED_CURRENCY", "EUR"),
    ]
    for body, code, message in cases:
        answer = httpx.post(url, json=body, auth=auth)
        assert answer.status_code == 400, body
        assert answer.json()["error_code"] == code
        assert message in answer.json()["message"]
    assert fake.checkouts == {}


# -- get invoice (confirmation) --------------------------------------------------------------------


def test_confirm_reads_the_invoice_and_checks_its_external_id(fake, gateway, checkout):
    from otomat.billing.gateways.base import GatewayEvent, NotConfirmed

    headers, body = fake.notification(REFERENCE, "paid")
    hint = gateway.parse_callback(headers=headers, body=body)
    confirmed = gateway.confirm(hint)
    assert (confirmed.kind, confirmed.confirmed) == ("paid", True)
    assert confirmed.payment_id == checkout.provider_ref
    assert confirmed.event_id == f"{checkout.provider_ref}:paid"
    [request] = [r for r in fake.requests if r.method == "GET"]
    assert request.path == f"/v2/invoices/{checkout.provider_ref}"
    expected = base64.b64encode(f"{SECRET_KEY}:".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"

    def event(invoice_id, reference=REFERENCE):
        return GatewayEvent(event_id="x", kind="paid", reference=reference, payment_id=invoice_id)

    with pytest.raises(NotConfirmed, match="knows no invoice"):
        gateway.confirm(event("0123456789abcdef01234567"))
    with pytest.raises(NotConfirmed, match="not for reference"):
        gateway.confirm(event(checkout.provider_ref, reference="otm1xother"))
    for bad in ("../v2/invoices", "", "x" * 65):
        with pytest.raises(NotConfirmed, match="cannot be an invoice id"):
            gateway.confirm(event(bad))
    answer = httpx.get(f"{fake.url}/v2/invoices/0123456789abcdef01234567", auth=(SECRET_KEY, ""))
    assert answer.status_code == 404
    assert answer.json()["error_code"] == "INVOICE_NOT_FOUND_ERROR"


def test_confirm_failures_of_xendit_are_gateway_errors(fake, gateway, checkout):
    from otomat.billing.gateways.base import GatewayEvent

    event = GatewayEvent(
        event_id="x", kind="paid", reference=REFERENCE, payment_id=checkout.provider_ref
    )
    fake.get_down = 503
    with pytest.raises(GatewayError, match="HTTP 503"):
        gateway.confirm(event)
    fake.get_down = 0
    wrong = XenditGateway({"secret_key": "xnd_other", "callback_token": "t"}, api_base=fake.url)
    with pytest.raises(GatewayError, match="INVALID_API_KEY"):
        wrong.confirm(event)


def test_a_stored_callback_is_read_without_its_masked_token(fake, gateway, checkout):
    headers, body = fake.notification(REFERENCE, "paid")
    masked = {**headers, "x-callback-token": "[masked]"}
    with pytest.raises(SignatureError):
        gateway.parse_callback(headers=masked, body=body)
    assert gateway.parse_stored(headers=masked, body=body) == gateway.parse_callback(
        headers=headers, body=body
    )
