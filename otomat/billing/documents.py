"""Invoice and credit-note PDFs from the stored rows, in the document's language."""

from __future__ import annotations

from collections import defaultdict

from django.utils import translation

from otomat.billing.models import BillingSettings, CreditNote, Invoice
from otomat.billing.money import Money
from otomat.billing.pdf import PdfDocument, PdfLine, PdfParty, render_pdf


def _seller() -> PdfParty:
    config = BillingSettings.get()
    lines = [line for line in config.seller_address.splitlines() if line.strip()]
    if config.seller_tax_id:
        lines.append(f"Tax ID: {config.seller_tax_id}")
    return PdfParty(name=config.seller_name, lines=lines, email=config.seller_email)


def _buyer(snapshot: dict, fallback: str) -> PdfParty:
    return PdfParty(
        name=snapshot.get("name") or fallback,
        lines=list(snapshot.get("lines") or []),
        email=snapshot.get("email") or "",
    )


def _rate_label(percent) -> str:
    if percent is None:
        return ""
    return f"{percent.normalize():f}%"


def invoice_pdf(invoice: Invoice) -> bytes:
    cur = invoice.currency
    lines = []
    summary: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in invoice.lines.all():
        label = _rate_label(line.tax_rate_percent)
        lines.append(
            PdfLine(
                description=line.description,
                quantity=line.quantity,
                unit_price=Money(line.unit_price_minor, cur),
                net=Money(line.net_minor, cur),
                tax_rate=label,
                tax=Money(line.tax_minor, cur),
                gross=Money(line.gross_minor, cur),
            )
        )
        if label:
            summary[label][0] += line.net_minor
            summary[label][1] += line.tax_minor
    with translation.override(invoice.language):
        status = str(invoice.get_status_display())
    period = ""
    if invoice.period_start and invoice.period_end:
        period = f"{invoice.period_start:%Y-%m-%d} – {invoice.period_end:%Y-%m-%d}"
    doc = PdfDocument(
        kind="invoice",
        number=invoice.number,
        language=invoice.language,
        issued_at=invoice.issued_at.date(),
        due_at=invoice.due_at.date(),
        seller=_seller(),
        buyer=_buyer(invoice.buyer, invoice.account.name),
        lines=lines,
        subtotal=invoice.money("subtotal"),
        discount=invoice.money("discount"),
        tax=invoice.money("tax"),
        total=invoice.total,
        credit_applied=invoice.money("credit_applied"),
        amount_paid=invoice.money("amount_paid"),
        amount_due=invoice.amount_due,
        status_label=status,
        period=period,
        notes=invoice.notes
        or (invoice.void_reason if invoice.status == Invoice.Status.VOID else ""),
        payment_url=invoice.pay_url() if invoice.status == Invoice.Status.OPEN else "",
        tax_summary=[(k, Money(v[0], cur), Money(v[1], cur)) for k, v in summary.items()],
    )
    return render_pdf(doc)


def credit_note_pdf(note: CreditNote) -> bytes:
    cur = note.currency
    invoice = note.invoice
    line = PdfLine(
        description=note.reason,
        quantity=1,
        unit_price=Money(note.net_minor, cur),
        net=Money(note.net_minor, cur),
        tax_rate="",
        tax=Money(note.tax_minor, cur),
        gross=note.total,
    )
    zero = Money.zero(cur)
    doc = PdfDocument(
        kind="credit_note",
        number=note.number,
        language=note.language,
        issued_at=note.issued_at.date(),
        due_at=None,
        seller=_seller(),
        buyer=_buyer(invoice.buyer, invoice.account.name),
        lines=[line],
        subtotal=Money(note.net_minor, cur),
        discount=zero,
        tax=Money(note.tax_minor, cur),
        total=note.total,
        credit_applied=zero,
        amount_paid=zero,
        amount_due=zero,
        status_label="",
        related_number=invoice.number,
        notes=str(note.get_refund_method_display()),
    )
    return render_pdf(doc)
