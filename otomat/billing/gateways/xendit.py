"""Xendit Invoices: Xendit's hosted payment page (virtual accounts, QRIS, e-wallets, retail, cards).

The protocol, as Xendit documents it (Invoice API reference and the official clients' Invoice
docs; "Webhook behavior" and callback setup in docs.xendit.co):

* Checkout: ``POST {api_base}/v2/invoices`` with HTTP Basic auth (the secret API key as the user
  name, an empty password) and a JSON body with ``external_id`` (ours), ``amount``, ``currency``,
  ``payer_email``, ``description`` and the success/failure redirect URLs. Xendit answers with the
  invoice: ``id``, ``invoice_url`` (the hosted page) and ``status`` PENDING. Errors carry
  ``error_code`` and ``message``.
* Callback: Xendit POSTs the invoice as JSON to the Invoice callback URL set in the dashboard
  (the API takes no per-invoice URL, so ``CheckoutRequest.notify_url`` is not sent) when it is
  paid or expires, retrying until it gets a 2xx. Every callback carries the account's callback
  verification token in the ``x-callback-token`` header; the body itself is not signed. A
  ``webhook-id`` header, when present, identifies the delivery and repeats on retries.
* Get invoice: ``GET {api_base}/v2/invoices/{invoice_id}`` with the same Basic auth answers the
  invoice as Xendit has it (``id``, ``external_id``, ``status``, ``amount``, ``paid_amount``,
  ``currency``, ...), or 404 ``{"error_code": "INVOICE_NOT_FOUND_ERROR", ...}``.

Anyone holding the callback token (it is the same for every callback, and it sat in stored
headers before they were masked) can write any body: an invented invoice id for a reference
that is already paid, another amount. So a callback is only a hint: ``confirm`` fetches the
invoice it names and billing acts on Xendit's answer, which must be for our ``external_id``.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from otomat.billing.gateways.base import (
    Checkout,
    CheckoutRequest,
    CredentialField,
    EventKind,
    Gateway,
    GatewayError,
    GatewayEvent,
    NotConfirmed,
    SignatureError,
)
from otomat.billing.gateways.strict import StrictJson
from otomat.billing.money import Money

__all__ = ["GATEWAY", "XenditGateway"]

# A real callback is a few kilobytes; anything far larger is not one, and is refused unparsed.
MAX_CALLBACK_BYTES = 64 * 1024

# What a Xendit invoice id looks like (24 hex digits today); anything else is not put into a URL.
_INVOICE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Invoice status -> kind. SETTLED follows PAID once the money reaches the balance; both mean the
# customer paid. Statuses Xendit may add later are "ignored" (verified, but nothing to do).
_STATUS_KINDS: dict[str, EventKind] = {
    "PAID": "paid",
    "SETTLED": "paid",
    "EXPIRED": "expired",
    "PENDING": "pending",
}


class XenditGateway(Gateway):
    """Xendit invoices and invoice callbacks. Xendit also invoices in PHP, THB, VND and MYR;
    Otomat bills Indonesian customers through it, so IDR only."""

    code: ClassVar[str] = "xendit"
    label: ClassVar[str] = "Xendit"
    currencies: ClassVar[frozenset[str]] = frozenset({"IDR"})
    default_api_base: ClassVar[str] = "https://api.xendit.co"
    secret_headers: ClassVar[frozenset[str]] = frozenset({"x-callback-token"})
    credential_fields: ClassVar[tuple[CredentialField, ...]] = (
        CredentialField(
            "secret_key",
            "Secret API key",
            help="Xendit dashboard → Settings → API keys; needs write access to Money-in.",
        ),
        CredentialField(
            "callback_token",
            "Callback verification token",
            help="Xendit dashboard → Settings → Webhooks (callbacks): the verification token.",
        ),
    )

    # -- checkout -----------------------------------------------------------------------------

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        """Create an invoice for ``request`` and return its hosted page and invoice id.

        ``external_id`` is ``request.reference``. The customer returns to ``return_url`` both
        after paying and after giving up (Otomat's return page reads the payment's state).
        Raises GatewayError for a currency other than IDR or an amount under Rp1 (before any
        request), and when Xendit refuses or cannot be reached.
        """
        amount = request.amount
        if amount.currency not in self.currencies:
            raise GatewayError(f"Xendit invoices are set up for IDR only, not {amount.currency}.")
        if amount.amount_minor < 1:
            raise GatewayError(f"Xendit cannot invoice {amount}; the minimum is 1 IDR.")
        payload: dict[str, Any] = {
            "external_id": request.reference,
            "amount": amount.amount_minor,  # whole rupiah: IDR's billing unit is Xendit's unit
            "currency": amount.currency,
            "description": request.description or request.reference,
        }
        if request.customer_email:
            payload["payer_email"] = request.customer_email
        if request.return_url:
            payload["success_redirect_url"] = request.return_url
            payload["failure_redirect_url"] = request.return_url
        data = self.request_json(
            "POST",
            "/v2/invoices",
            what="the request",
            json=payload,
            headers={"Accept": "application/json"},
            auth=(self.credentials["secret_key"], ""),
            error_text=lambda data, _response: _error_message(data),
        )
        invoice_id, invoice_url = data.get("id"), data.get("invoice_url")
        if not (isinstance(invoice_id, str) and invoice_id and isinstance(invoice_url, str)):
            raise GatewayError("Xendit answered without an invoice id and invoice_url.")
        if not invoice_url.startswith(("https://", "http://")):
            raise GatewayError("Xendit answered with an invoice_url that is not a web address.")
        return Checkout(redirect_url=invoice_url, provider_ref=invoice_id)

    # -- callbacks -------------------------------------------------------------------------------

    def parse_callback(self, *, headers: Mapping[str, str], body: bytes) -> GatewayEvent:
        """Verify one invoice callback and normalise it.

        Verification is the documented one: ``x-callback-token`` must equal the configured
        callback token (compared in constant time). The event:

        * ``event_id`` the ``webhook-id`` header when Xendit sends one (it repeats on retries),
          else ``f"{id}:{status}"``;
        * ``payment_id`` the invoice ``id`` (one invoice is paid at most once);
        * ``reference`` the ``external_id``;
        * ``amount`` ``paid_amount`` for a payment (what the customer actually paid), else the
          invoice ``amount``, in whole rupiah;
        * ``occurred_at`` ``paid_at`` for a payment, else ``updated``.

        PAID and SETTLED are "paid", EXPIRED "expired", PENDING "pending", anything else
        "ignored". Anything that does not verify or parse raises SignatureError, nothing else.
        The body is not signed, so the event is a hint (``confirmed`` False) until ``confirm``.
        """
        lowered = {str(k).lower(): v for k, v in headers.items()}
        token = lowered.get("x-callback-token")
        if not isinstance(token, str) or not hmac.compare_digest(
            _bytes(token), _bytes(self.credentials["callback_token"])
        ):
            raise SignatureError("Xendit callback: x-callback-token does not match.")
        return self._read(lowered, body)

    def parse_stored(self, *, headers: Mapping[str, str], body: bytes) -> GatewayEvent:
        """A stored callback, whose token was checked on arrival and masked before storage:
        read without the token (``confirm`` asks Xendit before anything moves)."""
        return self._read({str(k).lower(): v for k, v in headers.items()}, body)

    def _read(self, lowered: Mapping[str, Any], body: bytes) -> GatewayEvent:
        data = _load_json(body)
        invoice_id = _text(data, "id")
        external_id = _text(data, "external_id")
        status = _text(data, "status")
        kind = _STATUS_KINDS.get(status, "ignored")
        currency = _text(data, "currency")
        if currency not in self.currencies:
            raise SignatureError(f"Xendit callback in {currency!r}, not IDR.")
        amount = _rupiah(data, "amount")
        if kind == "paid" and data.get("paid_amount") is not None:
            amount = _rupiah(data, "paid_amount")

        webhook_id = lowered.get("webhook-id")
        if webhook_id is None or webhook_id == "":
            event_id = f"{invoice_id}:{status}"
        elif isinstance(webhook_id, str) and len(webhook_id) <= 200 and webhook_id.isprintable():
            event_id = webhook_id
        else:
            _refuse("the webhook-id header is not a short printable string")

        method = _optional_text(data, "payment_method")
        channel = _optional_text(data, "payment_channel")
        detail = status.lower()
        if method:
            detail += f" via {method}" + (f" ({channel})" if channel else "")
        return GatewayEvent(
            event_id=event_id,
            kind=kind,
            reference=external_id,
            payment_id=invoice_id,
            amount=amount,
            occurred_at=_time(data, "paid_at" if kind == "paid" else "updated"),
            detail=detail[:200],
            raw=data,
        )

    # -- confirmation ----------------------------------------------------------------------------

    def confirm(self, event: GatewayEvent) -> GatewayEvent:
        """Fetch the invoice ``event.payment_id`` names and return what Xendit says of it.

        ``kind`` comes from the invoice's status, ``amount`` from its ``paid_amount`` (a
        payment) or ``amount``, ``payment_id`` is the invoice id (Xendit's invoice is paid at
        most once) and ``event_id`` ``f"{id}:{kind}"``, so that PAID and SETTLED, and every
        retry, are one event. Raises NotConfirmed when Xendit knows no such invoice
        (INVOICE_NOT_FOUND_ERROR), the id cannot be one, or the invoice's external_id is not
        ``event.reference``; GatewayError when Xendit cannot be reached, refuses the key, fails
        or answers something that is not an invoice.
        """
        invoice_id = event.payment_id
        if not _INVOICE_ID.fullmatch(invoice_id):
            raise NotConfirmed(f"Xendit: {invoice_id[:80]!r} cannot be an invoice id.")
        data = self.request_json(
            "GET",
            f"/v2/invoices/{invoice_id}",
            what="the invoice request",
            accept=(404,),
            headers={"Accept": "application/json"},
            auth=(self.credentials["secret_key"], ""),
            error_text=lambda data, _response: _error_message(data),
        )
        if data.get("error_code") == "INVOICE_NOT_FOUND_ERROR":
            raise NotConfirmed(f"Xendit knows no invoice {invoice_id}.")
        if data.get("error_code") or "id" not in data:
            raise GatewayError(
                f"Xendit answered the invoice request with {self.scrub(_error_message(data))}"
            )
        try:
            if _text(data, "id") != invoice_id:
                raise NotConfirmed(f"Xendit answered another invoice than {invoice_id}.")
            if _text(data, "external_id") != event.reference:
                raise NotConfirmed(
                    f"Xendit invoice {invoice_id} is not for reference {event.reference!r}."
                )
            status = _text(data, "status")
            kind = _STATUS_KINDS.get(status, "ignored")
            currency = _text(data, "currency")
            amount = _rupiah(data, "amount")
            if kind == "paid" and data.get("paid_amount") is not None:
                amount = _rupiah(data, "paid_amount")
            method = _optional_text(data, "payment_method")
        except SignatureError as exc:
            raise GatewayError(f"Xendit answered an invoice that does not parse: {exc}") from None
        if currency not in self.currencies:
            raise GatewayError(f"Xendit reports invoice {invoice_id} in {currency!r}, not IDR.")
        detail = status.lower() + (f" via {method}" if method else "")
        return GatewayEvent(
            event_id=f"{invoice_id}:{kind}",
            kind=kind,
            reference=event.reference,
            payment_id=invoice_id,
            amount=amount,
            occurred_at=_time(data, "paid_at" if kind == "paid" else "updated"),
            detail=f"{detail} (get invoice)"[:200],
            raw=data,
            confirmed=True,
        )


def _error_message(data: object) -> str:
    """Xendit's ``message`` with its ``error_code``, as one line."""
    if not isinstance(data, dict):
        return ""
    message = data.get("message")
    code = data.get("error_code")
    text = str(message) if message else ""
    if code:
        text = f"{code}: {text}" if text else str(code)
    return text


def _time(data: Mapping[str, Any], name: str) -> datetime | None:
    """An ISO 8601 time from the callback ("2026-05-01T07:03:09.123Z"), or None. The time is
    informational: never a reason to refuse a verified callback."""
    value = data.get(name)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


# -- strict reading of an untrusted body; every failure is a SignatureError --------------------


_READER = StrictJson("Xendit callback", MAX_CALLBACK_BYTES)
_refuse = _READER.refuse
_load_json = _READER.load_json
_text = _READER.text
_optional_text = _READER.optional_text


def _rupiah(data: Mapping[str, Any], name: str) -> Money:
    """A JSON number of whole, non-negative rupiah (``150000`` or ``150000.0``) as Money."""
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        _refuse(f"{name} is missing or not a number")
    try:
        amount = Money.of(value, "IDR")
    except ValueError:  # a fraction of a rupiah, or absurdly large
        _refuse(f"{name} {value} is not a whole number of rupiah")
    if amount.amount_minor < 0:
        _refuse(f"{name} {value} is negative")
    return amount


def _bytes(text: str) -> bytes:
    # hmac.compare_digest refuses non-ASCII str; compare the exact UTF-8 bytes instead.
    return text.encode("utf-8", "surrogatepass")


GATEWAY = XenditGateway
