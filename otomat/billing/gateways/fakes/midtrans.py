"""A local Midtrans Snap: the create-transaction API, the hosted page and signed notifications.

What it reproduces of Midtrans (see ``otomat.billing.gateways.midtrans`` for the documents):

* ``POST /snap/v1/transactions`` checks HTTP Basic auth as Midtrans does (the server key as the
  user name) and answers 401 with Midtrans' ``error_messages`` otherwise; validates the body
  (order_id required, at most 50 characters of letters, digits and ``-_.~``, unused so far;
  gross_amount a positive integer; item_details adding up to it) and answers 400 with
  ``error_messages``; on success 201 with ``token`` and ``redirect_url``. The
  ``X-Override-Notification`` header sets the checkout's notification URL.
* ``GET /snap/v4/redirection/<token>`` is the hosted page. Its Pay button settles the order:
  the fake sends the signed settlement notification to the notification URL and answers 303 to
  ``callbacks.finish`` with Midtrans' ``order_id``, ``status_code`` and ``transaction_status``
  query parameters. Snap has no cancel button (an unpaid order just expires); the fake's Cancel
  stands for that: it sends the expire notification and answers 303 the same way.
* Notifications are JSON signed with ``SHA512(order_id + status_code + gross_amount + key)``,
  with ``gross_amount`` written as Midtrans writes it ("150000.00").
* ``GET /v2/<order_id or transaction_id>/status`` (Get Status, the Core API, served on the same
  host for both the Snap and the Core API base) answers the transaction as the fake has it, with
  Basic auth as above (401 and ``status_code`` "401" otherwise): ``status_code``,
  ``transaction_status``, ``transaction_id``, ``gross_amount``, ``fraud_status``, the
  ``refunds`` list, ...; HTTP 404 with ``status_code`` "404" and "Transaction doesn't exist."
  for an unknown id or an order no transaction was made for yet (the Snap page not paid).
  ``status_down = 503`` (or any status) makes it fail like an outage.

The fake's transactions follow what it notifies: ``notification()`` of a genuine key moves the
order to that status (a settled order never goes back to pending or expired: such a
notification is only a late one), and a refund notification records the refund it reports.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import httpx

from otomat.billing.gateways.fakes.server import FakeServer, Reply, Request, payment_page
from otomat.billing.gateways.midtrans import signature_key
from otomat.billing.money import Money

__all__ = ["FakeMidtrans"]

_JAKARTA = ZoneInfo("Asia/Jakarta")
_ORDER_ID = re.compile(r"[A-Za-z0-9\-_.~]{1,50}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
UNAUTHORIZED = [
    "Access denied due to unauthorized transaction, please check client or server key",
    "Visit https://snap-docs.midtrans.com/#request-headers for more details",
]

# Otomat's event kinds -> the transaction_status Midtrans sends for them.
KIND_STATUSES = {
    "paid": "settlement",
    "pending": "pending",
    "failed": "deny",
    "expired": "expire",
    "refunded": "refund",
}
# Statuses after which an order's money has moved: no later pending/expire/deny/cancel applies.
_SETTLED = frozenset(
    {"settlement", "capture", "refund", "partial_refund", "chargeback", "partial_chargeback"}
)
_REFUNDS = frozenset({"refund", "partial_refund", "chargeback", "partial_chargeback"})
NOT_FOUND = "Transaction doesn't exist."
# transaction_status -> status_code, as in Midtrans' status code tables and samples.
STATUS_CODES = {
    "settlement": "200",
    "capture": "200",
    "cancel": "200",
    "refund": "200",
    "partial_refund": "200",
    "chargeback": "200",
    "partial_chargeback": "200",
    "pending": "201",
    "deny": "202",
    "expire": "202",
}


class FakeMidtrans(FakeServer):
    """Midtrans Snap on 127.0.0.1. ``notify_url`` is the dashboard's Payment Notification URL,
    used for checkouts created without ``X-Override-Notification``."""

    merchant_id = "G000000001"

    def __init__(
        self,
        server_key: str = "SB-Mid-server-test",
        notify_url: str = "",
        client_key: str = "SB-Mid-client-test",
    ) -> None:
        super().__init__()
        self.server_key = server_key
        self.client_key = client_key
        self.notify_url = notify_url
        # order_id -> the checkout: "reference", "provider_ref" (token), "amount" (Money),
        # "redirect_url", "return_url", "notify_url", "status", "created_at", "request" (body).
        self.checkouts: dict[str, dict[str, Any]] = {}
        self.delivery_errors: list[str] = []  # notifications the hosted page could not deliver
        self._tokens: dict[str, str] = {}  # token -> order_id
        self._lock = threading.Lock()
        self.status_down = 0  # an HTTP status for Get Status to fail with (0: answer)
        self.route("POST", r"/snap/v1/transactions", self._create)
        self.route("GET", r"/v2/(?P<id>[^/]+)/status", self._status)
        self.route("GET", r"/snap/v4/redirection/(?P<token>[0-9a-f-]{36})", self._page)
        self.route(
            "POST",
            r"/snap/v4/redirection/(?P<token>[0-9a-f-]{36})/(?P<action>pay|cancel)",
            self._act,
        )

    def gateway_settings(self) -> dict[str, Any]:
        """Keyword arguments for ``MidtransGateway`` talking to this fake."""
        return {
            "credentials": {"server_key": self.server_key, "client_key": self.client_key},
            "api_base": self.url,
        }

    # -- notifications -----------------------------------------------------------------------------

    def notification(
        self,
        reference: str,
        kind: str = "paid",
        *,
        amount: Money | int | None = None,
        event_suffix: str = "",
        transaction_status: str = "",
    ) -> tuple[dict[str, str], bytes]:
        """The headers and body Midtrans would POST for ``kind`` of the checkout ``reference``.

        ``kind`` is "paid" (settlement), "pending", "failed" (deny), "expired" or "refunded"
        (refund). ``amount`` (Money in IDR, or an int of rupiah) replaces the checkout's amount:
        as the signed gross_amount, or for "refunded" as the amount refunded (a smaller one is
        a partial_refund of the unchanged gross_amount). The result is the same for the same
        arguments (a retried notification); ``event_suffix`` makes it another payment attempt
        on the order (a new transaction_id), hence another event, or for a refund another
        refund of the order. ``transaction_status`` sends that status instead of the kind's
        (e.g. "cancel", "chargeback"). The order's state at the fake follows (see the module
        docstring). Raises KeyError for an unknown reference and ValueError for an unknown kind.
        """
        if kind not in KIND_STATUSES:
            raise ValueError(f"kind must be one of {', '.join(KIND_STATUSES)}, not {kind!r}")
        status = transaction_status or KIND_STATUSES[kind]
        if status not in STATUS_CODES:
            raise ValueError(f"transaction_status must be one of {', '.join(STATUS_CODES)}")
        return self._notification(
            reference, status, amount=amount, suffix=event_suffix, key=self.server_key
        )

    def forged_notification(
        self, reference: str, kind: str = "paid"
    ) -> tuple[dict[str, str], bytes]:
        """``notification(reference, kind)`` signed with a key that is not the server key."""
        if kind not in KIND_STATUSES:
            raise ValueError(f"kind must be one of {', '.join(KIND_STATUSES)}, not {kind!r}")
        return self._notification(
            reference, KIND_STATUSES[kind], amount=None, suffix="", key=f"{self.server_key}-forged"
        )

    def checkout_notify_url(self, reference: str) -> str:
        return self._checkout(reference)["notify_url"]  # from X-Override-Notification

    def _checkout(self, reference: str) -> dict[str, Any]:
        try:
            return self.checkouts[reference]
        except KeyError:
            raise KeyError(f"FakeMidtrans has no checkout with order_id {reference!r}") from None

    def _notification(
        self, reference: str, status: str, *, amount: Money | int | None, suffix: str, key: str
    ) -> tuple[dict[str, str], bytes]:
        checkout = self._checkout(reference)
        money: Money = checkout["amount"]
        if isinstance(amount, int):
            amount = Money(amount, "IDR")
        if amount is not None and amount.currency != "IDR":
            raise ValueError(f"Midtrans notifications are in IDR, not {amount.currency}")
        genuine = key == self.server_key
        with self._lock:
            if status in _REFUNDS:
                refunded = amount if amount is not None else money
                if refunded < money and not status.startswith("partial_"):
                    status = f"partial_{status}"
                refunds = self._record_refund(checkout, status, refunded, suffix, genuine)
                transaction_id = checkout.get("transaction_id") or _transaction_id(checkout, suffix)
            else:
                refunds = []
                if amount is not None:
                    money = amount
                transaction_id = _transaction_id(checkout, suffix)
                if genuine:
                    self._move(checkout, status, transaction_id, money)
        gross_amount = f"{money.amount_minor}.00"  # Midtrans writes two decimals
        data = self._transaction_fields(checkout, status, transaction_id, gross_amount, key)
        data["status_message"] = "midtrans payment notification"
        if refunds:
            data["refund_amount"] = f"{sum(r['amount'] for r in refunds)}.00"  # running total
            data["refunds"] = [_refund_fields(r) for r in refunds]
        headers = {"content-type": "application/json", "accept": "application/json"}
        return headers, _json_bytes(data)

    def _transaction_fields(
        self, checkout: dict[str, Any], status: str, transaction_id: str, gross: str, key: str
    ) -> dict[str, Any]:
        """The fields notifications and Get Status share."""
        reference = checkout["reference"]
        status_code = STATUS_CODES[status]
        created: datetime = checkout["created_at"]
        data: dict[str, Any] = {
            "transaction_time": _midtrans_time(created),
            "transaction_status": status,
            "transaction_id": transaction_id,
            "status_code": status_code,
            "signature_key": signature_key(reference, status_code, gross, key),
            "payment_type": "bank_transfer",
            "order_id": reference,
            "merchant_id": self.merchant_id,
            "gross_amount": gross,
            "fraud_status": "accept",
            "currency": "IDR",
            "va_numbers": [{"bank": "bca", "va_number": f"12345{transaction_id[:8]}"}],
        }
        if status in _SETTLED:
            data["settlement_time"] = _midtrans_time(created + timedelta(minutes=2))
        if status in ("pending", "expire"):
            data["expiry_time"] = _midtrans_time(created + timedelta(days=1))
        return data

    def _move(self, checkout: dict[str, Any], status: str, transaction_id: str, money: Money):
        """The order's transaction moves to ``status`` (under the lock): a settled order keeps
        its transaction and status; anything else is the order's latest attempt."""
        if checkout.get("transaction_id") and checkout["status"] in _SETTLED:
            return
        checkout.update(status=status, transaction_id=transaction_id, gross=money)

    def _record_refund(
        self, checkout: dict[str, Any], status: str, amount: Money, suffix: str, genuine: bool
    ) -> list[dict[str, Any]]:
        """The order's refunds up to and including the one ``suffix`` names (recorded now if it
        is new and ``genuine``; a forged one is shown but not recorded)."""
        refunds: list[dict[str, Any]] = checkout.setdefault("refunds", [])
        for i, refund in enumerate(refunds):
            if refund["suffix"] == suffix:
                return refunds[: i + 1]
        created: datetime = checkout["created_at"]
        refund = {
            "suffix": suffix,
            "id": len(refunds) + 1,
            "amount": amount.amount_minor,
            "created_at": _midtrans_time(created + timedelta(days=2)),
        }
        if not genuine:
            return [*refunds, refund]
        refunds.append(refund)
        if not checkout.get("transaction_id"):
            checkout["transaction_id"] = _transaction_id(checkout, "")
            checkout["gross"] = checkout["amount"]
        checkout["status"] = status
        return list(refunds)

    # -- the API ---------------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        """HTTP Basic with the server key as the user name, as Midtrans authenticates."""
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        username, _, _password = decoded.partition(":")
        return bool(username) and username == self.server_key

    def _create(self, request: Request) -> Reply:
        if not self._authorized(request):
            return Reply(401, {"error_messages": UNAUTHORIZED})
        try:
            body = request.json()
        except ValueError:
            return Reply(400, {"error_messages": ["Request body is not valid JSON"]})
        errors = _validate(body)
        if errors:
            return Reply(400, {"error_messages": errors})
        details = body["transaction_details"]
        order_id = details["order_id"]
        token = str(uuid.uuid4())
        redirect_url = f"{self.url}/snap/v4/redirection/{token}"
        # Midtrans takes up to three comma-separated URLs; the fake notifies the first.
        override = request.headers.get("x-override-notification", "")
        notify_url = next((u.strip() for u in override.split(",") if u.strip()), "")
        with self._lock:
            if order_id in self.checkouts:
                return Reply(
                    400, {"error_messages": ["transaction_details.order_id has already been taken"]}
                )
            self.checkouts[order_id] = {
                "reference": order_id,
                "provider_ref": token,
                "amount": Money(details["gross_amount"], "IDR"),
                "redirect_url": redirect_url,
                "return_url": (body.get("callbacks") or {}).get("finish", ""),
                "notify_url": notify_url,
                "status": "pending",
                "created_at": datetime.now(_JAKARTA).replace(microsecond=0),
                "request": body,
            }
            self._tokens[token] = order_id
        return Reply(201, {"token": token, "redirect_url": redirect_url})

    def _status(self, request: Request) -> Reply:
        """Get Status: the order (or transaction) as the fake has it."""
        if self.status_down:
            return Reply(self.status_down, {"status_code": str(self.status_down)})
        if not self._authorized(request):
            return Reply(
                401,
                {"status_code": "401", "status_message": UNAUTHORIZED[0], "id": str(uuid.uuid4())},
            )
        wanted = request.match["id"]
        with self._lock:
            checkout = self.checkouts.get(wanted) or next(
                (c for c in self.checkouts.values() if c.get("transaction_id") == wanted), None
            )
            state = dict(checkout) if checkout is not None else None
            refunds = list((checkout or {}).get("refunds", []))
        if state is None or not state.get("transaction_id"):
            return Reply(
                404, {"status_code": "404", "status_message": NOT_FOUND, "id": str(uuid.uuid4())}
            )
        gross = f"{state['gross'].amount_minor}.00"
        data = self._transaction_fields(
            state, state["status"], state["transaction_id"], gross, self.server_key
        )
        data["status_message"] = "Success, transaction is found"
        if refunds:
            data["refund_amount"] = f"{sum(r['amount'] for r in refunds)}.00"
            data["refunds"] = [_refund_fields(r) for r in refunds]
        return Reply(200, data)

    # -- the hosted page ---------------------------------------------------------------------------

    def _page(self, request: Request) -> Reply:
        order_id = self._tokens.get(request.match["token"])
        if order_id is None:
            return Reply(404, "<!doctype html><title>Not found</title><p>Transaction not found.")
        checkout = self.checkouts[order_id]
        base = f"{self.url}/snap/v4/redirection/{checkout['provider_ref']}"
        return Reply(
            200,
            payment_page(
                f"Midtrans Snap (test): order {order_id}",
                checkout["amount"].format("id"),
                f"{base}/pay",
                f"{base}/cancel",
            ),
        )

    def _act(self, request: Request) -> Reply:
        """Pay (settlement) or give up (expire): notify (best effort, as Midtrans retries
        later) and send the customer to the finish URL."""
        order_id = self._tokens.get(request.match["token"])
        if order_id is None:
            return Reply(404, "<!doctype html><title>Not found</title><p>Transaction not found.")
        status = "settlement" if request.match["action"] == "pay" else "expire"
        with self._lock:
            checkout = self.checkouts[order_id]
            if checkout["status"] != "pending":
                return Reply(
                    409,
                    f"<!doctype html><title>Done</title><p>Order {order_id} is already "
                    f"{checkout['status']}.",
                )
            checkout["status"] = status
            checkout.pop("transaction_id", None)  # set by the notification below
        headers, body = self._notification(
            order_id, status, amount=None, suffix="", key=self.server_key
        )
        target = checkout["notify_url"] or self.notify_url
        if target:
            try:
                self.post_callback(target, body, headers)
            except httpx.HTTPError as exc:
                self.delivery_errors.append(f"{target}: {exc!r}")
        if not checkout["return_url"]:
            return Reply(200, f"<!doctype html><title>Done</title><p>Order {order_id}: {status}.")
        query = {
            "order_id": order_id,
            "status_code": STATUS_CODES[status],
            "transaction_status": status,
        }
        return Reply(303, b"", {"Location": _with_query(checkout["return_url"], query)})


def _validate(body: object) -> list[str]:
    """Midtrans' checks of a Snap request body, with its messages; empty if it is valid."""
    if not isinstance(body, dict):
        return ["Request body must be a JSON object"]
    details = body.get("transaction_details")
    if not isinstance(details, dict):
        return ["transaction_details is required"]
    errors = []
    order_id = details.get("order_id")
    if not isinstance(order_id, str) or not order_id:
        errors.append("transaction_details.order_id is required")
    elif len(order_id) > 50:
        errors.append("transaction_details.order_id too long")
    elif not _ORDER_ID.fullmatch(order_id):
        errors.append("transaction_details.order_id contains invalid characters")
    gross = details.get("gross_amount")
    if gross is None:
        errors.append("transaction_details.gross_amount is required")
    elif isinstance(gross, bool) or not isinstance(gross, int):
        errors.append("transaction_details.gross_amount must be an integer")
    elif gross < 1:
        errors.append("transaction_details.gross_amount must be greater than or equal to 1")
    items = body.get("item_details")
    if items is not None:
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            errors.append("item_details must be a list of items")
        else:
            for item in items:
                price, quantity, name = item.get("price"), item.get("quantity"), item.get("name")
                if isinstance(price, bool) or not isinstance(price, int):
                    errors.append("item_details.price must be an integer")
                if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
                    errors.append("item_details.quantity must be a positive integer")
                if not isinstance(name, str) or not name:
                    errors.append("item_details.name is required")
                elif len(name) > 50:
                    errors.append("item_details Name too long")
            if not errors and isinstance(gross, int):
                total = sum(i["price"] * i["quantity"] for i in items)
                if total != gross:
                    errors.append(
                        "transaction_details.gross_amount is not equal to the sum of item_details"
                    )
    customer = body.get("customer_details")
    if customer is not None:
        if not isinstance(customer, dict):
            errors.append("customer_details must be an object")
        elif "email" in customer and not (
            isinstance(customer["email"], str) and _EMAIL.fullmatch(customer["email"])
        ):
            errors.append("customer_details.email format is invalid")
    callbacks = body.get("callbacks")
    if callbacks is not None and not (
        isinstance(callbacks, dict) and isinstance(callbacks.get("finish", ""), str)
    ):
        errors.append("callbacks.finish must be a URL")
    return errors


def _midtrans_time(at: datetime) -> str:
    return at.astimezone(_JAKARTA).strftime("%Y-%m-%d %H:%M:%S")


def _json_bytes(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _transaction_id(checkout: dict[str, Any], suffix: str) -> str:
    # Deterministic, so that the same arguments give the same notification (a retry).
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"midtrans:{checkout['provider_ref']}:{suffix}"))


def _refund_fields(refund: dict[str, Any]) -> dict[str, Any]:
    return {
        "refund_chargeback_id": refund["id"],
        "refund_amount": f"{refund['amount']}.00",
        "created_at": refund["created_at"],
        "reason": "requested by the merchant",
        "refund_key": f"refund-{refund['id']}",
    }
