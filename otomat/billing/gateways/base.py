"""The one interface every payment gateway adapter implements.

An adapter is stateless apart from its configuration (credentials and the API base URL). It
knows its provider's protocol and nothing about Otomat's models: the billing services give it a
``CheckoutRequest`` and get back a ``Checkout`` (where to send the customer), and they give it the
raw bytes and headers of a callback and get back a verified ``GatewayEvent`` (or a
``SignatureError``). That event is a hint: ``confirm`` asks the provider's API what is true of
the transaction, and only its confirmed event moves money. Recording the payment, idempotency
and the invoice change happen in ``otomat.billing.payments``, the same for every provider.

Amounts: ``Money`` in Otomat's billing minor units (IDR in whole rupiah, PLN/USD/EUR in cents).
An adapter converts to its provider's unit at its own edge (e.g. Przelewy24 and Stripe take
grosze/cents, Midtrans and Xendit take whole rupiah) and back when parsing a callback.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

import httpx

from otomat.billing.money import Money

EventKind = Literal["paid", "pending", "failed", "expired", "refunded", "ignored"]

_client_lock = threading.Lock()
_client: tuple[int, httpx.Client] | None = None


def http_client() -> httpx.Client:
    """The process's one HTTP client for the JSON-speaking adapters: its connections and TLS
    context are reused, which a confirmation before every payment makes worth it (a fresh
    ``httpx.request`` builds a TLS context each time, tens of milliseconds). A forked child
    gets its own (the parent's sockets are not shared)."""
    global _client
    with _client_lock:
        if _client is None or _client[0] != os.getpid():
            _client = (os.getpid(), httpx.Client())
        return _client[1]


class GatewayError(Exception):
    """The provider refused a request or could not be reached; the message says which and why
    (never containing credentials)."""


class SignatureError(Exception):
    """A callback whose signature, token or shape does not verify: it must change nothing."""


class NotConfirmed(Exception):
    """The provider, asked over its API, does not confirm what a callback claims: it knows no
    such transaction, or the transaction belongs to another reference. The callback must change
    nothing, and asking again would not help (unlike a GatewayError: unreachable, retry)."""


@dataclass(frozen=True)
class CredentialField:
    """One setting the owner enters for a provider (shown on the gateway settings page)."""

    name: str  # key in the credentials dict
    label: str
    secret: bool = True  # stored encrypted, never shown again once saved
    required: bool = True
    help: str = ""


@dataclass(frozen=True)
class CheckoutRequest:
    """What Otomat asks a provider to collect."""

    reference: str  # Otomat's unique payment reference; comes back in callbacks (order id)
    amount: Money
    description: str
    customer_email: str
    customer_name: str
    language: str  # "en", "id" or "pl": the payment page's language where the provider has it
    return_url: str  # where the provider sends the customer back
    notify_url: str  # Otomat's callback URL for this provider (where the provider lets us set it)


@dataclass(frozen=True)
class Checkout:
    """Where to send the customer to pay, and the provider's id of this checkout."""

    redirect_url: str
    provider_ref: str  # Midtrans Snap token, Xendit invoice id, Przelewy24 token, Stripe session id


@dataclass(frozen=True)
class Refund:
    """One refund (or chargeback) of a payment, as the provider lists it."""

    refund_id: str  # unique per provider payment; the same refund always has the same id
    amount: Money
    chargeback: bool = False


@dataclass(frozen=True)
class GatewayEvent:
    """One verified callback, normalised.

    ``event_id`` is unique per provider for *this* notification (duplicates of it carry the same
    id); ``payment_id`` is unique per provider for the money movement (several notifications of
    one payment carry the same id). ``reference`` is the ``CheckoutRequest.reference``.

    ``confirmed`` is True only for an event that ``Gateway.confirm`` built from the provider's
    own answer (or for a provider whose whole callback is signed); billing moves money only on
    confirmed events. ``refunds`` (confirmed "refunded" events) lists every refund the provider
    knows for the payment, oldest first: billing credits each one once, by its id.
    """

    event_id: str
    kind: EventKind
    reference: str
    payment_id: str = ""
    amount: Money | None = None
    occurred_at: datetime | None = None
    detail: str = ""  # a short human description, e.g. "settlement via bank_transfer"
    raw: Mapping = field(default_factory=dict, compare=False, repr=False)  # never secrets
    confirmed: bool = False
    refunds: tuple[Refund, ...] = ()


class Gateway(ABC):
    """A payment provider. Subclasses set the class attributes and implement
    ``create_checkout``, ``parse_callback`` and ``confirm`` (and ``parse_stored`` when a
    secret header or a signature's age matters)."""

    code: ClassVar[str]  # "midtrans", "xendit", "przelewy24", "stripe"
    label: ClassVar[str]  # "Midtrans", shown to customers
    currencies: ClassVar[frozenset[str]]  # currencies the provider takes
    default_api_base: ClassVar[str]  # production API base URL
    credential_fields: ClassVar[tuple[CredentialField, ...]]
    # Headers the adapter reads that carry a secret (e.g. Xendit's x-callback-token): billing
    # masks them before a callback is stored, so ``parse_stored`` must not need them.
    secret_headers: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, credentials: Mapping[str, str], *, api_base: str = "") -> None:
        missing = [
            f.label for f in self.credential_fields if f.required and not credentials.get(f.name)
        ]
        if missing:
            raise GatewayError(f"{self.label} is not configured: {', '.join(missing)} missing.")
        self.credentials = dict(credentials)
        self.api_base = (api_base or self.default_api_base).rstrip("/")

    @abstractmethod
    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        """Ask the provider for a payment page. Raises GatewayError (refused, unreachable, or an
        unsupported currency)."""

    @abstractmethod
    def parse_callback(self, *, headers: Mapping[str, str], body: bytes) -> GatewayEvent:
        """Verify and normalise one callback exactly as the provider documents it. ``headers``
        keys are lower-case. Raises SignatureError for anything that does not verify or parse;
        never raises anything else for bad input."""

    def parse_stored(self, *, headers: Mapping[str, str], body: bytes) -> GatewayEvent:
        """Read again a callback that verified when it arrived and was stored (to retry it):
        its ``secret_headers`` are masked by now and a signature's timestamp may be old. Safe
        because ``confirm`` asks the provider before anything moves. Raises SignatureError like
        ``parse_callback``. The default is ``parse_callback``."""
        return self.parse_callback(headers=headers, body=body)

    @abstractmethod
    def confirm(self, event: GatewayEvent) -> GatewayEvent:
        """Ask the provider, over its documented API and with the merchant's credentials, what
        is true of the transaction ``event`` hints at, and return that as a confirmed event
        (``confirmed=True``): kind, payment id, amount and refunds as the provider states them,
        never as the callback's unsigned fields claim. Billing calls it before any money moves.

        Raises NotConfirmed when the provider knows no such transaction (or it belongs to
        another reference), GatewayError when the provider cannot be reached or fails (the
        callback stays stored and is retried)."""

    # -- the one HTTP path of the JSON-speaking adapters ----------------------------------------

    # Secrets shorter than this are not scrubbed from messages: real keys are dozens of
    # characters, and replacing a two-letter test value would only garble the message.
    min_scrubbed: ClassVar[int] = 8
    timeout: ClassVar[float] = 10.0  # seconds, for connecting and for each read

    def scrub(self, text: object) -> str:
        """``text`` (at most 500 characters) without any secret credential, should a reply or
        an error ever echo one."""
        result = str(text)[:500]
        for spec in self.credential_fields:
            secret = str(self.credentials.get(spec.name) or "")
            if spec.secret and len(secret) >= self.min_scrubbed:
                result = result.replace(secret, f"[{spec.name.replace('_', ' ')}]")
        return result

    def request_json(
        self,
        method: str,
        path: str,
        *,
        what: str,
        auth: tuple[str, str],
        error_text,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        base: str = "",
        accept: Collection[int] = (),
    ) -> dict[str, Any]:
        """Send one request to ``(base or api_base) + path`` and return the JSON object of a 2xx
        reply, or of a reply whose status is in ``accept`` (e.g. a documented 404 "not found"
        body, which the caller reads itself).

        ``error_text(data, response)`` turns the provider's error body into one line. Raises
        GatewayError — unreachable, refused, or not a JSON object — whose message never holds
        a credential: the httpx exception is not chained (its request carries the
        Authorization header) and every text passes through ``scrub``."""
        try:
            response = http_client().request(
                method,
                f"{base or self.api_base}{path}",
                json=json,
                content=content,
                headers=headers,
                auth=auth,
                timeout=self.timeout,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise GatewayError(
                f"{self.label} could not be reached ({type(exc).__name__}): {self.scrub(exc)}"
            ) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if not response.is_success and response.status_code not in accept:
            reason = error_text(data, response) or response.reason_phrase or "no reason given"
            raise GatewayError(
                f"{self.label} refused {what} (HTTP {response.status_code}): {self.scrub(reason)}"
            )
        if not isinstance(data, dict):
            raise GatewayError(
                f"{self.label} answered {what} with something that is not JSON or not a JSON "
                f"object (HTTP {response.status_code})."
            )
        return data

    def callback_reply(self, event: GatewayEvent | None) -> tuple[int, str, str]:
        """(status, content type, body) to answer a callback with once it is stored; ``event`` is
        None for a callback that did not verify."""
        if event is None:
            return 401, "application/json", '{"error": "signature does not verify"}'
        return 200, "application/json", '{"ok": true}'
