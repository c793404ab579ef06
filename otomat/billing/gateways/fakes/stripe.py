"""A local Stripe: enough of the real API for the official SDK to run against it unmodified.

API (https://docs.stripe.com/api/checkout/sessions):

* ``POST /v1/checkout/sessions`` — form-encoded in Stripe's bracket notation
  (``line_items[0][price_data][currency]=usd``), authenticated with the secret key as a Bearer
  token (what the SDK sends) or as the Basic-auth user name (what ``curl -u sk_...:`` sends).
  Answers a ``checkout.session`` object; 401 for a missing or wrong key and 400 for a missing or
  invalid parameter, both with Stripe's error shape ``{"error": {"type": ..., "message": ...}}``.
* ``GET /v1/checkout/sessions/{id}`` — the session as it is now; 404 if unknown.
* ``GET /v1/charges/{id}`` — a session's charge with the refunds the fake has sent
  ``charge.refunded`` for (``refunds`` as a list object, as with ``expand[]=refunds``); 404
  ``resource_missing`` if unknown. ``api_down = 503`` (or any status) makes it fail.

Hosted page: ``session.url`` (``/c/pay/{id}``) shows the amount and Pay / Cancel buttons. Pay
completes the session and delivers ``checkout.session.completed`` to the webhook endpoint
(``notify_url``, the URL an owner would enter in the dashboard), then answers 303 to
``success_url``. Cancel answers 303 to ``cancel_url`` and — compressing Stripe's 24 h expiry into
the moment the customer gives up — expires the session and delivers ``checkout.session.expired``.

Events are shaped like Stripe's snapshot events (``{"id": "evt_...", "object": "event", "type",
"created", "data": {"object": ...}, "livemode": false, "api_version", ...}``) and signed as
https://docs.stripe.com/webhooks#verify-manually documents:
``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(webhook_secret, f"{t}.{body}")>``. Signing
is done here with hmac/hashlib, not with the SDK, so that the adapter's verification is tested
against an independent implementation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from decimal import Decimal
from typing import Any

import httpx

from otomat.billing.gateways.fakes.server import FakeServer, Reply, Request, payment_page
from otomat.billing.money import Money

# Reported in each event's api_version; the adapter does not depend on it.
API_VERSION = "2025-03-31.basil"

# What notification() sends for each kind: the event type and the session's state in it.
_SESSION_KINDS: dict[str, tuple[str, dict[str, str]]] = {
    "paid": ("checkout.session.completed", {"status": "complete", "payment_status": "paid"}),
    # An asynchronous method (a bank transfer): the session completes before the money arrives.
    "pending": ("checkout.session.completed", {"status": "complete", "payment_status": "unpaid"}),
    "failed": (
        "checkout.session.async_payment_failed",
        {"status": "complete", "payment_status": "unpaid"},
    ),
    "expired": ("checkout.session.expired", {"status": "expired", "payment_status": "unpaid"}),
}
KINDS = (*_SESSION_KINDS, "refunded", "disputed")

# Stripe amounts are in the currency's minor unit; IDR counts hundredths at Stripe (it is not a
# zero-decimal currency there) although Otomat keeps whole rupiah.
_TO_STRIPE = {"IDR": 100, "PLN": 1, "USD": 1, "EUR": 1}

_BRACKETS = re.compile(r"\[([^\[\]]*)\]")


def parse_stripe_form(body: bytes) -> dict[str, Any]:
    """Decode Stripe's form encoding into nested dicts and lists.

    ``a[b][0][c]=x`` becomes ``{"a": {"b": [{"c": "x"}]}}``: numeric segments index lists (the
    SDK always writes indexed arrays), others are dict keys. Values stay strings, as on the wire.
    """
    from urllib.parse import parse_qsl

    root: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode(), keep_blank_values=True):
        head, _, rest = key.partition("[")
        path: list[str] = [head, *_BRACKETS.findall("[" + rest)] if rest else [head]
        node: Any = root
        for i, segment in enumerate(path):
            last = i == len(path) - 1
            following = None if last else path[i + 1]
            empty: Any = [] if following is not None and following.isdigit() else {}
            if isinstance(node, list):
                index = int(segment)
                while len(node) <= index:
                    node.append(None)
                if last:
                    node[index] = value
                else:
                    node[index] = node[index] if node[index] is not None else empty
                    node = node[index]
            else:
                if last:
                    node[segment] = value
                else:
                    node = node.setdefault(segment, empty)
    return root


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header value for ``body`` signed at ``timestamp``."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _stable_id(prefix: str, *parts: str) -> str:
    """A Stripe-looking id derived from ``parts``: the same parts always give the same id."""
    return prefix + hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def _error(
    status: int, message: str, *, type_: str = "invalid_request_error", **extra: str
) -> Reply:
    """Stripe's error body (https://docs.stripe.com/api/errors) with a request id, as the API
    sends it."""
    return Reply(
        status,
        {"error": {"type": type_, "message": message, **extra}},
        {"Request-Id": f"req_{secrets.token_hex(7)}"},
    )


class FakeStripe(FakeServer):
    """The fake Stripe API, hosted Checkout page and webhook sender (see the module docstring).

    ``checkouts`` maps each session's ``client_reference_id`` (Otomat's reference) to the session
    object, as ``GET /v1/checkout/sessions/{id}`` would show it now.
    """

    # Stripe posts only to endpoints set up in the dashboard (``notify_url``).
    notify_url_name = "webhook endpoint"

    def __init__(
        self,
        secret_key: str = "sk_test_fake",  # noqa: S107 - a fake's test credentials
        webhook_secret: str = "whsec_test_fake",  # noqa: S107
        notify_url: str = "",
    ) -> None:
        super().__init__()
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.notify_url = notify_url  # the webhook endpoint "added in the dashboard"
        self.checkouts: dict[str, dict[str, Any]] = {}
        self._by_id: dict[str, dict[str, Any]] = {}
        self._pi_metadata: dict[str, dict[str, str]] = {}  # session id → payment_intent_data
        self._event_created: dict[str, int] = {}  # event id → its `created`, fixed on first use
        self.failed_deliveries: list[tuple[str, str]] = []  # (url, error) of undeliverable events
        self._lock = threading.Lock()  # the server answers on several threads
        # session id → the refunds of its charge, oldest first ({"suffix", "id", "amount", ...}).
        self._refunds: dict[str, list[dict[str, Any]]] = {}
        self._disputed: set[str] = set()  # session ids whose charge a genuine dispute named
        self.api_down = 0  # an HTTP status for charge retrieval to fail with (0: answer)
        session_id = r"(?P<id>cs_(?:test|live)_[A-Za-z0-9]+)"
        self.route("POST", "/v1/checkout/sessions", self._create_session)
        self.route("GET", f"/v1/checkout/sessions/{session_id}", self._retrieve_session)
        self.route("GET", r"/v1/charges/(?P<charge>[A-Za-z0-9_]+)", self._retrieve_charge)
        self.route("GET", f"/c/pay/{session_id}", self._page)
        self.route("POST", f"/c/pay/{session_id}/pay", self._pay)
        self.route("POST", f"/c/pay/{session_id}/cancel", self._cancel)

    def gateway_settings(self) -> dict[str, Any]:
        """Keyword arguments for ``StripeGateway(**fake.gateway_settings())``."""
        return {
            "credentials": {"secret_key": self.secret_key, "webhook_secret": self.webhook_secret},
            "api_base": self.url,
        }

    # -- API -------------------------------------------------------------------------------------

    def _authenticated(self, request: Request) -> Reply | None:
        """None if the request carries the secret key, else Stripe's 401."""
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = credentials.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(credentials).decode().partition(":")[0]
            except ValueError:
                key = ""
        if not key:
            return _error(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
            )
        if not hmac.compare_digest(key.encode(), self.secret_key.encode()):
            # Stripe masks all but the last four characters of a key it echoes.
            masked = key[: key.find("_", 3) + 1] + "*" * 8 + key[-4:] if len(key) > 12 else "***"
            return _error(401, f"Invalid API Key provided: {masked}", code="api_key_invalid")
        return None

    def _create_session(self, request: Request) -> Reply:
        if (refusal := self._authenticated(request)) is not None:
            return refusal
        try:
            params = parse_stripe_form(request.body)
        except (UnicodeDecodeError, ValueError, TypeError, AttributeError):
            return _error(400, "Invalid request body: expected application/x-www-form-urlencoded.")

        def missing(param: str) -> Reply:
            return _error(
                400, f"Missing required param: {param}.", code="parameter_missing", param=param
            )

        def invalid(param: str, message: str) -> Reply:
            return _error(400, message, code="parameter_invalid", param=param)

        mode = params.get("mode")
        if not mode:
            return missing("mode")
        if mode != "payment":
            return invalid("mode", f"This fake only supports mode=payment, not {mode!r}.")
        if not params.get("success_url"):
            return missing("success_url")
        items = params.get("line_items")
        if not isinstance(items, list) or not items or not isinstance(items[0], dict):
            return missing("line_items")
        currency = ""
        total = 0
        for i, item in enumerate(items):
            prefix = f"line_items[{i}]"
            price = item.get("price_data") if isinstance(item, dict) else None
            if not isinstance(price, dict):
                return missing(f"{prefix}[price_data]")
            for field in ("currency", "unit_amount"):
                if not price.get(field):
                    return missing(f"{prefix}[price_data][{field}]")
            product = price.get("product_data")
            if not isinstance(product, dict) or not product.get("name"):
                return missing(f"{prefix}[price_data][product_data][name]")
            unit_amount, quantity = price["unit_amount"], item.get("quantity")
            if not quantity:
                return missing(f"{prefix}[quantity]")
            if not isinstance(unit_amount, str) or not unit_amount.isdigit():
                return invalid(
                    f"{prefix}[price_data][unit_amount]", f"Invalid integer: {unit_amount}"
                )
            if not isinstance(quantity, str) or not quantity.isdigit() or int(quantity) < 1:
                return invalid(f"{prefix}[quantity]", f"Invalid positive integer: {quantity}")
            if currency and price["currency"] != currency:
                return invalid(
                    f"{prefix}[price_data][currency]", "All line items must use the same currency."
                )
            if not isinstance(price["currency"], str) or not re.fullmatch(
                r"[a-z]{3}", price["currency"]
            ):
                return invalid(
                    f"{prefix}[price_data][currency]",
                    f"Invalid currency: {price['currency']}. "
                    "Stripe currencies are three lower-case letters.",
                )
            currency = price["currency"]
            total += int(unit_amount) * int(quantity)

        session_id = f"cs_test_{secrets.token_hex(24)}"
        created = int(time.time())
        metadata = params.get("metadata") or {}
        session: dict[str, Any] = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": total,
            "amount_total": total,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": created,
            "currency": currency,
            "customer": None,
            "customer_details": None,
            "customer_email": params.get("customer_email"),
            "expires_at": created + 24 * 3600,
            "livemode": False,
            "locale": params.get("locale"),
            "metadata": metadata if isinstance(metadata, dict) else {},
            "mode": "payment",
            "payment_intent": None,  # created when the customer pays
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params["success_url"],
            "url": f"{self.url}/c/pay/{session_id}",
        }
        intent_data = params.get("payment_intent_data")
        intent_metadata = intent_data.get("metadata") if isinstance(intent_data, dict) else None
        with self._lock:
            self._by_id[session_id] = session
            self._pi_metadata[session_id] = (
                intent_metadata if isinstance(intent_metadata, dict) else {}
            )
            # Keyed by Otomat's reference; a session created without one is still served by id.
            if session["client_reference_id"]:
                self.checkouts[session["client_reference_id"]] = session
        return Reply(200, session, {"Request-Id": f"req_{secrets.token_hex(7)}"})

    def _retrieve_session(self, request: Request) -> Reply:
        if (refusal := self._authenticated(request)) is not None:
            return refusal
        session_id = request.match["id"] if request.match else ""
        session = self._by_id.get(session_id)
        if session is None:
            return _error(
                404,
                f"No such checkout.session: '{session_id}'",
                code="resource_missing",
                param="session",
            )
        return Reply(200, session)

    # -- hosted page -----------------------------------------------------------------------------

    def _open_session(self, request: Request) -> dict[str, Any] | Reply:
        session = self._by_id.get(request.match["id"] if request.match else "")
        if session is None:
            return Reply(404, "<p>This Checkout Session does not exist.</p>")
        if session["status"] != "open":
            return Reply(410, "<p>This Checkout Session is no longer active.</p>")
        return session

    def _page(self, request: Request) -> Reply:
        session = self._open_session(request)
        if isinstance(session, Reply):
            return session
        # Every currency Otomat sends to Stripe is two-decimal at Stripe (IDR included).
        shown = f"{Decimal(session['amount_total']).scaleb(-2):.2f} {session['currency'].upper()}"
        base = f"/c/pay/{session['id']}"
        return Reply(
            200, payment_page("Stripe Checkout (fake)", shown, f"{base}/pay", f"{base}/cancel")
        )

    def _pay(self, request: Request) -> Reply:
        return self._finish(request, "paid", "success_url")

    def _cancel(self, request: Request) -> Reply:
        return self._finish(request, "expired", "cancel_url")

    def _finish(self, request: Request, kind: str, redirect_field: str) -> Reply:
        # Check and change under the lock: two quick clicks must not complete a session twice.
        with self._lock:
            session = self._open_session(request)
            if isinstance(session, Reply):
                return session
            session.update(self._session_state(session, kind))
        if self.notify_url:
            headers, body = self._event(session, kind)
            try:
                self.post_callback(self.notify_url, body, headers)
            except httpx.HTTPError as exc:  # Stripe retries later; the customer is not held up
                self.failed_deliveries.append((self.notify_url, f"{type(exc).__name__}: {exc}"))
        target = session[redirect_field] or session["success_url"]
        return Reply(303, b"", {"Location": target})

    # -- events ----------------------------------------------------------------------------------

    def _session(self, reference: str) -> dict[str, Any]:
        try:
            return self.checkouts[reference]
        except KeyError:
            raise KeyError(f"no checkout session with client_reference_id {reference!r}") from None

    def _session_state(self, session: dict[str, Any], kind: str) -> dict[str, Any]:
        """The fields a session has after an event of ``kind``."""
        state: dict[str, Any] = dict(_SESSION_KINDS[kind][1]) if kind in _SESSION_KINDS else {}
        if kind in ("paid", "pending", "failed", "refunded", "disputed"):
            # The PaymentIntent exists once the customer confirms, whatever happens next.
            state["payment_intent"] = _stable_id("pi_", session["id"])
        if kind in ("refunded", "disputed"):
            state.update(status="complete", payment_status="paid")
        return state

    def _event(
        self,
        session: dict[str, Any],
        kind: str,
        *,
        amount: Money | int | None = None,
        event_suffix: str = "",
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        if kind not in KINDS:
            raise ValueError(f"unknown notification kind {kind!r}; known: {', '.join(KINDS)}")
        snapshot = {**session, **self._session_state(session, kind)}
        if amount is not None:
            if isinstance(amount, Money):
                amount = amount.amount_minor * _TO_STRIPE[amount.currency]
            snapshot["amount_total"] = snapshot["amount_subtotal"] = amount
        event_id = _stable_id("evt_", session["id"], kind, event_suffix)
        with self._lock:
            created = self._event_created.setdefault(event_id, int(time.time()))
        data: dict[str, Any]
        if kind == "refunded":
            event_type = "charge.refunded"
            # One refund (of ``amount``, else the whole charge) named by ``event_suffix``:
            # recorded at the fake when the event is genuine. Stripe sends the charge's fields
            # as they were before the event in previous_attributes.
            refunds = self._refund(
                session, snapshot["amount_total"], event_suffix, created, record=secret is None
            )
            charge = self._charge(snapshot, created, refunds)
            before = charge["amount_refunded"] - refunds[-1]["amount"]
            data = {
                "object": charge,
                "previous_attributes": {"amount_refunded": before, "refunded": before > 0},
            }
        elif kind == "disputed":
            # A chargeback: the cardholder's bank took ``amount`` (else the whole charge) back.
            event_type = "charge.dispute.funds_withdrawn"
            if secret is None:
                with self._lock:
                    self._disputed.add(session["id"])
            data = {"object": self._dispute(snapshot, created, event_suffix)}
        else:
            event_type, data = _SESSION_KINDS[kind][0], {"object": snapshot}
        event = {
            "id": event_id,
            "object": "event",
            "api_version": API_VERSION,
            "created": created,
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        body = json.dumps(event).encode()
        signed_at = int(time.time()) if timestamp is None else timestamp
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(body, secret or self.webhook_secret, signed_at),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        return headers, body

    def _refund(
        self, session: dict[str, Any], amount: int, suffix: str, created: int, *, record: bool
    ) -> list[dict[str, Any]]:
        """The charge's refunds up to the one ``suffix`` names (new ones recorded if ``record``)."""
        with self._lock:
            refunds = self._refunds.setdefault(session["id"], [])
            for i, refund in enumerate(refunds):
                if refund["suffix"] == suffix:
                    return refunds[: i + 1]
            refund = {
                "suffix": suffix,
                "id": _stable_id("re_", session["id"], suffix),
                "object": "refund",
                "amount": amount,
                "charge": _stable_id("ch_", session["id"], "charge"),
                "created": created,
                "currency": session["currency"],
                "payment_intent": _stable_id("pi_", session["id"]),
                "status": "succeeded",
            }
            if record:
                refunds.append(refund)
                return list(refunds)
            return [*refunds, refund]

    def _dispute(self, session: dict[str, Any], created: int, suffix: str) -> dict[str, Any]:
        return {
            "id": _stable_id("dp_", session["id"], suffix),
            "object": "dispute",
            "amount": session["amount_total"],
            "charge": _stable_id("ch_", session["id"], "charge"),
            "created": created,
            "currency": session["currency"],
            "livemode": False,
            "payment_intent": _stable_id("pi_", session["id"]),
            "reason": "fraudulent",
            "status": "needs_response",
        }

    def _retrieve_charge(self, request: Request) -> Reply:
        if self.api_down:
            return _error(self.api_down, "The fake Stripe is down.", type_="api_error")
        if (refusal := self._authenticated(request)) is not None:
            return refusal
        charge_id = request.match["charge"] if request.match else ""
        with self._lock:
            # A session has a charge once it is paid (at the hosted page) or refunded (a
            # genuine charge.refunded was sent: notification() leaves the session as it is).
            session = next(
                (
                    s
                    for s in self._by_id.values()
                    if _stable_id("ch_", s["id"], "charge") == charge_id
                    and (
                        s["payment_intent"]
                        or self._refunds.get(s["id"])
                        or s["id"] in self._disputed
                    )
                ),
                None,
            )
            refunds = list(self._refunds.get(session["id"], [])) if session else []
        if session is None:
            return _error(
                404, f"No such charge: '{charge_id}'", code="resource_missing", param="id"
            )
        snapshot = {**session, "payment_intent": _stable_id("pi_", session["id"])}
        charge = self._charge(snapshot, session["created"], refunds)
        return Reply(200, charge, {"Request-Id": f"req_{secrets.token_hex(7)}"})

    def _charge(
        self, session: dict[str, Any], created: int, refunds: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The session's charge with ``refunds``. Its metadata is the PaymentIntent's, which
        Stripe copies onto the charge when the PaymentIntent is confirmed."""
        amount = session["amount_total"]
        refunded = sum(r["amount"] for r in refunds)
        public = [{k: v for k, v in r.items() if k != "suffix"} for r in refunds]
        return {
            "id": _stable_id("ch_", session["id"], "charge"),
            "object": "charge",
            "amount": amount,
            "amount_captured": amount,
            "amount_refunded": refunded,
            "captured": True,
            "created": created,
            "currency": session["currency"],
            "livemode": False,
            "metadata": dict(self._pi_metadata.get(session["id"], {})),
            "paid": True,
            "payment_intent": session["payment_intent"],
            "refunded": refunded >= amount,
            "refunds": {
                "object": "list",
                "data": public,
                "has_more": False,
                "total_count": len(public),
                "url": f"/v1/charges/{_stable_id('ch_', session['id'], 'charge')}/refunds",
            },
            "status": "succeeded",
        }

    def notification(
        self,
        reference: str,
        kind: str = "paid",
        *,
        amount: Money | int | None = None,
        event_suffix: str = "",
        timestamp: int | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """Headers and body of the event of ``kind`` for the session of ``reference``.

        ``kind``: "paid" (checkout.session.completed, payment_status paid, with a PaymentIntent),
        "pending" (completed but unpaid: an asynchronous method), "failed"
        (checkout.session.async_payment_failed), "expired" (checkout.session.expired) or
        "refunded" (charge.refunded: a refund of ``amount``, else in full, which the fake's
        charge then lists; another ``event_suffix`` is another refund) or "disputed"
        (charge.dispute.funds_withdrawn: a chargeback of ``amount``, else the whole charge). The stored session is
        not changed.
        ``amount`` overrides the amount: Money (converted to Stripe's units) or an int already in
        Stripe's units (e.g. an IDR amount with sen). The event id depends only on the session,
        ``kind`` and ``event_suffix``: the same call again is a duplicate delivery (same id and
        body, fresh signature), another suffix is another event. ``timestamp`` is the signed
        ``t`` (default now). Raises KeyError for an unknown reference.
        """
        return self._event(
            self._session(reference),
            kind,
            amount=amount,
            event_suffix=event_suffix,
            timestamp=timestamp,
        )

    def forged_notification(
        self, reference: str, kind: str = "paid"
    ) -> tuple[dict[str, str], bytes]:
        """Like ``notification`` but signed with a secret that is not the endpoint's."""
        return self._event(self._session(reference), kind, secret="whsec_" + secrets.token_hex(16))
