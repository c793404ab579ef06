"""A local Przelewy24 that speaks the documented REST API v1 closely enough to test the adapter
and to take demo payments offline.

What it implements, as P24 documents it:

* ``POST /api/v1/transaction/register``: HTTP Basic auth (POS ID, API key), the documented
  required fields, the ``sign`` (SHA-384 of ``{"sessionId","merchantId","amount","currency",
  "crc"}``), one transaction per sessionId; answers ``{"data": {"token": ...}, "responseCode": 0}``
  or P24's error shape ``{"error": "...", "code": 400|401}``.
* ``GET /trnRequest/{token}``: the hosted payment page. Its Pay button delivers the signed
  notification to the transaction's ``urlStatus`` and sends the customer (303) to ``urlReturn``;
  Cancel only sends the customer back (P24 notifies successful payments only).
* ``PUT /api/v1/transaction/verify``: checks auth, the ``sign`` (SHA-384 of ``{"sessionId",
  "orderId","amount","currency","crc"}``), that the orderId was paid for that sessionId and that
  the amount and currency are the registered ones. Every call is kept in ``verified``; set
  ``refuse_verify = True`` to make P24 refuse.

The signing here is written out on its own rather than imported from the adapter, so that a
mistake in the adapter's formula shows up as a refusal instead of being shared by both sides.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import secrets
import threading
from typing import Any

import httpx

from otomat.billing.gateways.fakes.server import FakeServer, Reply, Request, payment_page
from otomat.billing.money import Money

# The languages transaction/register accepts (P24's list; "se" is its code for Swedish).
LANGUAGES = frozenset(
    {"bg", "cs", "de", "en", "es", "fr", "hr", "hu", "it", "nl", "pl", "pt", "se", "sk", "ro"}
)
# transaction/register fields P24 documents as required ("ttl", also listed there, is not a
# documented field of the request and is not required in practice).
REGISTER_REQUIRED_INT = ("merchantId", "posId", "amount")
REGISTER_REQUIRED_STR = (
    "sessionId",
    "currency",
    "description",
    "email",
    "country",
    "language",
    "urlReturn",
    "sign",
)
VERIFY_REQUIRED_INT = ("merchantId", "posId", "amount", "orderId")
VERIFY_REQUIRED_STR = ("sessionId", "currency", "sign")
METHOD_ID = 154  # the payment method id every fake payment reports (any int will do)


def _json_text(fields: dict[str, Any]) -> str:
    """PHP ``json_encode(..., JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES)``, which is what
    P24 hashes: compact, keys in order, non-ASCII and "/" literal, U+2028/U+2029 escaped."""
    text = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _sha384(fields: dict[str, Any]) -> str:
    return hashlib.sha384(_json_text(fields).encode("utf-8")).hexdigest()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _error(status: int, message: str) -> Reply:
    """P24's documented error body."""
    return Reply(status, {"error": message, "code": status})


class FakePrzelewy24(FakeServer):
    """Przelewy24 on 127.0.0.1. ``Przelewy24Gateway(**fake.gateway_settings())`` talks to it."""

    notify_url_name = "URL to notify"

    def __init__(
        self,
        merchant_id: str | int = "100200",
        pos_id: str | int = "",
        api_key: str = "fake-p24-api-key-0123456789",
        crc: str = "fake-p24-crc-abcdef012345",
        notify_url: str = "",
    ) -> None:
        super().__init__()
        self.merchant_id = int(merchant_id)
        self.pos_id = int(pos_id or merchant_id)  # P24: the POS ID defaults to the merchant ID
        self.api_key = api_key
        self.crc = crc
        self.notify_url = notify_url  # where to notify when a transaction has no urlStatus
        # sessionId -> the register request's fields plus "token" and "status"
        # ("registered", "paid", "cancelled", "verified").
        self.checkouts: dict[str, dict[str, Any]] = {}
        self.verified: list[dict[str, Any]] = []  # the body of every transaction/verify call
        self.refuse_verify = False  # True: transaction/verify answers an error
        self.delivery_errors: list[str] = []  # notifications the Pay button could not deliver
        self._tokens: dict[str, str] = {}  # token -> sessionId
        self._order_ids: dict[tuple[str, str], int] = {}  # (sessionId, event_suffix) -> orderId
        self._order_counter = itertools.count(310_000_001)
        self._lock = threading.Lock()  # the server answers on several threads

        self.route("POST", r"/api/v1/transaction/register", self._register)
        self.route("PUT", r"/api/v1/transaction/verify", self._verify)
        self.route("GET", r"/trnRequest/(?P<token>[A-Za-z0-9-]+)", self._page)
        self.route("POST", r"/trnRequest/(?P<token>[A-Za-z0-9-]+)/pay", self._pay)
        self.route("POST", r"/trnRequest/(?P<token>[A-Za-z0-9-]+)/cancel", self._cancel)

    def gateway_settings(self) -> dict[str, Any]:
        """Keyword arguments for ``Przelewy24Gateway`` pointing at this fake."""
        return {
            "credentials": {
                "merchant_id": str(self.merchant_id),
                "pos_id": str(self.pos_id),
                "api_key": self.api_key,
                "crc": self.crc,
            },
            "api_base": self.url,
        }

    # -- notifications ---------------------------------------------------------------------------

    def _order_id(self, reference: str, event_suffix: str = "") -> int:
        """P24's orderId for one payment of ``reference``; the same arguments, the same id."""
        with self._lock:
            key = (reference, event_suffix)
            if key not in self._order_ids:
                self._order_ids[key] = next(self._order_counter)
            return self._order_ids[key]

    def _notification_body(
        self, reference: str, kind: str, amount: Money | int | None, event_suffix: str, crc: str
    ) -> dict[str, Any]:
        if kind != "paid":
            raise ValueError(
                f"Przelewy24 only notifies successful payments (kind 'paid'), not {kind!r}"
            )
        try:
            checkout = self.checkouts[reference]
        except KeyError:
            raise KeyError(f"no Przelewy24 transaction registered as {reference!r}") from None
        paid, currency = checkout["amount"], checkout["currency"]
        if isinstance(amount, Money):
            paid, currency = amount.amount_minor, amount.currency
        elif amount is not None:
            paid = amount
        order_id = self._order_id(reference, event_suffix)
        digits = f"{order_id:09d}"[-9:]
        body: dict[str, Any] = {
            "merchantId": self.merchant_id,
            "posId": self.pos_id,
            "sessionId": reference,
            "amount": paid,
            "originAmount": checkout["amount"],  # what was registered, whatever was paid
            "currency": currency,
            "orderId": order_id,
            "methodId": METHOD_ID,
            "statement": f"p24-{digits[:3]}-{digits[3:6]}-{digits[6:]}",
        }
        body["sign"] = _sha384({**body, "crc": crc})  # the fields above, in this order
        return body

    def notification(
        self,
        reference: str,
        kind: str = "paid",
        *,
        amount: Money | int | None = None,
        event_suffix: str = "",
    ) -> tuple[dict[str, str], bytes]:
        """Headers and body of the notification P24 POSTs to urlStatus when ``reference`` is
        paid, correctly signed. ``amount`` overrides the paid amount: Money (its minor units and
        currency) or an int in grosze/cents; the registered amount stays in originAmount. The
        same arguments give the same orderId (a repeated notification); ``event_suffix`` makes
        it another payment with its own orderId. Raises ValueError for a kind other than "paid"
        (P24 sends nothing else) and KeyError for an unknown reference."""
        body = self._notification_body(reference, kind, amount, event_suffix, self.crc)
        return self._encode(body)

    def forged_notification(
        self, reference: str, kind: str = "paid"
    ) -> tuple[dict[str, str], bytes]:
        """The same notification signed with a wrong CRC key."""
        body = self._notification_body(reference, kind, None, "", self.crc + "-forged")
        return self._encode(body)

    @staticmethod
    def _encode(body: dict[str, Any]) -> tuple[dict[str, str], bytes]:
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        return {"content-type": "application/json"}, payload

    def checkout_notify_url(self, reference: str) -> str:
        return self.checkouts[reference].get("urlStatus") or ""  # the transaction's urlStatus

    # -- API ---------------------------------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        """HTTP Basic with the POS ID as user name and the API key as password."""
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return secrets.compare_digest(
            f"{user}:{password}".encode(), f"{self.pos_id}:{self.api_key}".encode()
        )

    @staticmethod
    def _fields(request: Request, ints: tuple[str, ...], strs: tuple[str, ...]) -> dict | str:
        """The JSON object of the request, or the text of what is wrong with it."""
        try:
            data = request.json()
        except ValueError:
            return "Invalid input data: body is not JSON"
        if not isinstance(data, dict):
            return "Invalid input data: body is not a JSON object"
        for name in ints:
            if not _is_int(data.get(name)):
                return f"Invalid input data: {name}"
        for name in strs:
            if not isinstance(data.get(name), str) or not data[name]:
                return f"Invalid input data: {name}"
        return data

    def _register(self, request: Request) -> Reply:
        if not self._authorised(request):
            return _error(401, "Incorrect authentication")
        data = self._fields(request, REGISTER_REQUIRED_INT, REGISTER_REQUIRED_STR)
        if isinstance(data, str):
            return _error(400, data)
        if data["merchantId"] != self.merchant_id or data["posId"] != self.pos_id:
            return _error(400, "Invalid input data: merchantId or posId")
        if data["amount"] <= 0:
            return _error(400, "Invalid input data: amount")
        if len(data["currency"]) != 3 or not data["currency"].isupper():
            return _error(400, "Invalid input data: currency")
        if data["language"] not in LANGUAGES:
            return _error(400, "Invalid input data: language")
        expected = _sha384(
            {
                "sessionId": data["sessionId"],
                "merchantId": data["merchantId"],
                "amount": data["amount"],
                "currency": data["currency"],
                "crc": self.crc,
            }
        )
        if not secrets.compare_digest(expected.encode(), data["sign"].encode()):
            return _error(400, "Invalid input data: sign")
        with self._lock:
            if data["sessionId"] in self.checkouts:
                return _error(400, "Invalid input data: sessionId already used")
            token = "-".join(secrets.token_hex(n).upper() for n in (5, 3, 3, 5))
            self._tokens[token] = data["sessionId"]
            self.checkouts[data["sessionId"]] = {**data, "token": token, "status": "registered"}
        return Reply(200, {"data": {"token": token}, "responseCode": 0})

    def _verify(self, request: Request) -> Reply:
        try:
            recorded = request.json()
        except ValueError:
            recorded = None
        self.verified.append(recorded if isinstance(recorded, dict) else {})
        if not self._authorised(request):
            return _error(401, "Incorrect authentication")
        data = self._fields(request, VERIFY_REQUIRED_INT, VERIFY_REQUIRED_STR)
        if isinstance(data, str):
            return _error(400, data)
        if self.refuse_verify:
            return _error(400, "Transaction verification refused")
        if data["merchantId"] != self.merchant_id or data["posId"] != self.pos_id:
            return _error(400, "Invalid input data: merchantId or posId")
        expected = _sha384(
            {
                "sessionId": data["sessionId"],
                "orderId": data["orderId"],
                "amount": data["amount"],
                "currency": data["currency"],
                "crc": self.crc,
            }
        )
        if not secrets.compare_digest(expected.encode(), data["sign"].encode()):
            return _error(400, "Invalid input data: sign")
        with self._lock:
            checkout = self.checkouts.get(data["sessionId"])
            paid_orders = {
                order_id
                for (ref, _), order_id in self._order_ids.items()
                if ref == data["sessionId"]
            }
            if checkout is None or data["orderId"] not in paid_orders:
                return _error(400, "Transaction not found: sessionId or orderId")
            if data["amount"] != checkout["amount"] or data["currency"] != checkout["currency"]:
                return _error(400, "Invalid input data: amount or currency")
            checkout["status"] = "verified"
        return Reply(200, {"data": {"status": "success"}, "responseCode": 0})

    # -- hosted payment page -----------------------------------------------------------------------

    def _checkout_for(self, request: Request) -> dict[str, Any] | None:
        assert request.match is not None
        reference = self._tokens.get(request.match["token"])
        return None if reference is None else self.checkouts[reference]

    def _page(self, request: Request) -> Reply:
        checkout = self._checkout_for(request)
        if checkout is None:
            return Reply(404, "<h1>Transaction not found</h1>")
        minor, currency = checkout["amount"], checkout["currency"]
        base = f"{self.url}/trnRequest/{checkout['token']}"
        return Reply(
            200,
            payment_page(
                f"Przelewy24: {checkout['description']}",
                f"{minor // 100},{minor % 100:02d} {currency}",
                f"{base}/pay",
                f"{base}/cancel",
            ),
        )

    def _pay(self, request: Request) -> Reply:
        checkout = self._checkout_for(request)
        if checkout is None:
            return Reply(404, "<h1>Transaction not found</h1>")
        with self._lock:
            first_payment = checkout["status"] == "registered"
            if first_payment:
                checkout["status"] = "paid"
        target = checkout.get("urlStatus") or self.notify_url
        # A transaction is paid once; paying it again (a reload) just sends the customer back.
        if first_payment and target:
            headers, body = self.notification(checkout["sessionId"])
            try:
                self.post_callback(target, body, headers)
            except httpx.HTTPError as exc:  # P24 would retry later; the customer still returns
                self.delivery_errors.append(f"{target}: {type(exc).__name__}: {exc}")
        return Reply(303, b"", {"Location": checkout["urlReturn"]})

    def _cancel(self, request: Request) -> Reply:
        checkout = self._checkout_for(request)
        if checkout is None:
            return Reply(404, "<h1>Transaction not found</h1>")
        with self._lock:
            if checkout["status"] == "registered":
                checkout["status"] = "cancelled"
        return Reply(303, b"", {"Location": checkout["urlReturn"]})
