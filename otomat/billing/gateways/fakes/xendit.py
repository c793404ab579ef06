"""A local Xendit: the create-invoice API, the hosted invoice page and token-carrying callbacks.

What it reproduces of Xendit (see ``otomat.billing.gateways.xendit`` for the documents):

* ``POST /v2/invoices`` checks HTTP Basic auth as Xendit does (the secret API key as the user
  name) and answers 401 ``INVALID_API_KEY`` otherwise; validates the body (external_id required,
  amount a positive number and whole rupiah in IDR, currency one this account takes, payer_email
  an address) and answers 400 ``API_VALIDATION_ERROR`` / ``UNSUPPORTED_CURRENCY`` with Xendit's
  ``{"error_code", "message"}``; on success 200 with the invoice (``id``, ``invoice_url``,
  ``status`` PENDING, ...). Like Xendit it accepts a repeated external_id (a new invoice).
* ``GET /web/<invoice id>`` is the hosted page. Its Pay button marks the invoice PAID, sends the
  callback to the dashboard's invoice callback URL and answers 303 to success_redirect_url.
  Xendit's page has no cancel button (an unpaid invoice just expires); the fake's Cancel stands
  for that: it sends the EXPIRED callback and answers 303 to failure_redirect_url.
* Callbacks are the invoice as JSON with the callback verification token in ``x-callback-token``
  and a ``webhook-id`` header that repeats on a retry.
* ``GET /v2/invoices/<invoice id>`` (same Basic auth) answers the invoice as it is now: status,
  ``paid_amount``, ``paid_at``, ...; 404 ``INVOICE_NOT_FOUND_ERROR`` for an id it never issued.
  ``get_down = 503`` (or any status) makes it fail like an outage.

Invoices follow what the fake notifies: a genuine ``notification(ref, "paid")`` marks the
invoice PAID (with the paid amount it reports); PAID is final, so a later "expired" is only a
late callback.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from otomat.billing.gateways.fakes.server import FakeServer, Reply, Request, payment_page
from otomat.billing.money import Money

__all__ = ["FakeXendit"]

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
INVOICE_NOT_FOUND = {
    "error_code": "INVOICE_NOT_FOUND_ERROR",
    "message": "Could not find invoice by id",
}
INVALID_API_KEY = {
    "error_code": "INVALID_API_KEY",
    "message": "API key is not authorized for this API service",
}
# Otomat's event kinds -> the invoice status Xendit sends callbacks for. Xendit calls back for
# paid and expired invoices only: there is no failed or refunded invoice callback.
KIND_STATUSES = {"paid": "PAID", "expired": "EXPIRED"}


class FakeXendit(FakeServer):
    """Xendit on 127.0.0.1, as an Indonesian account (IDR invoices). ``notify_url`` is the
    dashboard's invoice callback URL: the invoice API takes none per invoice."""

    notify_url_name = "callback URL"

    user_id = "5f0b1e9d2d6f4c0012ab34cd"  # the Xendit business id callbacks carry
    merchant_name = "Otomat Test"

    def __init__(
        self,
        secret_key: str = "xnd_development_test",  # noqa: S107 - a fake's test credentials
        callback_token: str = "test-callback-token",  # noqa: S107
        notify_url: str = "",
    ) -> None:
        super().__init__()
        self.secret_key = secret_key
        self.callback_token = callback_token
        self.notify_url = notify_url
        # external_id -> the latest invoice with it: "reference", "provider_ref" (invoice id),
        # "amount" (Money), "redirect_url", "return_url", "failure_url", "notify_url" (always
        # ""), "status", "created_at", "request" (body), "invoice" (the API's answer).
        self.checkouts: dict[str, dict[str, Any]] = {}
        self.delivery_errors: list[str] = []  # callbacks the hosted page could not deliver
        self._invoices: dict[str, str] = {}  # invoice id -> external_id
        self._lock = threading.Lock()
        self.get_down = 0  # an HTTP status for get invoice to fail with (0: answer)
        self.route("POST", r"/v2/invoices/?", self._create)
        self.route("GET", r"/v2/invoices/(?P<invoice_id>[^/]+)", self._get)
        self.route("GET", r"/web/(?P<invoice_id>[0-9a-f]{24})", self._page)
        self.route("POST", r"/web/(?P<invoice_id>[0-9a-f]{24})/(?P<action>pay|cancel)", self._act)

    def gateway_settings(self) -> dict[str, Any]:
        """Keyword arguments for ``XenditGateway`` talking to this fake."""
        return {
            "credentials": {"secret_key": self.secret_key, "callback_token": self.callback_token},
            "api_base": self.url,
        }

    # -- callbacks -------------------------------------------------------------------------------

    def notification(
        self,
        reference: str,
        kind: str = "paid",
        *,
        amount: Money | int | None = None,
        event_suffix: str = "",
    ) -> tuple[dict[str, str], bytes]:
        """The headers and body Xendit would POST for ``kind`` of the invoice ``reference``.

        ``kind`` is "paid" or "expired" (the only invoice callbacks Xendit sends). ``amount``
        (Money in the invoice's currency, or an int of rupiah) is reported instead of the
        invoice's: as ``paid_amount`` for "paid", as ``amount`` for "expired". The result is the
        same for the same arguments (a retry, same ``webhook-id``); ``event_suffix`` makes it
        another delivery (a new ``webhook-id``). Raises KeyError for an unknown reference and
        ValueError for another kind.
        """
        return self._notification(
            reference, _status(kind), amount=amount, suffix=event_suffix, token=self.callback_token
        )

    def forged_notification(
        self, reference: str, kind: str = "paid"
    ) -> tuple[dict[str, str], bytes]:
        """``notification(reference, kind)`` carrying a callback token that is not the account's."""
        return self._notification(
            reference, _status(kind), amount=None, suffix="", token=f"{self.callback_token}-forged"
        )

    def checkout_notify_url(self, reference: str) -> str:
        return self._checkout(reference)["notify_url"]

    def _checkout(self, reference: str) -> dict[str, Any]:
        try:
            return self.checkouts[reference]
        except KeyError:
            raise KeyError(f"FakeXendit has no invoice with external_id {reference!r}") from None

    def _notification(
        self, reference: str, status: str, *, amount: Money | int | None, suffix: str, token: str
    ) -> tuple[dict[str, str], bytes]:
        checkout = self._checkout(reference)
        if isinstance(amount, int):
            amount = Money(amount, checkout["amount"].currency)
        if amount is not None and amount.currency != checkout["amount"].currency:
            raise ValueError(
                f"this invoice is in {checkout['amount'].currency}, not {amount.currency}"
            )
        invoice = checkout["invoice"]
        created: datetime = checkout["created_at"]
        if token == self.callback_token:
            self._move(checkout, status, amount)
        data: dict[str, Any] = {
            "id": invoice["id"],
            "external_id": reference,
            "user_id": self.user_id,
            "is_high": False,
            "status": status,
            "merchant_name": self.merchant_name,
            "amount": invoice["amount"],
            "created": _xendit_time(created),
            "currency": invoice["currency"],
        }
        for name in ("payer_email", "description", "success_redirect_url", "failure_redirect_url"):
            if name in invoice:
                data[name] = invoice[name]
        if status == "PAID":
            paid_at = created + timedelta(minutes=3)
            paid = checkout["amount"] if amount is None else amount
            data |= {
                "paid_amount": paid.amount_minor,
                "paid_at": _xendit_time(paid_at),
                "updated": _xendit_time(paid_at),
                "payment_method": "BANK_TRANSFER",
                "bank_code": "BCA",
                "payment_channel": "BCA",
                "payment_destination": "8808999912345678",
                "payment_id": str(
                    uuid.uuid5(uuid.NAMESPACE_URL, f"xendit-payment:{invoice['id']}")
                ),
            }
        else:
            if amount is not None:
                data["amount"] = amount.amount_minor
            data["updated"] = _xendit_time(created + timedelta(days=1))
        # Deterministic, so that the same arguments give the same delivery (a retry).
        webhook_id = str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"xendit:{invoice['id']}:{status}:{suffix}")
        )
        headers = {
            "content-type": "application/json",
            "x-callback-token": token,
            "webhook-id": webhook_id,
        }
        return headers, json.dumps(data).encode()

    def _move(self, checkout: dict[str, Any], status: str, amount: Money | None) -> None:
        """The invoice becomes ``status`` (PAID is final); its API view follows."""
        with self._lock:
            invoice = checkout["invoice"]
            if invoice["status"] in ("PAID", "SETTLED"):
                return
            created: datetime = checkout["created_at"]
            checkout["status"] = invoice["status"] = status
            if status == "PAID":
                paid = checkout["amount"] if amount is None else amount
                paid_at = _xendit_time(created + timedelta(minutes=3))
                invoice.update(
                    paid_amount=paid.amount_minor,
                    paid_at=paid_at,
                    updated=paid_at,
                    payment_method="BANK_TRANSFER",
                    bank_code="BCA",
                    payment_channel="BCA",
                )
            else:
                invoice["updated"] = _xendit_time(created + timedelta(days=1))

    # -- the API ---------------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        """HTTP Basic with the secret API key as the user name, as Xendit authenticates."""
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        username, _, _password = decoded.partition(":")
        return bool(username) and username == self.secret_key

    def _create(self, request: Request) -> Reply:
        if not self._authorized(request):
            return Reply(401, INVALID_API_KEY)
        try:
            body = request.json()
        except ValueError:
            return _invalid("request body is not valid JSON")
        error = _validate(body)
        if error:
            return error
        currency = body.get("currency", "IDR")
        invoice_id = uuid.uuid4().hex[:24]  # Xendit's ids are 24 hex digits
        created = datetime.now(UTC).replace(microsecond=0)
        invoice: dict[str, Any] = {
            "id": invoice_id,
            "external_id": body["external_id"],
            "user_id": self.user_id,
            "status": "PENDING",
            "merchant_name": self.merchant_name,
            "amount": body["amount"],
            "expiry_date": _xendit_time(created + timedelta(days=1)),
            "invoice_url": f"{self.url}/web/{invoice_id}",
            "available_banks": [{"bank_code": "BCA", "collection_type": "POOL"}],
            "available_retail_outlets": [],
            "available_ewallets": [],
            "should_exclude_credit_card": False,
            "should_send_email": False,
            "created": _xendit_time(created),
            "updated": _xendit_time(created),
            "currency": currency,
        }
        for name in ("payer_email", "description", "success_redirect_url", "failure_redirect_url"):
            if name in body:
                invoice[name] = body[name]
        with self._lock:
            self._invoices[invoice_id] = body["external_id"]
            self.checkouts[body["external_id"]] = {
                "reference": body["external_id"],
                "provider_ref": invoice_id,
                "amount": Money(body["amount"], currency),
                "redirect_url": invoice["invoice_url"],
                "return_url": body.get("success_redirect_url", ""),
                "failure_url": body.get("failure_redirect_url", ""),
                "notify_url": "",
                "status": "PENDING",
                "created_at": created,
                "request": body,
                "invoice": invoice,
            }
        return Reply(200, invoice)

    def _get(self, request: Request) -> Reply:
        """Get invoice by id, as it is now."""
        if self.get_down:
            return Reply(self.get_down, {"error_code": "SERVER_ERROR", "message": "unavailable"})
        if not self._authorized(request):
            return Reply(401, INVALID_API_KEY)
        with self._lock:
            external_id = self._invoices.get(request.match["invoice_id"])
            checkout = self.checkouts.get(external_id) if external_id else None
            if checkout is None or checkout["provider_ref"] != request.match["invoice_id"]:
                return Reply(404, INVOICE_NOT_FOUND)
            return Reply(200, dict(checkout["invoice"]))

    # -- the hosted page ---------------------------------------------------------------------------

    def _invoice_checkout(self, invoice_id: str) -> dict[str, Any] | None:
        external_id = self._invoices.get(invoice_id)
        checkout = self.checkouts.get(external_id) if external_id else None
        # An older invoice with a reused external_id is no longer in ``checkouts``.
        return checkout if checkout and checkout["provider_ref"] == invoice_id else None

    def _page(self, request: Request) -> Reply:
        checkout = self._invoice_checkout(request.match["invoice_id"])
        if checkout is None:
            return Reply(404, "<!doctype html><title>Not found</title><p>Invoice not found.")
        base = f"{self.url}/web/{checkout['provider_ref']}"
        return Reply(
            200,
            payment_page(
                f"Xendit invoice (test): {checkout['reference']}",
                checkout["amount"].format("id"),
                f"{base}/pay",
                f"{base}/cancel",
            ),
        )

    def _act(self, request: Request) -> Reply:
        """Pay, or give up (the invoice expires): call back (best effort, as Xendit retries
        later) and send the customer to the matching redirect URL."""
        checkout = self._invoice_checkout(request.match["invoice_id"])
        if checkout is None:
            return Reply(404, "<!doctype html><title>Not found</title><p>Invoice not found.")
        paying = request.match["action"] == "pay"
        status = "PAID" if paying else "EXPIRED"
        with self._lock:
            if checkout["status"] != "PENDING":
                return Reply(
                    409,
                    f"<!doctype html><title>Done</title><p>This invoice is {checkout['status']}.",
                )
            checkout["status"] = status
        headers, body = self._notification(
            checkout["reference"], status, amount=None, suffix="", token=self.callback_token
        )
        if self.notify_url:
            try:
                self.post_callback(self.notify_url, body, headers)
            except httpx.HTTPError as exc:
                self.delivery_errors.append(f"{self.notify_url}: {exc!r}")
        back = checkout["return_url"] if paying else checkout["failure_url"]
        if not back:
            return Reply(200, f"<!doctype html><title>Done</title><p>Invoice {status}.")
        return Reply(303, b"", {"Location": back})


def _status(kind: str) -> str:
    try:
        return KIND_STATUSES[kind]
    except KeyError:
        raise ValueError(
            f"Xendit sends invoice callbacks for {', '.join(KIND_STATUSES)} only, not {kind!r}"
        ) from None


def _invalid(message: str) -> Reply:
    return Reply(400, {"error_code": "API_VALIDATION_ERROR", "message": message})


def _validate(body: object) -> Reply | None:
    """Xendit's checks of a create-invoice body, as its error reply; None if it is valid."""
    if not isinstance(body, dict):
        return _invalid("request body must be a JSON object")
    external_id = body.get("external_id")
    if not isinstance(external_id, str) or not external_id:
        return _invalid('"external_id" is required')
    if len(external_id) > 1000:
        return _invalid('"external_id" length must be less than or equal to 1000 characters long')
    amount = body.get("amount")
    if amount is None:
        return _invalid('"amount" is required')
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        return _invalid('"amount" must be a number')
    if amount <= 0:
        return _invalid('"amount" must be greater than 0')
    currency = body.get("currency", "IDR")
    if currency != "IDR":
        return Reply(
            400,
            {
                "error_code": "UNSUPPORTED_CURRENCY",
                "message": f"The payment currency request {currency} is not supported for this account",
            },
        )
    if isinstance(amount, float):  # rupiah invoices are in whole rupiah
        return _invalid('"amount" must be an integer for IDR')
    email = body.get("payer_email")
    if email is not None and not (isinstance(email, str) and _EMAIL.fullmatch(email)):
        return _invalid('"payer_email" must be a valid email')
    for name in ("description", "success_redirect_url", "failure_redirect_url"):
        if name in body and not isinstance(body[name], str):
            return _invalid(f'"{name}" must be a string')
    return None


def _xendit_time(at: datetime) -> str:
    """Xendit's timestamps: ISO 8601 in UTC with milliseconds and a Z."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
