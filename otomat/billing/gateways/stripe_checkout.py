"""Stripe Checkout through the official ``stripe`` SDK.

Checkout: ``POST /v1/checkout/sessions`` (mode ``payment``, one inline ``price_data`` line) gives a
hosted payment page (``session.url``) and its id (``cs_...``). Stripe has no per-session callback
URL: events go to the webhook endpoint the owner adds in the Stripe dashboard (Otomat's Stripe
callback URL), signed with that endpoint's secret (``whsec_...``).

Callbacks: verified with the SDK's ``construct_event``, i.e. Stripe's documented scheme
``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(webhook_secret, f"{t}.{raw body}")>`` with a
300 s tolerance on ``t`` (https://docs.stripe.com/webhooks#verify-manually), then normalised:

=========================================  ==================  ==========
Stripe event                               payment_status      kind
=========================================  ==================  ==========
checkout.session.completed                 paid                paid
checkout.session.completed                 unpaid              pending  (async methods: the
                                                                         money comes later)
checkout.session.async_payment_succeeded   (paid)              paid
checkout.session.async_payment_failed      (unpaid)            failed
checkout.session.expired                                       expired
charge.refunded                                                refunded (this refund's amount)
charge.dispute.funds_withdrawn                                 refunded (a chargeback: the
                                                                         dispute's amount)
anything else, or a session Otomat did not create              ignored
=========================================  ==================  ==========

``payment_id`` is the PaymentIntent id (``pi_...``): the session events and the later
``charge.refunded`` all carry it, so they name the same money movement. A session that never got
one (expired before payment) falls back to the session id.

Confirmation: the whole event is signed, so a session event is confirmed as it is. A
``charge.refunded`` event is confirmed by retrieving the charge with its refunds
(``GET /v1/charges/{id}?expand[]=refunds``): billing credits each succeeded refund once, by its
``re_...`` id, instead of inferring this refund's amount from ``previous_attributes``. A
``charge.dispute.funds_withdrawn`` (a chargeback: the disputed amount leaves the balance) names
only the charge, so the charge is retrieved for the reference; the dispute becomes one more
"refund" (a chargeback) keyed by its ``dp_...`` id. A dispute later won (funds reinstated) is
not reversed automatically: staff see it in Stripe. A
stored event read again for a retry (``parse_stored``) is checked without the 300 s tolerance:
it verified when it arrived.

The fields read here (event ``id``/``type``/``created``, the session's ``client_reference_id``,
``metadata``, ``payment_status``, ``payment_intent``, ``amount_total``, ``currency``; the charge's
``amount_refunded``, ``payment_intent``, ``metadata``) are the same in every API version the
dashboard can pin a webhook endpoint to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar

import stripe

from otomat.billing.gateways.base import (
    Checkout,
    CheckoutRequest,
    CredentialField,
    Gateway,
    GatewayError,
    GatewayEvent,
    NotConfirmed,
    Refund,
    SignatureError,
)
from otomat.billing.money import Money

# Otomat keeps IDR in whole rupiah (see money.CURRENCIES), but Stripe counts IDR in hundredths:
# IDR is not on Stripe's list of zero-decimal currencies (https://docs.stripe.com/currencies,
# "Zero-decimal currencies"), so like USD it expects the amount × 100 ("Rp 150.000" is
# 15000000). We multiply going out and divide coming back; an amount that does not divide exactly
# cannot have come from a checkout we created and is refused.
_STRIPE_FACTOR: dict[str, int] = {"IDR": 100, "PLN": 1, "USD": 1, "EUR": 1}

# Checkout's `locale` takes these tags as they are (the SDK's SessionCreateParams lists them).
_LOCALES: dict[str, str] = {"en": "en", "id": "id", "pl": "pl"}

# (connect, read) seconds. The customer is waiting on the other side of create_checkout, so fail
# in seconds rather than after the SDK's default 80 s; Stripe answers a session create in ~1 s.
_TIMEOUT: tuple[float, float] = (10.0, 30.0)

# Key and secret shapes (sk_/rk_ secret and restricted keys, whsec_ webhook secrets). Stripe
# itself masks keys in its messages ("sk_test_****1234"); this is the second line of defence.
_SECRET_PATTERN = re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9]+|\bwhsec_[A-Za-z0-9+/=]+")

_SESSION_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
    }
)


class StripeGateway(Gateway):
    code = "stripe"
    label = "Stripe"
    currencies = frozenset({"IDR", "PLN", "USD", "EUR"})
    default_api_base = "https://api.stripe.com"
    credential_fields: ClassVar[tuple[CredentialField, ...]] = (
        CredentialField(
            "secret_key",
            "Secret key",
            help="Developers → API keys: sk_live_... (or sk_test_... for test mode).",
        ),
        CredentialField(
            "webhook_secret",
            "Webhook signing secret",
            help="Developers → Webhooks → your endpoint (Otomat's Stripe callback URL, events "
            "checkout.session.*, charge.refunded and charge.dispute.funds_withdrawn) → Signing "
            "secret: whsec_...",
        ),
    )

    def __init__(self, credentials: Mapping[str, str], *, api_base: str = "") -> None:
        super().__init__(credentials, api_base=api_base)
        # One client per adapter, never the SDK's module globals (stripe.api_key and friends), so
        # two owners' keys can never mix and concurrent requests share nothing mutable: the
        # requests-based HTTP client keeps one session per thread. No retries: a failed create is
        # reported to the customer at once, who can simply try again.
        self._client = stripe.StripeClient(
            self.credentials["secret_key"],
            base_addresses={"api": self.api_base},
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=_TIMEOUT),
        )

    # -- checkout ----------------------------------------------------------------------------------

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        """Create a Checkout Session for ``request.amount`` and return its hosted page.

        ``request.notify_url`` is not sent: Stripe only delivers events to the endpoints set up in
        the dashboard. The reference goes out three ways: ``client_reference_id`` and session
        ``metadata`` (both come back on the session events) and the PaymentIntent's metadata,
        which Stripe copies onto the charge so that ``charge.refunded`` names it too. Raises
        GatewayError for an unsupported currency or a non-positive amount (without asking
        Stripe), a refused key or request, or an unreachable API.
        """
        amount = request.amount
        if amount.currency not in self.currencies:
            raise GatewayError(f"Stripe is not set up for {amount.currency} in Otomat.")
        if amount.amount_minor <= 0:
            raise GatewayError(f"Stripe cannot collect {amount}: the amount must be positive.")
        reference_metadata = {"otomat_reference": request.reference}
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": amount.currency.lower(),
                        "unit_amount": amount.amount_minor * _STRIPE_FACTOR[amount.currency],
                        "product_data": {"name": request.description},
                    },
                    "quantity": 1,
                }
            ],
            "client_reference_id": request.reference,
            "metadata": reference_metadata,
            "payment_intent_data": {"metadata": reference_metadata},
            # Checkout shows a back link to cancel_url; both lead to the same Otomat page, which
            # shows the invoice's state as the callbacks left it.
            "success_url": request.return_url,
            "cancel_url": request.return_url,
            "locale": _LOCALES.get(request.language, "auto"),
        }
        # Stripe refuses an empty email ("Invalid email address"); without one Checkout asks for
        # it. There is no parameter to prefill the customer's name.
        if request.customer_email:
            params["customer_email"] = request.customer_email
        try:
            session = self._client.v1.checkout.sessions.create(params=params)
        except stripe.StripeError as exc:
            raise GatewayError(self._describe(exc)) from None
        url = getattr(session, "url", None)
        if not url or not getattr(session, "id", None):
            raise GatewayError("Stripe created a Checkout Session without a payment page URL.")
        return Checkout(redirect_url=url, provider_ref=session.id)

    def _describe(self, exc: stripe.StripeError) -> str:
        """A message for the owner: which kind of failure, Stripe's own words, its request id."""
        if isinstance(exc, stripe.APIConnectionError):
            # The SDK's text is a support boilerplate plus the network error; the class of the
            # latter ("ConnectTimeout", "ConnectionError") is what tells the owner something.
            cause = type(exc.__cause__).__name__ if exc.__cause__ else "network error"
            return self._redact(f"Stripe could not be reached at {self.api_base} ({cause}).")
        message = exc.user_message or "no message"
        if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
            text = f"Stripe refused the secret key: {message}"
        elif isinstance(exc, stripe.InvalidRequestError):
            param = f" (parameter {exc.param})" if getattr(exc, "param", None) else ""
            text = f"Stripe refused the checkout{param}: {message}"
        elif isinstance(exc, stripe.RateLimitError):
            text = f"Stripe is limiting requests, try again in a moment: {message}"
        else:
            status = f"HTTP {exc.http_status}" if exc.http_status else type(exc).__name__
            text = f"Stripe failed ({status}): {message}"
        if exc.request_id:
            text += f" [{exc.request_id}]"
        return self._redact(text)

    def _redact(self, text: str) -> str:
        for secret in (self.credentials["secret_key"], self.credentials["webhook_secret"]):
            text = text.replace(secret, "[redacted]")
        return _SECRET_PATTERN.sub("[redacted]", text)

    # -- callbacks ---------------------------------------------------------------------------------

    def parse_callback(self, *, headers: Mapping[str, str], body: bytes) -> GatewayEvent:
        """Verify ``Stripe-Signature`` over the raw body and normalise the event (table above).

        Raises SignatureError for a missing, malformed, wrong or stale (> 300 s) signature, a
        body that is not UTF-8 JSON of an event, a session or charge of the wrong shape, or an
        amount that is not exact in Otomat's units. A verified event that is not about an Otomat
        checkout (another integration on the same Stripe account) is "ignored", not an error, so
        Stripe does not retry it and flag the endpoint as failing.
        """
        return self._verified(headers, body, tolerance=stripe.Webhook.DEFAULT_TOLERANCE)

    def parse_stored(self, *, headers: Mapping[str, str], body: bytes) -> GatewayEvent:
        """A stored event: the same check but for the timestamp's age (it was fresh when it
        arrived; a retry may come hours later)."""
        return self._verified(headers, body, tolerance=0)

    def _verified(self, headers: Mapping[str, str], body: bytes, *, tolerance: int) -> GatewayEvent:
        try:
            event = self._client.construct_event(
                body,
                headers.get("stripe-signature"),
                self.credentials["webhook_secret"],
                tolerance=tolerance,
            )
            payload = event.to_dict()
        except stripe.SignatureVerificationError as exc:
            raise SignatureError(f"Stripe-Signature does not verify: {exc.user_message}") from None
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            # Signed but unusable: not UTF-8 (UnicodeDecodeError is a ValueError), not JSON, not
            # an object, or a v2 "thin" event (the SDK's ValueError).
            raise SignatureError(
                f"Stripe event body does not parse: {type(exc).__name__}"
            ) from None
        return self._normalise(payload)

    def _dispute_event(self, dispute: dict[str, Any], common: dict[str, Any]) -> GatewayEvent:
        # A dispute names its charge and PaymentIntent but not Otomat's reference: confirm()
        # reads it from the charge.
        amount = _money(dispute.get("amount"), dispute.get("currency"))
        return GatewayEvent(
            kind="refunded",
            reference="",
            payment_id=_text(dispute, "payment_intent") or _dispute_charge(dispute),
            amount=amount,
            detail=f"dispute {_text(dispute, 'id')} of charge {_dispute_charge(dispute)}: "
            f"{amount} withdrawn ({_text(dispute, 'reason') or 'no reason'})",
            **common,
        )

    # -- confirmation ------------------------------------------------------------------------------

    def confirm(self, event: GatewayEvent) -> GatewayEvent:
        """A session event is confirmed by its signature (Stripe signs the whole event). For
        ``charge.refunded``, retrieve the charge with its refunds and return the event with
        ``refunds`` (each succeeded refund, by id and amount) and ``amount`` (the charge's
        amount_refunded) as Stripe has them now. Raises NotConfirmed when Stripe knows no such
        charge or it is not the event's payment; GatewayError when Stripe refuses the key, fails
        or cannot be reached."""
        if event.kind != "refunded":
            return replace(event, confirmed=True)
        obj = _mapping(_mapping(event.raw, "data"), "object")
        dispute = obj if obj.get("object") == "dispute" else None
        charge_id = _dispute_charge(obj) if dispute else _text(obj, "id")
        if not charge_id.startswith("ch_"):
            raise NotConfirmed(f"Stripe refund event without a charge id: {charge_id[:40]!r}.")
        try:
            charge = self._client.v1.charges.retrieve(
                charge_id, params={"expand": ["refunds"]}
            ).to_dict()
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                raise NotConfirmed(f"Stripe knows no charge {charge_id}.") from None
            raise GatewayError(self._describe(exc)) from None
        except stripe.StripeError as exc:
            raise GatewayError(self._describe(exc)) from None
        try:
            reference = _text(_mapping(charge, "metadata"), "otomat_reference")
            payment_id = _text(charge, "payment_intent") or _text(charge, "id")
            if payment_id != event.payment_id or (reference != event.reference and not dispute):
                raise NotConfirmed(f"Stripe charge {charge_id} is not the event's payment.")
            currency = charge.get("currency")
            refunded = _money(charge.get("amount_refunded"), currency)
            listed = _mapping(charge, "refunds").get("data") or []
            if not isinstance(listed, list) or not all(isinstance(r, dict) for r in listed):
                raise SignatureError("Stripe charge refunds is not a list.")
            refunds = tuple(
                Refund(refund_id=_text(r, "id"), amount=_money(r.get("amount"), currency))
                for r in sorted(listed, key=lambda r: r.get("created") or 0)
                if r.get("status") == "succeeded" and _text(r, "id")
            )
        except SignatureError as exc:
            raise GatewayError(f"Stripe answered a charge that does not parse: {exc}") from None
        if dispute is not None:
            # The signed event's dispute: its id and amount are Stripe's own words.
            chargeback = Refund(
                refund_id=_text(dispute, "id"), amount=event.amount or refunded, chargeback=True
            )
            return replace(
                event,
                reference=reference,
                refunds=(*refunds, chargeback),
                confirmed=True,
                detail=f"{event.detail} (charge retrieved)"[:200],
            )
        return replace(
            event,
            amount=refunded,
            refunds=refunds,
            confirmed=True,
            detail=f"charge {charge_id} refunded {refunded} in {len(refunds)} refund(s) "
            f"(retrieved)"[:200],
        )

    def _normalise(self, payload: dict[str, Any]) -> GatewayEvent:
        event_id = payload.get("id")
        event_type = payload.get("type")
        data = payload.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
            raise SignatureError("Stripe event without an id or a type.")
        if not isinstance(obj, dict):
            raise SignatureError(f"Stripe event {event_id} has no data.object.")
        created = payload.get("created")
        occurred_at = (
            datetime.fromtimestamp(created, UTC) if type(created) is int and created > 0 else None
        )
        common: dict[str, Any] = {"event_id": event_id, "occurred_at": occurred_at, "raw": payload}

        if event_type in _SESSION_EVENTS:
            return self._session_event(event_type, obj, common)
        if event_type == "charge.refunded":
            previous = data.get("previous_attributes")  # data is a dict: obj came from it
            return self._refund_event(obj, previous if isinstance(previous, dict) else {}, common)
        if event_type == "charge.dispute.funds_withdrawn":
            return self._dispute_event(obj, common)
        return GatewayEvent(kind="ignored", reference="", detail=event_type, **common)

    def _session_event(
        self, event_type: str, session: dict[str, Any], common: dict[str, Any]
    ) -> GatewayEvent:
        session_id = _text(session, "id")
        reference = _text(session, "client_reference_id") or _text(
            _mapping(session, "metadata"), "otomat_reference"
        )
        if not reference:
            return GatewayEvent(
                kind="ignored",
                reference="",
                payment_id=session_id,
                detail=f"{event_type} for a session Otomat did not create",
                **common,
            )
        payment_status = _text(session, "payment_status")
        if event_type == "checkout.session.completed":
            if payment_status == "paid":
                kind = "paid"
            elif payment_status == "unpaid":
                kind = "pending"  # an asynchronous method: async_payment_* follows
            else:
                # "no_payment_required" (a 100 % discount): nothing was collected, and Otomat
                # never creates such a session, so it settles nothing.
                kind = "ignored"
        else:
            kind = {
                "checkout.session.async_payment_succeeded": "paid",
                "checkout.session.async_payment_failed": "failed",
                "checkout.session.expired": "expired",
            }[event_type]
        payment_intent = _text(session, "payment_intent")
        return GatewayEvent(
            kind=kind,
            reference=reference,
            payment_id=payment_intent or session_id,
            amount=_money(session.get("amount_total"), session.get("currency")),
            detail=f"{event_type} (payment_status {payment_status or 'unknown'})",
            **common,
        )

    def _refund_event(
        self, charge: dict[str, Any], previous: dict[str, Any], common: dict[str, Any]
    ) -> GatewayEvent:
        # charge.refunded fires for every refund, partial ones included, and the charge's
        # amount_refunded is the running total. The payments service credits event.amount once
        # per event, so report this refund alone: the running total minus its value before the
        # event, which Stripe sends in data.previous_attributes. Without that the running total
        # is all there is, and the detail says so.
        currency = charge.get("currency")
        so_far = _money(charge.get("amount_refunded"), currency)
        total = _money(charge.get("amount"), currency)
        before = previous.get("amount_refunded")
        if type(before) is int and 0 <= before <= so_far.amount_minor * _factor(so_far):
            refunded = so_far - _money(before, currency)
            detail = f"refunded {refunded} ({so_far} of {total} so far)"
        else:
            refunded = so_far
            detail = f"refunded {so_far} of {total} in total (previous amount unknown)"
        return GatewayEvent(
            kind="refunded",
            # Stripe copies the PaymentIntent's metadata (payment_intent_data above) onto the
            # charge when it is made; a charge from outside Otomat has none and is then ignored
            # by the payments service, which finds checkouts by reference.
            reference=_text(_mapping(charge, "metadata"), "otomat_reference"),
            payment_id=_text(charge, "payment_intent") or _text(charge, "id"),
            amount=refunded,
            detail=f"charge {_text(charge, 'id')} {detail}",
            **common,
        )


def _dispute_charge(dispute: Mapping[str, Any]) -> str:
    """The charge id of a dispute (``charge`` is an id, or the charge when expanded)."""
    charge = dispute.get("charge")
    if isinstance(charge, dict):
        return _text(charge, "id")
    return _text(dispute, "charge")


def _text(obj: Mapping[str, Any], key: str) -> str:
    """``obj[key]`` if it is a string, else "" (absent and null are the same to us); any other
    type is a payload Stripe does not send."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SignatureError(f"Stripe event field {key!r} is not a string.")
    return value


def _mapping(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SignatureError(f"Stripe event field {key!r} is not an object.")
    return value


def _factor(money: Money) -> int:
    return _STRIPE_FACTOR[money.currency]


def _money(amount: object, currency: object) -> Money:
    """Stripe's (integer minor units, lower-case ISO code) as Otomat Money; SignatureError for
    anything else, an unknown currency or an IDR amount with sen."""
    if type(amount) is not int or amount < 0 or not isinstance(currency, str):
        raise SignatureError(f"Stripe amount {amount!r} {currency!r} is not an amount.")
    code = currency.upper()
    factor = _STRIPE_FACTOR.get(code)
    if factor is None:
        raise SignatureError(f"Stripe amount in {code}, a currency Otomat does not bill in.")
    whole, rest = divmod(amount, factor)
    if rest:
        raise SignatureError(f"Stripe amount {amount} {code} is not a whole number of {code}.")
    return Money(whole, code)


GATEWAY = StripeGateway
