"""Midtrans Snap: Midtrans' hosted payment page (virtual accounts, QRIS, e-wallets, cards).

The protocol, as Midtrans documents it (docs.midtrans.com: Snap integration guide, HTTP(S)
Notification / Webhooks, Handling HTTP Notification, Transaction Status Cycle, Status Codes):

* Checkout: ``POST {api_base}/snap/v1/transactions`` with HTTP Basic auth (the server key as the
  user name, an empty password) and a JSON body whose ``transaction_details`` carries our
  ``order_id`` and an integer ``gross_amount`` in rupiah. Midtrans answers 201 with ``token`` and
  ``redirect_url`` (the hosted page); errors carry ``error_messages``, a list of strings. The
  ``X-Override-Notification`` header sets the notification URL for this transaction instead of
  the dashboard's Payment Notification URL.
* Notification: Midtrans POSTs JSON to that URL on every status change, and again on retries.
  ``signature_key`` is ``SHA512(order_id + status_code + gross_amount + server_key)`` in hex, with
  ``gross_amount`` the string exactly as sent (``"150000.00"``).

* Get Status: ``GET {core_api_base}/v2/{order_id}/status`` with the same Basic auth answers the
  transaction as Midtrans has it: ``status_code`` ("200", "201", "202", "407", or "404" with
  "Transaction doesn't exist." for an order no transaction was made for), ``transaction_status``,
  ``fraud_status``, ``transaction_id``, ``gross_amount`` and, once refunded or charged back, the
  ``refunds`` list. The Core API lives on another host than Snap: ``api.midtrans.com``
  (``api.sandbox.midtrans.com``) beside ``app.midtrans.com`` (``app.sandbox.midtrans.com``).

The signature covers only ``order_id``, ``status_code`` and ``gross_amount``: ``transaction_status``,
``transaction_id``, the refunds and every other field are not signed, so a captured notification
can be replayed with them changed (a new transaction_id, "settlement" relabelled "refund", a
genuine "cancel", whose status_code is 200 too, relabelled "settlement"). A notification is
therefore only a hint: ``confirm`` reads the order's status with Get Status and billing acts on
that answer alone (Midtrans' own clients do the same).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

from otomat.billing.gateways.base import (
    Checkout,
    CheckoutRequest,
    CredentialField,
    EventKind,
    Gateway,
    GatewayError,
    GatewayEvent,
    NotConfirmed,
    Refund,
    SignatureError,
)
from otomat.billing.gateways.strict import StrictJson
from otomat.billing.money import Money

__all__ = ["GATEWAY", "SANDBOX_API_BASE", "MidtransGateway", "signature_key"]

SANDBOX_API_BASE = "https://app.sandbox.midtrans.com"
# The Core API (Get Status) of each Snap host; any other API base (a proxy, the local fake)
# serves both.
_CORE_API_BASES = {
    "https://app.midtrans.com": "https://api.midtrans.com",
    SANDBOX_API_BASE: "https://api.sandbox.midtrans.com",
}
# What Midtrans accepts as an order id (and so what can be put into the status URL's path).
_ORDER_ID = re.compile(r"[A-Za-z0-9\-_.~]{1,50}")
# A real notification is a couple of kilobytes; anything far larger is not one, and is refused
# before it is parsed.
MAX_CALLBACK_BYTES = 64 * 1024
# Midtrans' limits for names in item_details and customer_details.
_MAX_NAME = 50
# Midtrans writes times as "2026-05-01 14:03:09", in Western Indonesia Time (GMT+7).
_JAKARTA = ZoneInfo("Asia/Jakarta")
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# gross_amount as Midtrans writes it: digits, optionally two decimals ("150000.00").
_GROSS_AMOUNT = re.compile(r"[0-9]{1,30}(?:\.[0-9]{1,2})?")

# transaction_status -> kind. "capture" depends on fraud_status and is decided in _kind().
_STATUS_KINDS: dict[str, EventKind] = {
    "settlement": "paid",
    "pending": "pending",
    "deny": "failed",
    "cancel": "failed",
    "failure": "failed",
    "expire": "expired",
    "refund": "refunded",
    "partial_refund": "refunded",
    # A chargeback takes the money back like a refund does; the billing code must hear of it.
    "chargeback": "refunded",
    "partial_chargeback": "refunded",
    # Card pre-authorisation: money reserved but not taken. Snap does not use it unless the
    # merchant asks for it, and a capture or cancel notification follows.
    "authorize": "ignored",
}
_CAPTURE_KINDS: dict[str, EventKind] = {"accept": "paid", "challenge": "pending", "deny": "failed"}


def signature_key(order_id: str, status_code: str, gross_amount: str, server_key: str) -> str:
    """The documented notification signature: hex SHA-512 of the four strings concatenated."""
    text = order_id + status_code + gross_amount + server_key
    return hashlib.sha512(text.encode("utf-8", "surrogatepass")).hexdigest()


class MidtransGateway(Gateway):
    """Midtrans Snap checkouts and HTTP notifications, in IDR only."""

    code: ClassVar[str] = "midtrans"
    label: ClassVar[str] = "Midtrans"
    currencies: ClassVar[frozenset[str]] = frozenset({"IDR"})
    default_api_base: ClassVar[str] = "https://app.midtrans.com"
    credential_fields: ClassVar[tuple[CredentialField, ...]] = (
        CredentialField(
            "server_key",
            "Server key",
            help="Midtrans dashboard → Settings → Access keys. Sandbox keys start with SB-.",
        ),
        CredentialField(
            "client_key",
            "Client key",
            secret=False,
            required=False,
            help="Not needed for the hosted Snap page; stored for reference only.",
        ),
        CredentialField(
            "core_api_base",
            "Core API base URL",
            secret=False,
            required=False,
            help="Where payments are confirmed (Get Status). Leave blank: api.midtrans.com, or "
            "api.sandbox.midtrans.com for the sandbox.",
        ),
    )

    def __init__(self, credentials: Mapping[str, str], *, api_base: str = "") -> None:
        super().__init__(credentials, api_base=api_base)
        # A sandbox key ("SB-Mid-server-…") only works against the sandbox: without an explicit
        # API base, use the one the key belongs to instead of failing with a 401 in production.
        if not api_base and self.credentials["server_key"].startswith("SB-"):
            self.api_base = SANDBOX_API_BASE
        configured = str(self.credentials.get("core_api_base") or "").strip().rstrip("/")
        self.core_api_base = configured or _CORE_API_BASES.get(self.api_base, self.api_base)

    # -- checkout -----------------------------------------------------------------------------

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        """Create a Snap transaction for ``request`` and return its hosted page and token.

        ``order_id`` is ``request.reference``: Midtrans refuses an order id it has seen before,
        so a retried checkout needs a new reference. Raises GatewayError for a currency other
        than IDR or an amount under Rp1 (before any request), and when Midtrans refuses or
        cannot be reached.
        """
        amount = request.amount
        if amount.currency not in self.currencies:
            raise GatewayError(f"Midtrans takes payments in IDR only, not {amount.currency}.")
        if amount.amount_minor < 1:
            raise GatewayError(f"Midtrans cannot collect {amount}; the minimum is 1 IDR.")
        gross_amount = amount.amount_minor  # IDR's billing unit is the whole rupiah Midtrans takes
        customer: dict[str, str] = {"first_name": request.customer_name[:255]}
        if request.customer_email:
            customer["email"] = request.customer_email
        payload: dict[str, Any] = {
            "transaction_details": {"order_id": request.reference, "gross_amount": gross_amount},
            "customer_details": customer,
            # One line, so the Snap page and the Midtrans dashboard say what is being paid;
            # Midtrans checks that the lines add up to gross_amount.
            "item_details": [
                {
                    "id": request.reference[:_MAX_NAME],
                    "name": (request.description or request.reference)[:_MAX_NAME],
                    "price": gross_amount,
                    "quantity": 1,
                }
            ],
        }
        if request.return_url:
            payload["callbacks"] = {"finish": request.return_url}
        headers = {"Accept": "application/json"}
        if request.notify_url:
            headers["X-Override-Notification"] = request.notify_url
        data = self.request_json(
            "POST",
            "/snap/v1/transactions",
            what="the request",
            json=payload,
            headers=headers,
            auth=(self.credentials["server_key"], ""),
            error_text=lambda data, _response: _error_messages(data),
        )
        token, redirect_url = data.get("token"), data.get("redirect_url")
        if not (isinstance(token, str) and token and isinstance(redirect_url, str)):
            raise GatewayError("Midtrans answered without a Snap token and redirect_url.")
        if not redirect_url.startswith(("https://", "http://")):
            raise GatewayError("Midtrans answered with a redirect_url that is not a web address.")
        return Checkout(redirect_url=redirect_url, provider_ref=token)

    # -- notifications ---------------------------------------------------------------------------

    def parse_callback(self, *, headers: Mapping[str, str], body: bytes) -> GatewayEvent:
        """Verify one HTTP notification and normalise it.

        The signature is checked exactly as documented, and a "paid" status must come with
        status_code 200 (the signature covers the status code but not the status). The event:

        * ``event_id`` ``f"{transaction_id}:{transaction_status}"``: a retried notification
          repeats it, the next status of the same payment does not. Refunds and chargebacks
          add the ``refund_chargeback_id`` of the newest entry in ``refunds``, because an order
          can be refunded in several parts, each notified with the same status
          ("partial_refund"); Midtrans notifies each refund twice (the second time with
          ``bank_confirmed_at``), and both carry the same id;
        * ``payment_id`` the Midtrans ``transaction_id`` (a new one for each attempt on an order);
        * ``reference`` the ``order_id``;
        * ``amount`` in whole rupiah: ``gross_amount``, except for refunds and chargebacks,
          where it is the amount of the newest refund (``refund_amount`` is the running total),
          or None when the notification does not say. Those amounts are not signed, but a
          forger able to replay a signed notification could already relabel it a full refund.

        Status mapping: settlement and capture with fraud_status accept are "paid"; pending and
        capture with fraud_status challenge (or none) "pending"; deny, cancel, failure and a
        capture the fraud check denied "failed"; expire "expired"; refund, partial_refund and
        the chargebacks "refunded"; authorize and statuses Midtrans may add later "ignored".

        Anything that does not verify or parse raises SignatureError, never anything else.
        Because most of the body is unsigned, the event is a hint (``confirmed`` False): only
        ``confirm``'s answer from Get Status moves money.
        """
        data = _load_json(body)
        order_id = _text(data, "order_id")
        status_code = _text(data, "status_code")
        gross_amount = _text(data, "gross_amount")
        signature = _text(data, "signature_key")
        expected = signature_key(
            order_id, status_code, gross_amount, self.credentials["server_key"]
        )
        if not hmac.compare_digest(_bytes(expected), _bytes(signature)):
            raise SignatureError("Midtrans notification: signature_key does not verify.")

        status = _text(data, "transaction_status")
        transaction_id = _text(data, "transaction_id")
        fraud_status = _optional_text(data, "fraud_status")
        kind = _kind(status, fraud_status)
        if kind == "paid" and status_code != "200":
            raise SignatureError(
                f"Midtrans notification: status {status!r} with status_code {status_code!r}; "
                f"a payment has status_code 200."
            )
        currency = _optional_text(data, "currency") or "IDR"
        if currency not in self.currencies:
            raise SignatureError(f"Midtrans notification in {currency!r}, not IDR.")
        gross = _rupiah(gross_amount, "gross_amount")
        amount: Money | None = gross

        payment_type = _optional_text(data, "payment_type")
        detail = status if status != "capture" else f"capture (fraud status {fraud_status})"
        if payment_type:
            detail += f" via {payment_type}"
        event_id = f"{transaction_id}:{status}"
        if kind == "refunded":
            refund_id, refunded = _newest_refund(data)
            if refunded is not None and refunded > gross:
                _refuse(f"a refund of {refunded} exceeds gross_amount {gross_amount}")
            if refund_id:
                event_id += f":{refund_id}"
                detail += f", refund {refund_id}"
            amount = refunded
        return GatewayEvent(
            event_id=event_id,
            kind=kind,
            reference=order_id,
            payment_id=transaction_id,
            amount=amount,
            occurred_at=_occurred_at(data, kind),
            detail=detail[:200],
            raw=data,
        )

    # -- confirmation ----------------------------------------------------------------------------

    def confirm(self, event: GatewayEvent) -> GatewayEvent:
        """Read the order ``event.reference`` with Get Status and return what Midtrans says.

        Everything in the result comes from the answer: ``kind`` from its transaction_status,
        fraud_status and status_code (a payment needs status_code 200), ``payment_id`` its
        transaction_id, ``amount`` its gross_amount, ``refunds`` its refunds (chargebacks
        marked), ``event_id`` ``f"{transaction_id}:{transaction_status}"`` plus the newest
        refund's id, so that every hint of one state is one event. A notification naming
        another transaction_id than Midtrans' changes nothing more than Midtrans' own state.

        Raises NotConfirmed for status_code 404 ("Transaction doesn't exist."), an order id
        that cannot be one, or an answer for another order; GatewayError when Midtrans cannot
        be reached, refuses the key, fails (5xx) or answers something that is not a status.
        """
        order_id = event.reference
        if not _ORDER_ID.fullmatch(order_id):
            raise NotConfirmed(f"Midtrans: {order_id!r} cannot be an order id.")
        data = self.request_json(
            "GET",
            f"/v2/{quote(order_id, safe='')}/status",
            what="the status request",
            base=self.core_api_base,
            accept=(404,),
            headers={"Accept": "application/json"},
            auth=(self.credentials["server_key"], ""),
            error_text=lambda data, _response: _error_messages(data),
        )
        status_code = str(data.get("status_code") or "")
        if status_code == "404":
            raise NotConfirmed(f"Midtrans knows no transaction for order {order_id}.")
        if not status_code.isdigit() or not status_code.startswith(("2", "4")):
            raise GatewayError(
                f"Midtrans answered the status of {order_id} with status_code "
                f"{self.scrub(status_code) or 'none'}: {self.scrub(_error_messages(data))}"
            )
        try:
            if _text(data, "order_id") != order_id:
                raise NotConfirmed(
                    f"Midtrans answered the status of another order than {order_id}."
                )
            status = _text(data, "transaction_status")
            transaction_id = _text(data, "transaction_id")
            fraud_status = _optional_text(data, "fraud_status")
            currency = _optional_text(data, "currency") or "IDR"
            gross = _rupiah(_text(data, "gross_amount"), "gross_amount")
            refunds = _refunds(data, chargeback="chargeback" in status)
        except SignatureError as exc:
            raise GatewayError(f"Midtrans answered a status that does not parse: {exc}") from None
        if currency not in self.currencies:
            raise GatewayError(f"Midtrans reports order {order_id} in {currency!r}, not IDR.")
        kind = _kind(status, fraud_status)
        if kind == "paid" and status_code != "200":
            kind = "pending"  # not money in hand until Midtrans says 200
        if sum(r.amount.amount_minor for r in refunds) > gross.amount_minor:
            raise GatewayError(f"Midtrans reports refunds of order {order_id} beyond its amount.")
        event_id = f"{transaction_id}:{status}"
        if kind == "refunded" and refunds:
            event_id += f":{refunds[-1].refund_id}"
        detail = status if status != "capture" else f"capture (fraud status {fraud_status})"
        payment_type = _optional_text(data, "payment_type")
        if payment_type:
            detail += f" via {payment_type}"
        if event.payment_id and event.payment_id != transaction_id:
            detail += f"; the callback named transaction {event.payment_id[:40]}"
        return GatewayEvent(
            event_id=event_id,
            kind=kind,
            reference=order_id,
            payment_id=transaction_id,
            amount=gross,
            occurred_at=_occurred_at(data, kind),
            detail=f"{detail} (Get Status)"[:200],
            raw={k: v for k, v in data.items() if k != "signature_key"},
            confirmed=True,
            refunds=refunds,
        )


def _kind(status: str, fraud_status: str) -> EventKind:
    if status == "capture":
        # A card capture is only money in hand once the fraud check accepted it; a capture
        # without a fraud_status is treated as undecided rather than as paid.
        return _CAPTURE_KINDS.get(fraud_status, "pending")
    return _STATUS_KINDS.get(status, "ignored")


def _occurred_at(data: Mapping[str, Any], kind: EventKind) -> datetime | None:
    """When the change happened, where the notification says: settlement_time for a payment
    (transaction_time for a card capture), expiry_time for an expiry, transaction_time for a
    pending or failed transaction; None for the rest, whose time Midtrans gives elsewhere."""
    fields = {
        "paid": ("settlement_time", "transaction_time"),
        "expired": ("expiry_time",),
        "pending": ("transaction_time",),
        "failed": ("transaction_time",),
    }.get(kind, ())
    for name in fields:
        value = data.get(name)
        if isinstance(value, str):
            try:
                return datetime.strptime(value, _TIME_FORMAT).replace(tzinfo=_JAKARTA)
            except ValueError:
                # The time is informational: never a reason to refuse a verified notification.
                return None
    return None


def _newest_refund(data: Mapping[str, Any]) -> tuple[str, Money | None]:
    """The id and amount of the newest refund in a refund or chargeback notification.

    Notifications list every refund of the transaction in ``refunds``, oldest first (the
    refund API's reply has a single ``refund_chargeback_id`` and ``refund_amount`` instead).
    Without either, the id is empty and the amount is ``refund_amount`` when present (then the
    only refund), else None.
    """
    refunds = data.get("refunds")
    if refunds is not None:
        if not isinstance(refunds, list) or not all(isinstance(r, dict) for r in refunds):
            _refuse("refunds is not a list of refunds")
        if refunds:
            newest = refunds[-1]
            return _refund_id(newest), _rupiah(_text(newest, "refund_amount"), "refund_amount")
    refund_amount = _optional_text(data, "refund_amount")
    amount = _rupiah(refund_amount, "refund_amount") if refund_amount else None
    if data.get("refund_chargeback_id") is not None:
        return _refund_id(data), amount
    return "", amount


def _refunds(data: Mapping[str, Any], *, chargeback: bool) -> tuple[Refund, ...]:
    """Every refund in a Get Status answer's ``refunds`` list, oldest first. Midtrans lists
    chargebacks in the same list (``refund_chargeback_id``); ``chargeback`` marks them when the
    transaction's status is a chargeback."""
    refunds = data.get("refunds")
    if refunds is None:
        return ()
    if not isinstance(refunds, list) or not all(isinstance(r, dict) for r in refunds):
        _refuse("refunds is not a list of refunds")
    return tuple(
        Refund(
            refund_id=_refund_id(r),
            amount=_rupiah(_text(r, "refund_amount"), "refund_amount"),
            chargeback=chargeback,
        )
        for r in refunds
    )


def _refund_id(refund: Mapping[str, Any]) -> str:
    value = refund.get("refund_chargeback_id")
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isalnum():
        _refuse("refund_chargeback_id is missing or not an id")
    return str(value)[:64]


def _rupiah(text: str, name: str) -> Money:
    """An amount as Midtrans writes it ("150000.00") as whole rupiah; a fraction of a rupiah,
    which Otomat never asks for, does not parse."""
    if not _GROSS_AMOUNT.fullmatch(text):
        _refuse(f"{name} {text!r} is not an amount")
    try:
        return Money.of(Decimal(text), "IDR")
    except ValueError:
        _refuse(f"{name} {text!r} is not a whole number of rupiah")


def _error_messages(data: object) -> str:
    """Midtrans' ``error_messages`` (or a single ``status_message``) as one line."""
    if isinstance(data, dict):
        messages = data.get("error_messages")
        if isinstance(messages, list):
            return "; ".join(str(m) for m in messages if m)
        if isinstance(data.get("status_message"), str):
            return data["status_message"]
    return ""


# -- strict reading of an untrusted body; every failure is a SignatureError --------------------


_READER = StrictJson("Midtrans notification", MAX_CALLBACK_BYTES)
_refuse = _READER.refuse
_load_json = _READER.load_json
_text = _READER.text
_optional_text = _READER.optional_text


def _bytes(text: str) -> bytes:
    # hmac.compare_digest refuses non-ASCII str; compare the exact UTF-8 bytes instead.
    return text.encode("utf-8", "surrogatepass")


GATEWAY = MidtransGateway
