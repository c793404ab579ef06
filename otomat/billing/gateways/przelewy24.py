"""Przelewy24 (P24) adapter: REST API v1, as documented in P24's OpenAPI description
(https://developers.przelewy24.pl, "Transaction service API", "Notification", "Calculating Sign").

The flow has three steps, one per ``Gateway`` method:

1. ``create_checkout``: POST ``/api/v1/transaction/register`` registers a transaction and returns
   a token; the customer pays at ``{api_base}/trnRequest/{token}``.
2. ``parse_callback``: after a *successful* payment P24 POSTs a JSON notification to ``urlStatus``
   (P24 sends nothing for failed or abandoned payments), signed with the CRC key.
3. ``confirm``: the merchant must PUT ``/api/v1/transaction/verify``; until then P24 neither
   settles the money nor treats the payment as final (it stays with the customer as an advance).
   The billing service calls ``confirm`` before it records the payment.

Authentication is HTTP Basic with the POS ID as user name and the API key ("klucz do raportów")
as password. Every request and notification also carries a ``sign``: the SHA-384 hex digest of a
small JSON object of named fields plus the CRC key, serialised the way PHP's ``json_encode`` does
with ``JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES`` (no spaces, keys in the documented
order, non-ASCII characters and slashes written literally). P24 takes amounts in the currency's
lowest unit (grosze, cents), which is also Otomat's billing minor unit for PLN and EUR, so amounts
cross this edge unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

import httpx

from otomat.billing.gateways.base import (
    Checkout,
    CheckoutRequest,
    CredentialField,
    Gateway,
    GatewayError,
    GatewayEvent,
    SignatureError,
)
from otomat.billing.money import Money

# Payment page languages P24 documents for transaction/register (ISO 639-1; "se" is P24's
# spelling for Swedish). Otomat's "id" (Indonesian) is not among them, so it falls back to English.
_P24_LANGUAGES = frozenset(
    {"bg", "cs", "de", "en", "es", "fr", "hr", "hu", "it", "nl", "pl", "pt", "se", "sk", "ro"}
)

# Documented field limits that Otomat's own data could exceed; longer values are cut rather than
# refused, since they are display text only (e-mail and URLs are never cut: a cut one is wrong).
_MAX_DESCRIPTION = 1024
_MAX_CLIENT = 40

# A P24 token goes into the redirect URL's path; anything else than these characters would mean
# a broken or hostile answer, not a token.
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,200}")

# The notification's fields in the order P24 signs them (the sign itself is checked separately).
_NOTIFICATION_INT_FIELDS = ("merchantId", "posId", "amount", "originAmount", "orderId", "methodId")
_NOTIFICATION_STR_FIELDS = ("sessionId", "currency", "statement", "sign")


def php_json(fields: Mapping[str, Any]) -> str:
    """``fields`` as PHP's ``json_encode($fields, JSON_UNESCAPED_UNICODE|JSON_UNESCAPED_SLASHES)``
    writes it, which is the text P24 hashes for a ``sign``.

    Python's compact ``json.dumps`` with ``ensure_ascii=False`` matches it byte for byte (keys in
    insertion order, no spaces, "/" not escaped, the same short and ``\\u00XX`` escapes for control
    characters) except for U+2028 and U+2029: PHP 7.1+ still escapes those two under
    ``JSON_UNESCAPED_UNICODE`` unless ``JSON_UNESCAPED_LINE_TERMINATORS`` is also given.
    """
    text = json.dumps(fields, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def p24_sign(fields: Mapping[str, Any]) -> str:
    """SHA-384 hex digest of ``php_json(fields)``; ``fields`` must end with ``"crc"``."""
    return hashlib.sha384(php_json(fields).encode("utf-8")).hexdigest()


def _strict_int(value: Any) -> bool:
    # JSON true/false decode to bool, which is an int subclass; P24 never sends them as numbers.
    return isinstance(value, int) and not isinstance(value, bool)


class Przelewy24Gateway(Gateway):
    """Przelewy24 transaction service (REST API v1)."""

    code: ClassVar[str] = "przelewy24"
    label: ClassVar[str] = "Przelewy24"
    # P24 takes more currencies (GBP, CZK, ...), but these are the ones Otomat's Money knows and
    # that P24 counts in the same minor unit as Otomat (grosze/cents).
    currencies: ClassVar[frozenset[str]] = frozenset({"PLN", "EUR"})
    default_api_base: ClassVar[str] = "https://secure.przelewy24.pl"
    sandbox_api_base: ClassVar[str] = "https://sandbox.przelewy24.pl"
    min_scrubbed: ClassVar[int] = 4  # scrub even short secrets; only 1–3 letters would garble
    credential_fields: ClassVar[tuple[CredentialField, ...]] = (
        CredentialField(
            "merchant_id", "Merchant ID", secret=False, help="Your Przelewy24 account ID."
        ),
        CredentialField(
            "pos_id",
            "POS ID",
            secret=False,
            required=False,
            help="The shop ID; leave blank to use the merchant ID (the usual case).",
        ),
        CredentialField(
            "api_key",
            "API key",
            help="The API key (klucz do raportów) from the panel, section My data / API.",
        ),
        CredentialField("crc", "CRC key", help="The CRC key from the panel, section My data."),
    )

    def __init__(self, credentials: Mapping[str, str], *, api_base: str = "") -> None:
        super().__init__(credentials, api_base=api_base)
        # P24 sends and signs both ids as JSON integers, so they are compared and signed as ints.
        merchant = str(self.credentials["merchant_id"]).strip()
        pos = str(self.credentials.get("pos_id") or "").strip() or merchant
        if not (merchant.isascii() and merchant.isdigit() and pos.isascii() and pos.isdigit()):
            raise GatewayError("Przelewy24 is misconfigured: Merchant ID and POS ID are numbers.")
        self.merchant_id = int(merchant)
        self.pos_id = int(pos)
        self._api_key = str(self.credentials["api_key"])
        self._crc = str(self.credentials["crc"])

    # -- checkout --------------------------------------------------------------------------------

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        """Register the transaction (sessionId = ``request.reference``) and return the payment
        page for its token. Raises GatewayError for a currency P24 is not set up for here, a
        non-positive amount, a refusal or an unreachable P24."""
        amount = request.amount
        if amount.currency not in self.currencies:
            raise GatewayError(
                f"Przelewy24 does not take {amount.currency} here; "
                f"supported: {', '.join(sorted(self.currencies))}."
            )
        if amount.amount_minor <= 0:
            raise GatewayError(f"Przelewy24 cannot collect {amount}: the amount must be positive.")
        sign = p24_sign(
            {
                "sessionId": request.reference,
                "merchantId": self.merchant_id,
                "amount": amount.amount_minor,
                "currency": amount.currency,
                "crc": self._crc,
            }
        )
        payload: dict[str, Any] = {
            "merchantId": self.merchant_id,
            "posId": self.pos_id,
            "sessionId": request.reference,
            "amount": amount.amount_minor,
            "currency": amount.currency,
            "description": request.description[:_MAX_DESCRIPTION],
            "email": request.customer_email,
            "country": "PL",
            "language": self._language(request.language),
            "urlReturn": request.return_url,
            "sign": sign,
        }
        if request.customer_name:
            payload["client"] = request.customer_name[:_MAX_CLIENT]
        # Without urlStatus P24 notifies the URL configured in its panel, if any.
        if request.notify_url:
            payload["urlStatus"] = request.notify_url

        data = self._call("POST", "/api/v1/transaction/register", payload, "the transaction")
        result = data.get("data")
        token = result.get("token") if isinstance(result, dict) else None
        if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
            raise GatewayError("Przelewy24 registered the transaction but returned no valid token.")
        return Checkout(redirect_url=f"{self.api_base}/trnRequest/{token}", provider_ref=token)

    @staticmethod
    def _language(language: str) -> str:
        """P24's payment page language for Otomat's ``language`` ("pl-PL" → "pl", "id" → "en")."""
        code = (language or "").split("-")[0].split("_")[0].lower()
        return code if code in _P24_LANGUAGES else "en"

    # -- notification ----------------------------------------------------------------------------

    def parse_callback(self, *, headers: Mapping[str, str], body: bytes) -> GatewayEvent:
        """Verify P24's transaction notification (JSON, documented fields, ``sign`` over them and
        the CRC key) and return a "paid" event. The payment is not final until ``confirm``.

        ``event_id`` and ``payment_id`` are P24's orderId: P24 repeats the same notification
        until it is answered with 200, and every repeat carries the same orderId. Raises
        SignatureError, and nothing else, for anything that does not parse or verify.
        """
        try:
            notification = json.loads(body)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            raise SignatureError("Przelewy24 notification is not JSON.") from None
        if not isinstance(notification, dict):
            raise SignatureError("Przelewy24 notification is not a JSON object.")
        for name in _NOTIFICATION_INT_FIELDS:
            if not _strict_int(notification.get(name)):
                raise SignatureError(f"Przelewy24 notification has no integer {name}.")
        for name in _NOTIFICATION_STR_FIELDS:
            if not isinstance(notification.get(name), str):
                raise SignatureError(f"Przelewy24 notification has no {name}.")

        try:
            expected = p24_sign(
                {
                    "merchantId": notification["merchantId"],
                    "posId": notification["posId"],
                    "sessionId": notification["sessionId"],
                    "amount": notification["amount"],
                    "originAmount": notification["originAmount"],
                    "currency": notification["currency"],
                    "orderId": notification["orderId"],
                    "methodId": notification["methodId"],
                    "statement": notification["statement"],
                    "crc": self._crc,
                }
            )
        except ValueError:  # a lone surrogate from a "\ud800" escape cannot be UTF-8 encoded
            raise SignatureError("Przelewy24 notification has invalid text.") from None
        # Compared as bytes: compare_digest refuses non-ASCII str, and the sign is untrusted input.
        if not hmac.compare_digest(
            expected.encode(), notification["sign"].encode("utf-8", "replace")
        ):
            raise SignatureError("Przelewy24 notification signature does not verify.")
        # A valid sign only proves the sender knows *a* CRC key; the ids say it is this shop.
        if notification["merchantId"] != self.merchant_id or notification["posId"] != self.pos_id:
            raise SignatureError("Przelewy24 notification is for another merchant or POS.")

        currency = notification["currency"]
        amount = notification["amount"]
        if currency not in self.currencies or amount <= 0:
            raise SignatureError(f"Przelewy24 notification has an unusable amount {currency}.")
        order_id = str(notification["orderId"])
        return GatewayEvent(
            event_id=order_id,
            kind="paid",
            reference=notification["sessionId"],
            payment_id=order_id,
            amount=Money(amount, currency),
            detail=f"paid via Przelewy24 method {notification['methodId']}",
            raw={k: v for k, v in notification.items() if k != "sign"},
        )

    # -- verification ----------------------------------------------------------------------------

    def confirm(self, event: GatewayEvent) -> GatewayEvent:
        """Verify the paid transaction with P24 (PUT transaction/verify) so that it is settled;
        returns ``event``, confirmed, once P24 answers ``{"data": {"status": "success"}}``.
        Everything the event carries (sessionId, orderId, amount, currency) is covered by the
        notification's sign and checked again by P24 in verify. Raises GatewayError when P24
        refuses (e.g. the amount or orderId does not match its records) or cannot be reached.

        P24 notifies successful payments only; its refund notifications answer refunds
        requested through its refund API, which Otomat does not use (refunds of P24 payments
        are credit notes made in Otomat), so no refund ever arrives here: ``parse_callback``
        refuses such a body."""
        if event.kind != "paid":
            return replace(event, confirmed=True)
        if event.amount is None or not event.payment_id.isascii() or not event.payment_id.isdigit():
            raise GatewayError("Przelewy24 payment cannot be verified: no amount or orderId.")
        order_id = int(event.payment_id)
        amount = event.amount
        sign = p24_sign(
            {
                "sessionId": event.reference,
                "orderId": order_id,
                "amount": amount.amount_minor,
                "currency": amount.currency,
                "crc": self._crc,
            }
        )
        payload = {
            "merchantId": self.merchant_id,
            "posId": self.pos_id,
            "sessionId": event.reference,
            "amount": amount.amount_minor,
            "currency": amount.currency,
            "orderId": order_id,
            "sign": sign,
        }
        data = self._call("PUT", "/api/v1/transaction/verify", payload, "the payment verification")
        result = data.get("data")
        if not isinstance(result, dict) or result.get("status") != "success":
            raise GatewayError(
                f"Przelewy24 did not confirm payment {order_id}: {self.scrub(str(result))[:200]}"
            )
        return replace(event, confirmed=True)

    # -- HTTP ------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, payload: dict[str, Any], what: str) -> dict[str, Any]:
        """Send ``payload`` as JSON with Basic auth; return the decoded JSON object of a 2xx
        answer with responseCode 0. Raises GatewayError (credential-free) otherwise."""
        # Encoded here rather than with httpx's json= so that the body is UTF-8 text exactly as
        # shown, Polish letters unescaped, like the sign's input.
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        data = self.request_json(
            method,
            path,
            what=what,
            content=body,
            headers={"Content-Type": "application/json; charset=utf-8"},
            auth=(str(self.pos_id), self._api_key),
            error_text=self._error_text,
        )
        code = data.get("responseCode", 0)
        if code not in (0, "0"):
            raise GatewayError(
                self.scrub(f"Przelewy24 refused {what} (responseCode {code}): {data.get('error')}")
            )
        return data

    @staticmethod
    def _error_text(data: Any, response: httpx.Response) -> str:
        """P24's documented error body is ``{"error": "...", "code": N}``; ``error`` is sometimes
        a list or object of field errors. Falls back to the start of the raw body."""
        if isinstance(data, dict) and data.get("error"):
            error = data["error"]
            text = error if isinstance(error, str) else json.dumps(error, ensure_ascii=False)
        else:
            text = response.text.strip() or response.reason_phrase
        return text[:300]


GATEWAY = Przelewy24Gateway
