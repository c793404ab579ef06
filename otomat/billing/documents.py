"""Invoices and credit notes as records: their PDF is rendered once, stored, and served as stored.

At issue, the invoice (or credit note) keeps snapshots of both parties: ``buyer`` (with the
account's time zone) and ``seller`` (``seller_snapshot``, from the billing settings of that
moment). The PDF is rendered from those snapshots and from fields that do not change after issue
(lines, totals, number, dates, language, notes), so it is the document *as issued*: it prints no
payment status (the invoice page shows that), its "amount due" is what was billed after credit,
and the seller's later changes of name, address or bank reach no issued document. Rendering
is a task queued when the issuing transaction commits (``store_after_commit``); whatever was not
stored then (a crash, the bulk renewal path's PDFs, invoices from before this module) is
stored on first download or by ``store_missing`` after each billing run, from the same
snapshots, so the bytes are the same whenever they are rendered. Stored bytes are never
rewritten: ``stored_pdf`` returns the existing ``IssuedDocument`` if there is one.
"""

from __future__ import annotations

import hashlib
import logging
import zoneinfo
from collections import defaultdict
from datetime import datetime

from babel.dates import format_date
from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import translation

from otomat.billing.models import BillingSettings, CreditNote, Invoice, IssuedDocument
from otomat.billing.money import Money
from otomat.billing.pdf import (
    _LABELS,
    PdfDocument,
    PdfLine,
    PdfParty,
    render_pdf,
    resolve_language,
)
from otomat.billing.totals import invoice_totals

log = logging.getLogger("otomat.billing")


def seller_snapshot(config) -> dict:
    """The seller as printed on a document, frozen at issue (``config``: the BillingSettings
    row; a historical model in migrations works too)."""
    lines = [line.strip() for line in (config.seller_address or "").splitlines() if line.strip()]
    return {
        "name": config.seller_name,
        "lines": lines,
        "tax_id": config.seller_tax_id or "",
        "email": config.seller_email or "",
        "bank": (config.bank_transfer_instructions or "").strip(),
    }


def _seller(snapshot: dict) -> PdfParty:
    lines = list(snapshot.get("lines") or [])
    if snapshot.get("tax_id"):
        lines.append(f"Tax ID: {snapshot['tax_id']}")
    return PdfParty(name=snapshot.get("name") or "", lines=lines, email=snapshot.get("email", ""))


def _buyer(snapshot: dict, fallback: str) -> PdfParty:
    return PdfParty(
        name=snapshot.get("name") or fallback,
        lines=list(snapshot.get("lines") or []),
        email=snapshot.get("email") or "",
    )


def buyer_zone(buyer: dict) -> zoneinfo.ZoneInfo:
    """The account's time zone from the buyer snapshot (UTC when unknown or invalid)."""
    try:
        return zoneinfo.ZoneInfo(buyer.get("time_zone") or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _local(value: datetime, zone: zoneinfo.ZoneInfo):
    return value.astimezone(zone)


def _rate_label(percent) -> str:
    if percent is None:
        return ""
    return f"{percent.normalize():f}%"


def _date(value: datetime, language: str) -> str:
    return format_date(value.date(), "medium", locale=resolve_language(language))


def pay_url_for(token: str) -> str:
    return settings.BASE_URL + reverse("billing:pay", args=[token])


def invoice_document(invoice, lines) -> PdfDocument:
    """The PDF description of ``invoice`` as issued, from its snapshots and its lines (model
    instances, or historical ones in a migration: only fields are read)."""
    cur = invoice.currency
    zone = buyer_zone(invoice.buyer or {})
    lines = list(lines)
    layout = getattr(invoice, "layout", 1) or 1
    pdf_lines = []
    summary: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in lines:
        label = _rate_label(line.tax_rate_percent)
        pdf_lines.append(
            PdfLine(
                description=line.description,
                quantity=line.quantity,
                unit_price=Money(line.unit_price_minor, cur),
                net=Money(line.net_minor, cur),
                tax_rate=label,
                tax=Money(line.tax_minor, cur),
                gross=Money(line.gross_minor, cur),
                amount=Money(line.quantity * line.unit_price_minor, cur),
            )
        )
        if label:
            summary[label][0] += line.net_minor
            summary[label][1] += line.tax_minor
    period = ""
    if invoice.period_start and invoice.period_end:
        start, end = _local(invoice.period_start, zone), _local(invoice.period_end, zone)
        if layout >= 2:
            period = f"{_date(start, invoice.language)} – {_date(end, invoice.language)}"
        else:
            period = f"{start:%Y-%m-%d} – {end:%Y-%m-%d}"
    # What was billed after the credit applied at issue; payments come later and are shown on
    # the invoice page, not written into the issued document.
    due = Money(invoice.total_minor - invoice.credit_applied_minor, cur)
    seller = invoice.seller or {}
    extra = {}
    subtotal = Money(invoice.subtotal_minor, cur)  # layout 1: Σ line net
    if layout >= 2:
        # The same figures, in the same order, as the invoice page (otomat.billing.totals).
        totals = invoice_totals(
            invoice,
            lines,
            default_discount_label=_LABELS[resolve_language(invoice.language)]["discount"],
        )
        extra = {
            "layout": layout,
            "discounts": totals.discounts,
            "net": totals.net,
            "taxes": [(t.label, t.amount, t.included) for t in totals.taxes],
        }
        subtotal = totals.subtotal  # Σ amounts before discount
    return PdfDocument(
        kind="invoice",
        number=invoice.number,
        language=invoice.language,
        issued_at=_local(invoice.issued_at, zone).date(),
        due_at=_local(invoice.due_at, zone).date(),
        seller=_seller(seller),
        buyer=_buyer(invoice.buyer or {}, ""),
        lines=pdf_lines,
        subtotal=subtotal,
        discount=Money(invoice.discount_minor, cur),
        tax=Money(invoice.tax_minor, cur),
        total=Money(invoice.total_minor, cur),
        credit_applied=Money(invoice.credit_applied_minor, cur),
        amount_paid=Money.zero(cur),
        amount_due=due,
        status_label="",
        period=period,
        notes=invoice.notes,
        payment_url=pay_url_for(invoice.token) if due.amount_minor > 0 else "",
        bank_details=seller.get("bank", "") if due.amount_minor > 0 else "",
        tax_summary=[(k, Money(v[0], cur), Money(v[1], cur)) for k, v in summary.items()],
        **extra,
    )


def credit_note_document(note, invoice) -> PdfDocument:
    """The PDF description of credit note ``note`` of ``invoice`` as issued."""
    cur = note.currency
    zone = buyer_zone(invoice.buyer or {})
    line = PdfLine(
        description=note.reason,
        quantity=1,
        unit_price=Money(note.net_minor, cur),
        net=Money(note.net_minor, cur),
        tax_rate="",
        tax=Money(note.tax_minor, cur),
        gross=Money(note.total_minor, cur),
    )
    zero = Money.zero(cur)
    with translation.override(note.language):
        method = str(
            dict(CreditNote.RefundMethod.choices).get(note.refund_method, note.refund_method)
        )
    return PdfDocument(
        kind="credit_note",
        number=note.number,
        language=note.language,
        issued_at=_local(note.issued_at, zone).date(),
        due_at=None,
        seller=_seller(note.seller or {}),
        buyer=_buyer(invoice.buyer or {}, ""),
        lines=[line],
        subtotal=Money(note.net_minor, cur),
        discount=zero,
        tax=Money(note.tax_minor, cur),
        total=Money(note.total_minor, cur),
        credit_applied=zero,
        amount_paid=zero,
        amount_due=zero,
        status_label="",
        related_number=invoice.number,
        notes=method,
    )


def _store(owner: str, row, content: bytes) -> IssuedDocument:
    try:
        with transaction.atomic():
            return IssuedDocument.objects.create(
                **{owner: row},
                content=content,
                sha256=hashlib.sha256(content).hexdigest(),
                size=len(content),
            )
    except IntegrityError:  # stored concurrently: the first one stays
        return IssuedDocument.objects.get(**{owner: row})


def stored_pdf(document: Invoice | CreditNote) -> IssuedDocument:
    """The stored PDF of an invoice or credit note, rendering and storing it first if it is
    not stored yet (then a missing seller snapshot is taken now). Never re-renders a stored one."""
    if isinstance(document, Invoice):
        owner, model = "invoice", Invoice
    elif isinstance(document, CreditNote):
        owner, model = "credit_note", CreditNote
    else:
        raise TypeError(f"not an invoice or credit note: {document!r}")
    existing = IssuedDocument.objects.filter(**{owner: document}).first()
    if existing is not None:
        return existing
    if not document.seller:
        with transaction.atomic():
            locked = model.objects.select_for_update().get(pk=document.pk)
            if not locked.seller:
                locked.seller = seller_snapshot(BillingSettings.get())
                locked.save(update_fields=["seller"])
        document.seller = locked.seller
    if owner == "invoice":
        content = render_pdf(invoice_document(document, document.lines.all()))
    else:
        content = render_pdf(credit_note_document(document, document.invoice))
    return _store(owner, document, content)


def store_after_commit(document: Invoice | CreditNote) -> None:
    """Once the issuing transaction has committed, queue the task that renders and stores
    ``document``'s PDF (off the request and the billing run, outside their locks). If that is
    lost, ``stored_pdf``'s later call stores the same bytes."""
    kind = "invoice" if isinstance(document, Invoice) else "credit_note"
    pk = document.pk

    def enqueue() -> None:
        from otomat.billing.tasks import store_document_task  # tasks import this module

        try:
            store_document_task.enqueue(kind, pk)
        except Exception:
            log.exception("could not queue the PDF of %s %s; it is stored on first use", kind, pk)

    transaction.on_commit(enqueue)


def store_document(kind: str, pk: int) -> str:
    """Store the PDF of invoice or credit note ``pk`` (``kind``: "invoice" or "credit_note")
    as committed; returns its SHA-256. Raises LookupError for an unknown kind or document."""
    models = {"invoice": Invoice, "credit_note": CreditNote}
    if kind not in models:
        raise LookupError(f"unknown document kind {kind!r}")
    try:
        row = models[kind].objects.get(pk=pk)
    except models[kind].DoesNotExist:
        raise LookupError(f"no {kind} {pk}") from None
    return stored_pdf(row).sha256


def store_missing(limit: int = 200) -> int:
    """Store the PDFs of up to ``limit`` issued invoices and credit notes that have none yet
    (oldest first); returns how many were stored. Run after each billing run."""
    stored = 0
    for model in (Invoice, CreditNote):
        rows = model.objects.filter(document__isnull=True).order_by("pk")[: limit - stored]
        for row in rows:
            stored_pdf(row)
            stored += 1
        if stored >= limit:
            break
    return stored
