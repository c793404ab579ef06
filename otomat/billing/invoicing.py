"""Invoices, credit balance and credit notes: issuing, paying from credit, voiding, correcting.

Every function here runs inside the caller's transaction (or opens one) and keeps the stored
totals consistent: for each invoice ``Σ line net == subtotal``, ``Σ line tax == tax``,
``subtotal + tax == total`` and ``amount_due == total - credit_applied - amount_paid >= 0``; for
each account and currency the credit ledger sums to the balance. ``tests/test_invoicing.py``
checks these invariants, also with hypothesis.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from otomat.accounts.models import Account, User
from otomat.billing.documents import seller_snapshot, store_after_commit
from otomat.billing.models import (
    BillingAction,
    BillingSettings,
    CreditBalance,
    CreditEntry,
    CreditNote,
    Invoice,
    InvoiceLine,
    InvoiceSeries,
    Subscription,
    TaxRate,
)
from otomat.billing.money import Money, allocate, apply_credit, apply_tax
from otomat.billing.numbering import take_number


class BillingError(Exception):
    """A refused billing action; the message is shown to the person who asked."""


@dataclass(frozen=True)
class LineSpec:
    """One invoice line before tax: ``quantity × unit_price - discount`` is the taxed amount
    (net when the rate is exclusive, gross when it is inclusive)."""

    description: str
    unit_price: Money  # may be negative: an unused-time credit on a plan change
    quantity: int = 1
    discount: Money | None = None
    discount_label: str = ""  # what the discount is ("Coupon HEMAT20 (−20 %)"), as printed
    period_start: datetime | None = None
    period_end: datetime | None = None


def ensure_series() -> BillingSettings:
    """The billing settings row and its two numbering series, created on first use."""
    config = BillingSettings.get()
    InvoiceSeries.objects.get_or_create(code=config.invoice_series, defaults={"prefix": "INV"})
    InvoiceSeries.objects.get_or_create(code=config.credit_note_series, defaults={"prefix": "CN"})
    return config


def buyer_snapshot(account: Account) -> dict:
    """The buyer as printed on a document, frozen at issue (later changes don't alter it)."""
    person = account.responsible
    profile = getattr(account, "billing_profile", None)
    lines = [line for line in (getattr(profile, "address", "") or "").splitlines() if line]
    tax_id = getattr(profile, "tax_id", "") or ""
    return {
        "name": (getattr(profile, "legal_name", "") or account.name)[:200],
        "lines": lines + ([f"Tax ID: {tax_id}"] if tax_id else []),
        "email": person.email if person else "",
        # The document's dates are printed in this zone (the responsible person's).
        "time_zone": (person.timezone if person else "") or "UTC",
        "language": person.language if person else "en",
    }


def account_language(account: Account) -> str:
    """The language an invoice of ``account`` is issued in (its lines, PDF and notices): the
    responsible person's, as ``buyer_snapshot`` records it."""
    person = account.responsible
    return (person.language if person else "") or "en"


def late_fee_description(overdue: Invoice, lang: str) -> str:
    """The late-fee line for ``overdue``, in ``lang`` (the account's, at issue)."""
    with translation.override(lang):
        return _("Late fee for %(number)s") % {"number": overdue.number}


def _build_lines(specs: list[LineSpec], currency: str, tax_rate: TaxRate | None) -> list[dict]:
    rows = []
    for position, spec in enumerate(specs):
        if spec.unit_price.currency != currency:
            raise BillingError(f"A line in {spec.unit_price.currency} on a {currency} invoice.")
        if spec.quantity < 1:
            raise BillingError("A line needs a quantity of at least 1.")
        discount = spec.discount or Money.zero(currency)
        amount = spec.unit_price * spec.quantity - discount
        if tax_rate is not None:
            split = apply_tax(amount, tax_rate.rate_percent, inclusive=tax_rate.inclusive)
        else:
            split = apply_tax(amount, 0, inclusive=False)
        rows.append(
            {
                "position": position,
                "description": spec.description[:300],
                "quantity": spec.quantity,
                "unit_price_minor": spec.unit_price.amount_minor,
                "discount_minor": discount.amount_minor,
                "discount_label": spec.discount_label[:200] if discount.amount_minor else "",
                "net_minor": split.net.amount_minor,
                "tax_minor": split.tax.amount_minor,
                "gross_minor": split.gross.amount_minor,
                "tax_rate_percent": tax_rate.rate_percent if tax_rate else None,
                "tax_name": tax_rate.name if tax_rate else "",
                "period_start": spec.period_start,
                "period_end": spec.period_end,
            }
        )
    return rows


def credit_balance(account: Account, currency: str) -> Money:
    row = CreditBalance.objects.filter(account=account, currency=currency).first()
    return Money(row.balance_minor if row else 0, currency)


def change_credit(
    account: Account,
    amount: Money,
    *,
    reason: str,
    invoice: Invoice | None = None,
    credit_note: CreditNote | None = None,
    actor: User | None = None,
) -> Money:
    """Add ``amount`` (negative: use) to the account's credit in its currency, with a ledger
    entry, under a row lock. Returns the new balance; raises BillingError if it would go
    below zero."""
    with transaction.atomic():
        CreditBalance.objects.get_or_create(account=account, currency=amount.currency)
        row = CreditBalance.objects.select_for_update().get(
            account=account, currency=amount.currency
        )
        new_balance = row.balance_minor + amount.amount_minor
        if new_balance < 0:
            raise BillingError("The credit balance is too small.")
        row.balance_minor = new_balance
        row.save(update_fields=["balance_minor"])
        CreditEntry.objects.create(
            account=account,
            currency=amount.currency,
            amount_minor=amount.amount_minor,
            reason=reason[:200],
            invoice=invoice,
            credit_note=credit_note,
            actor=actor if actor and actor.is_authenticated else None,
        )
    return Money(new_balance, amount.currency)


def issue_invoice(
    *,
    account: Account,
    currency: str,
    lines: list[LineSpec],
    kind: str,
    due_at: datetime,
    tax_rate: TaxRate | None = None,
    subscription: Subscription | None = None,
    period: tuple[datetime, datetime] | None = None,
    idempotency_key: str | None = None,
    related_invoice: Invoice | None = None,
    use_credit: bool = True,
    notes: str = "",
    now: datetime | None = None,
    reason: str = "",
    actor_label: str = "system:billing",
    notify: bool = True,
) -> tuple[Invoice, bool]:
    """Issue a numbered invoice and return (invoice, created).

    With ``idempotency_key``, an existing invoice with that key is returned unchanged
    (created=False): renewal, order and late-fee invoices are issued at most once whoever asks.
    Credit balance in the currency pays what it can at once; an invoice left with nothing due
    is paid on issue. Queues the "invoice issued" notice when something is due. Raises BillingError for a negative total or mixed currencies.
    """
    now = now or timezone.now()
    if idempotency_key:
        existing = Invoice.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
    rows = _build_lines(lines, currency, tax_rate)
    total = sum(r["gross_minor"] for r in rows)
    if total < 0:
        raise BillingError("An invoice total cannot be negative; credit the account instead.")
    config = ensure_series()
    buyer = buyer_snapshot(account)
    try:
        with transaction.atomic():
            invoice = Invoice.objects.create(
                account=account,
                subscription=subscription,
                kind=kind,
                number=take_number(config.invoice_series, at=now),
                currency=currency,
                subtotal_minor=sum(r["net_minor"] for r in rows),
                discount_minor=sum(r["discount_minor"] for r in rows),
                tax_minor=sum(r["tax_minor"] for r in rows),
                total_minor=total,
                amount_due_minor=total,
                period_start=period[0] if period else None,
                period_end=period[1] if period else None,
                issued_at=now,
                due_at=max(due_at, now),
                language=buyer.pop("language"),
                buyer=buyer,
                seller=seller_snapshot(config),
                related_invoice=related_invoice,
                idempotency_key=idempotency_key,
                notes=notes,
            )
            InvoiceLine.objects.bulk_create(InvoiceLine(invoice=invoice, **r) for r in rows)
    except IntegrityError:
        # A concurrent issuer won the idempotency key (the number taken here rolled back).
        existing = Invoice.objects.filter(idempotency_key=idempotency_key).first()
        if idempotency_key and existing is not None:
            return existing, False
        raise
    if use_credit and total > 0:
        _apply_credit_balance(invoice)
    if invoice.amount_due_minor == 0:
        # Nothing to pay (a full coupon, a zero total or enough credit): paid on issue.
        invoice.status, invoice.paid_at = Invoice.Status.PAID, now
        invoice.save(update_fields=["status", "paid_at"])
        from otomat.billing.signals import invoice_paid

        invoice_paid.send(sender=Invoice, invoice=invoice)
    BillingAction.objects.create(
        kind=BillingAction.Kind.INVOICED,
        key=f"invoiced:{invoice.pk}",
        account=account,
        subscription=subscription,
        invoice=invoice,
        reason=(reason or f"{invoice.get_kind_display()} invoice {invoice.number}")[:300],
        actor_label=actor_label,
        data={"total_minor": total, "currency": currency},
    )
    store_after_commit(invoice)
    if notify and invoice.amount_due_minor > 0:
        from otomat.billing import notices

        notices.invoice_issued(invoice)
    return invoice, True


def _apply_credit_balance(invoice: Invoice) -> None:
    row = (
        CreditBalance.objects.select_for_update()
        .filter(account=invoice.account, currency=invoice.currency)
        .first()
    )
    if row is None or row.balance_minor <= 0:
        return
    split = apply_credit(row.balance, invoice.amount_due)
    if split.applied.is_zero:
        return
    change_credit(
        invoice.account,
        -split.applied,
        reason=f"Applied to {invoice.number}",
        invoice=invoice,
    )
    invoice.credit_applied_minor += split.applied.amount_minor
    invoice.amount_due_minor = split.still_due.amount_minor
    invoice.save(update_fields=["credit_applied_minor", "amount_due_minor"])


def void_invoice(
    invoice: Invoice, *, reason: str, actor: User | None = None, actor_label: str = ""
) -> Invoice:
    """Cancel an unpaid invoice (its number stays used; the series has no gap). Credit applied
    to it returns to the balance; a partly paid invoice cannot be voided (issue a credit note
    after it is paid instead). Raises BillingError."""
    reason = (reason or "").strip()
    if not reason:
        raise BillingError("Say why the invoice is voided.")
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if locked.status != Invoice.Status.OPEN:
            raise BillingError("Only an unpaid invoice can be voided.")
        if locked.amount_paid_minor:
            raise BillingError("This invoice is partly paid; record the rest or refund it.")
        if locked.credit_applied_minor:
            change_credit(
                locked.account,
                locked.money("credit_applied"),
                reason=f"Returned from voided {locked.number}",
                invoice=locked,
                actor=actor,
            )
        Invoice.objects.filter(pk=locked.pk).update(
            status=Invoice.Status.VOID,
            voided_at=timezone.now(),
            void_reason=reason[:200],
            amount_due_minor=0,
            credit_applied_minor=0,
        )
        from otomat.accounts.services import record_audit

        record_audit(
            "invoice.voided",
            actor=actor,
            actor_label=actor_label,
            account=locked.account,
            target=locked,
            data={"reason": reason[:200]},
        )
        if locked.subscription_id:
            Subscription.objects.filter(pk=locked.subscription_id).update(
                next_run_at=timezone.now()
            )
    invoice.refresh_from_db()
    return invoice


def credited_total(invoice: Invoice) -> Money:
    return Money(sum(invoice.credit_notes.values_list("total_minor", flat=True)), invoice.currency)


def issue_credit_note(
    invoice: Invoice,
    *,
    amount: Money,
    reason: str,
    refund_method: str,
    actor: User | None,
    now: datetime | None = None,
) -> CreditNote:
    """Correct a paid invoice by ``amount`` (gross), at most what was paid and not yet
    credited. The tax part is split in the invoice's own net:tax proportion, so a full credit
    note is the exact negative of the invoice. With ``refund_method == "credit"`` the amount
    goes to the account's credit balance. Raises BillingError."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise BillingError("Say why the invoice is corrected.")
    if refund_method not in CreditNote.RefundMethod.values:
        raise BillingError("Choose how the amount is refunded.")
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if locked.status != Invoice.Status.PAID:
            raise BillingError("Only a paid invoice can be corrected; void an unpaid one.")
        if amount.currency != locked.currency:
            raise BillingError(f"The invoice is in {locked.currency}.")
        available = locked.total - credited_total(locked)
        if amount.amount_minor <= 0 or amount > available:
            raise BillingError(
                f"The amount must be more than zero and at most {available.format(locked.language)}."
            )
        if locked.total_minor and locked.tax_minor:
            net, tax = allocate(amount, [locked.subtotal_minor, locked.tax_minor])
        else:
            net, tax = amount, Money.zero(amount.currency)
        config = ensure_series()
        note = CreditNote.objects.create(
            invoice=locked,
            account=locked.account,
            number=take_number(config.credit_note_series, at=now),
            currency=locked.currency,
            net_minor=net.amount_minor,
            tax_minor=tax.amount_minor,
            total_minor=amount.amount_minor,
            reason=reason[:300],
            refund_method=refund_method,
            issued_at=now,
            issued_by=actor if actor and actor.is_authenticated else None,
            language=locked.language,
            seller=seller_snapshot(config),
        )
        if refund_method == CreditNote.RefundMethod.CREDIT:
            change_credit(
                locked.account,
                amount,
                reason=f"Credit note {note.number}",
                credit_note=note,
                actor=actor,
            )
        BillingAction.objects.create(
            kind=BillingAction.Kind.CREDITED,
            key=f"credited:{note.pk}",
            account=locked.account,
            subscription_id=locked.subscription_id,
            invoice=locked,
            reason=f"Credit note {note.number} for {locked.number}: {reason}"[:300],
            actor_label=f"user:{actor.email}" if actor else "system:billing",
            data={"total_minor": amount.amount_minor, "method": refund_method},
        )
        store_after_commit(note)
    return note


def days_overdue(invoice: Invoice, now: datetime) -> int:
    """Whole days since the due date (0 on the due date, negative before it)."""
    return (now - invoice.due_at) // timedelta(days=1)
