"""Payments: gateway checkouts and callbacks, manual bank transfers, and recording money received.

The path of a gateway payment, built so that a crash at any point loses nothing and a replay
credits nothing twice:

1. ``receive_callback`` stores the raw callback (``GatewayCallback``) before anything else, in
   its own transaction, so even a forgery or a crash mid-way leaves a trace.
   Secret headers (Xendit's callback token, anything like Authorization or a cookie) are
   masked first; a source whose callbacks keep failing verification is answered 429 for a while.
2. The adapter verifies the signature; a forgery is marked rejected and changes nothing else.
3. A callback is a hint, never the truth: ``process_callback`` asks the provider over its API
   (``Gateway.confirm``: Midtrans Get Status, Xendit get invoice, Przelewy24 verify, Stripe
   charge retrieval for refunds) and acts only on the answer. A provider that does not know the
   transaction rejects the callback; one that cannot be reached leaves it stored and retried
   with backoff, never credited.
4. It then inserts ``ProcessedEvent(gateway, event_id)`` (the confirmed state's id) and records
   the payment in *one* transaction with the invoice change; the unique constraints on the event
   and on ``Payment(gateway, provider_payment_id)`` (the provider's payment id, from its answer)
   turn duplicates and concurrent deliveries into no-ops, and every refund is credited once by
   its provider id. A callback that failed mid-way is retried by ``retry_failed_callbacks``.
5. The same transaction sets the subscription's ``next_run_at`` to now: that is the durable
   outbox. After commit the subscription is run at once (activation or unsuspension within
   seconds); if the process dies first, the next dunning run finds it due and finishes the job.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from otomat.accounts.models import User
from otomat.billing.gateways import (
    REGISTRY,
    CheckoutRequest,
    Gateway,
    GatewayError,
    GatewayEvent,
    NotConfirmed,
    Refund,
    SignatureError,
)
from otomat.billing.invoicing import BillingError, change_credit, issue_credit_note
from otomat.billing.models import (
    BillingAction,
    CheckoutSession,
    CreditNote,
    GatewayCallback,
    GatewayConfig,
    Invoice,
    Payment,
    ProcessedEvent,
    Subscription,
    TransferProof,
)
from otomat.billing.money import Money
from otomat.lib import windows
from otomat.lib.failpoints import failpoint

log = logging.getLogger("otomat.billing")

MANUAL = "manual"
CALLBACK_MAX_BYTES = 64 * 1024  # no provider sends more; bigger bodies are refused unread
# Headers the adapters read; everything else (cookies, proxies' headers) is not stored.
KEPT_HEADERS = ("content-type", "x-callback-token", "webhook-id", "stripe-signature", "user-agent")
# Headers that carry a secret: stored as MASKED, whatever the adapter (and its secret_headers).
SECRET_HEADERS = frozenset(
    {
        "x-callback-token",
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
    }
)
MASKED = "[masked]"
# A failed callback is tried again after 30 s, 1, 2, 4 ... minutes, at most an hour apart.
RETRY_FIRST_SECONDS = 30
RETRY_MAX_SECONDS = 3600
PROOF_MAX_BYTES = 5 * 1024 * 1024
PROOF_TYPES = {  # magic bytes → content type; the client's claimed type is not trusted
    b"%PDF-": "application/pdf",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
}


# -- gateways ---------------------------------------------------------------------------------


def gateway_for(code: str) -> Gateway:
    """The configured, enabled adapter for ``code``; raises BillingError otherwise."""
    config = GatewayConfig.objects.filter(code=code, enabled=True).first()
    cls = REGISTRY.get(code)
    if config is None or cls is None:
        raise BillingError(f"The payment method {code!r} is not available.")
    try:
        return cls(config.credentials, api_base=config.api_base)
    except GatewayError as exc:
        raise BillingError(str(exc)) from None


def method_label(code: str) -> str:
    """How a payment method is named to people: "Bank transfer" (in their language) for manual
    payments, the provider's name ("Midtrans") for the gateways, the code itself otherwise."""
    if code == MANUAL:
        return _("Bank transfer")
    cls = REGISTRY.get(code)
    return cls.label if cls is not None else code


def available_methods(currency: str) -> list[tuple[str, str]]:
    """(code, label) of the payment methods a customer can use for ``currency``, in the owner's
    order; manual bank transfer when it is enabled."""
    methods = []
    for config in GatewayConfig.objects.filter(enabled=True):
        if config.code == MANUAL:
            methods.append((MANUAL, method_label(MANUAL)))
            continue
        cls = REGISTRY.get(config.code)
        if cls is not None and currency in cls.currencies:
            methods.append((cls.code, cls.label))
    return methods


def notify_url(code: str) -> str:
    return settings.BASE_URL + reverse("billing:callback", args=[code])


def start_checkout(invoice: Invoice, code: str, *, return_url: str) -> CheckoutSession:
    """A payment page at ``code`` for what is due on ``invoice``. An open checkout for the same
    amount made in the last hour is reused (a customer clicking twice pays once). Raises
    BillingError (nothing due, method unavailable, provider refused)."""
    invoice.refresh_from_db()
    if invoice.status != Invoice.Status.OPEN or invoice.amount_due_minor <= 0:
        raise BillingError("This invoice has nothing left to pay.")
    recent = (
        CheckoutSession.objects.filter(
            invoice=invoice,
            gateway=code,
            status=CheckoutSession.Status.OPEN,
            amount_minor=invoice.amount_due_minor,
            created_at__gte=timezone.now() - timedelta(hours=1),
        )
        .exclude(redirect_url="")
        .first()
    )
    if recent is not None:
        return recent
    adapter = gateway_for(code)
    if invoice.currency not in adapter.currencies:
        raise BillingError(f"{adapter.label} does not take {invoice.currency}.")
    reference = f"otm{invoice.pk}x{secrets.token_hex(6)}"
    buyer = invoice.buyer or {}
    request = CheckoutRequest(
        reference=reference,
        amount=invoice.amount_due,
        description=f"Invoice {invoice.number}",
        customer_email=buyer.get("email") or "",
        customer_name=buyer.get("name") or invoice.account.name,
        language=invoice.language,
        return_url=return_url,
        notify_url=notify_url(code),
    )
    try:
        checkout = adapter.create_checkout(request)  # network: outside any transaction
    except GatewayError as exc:
        log.warning("checkout at %s failed for %s: %s", code, invoice.number, exc)
        raise BillingError(f"{adapter.label} could not start the payment: {exc}") from None
    return CheckoutSession.objects.create(
        invoice=invoice,
        gateway=code,
        reference=reference,
        provider_ref=checkout.provider_ref[:200],
        redirect_url=checkout.redirect_url[:500],
        amount_minor=invoice.amount_due_minor,
        currency=invoice.currency,
    )


# -- recording money --------------------------------------------------------------------------


def record_payment(
    invoice: Invoice,
    *,
    amount: Money,
    gateway: str,
    provider_payment_id: str,
    actor: User | None = None,
    actor_label: str = "",
    note: str = "",
    now: datetime | None = None,
) -> tuple[Payment, bool]:
    """Record money received for ``invoice`` and return (payment, created).

    One transaction: the payment row (unique per gateway and provider payment id, so a second
    report of the same payment returns the first with created=False), the invoice's paid and due
    amounts, the credit balance for anything paid beyond what was due (or paid on a void or
    already paid invoice: money received is never lost), the action log, the notice, and the
    subscription marked due for the dunning engine, which activates or unsuspends it. Raises
    BillingError for a non-positive amount or another currency.
    """
    now = now or timezone.now()
    if amount.amount_minor <= 0:
        raise BillingError("A payment must be more than zero.")
    provider_payment_id = (provider_payment_id or "").strip()[:200]
    if not provider_payment_id:
        raise BillingError("A payment needs the provider's payment id or a transfer reference.")
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if amount.currency != locked.currency:
            raise BillingError(
                f"The invoice is in {locked.currency}, the payment in {amount.currency}."
            )
        existing = Payment.objects.filter(
            gateway=gateway, provider_payment_id=provider_payment_id
        ).first()
        if existing is not None:
            return existing, False
        try:
            with transaction.atomic():
                payment = Payment.objects.create(
                    account=locked.account,
                    invoice=locked,
                    gateway=gateway,
                    provider_payment_id=provider_payment_id,
                    amount_minor=amount.amount_minor,
                    currency=amount.currency,
                    received_at=now,
                    actor=actor if actor and actor.is_authenticated else None,
                    actor_label=actor_label,
                    note=note[:300],
                )
        except IntegrityError:
            return Payment.objects.get(
                gateway=gateway, provider_payment_id=provider_payment_id
            ), False
        was_open = locked.status == Invoice.Status.OPEN
        applied = min(amount.amount_minor, locked.amount_due_minor) if was_open else 0
        excess = amount.amount_minor - applied
        if applied:
            locked.amount_paid_minor += applied
            locked.amount_due_minor -= applied
            if locked.amount_due_minor == 0:
                locked.status = Invoice.Status.PAID
                locked.paid_at = now
            locked.save(
                update_fields=["amount_paid_minor", "amount_due_minor", "status", "paid_at"]
            )
            if locked.status == Invoice.Status.PAID:
                from otomat.billing.signals import invoice_paid

                invoice_paid.send(sender=Invoice, invoice=locked)
        if excess:
            if was_open:
                why = f"Overpaid {locked.number}"
            elif locked.status == Invoice.Status.VOID:
                why = f"Paid on voided {locked.number}"
            else:
                why = f"Paid again on {locked.number}"
            change_credit(
                locked.account, Money(excess, amount.currency), reason=why, invoice=locked
            )
        BillingAction.objects.create(
            kind=BillingAction.Kind.PAID,
            key=f"paid:{payment.pk}",
            at=now,
            account=locked.account,
            subscription_id=locked.subscription_id,
            invoice=locked,
            reason=(
                f"{amount} received by {gateway} for {locked.number}"
                + (f"; {Money(excess, amount.currency)} to credit" if excess else "")
            )[:300],
            actor_label=actor_label or (f"user:{actor.email}" if actor else f"gateway:{gateway}"),
            data={"amount_minor": amount.amount_minor, "payment": payment.pk},
        )
        CheckoutSession.objects.filter(invoice=locked, status=CheckoutSession.Status.OPEN).filter(
            amount_minor__lte=amount.amount_minor
        ).update(status=CheckoutSession.Status.PAID)
        from otomat.billing import notices

        notices.payment_received(locked, payment)
        if locked.subscription_id:
            # The durable "something to do" marker: the dunning engine activates or unsuspends.
            Subscription.objects.filter(pk=locked.subscription_id).update(next_run_at=now)
            sub_id = locked.subscription_id
            transaction.on_commit(lambda: run_soon(sub_id))
    invoice.refresh_from_db()
    return payment, True


def run_soon(subscription_id: int) -> None:
    """After a payment commits: run the subscription now, in this process, so the bot starts or
    comes back within seconds. Any failure is left to the next dunning run (the subscription is
    already marked due)."""
    from otomat.billing.dunning import run_subscription

    failpoint("billing.after_payment_commit")
    try:
        run_subscription(subscription_id)
    except Exception:
        log.exception(
            "subscription %s: immediate run failed; the next run retries", subscription_id
        )


# -- gateway callbacks ------------------------------------------------------------------------


def stored_headers(headers: Mapping[str, str], adapter_class: type[Gateway] | None) -> dict:
    """The headers of a callback as they are stored: only those the adapters read, each at
    most 500 characters, every secret one (``SECRET_HEADERS``, the adapter's
    ``secret_headers``) replaced by ``MASKED``."""
    secret = SECRET_HEADERS | (adapter_class.secret_headers if adapter_class else frozenset())
    kept = {}
    for key, value in headers.items():
        key = str(key).lower()
        if key in KEPT_HEADERS:
            kept[key] = MASKED if key in secret else str(value)[:500]
    return kept


def _reject_key(remote_addr: str | None) -> str:
    return f"otomat:billing:callback-rejects:{remote_addr or 'unknown'}"


def _throttled(remote_addr: str | None) -> bool:
    """True while ``remote_addr`` has sent ``CALLBACK_REJECTS_PER_SOURCE`` callbacks that did
    not verify within the last ``CALLBACK_REJECT_WINDOW_SECONDS`` (genuine callbacks never
    count, so a provider is not throttled by its own volume)."""
    return windows.reached(_reject_key(remote_addr), settings.CALLBACK_REJECTS_PER_SOURCE)


def _count_reject(remote_addr: str | None) -> None:
    windows.count(_reject_key(remote_addr), window_seconds=settings.CALLBACK_REJECT_WINDOW_SECONDS)


def receive_callback(
    code: str, *, headers: Mapping[str, str], body: bytes, remote_addr: str | None = None
) -> tuple[int, str, str]:
    """Store, verify, confirm and act on one provider callback; returns the (status, content
    type, body) to answer with. Never raises for bad input.

    Answers 404 for an unknown or disabled gateway, 413 for a body over
    ``CALLBACK_MAX_BYTES`` and 429 for a source throttled for failed verifications (these
    three are not stored), the adapter's refusal (401) for one that does not verify, 400 for
    one the provider does not confirm, 500 when the provider could not be asked (stored, and
    retried), else the adapter's reply."""
    cls = REGISTRY.get(code)
    if cls is None:
        return 404, "application/json", '{"error": "unknown gateway"}'
    if len(body) > CALLBACK_MAX_BYTES:
        return 413, "application/json", '{"error": "body too large"}'
    if _throttled(remote_addr):
        return 429, "application/json", '{"error": "too many callbacks that do not verify"}'
    lowered = {str(k).lower(): v for k, v in headers.items()}

    def store(**fields) -> GatewayCallback:
        return GatewayCallback.objects.create(
            gateway=code,
            remote_addr=remote_addr,
            headers=stored_headers(lowered, cls),
            body=body.decode("utf-8", "replace"),
            **fields,
        )

    # Verified before it is stored (no network: a signature or token check), so that what is
    # stored needs no secret header to be read again; stored before anything acts on it.
    try:
        adapter = gateway_for(code)
    except BillingError as exc:
        store(status=GatewayCallback.Status.REJECTED, error=str(exc)[:500])
        _count_reject(remote_addr)
        return 404, "application/json", '{"error": "gateway not enabled"}'
    try:
        event = adapter.parse_callback(headers=lowered, body=body)
    except SignatureError as exc:
        callback = store(status=GatewayCallback.Status.REJECTED, error=str(exc)[:500])
        _count_reject(remote_addr)
        log.warning("%s callback %s rejected: %s", code, callback.pk, exc)
        return adapter.callback_reply(None)
    callback = store(event_id=event.event_id[:200], kind=event.kind, reference=event.reference[:64])
    failpoint("billing.after_callback_stored")
    ok = process_callback(callback.pk, adapter=adapter, event=event)
    if not ok:
        return 500, "application/json", '{"error": "not processed; retry later"}'
    if GatewayCallback.objects.filter(
        pk=callback.pk, status=GatewayCallback.Status.REJECTED
    ).exists():
        _count_reject(remote_addr)
        return 400, "application/json", '{"error": "the provider does not confirm this callback"}'
    return adapter.callback_reply(event)


def process_callback(
    callback_id: int, *, adapter: Gateway | None = None, event: GatewayEvent | None = None
) -> bool:
    """Confirm a stored, verified callback with the provider and act on the answer, exactly
    once. Returns False when it failed and should be retried (the provider retries too; a
    retried duplicate is a no-op). A callback the provider does not confirm is marked
    rejected (True: retrying cannot help)."""
    callback = GatewayCallback.objects.get(pk=callback_id)
    if callback.status in (
        GatewayCallback.Status.PROCESSED,
        GatewayCallback.Status.DUPLICATE,
        GatewayCallback.Status.REJECTED,
        GatewayCallback.Status.IGNORED,
    ):
        return True
    try:
        adapter = adapter or gateway_for(callback.gateway)
        if event is None:
            # Verified when it arrived; its secret headers are masked since.
            event = adapter.parse_stored(headers=callback.headers, body=callback.body.encode())
        hint = event
        if event.kind != "ignored":
            # Network, outside any transaction: the provider's answer replaces the hint.
            event = adapter.confirm(event)
        status, note = _apply_event(callback, adapter, event)
        if hint.kind != event.kind:
            note = f"the callback said {hint.kind}, {adapter.label} says {event.kind}; {note}"
    except NotConfirmed as exc:
        GatewayCallback.objects.filter(pk=callback.pk).update(
            status=GatewayCallback.Status.REJECTED,
            error=f"not confirmed: {exc}"[:500],
            processed_at=timezone.now(),
            attempts=callback.attempts + 1,
            retry_at=None,
        )
        log.warning("%s callback %s not confirmed: %s", callback.gateway, callback_id, exc)
        return True
    except (GatewayError, BillingError, SignatureError) as exc:
        _callback_failed(callback, str(exc))
        return False
    except Exception as exc:  # a bug must not lose the callback: it stays retryable
        log.exception("callback %s failed", callback_id)
        _callback_failed(callback, f"{type(exc).__name__}: {exc}")
        return False
    GatewayCallback.objects.filter(pk=callback.pk).update(
        status=status,
        # What was acted on: the provider's answer, not the hint.
        kind=event.kind,
        event_id=event.event_id[:200],
        reference=event.reference[:64],
        processed_at=timezone.now(),
        error=note.strip("; ")[:500],
        attempts=callback.attempts + 1,
        retry_at=None,
    )
    return True


def _callback_failed(callback: GatewayCallback, error: str) -> None:
    delay = min(RETRY_FIRST_SECONDS * 2 ** min(callback.attempts, 16), RETRY_MAX_SECONDS)
    GatewayCallback.objects.filter(pk=callback.pk).update(
        status=GatewayCallback.Status.FAILED,
        error=error[:500],
        attempts=callback.attempts + 1,
        retry_at=timezone.now() + timedelta(seconds=delay),
    )


def _apply_event(
    callback: GatewayCallback, adapter: Gateway, event: GatewayEvent
) -> tuple[str, str]:
    if event.kind in ("paid", "refunded", "failed", "expired") and not event.confirmed:
        # The contract of confirm(): never act on a hint. A bug, not bad input: retried.
        raise GatewayError(f"{adapter.label} returned an unconfirmed {event.kind} event")
    with transaction.atomic():
        try:
            with transaction.atomic():
                ProcessedEvent.objects.create(
                    gateway=adapter.code, event_id=event.event_id[:200], callback=callback
                )
        except IntegrityError:
            return GatewayCallback.Status.DUPLICATE, "already processed"
        checkout = (
            CheckoutSession.objects.select_related("invoice")
            .filter(gateway=adapter.code, reference=event.reference)
            .first()
        )
        if checkout is None:
            return GatewayCallback.Status.IGNORED, f"no checkout with reference {event.reference!r}"
        invoice = checkout.invoice
        if event.kind == "paid":
            amount = event.amount or Money(checkout.amount_minor, checkout.currency)
            if amount.currency != invoice.currency:
                raise BillingError(
                    f"paid in {amount.currency} for a {invoice.currency} invoice; review by hand"
                )
            _payment, created = record_payment(
                invoice,
                amount=amount,
                gateway=adapter.code,
                provider_payment_id=event.payment_id or event.event_id,
                actor_label=f"gateway:{adapter.code}",
                note=event.detail,
            )
            CheckoutSession.objects.filter(pk=checkout.pk).update(
                status=CheckoutSession.Status.PAID
            )
            return GatewayCallback.Status.PROCESSED, "" if created else "payment already recorded"
        if event.kind in ("failed", "expired"):
            # Reordering: a late "expired" never undoes a payment already recorded.
            CheckoutSession.objects.filter(
                pk=checkout.pk, status=CheckoutSession.Status.OPEN
            ).update(status=event.kind)
            return GatewayCallback.Status.PROCESSED, ""
        if event.kind == "refunded":
            return GatewayCallback.Status.PROCESSED, _record_refunds(
                callback, invoice, adapter, event
            )
        return GatewayCallback.Status.IGNORED, f"{event.kind} needs no action"


def _record_refunds(
    callback: GatewayCallback, invoice: Invoice, adapter: Gateway, event: GatewayEvent
) -> str:
    """Each refund (or chargeback) the provider lists for the payment becomes a credit note
    (paid back outside Otomat), once per refund id; only for a payment Otomat recorded."""
    if not Payment.objects.filter(
        gateway=adapter.code, provider_payment_id=event.payment_id, invoice=invoice
    ).exists():
        return "refund of a payment Otomat has not recorded; review by hand"
    refunds = event.refunds or (
        # A provider that lists no refunds: the event's amount, once per event.
        (Refund(refund_id=f"event:{event.event_id}", amount=event.amount),)
        if event.amount is not None
        else ()
    )
    notes = []
    for refund in refunds:
        try:
            with transaction.atomic():
                ProcessedEvent.objects.create(
                    gateway=adapter.code,
                    event_id=f"refund:{event.payment_id}:{refund.refund_id}"[:200],
                    callback=callback,
                )
        except IntegrityError:
            continue  # credited already
        notes.append(_record_refund(invoice, adapter, refund))
    return "; ".join(notes) or "every refund already credited"


def _record_refund(invoice: Invoice, adapter: Gateway, refund: Refund) -> str:
    """One refund made at the provider becomes a credit note, up to what is left to credit."""
    invoice.refresh_from_db()
    if invoice.status != Invoice.Status.PAID:
        return "refund for an invoice that is not paid; review by hand"
    from otomat.billing.invoicing import credited_total

    available = invoice.total - credited_total(invoice)
    amount = refund.amount
    if amount.currency != invoice.currency or amount.amount_minor <= 0:
        return "refund amount unusable; review by hand"
    if amount > available:
        amount = available
    if amount.is_zero:
        return "already fully credited"
    what = "Chargeback" if refund.chargeback else "Refunded"
    note = issue_credit_note(
        invoice,
        amount=amount,
        reason=f"{what} at {adapter.label}",
        refund_method=CreditNote.RefundMethod.EXTERNAL,
        actor=None,
    )
    return f"credit note {note.number}"


def retry_failed_callbacks(*, limit: int = 100) -> int:
    """Process stored callbacks that failed (each after its backoff, ``retry_at``) or were
    interrupted (a crash between storing and acting); returns how many are now done."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=30)  # leave callbacks being processed right now
    from django.db.models import Q

    ids = list(
        GatewayCallback.objects.filter(
            Q(status=GatewayCallback.Status.RECEIVED, received_at__lte=cutoff)
            | Q(status=GatewayCallback.Status.FAILED, retry_at__lte=now)
            | Q(status=GatewayCallback.Status.FAILED, retry_at=None, received_at__lte=cutoff),
            attempts__lt=20,
        )
        .order_by("received_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    done = 0
    for callback_id in ids:
        callback = GatewayCallback.objects.get(pk=callback_id)
        if callback.status == GatewayCallback.Status.RECEIVED and not callback.event_id:
            # Stored but never verified (the process died): verify now. Its secret headers are
            # masked, so an adapter that needs one (Xendit's token) refuses it: rejected.
            try:
                adapter = gateway_for(callback.gateway)
                event = adapter.parse_callback(
                    headers=callback.headers, body=callback.body.encode()
                )
            except (BillingError, SignatureError) as exc:
                GatewayCallback.objects.filter(pk=callback_id).update(
                    status=GatewayCallback.Status.REJECTED, error=str(exc)[:500]
                )
                continue
            GatewayCallback.objects.filter(pk=callback_id).update(
                event_id=event.event_id[:200], kind=event.kind, reference=event.reference[:64]
            )
            done += process_callback(callback_id, adapter=adapter, event=event)
        else:
            done += process_callback(callback_id)
    return done


# -- manual bank transfer ---------------------------------------------------------------------


def _sniff(head: bytes) -> str | None:
    for magic, content_type in PROOF_TYPES.items():
        if head.startswith(magic):
            return content_type
    return None


def submit_transfer_proof(
    invoice: Invoice, *, upload, amount: Money, note: str, user: User
) -> TransferProof:
    """Store a customer's proof of a bank transfer for staff to review. ``upload`` is a Django
    UploadedFile. Raises BillingError (too big, not a PDF/PNG/JPEG, nothing due, bad amount)."""
    if invoice.status != Invoice.Status.OPEN or invoice.amount_due_minor <= 0:
        raise BillingError("This invoice has nothing left to pay.")
    if amount.currency != invoice.currency or amount.amount_minor <= 0:
        raise BillingError("Enter the amount you transferred.")
    if upload is None or upload.size == 0:
        raise BillingError("Attach the transfer confirmation (PDF, PNG or JPEG).")
    if upload.size > PROOF_MAX_BYTES:
        raise BillingError("The file is too large (5 MB at most).")
    head = upload.read(16)
    upload.seek(0)
    content_type = _sniff(head)
    if content_type is None:
        raise BillingError("The file must be a PDF, PNG or JPEG.")
    if (
        TransferProof.objects.filter(invoice=invoice, status=TransferProof.Status.PENDING).count()
        >= 5
    ):
        raise BillingError("Several proofs already wait for review; staff will answer soon.")
    with transaction.atomic():
        proof = TransferProof(
            invoice=invoice,
            original_name=(upload.name or "proof")[-200:],
            content_type=content_type,
            size=upload.size,
            amount_minor=amount.amount_minor,
            note=(note or "")[:300],
            uploaded_by=user,
        )
        proof.file.save("proof", upload, save=False)
        proof.save()
        from otomat.accounts.services import record_audit

        record_audit(
            "billing.proof_uploaded",
            actor=user,
            account=invoice.account,
            target=invoice,
            data={"amount_minor": amount.amount_minor},
        )
    return proof


def approve_transfer_proof(
    proof: TransferProof, *, actor: User, amount: Money | None = None
) -> Payment:
    """Staff: the transfer arrived; record it as a payment (once, whoever clicks twice)."""
    with transaction.atomic():
        locked = (
            TransferProof.objects.select_for_update().select_related("invoice").get(pk=proof.pk)
        )
        if locked.status == TransferProof.Status.REJECTED:
            raise BillingError("This proof was rejected.")
        amount = amount or Money(locked.amount_minor, locked.invoice.currency)
        payment, _created = record_payment(
            locked.invoice,
            amount=amount,
            gateway=MANUAL,
            provider_payment_id=f"proof-{locked.pk}",
            actor=actor,
            actor_label=f"user:{actor.email}",
            note="bank transfer, proof approved",
        )
        TransferProof.objects.filter(pk=locked.pk).update(
            status=TransferProof.Status.APPROVED, reviewed_by=actor, reviewed_at=timezone.now()
        )
    return payment


def reject_transfer_proof(proof: TransferProof, *, actor: User, note: str) -> None:
    note = (note or "").strip()
    if not note:
        raise BillingError("Tell the customer why the proof is rejected.")
    updated = TransferProof.objects.filter(pk=proof.pk, status=TransferProof.Status.PENDING).update(
        status=TransferProof.Status.REJECTED,
        reviewed_by=actor,
        reviewed_at=timezone.now(),
        review_note=note[:300],
    )
    if not updated:
        raise BillingError("This proof was already reviewed.")
    from otomat.billing import notices

    proof.refresh_from_db()
    with transaction.atomic():
        notices.proof_rejected(proof)
