"""Invoice and credit-note PDFs from a plain data description.

`render_pdf(PdfDocument(...))` returns the bytes of an A4 PDF in the document's language (en, id
or pl; any other language falls back to English). The module knows nothing about Django models or
requests: the caller maps its models to the dataclasses below, passes labels it translated itself
(`status_label`) and gets bytes back, so it also runs in tasks and management commands.

Contract:
* Every amount is a `Money` and is shown with `Money.format(language)`; dates use Babel's long
  format for the language; every fixed label comes from `_LABELS` (no gettext).
* Text is set in the vendored DejaVu Sans (Polish and Indonesian letters render), embedded as a
  subset, so a one-page invoice stays small. Characters DejaVu lacks (e.g. emoji) are left out.
* The output is deterministic: the same document gives the same bytes (the PDF creation date is
  the issue date and the file id is a hash of the content).
* Long descriptions, names and notes wrap; the line table continues across pages with its header
  repeated; every page has a "Page X of Y" footer. An empty `lines` list shows "No items".
* An unknown `kind` raises ValueError. The payment link is shown (and clickable) only when
  `amount_due` is positive and `payment_url` is an http(s) URL; so are the `bank_details`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from babel.dates import format_date
from babel.numbers import format_decimal
from fpdf import FPDF, FontFace
from fpdf.enums import MethodReturnValue, XPos, YPos

from otomat.billing.money import Money

__all__ = ["PdfDocument", "PdfLine", "PdfParty", "render_pdf"]

KINDS = ("invoice", "credit_note")

# fontTools logs a few dozen INFO lines each time fpdf2 subsets a font; keep them out of the logs.
logging.getLogger("fontTools.subset").setLevel(logging.WARNING)

# -- labels ----------------------------------------------------------------------------------------

# Fixed wording per language. Keys must be the same in every language (checked by the tests).
# Polish follows the wording of Polish VAT invoices; Indonesian uses the KBBI spellings
# ("neto", "bruto") and PPN for VAT.
_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "invoice": "Invoice",
        "credit_note": "Credit note",
        "number": "No.",
        "issued_at": "Issue date",
        "due_at": "Due date",
        "period": "Billing period",
        "related": "Original invoice",
        "status": "Status",
        "seller": "Seller",
        "buyer": "Buyer",
        "email": "Email",
        "description": "Description",
        "quantity": "Qty",
        "unit_price": "Unit price",
        "net": "Net",
        "tax_rate": "Tax rate",
        "tax": "Tax",
        "gross": "Gross",
        "no_items": "No items",
        "tax_summary": "Tax summary",
        "subtotal": "Subtotal",
        "discount": "Discount",
        "total": "Total",
        "credit_applied": "Credit applied",
        "amount_paid": "Amount paid",
        "amount_due": "Amount due",
        "pay_online": "Pay online:",
        "bank_details": "Bank transfer",
        "notes": "Notes",
        "page": "Page {page} of {pages}",
        "amount": "Amount",
        "after_discount": "After discount",
        "included": "included",
    },
    "id": {
        "invoice": "Faktur",
        "credit_note": "Nota kredit",
        "number": "No.",
        "issued_at": "Tanggal terbit",
        "due_at": "Jatuh tempo",
        "period": "Periode tagihan",
        "related": "Faktur asal",
        "status": "Status",
        "seller": "Penjual",
        "buyer": "Pembeli",
        "email": "Email",
        "description": "Deskripsi",
        "quantity": "Jml.",
        "unit_price": "Harga satuan",
        "net": "Neto",
        "tax_rate": "Tarif PPN",
        "tax": "PPN",
        "gross": "Bruto",
        "no_items": "Tidak ada item",
        "tax_summary": "Rekapitulasi PPN",
        "subtotal": "Subtotal",
        "discount": "Diskon",
        "total": "Total",
        "credit_applied": "Saldo kredit terpakai",
        "amount_paid": "Sudah dibayar",
        "amount_due": "Jumlah yang harus dibayar",
        "pay_online": "Bayar online:",
        "bank_details": "Transfer bank",
        "notes": "Catatan",
        "page": "Halaman {page} dari {pages}",
        "amount": "Jumlah",
        "after_discount": "Setelah diskon",
        "included": "sudah termasuk",
    },
    "pl": {
        "invoice": "Faktura",
        "credit_note": "Faktura korygująca",
        "number": "Nr",
        "issued_at": "Data wystawienia",
        "due_at": "Termin płatności",
        "period": "Okres rozliczeniowy",
        "related": "Faktura korygowana",
        "status": "Status",
        "seller": "Sprzedawca",
        "buyer": "Nabywca",
        "email": "E-mail",
        "description": "Nazwa towaru lub usługi",
        "quantity": "Ilość",
        "unit_price": "Cena jedn.",
        "net": "Netto",
        "tax_rate": "Stawka VAT",
        "tax": "Kwota VAT",
        "gross": "Brutto",
        "no_items": "Brak pozycji",
        "tax_summary": "Zestawienie VAT",
        "subtotal": "Wartość netto",
        "discount": "Rabat",
        "total": "Razem",
        "credit_applied": "Rozliczono z salda",
        "amount_paid": "Zapłacono",
        "amount_due": "Do zapłaty",
        "pay_online": "Zapłać online:",
        "bank_details": "Przelew na rachunek",
        "notes": "Uwagi",
        "page": "Strona {page} z {pages}",
        "amount": "Wartość",
        "after_discount": "Po rabacie",
        "included": "w cenie",
    },
}

DEFAULT_LANGUAGE = "en"

# -- input -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PdfParty:
    """Seller or buyer: a name, then free lines (address, tax id...) and an optional email."""

    name: str
    lines: list[str] = field(default_factory=list)
    email: str = ""


@dataclass(frozen=True)
class PdfLine:
    """One line item, amounts already computed by the caller (`net + tax == gross`).

    `tax_rate` is a display label such as "23%", or "" when the line carries no tax.
    """

    description: str
    quantity: int
    unit_price: Money
    net: Money
    tax_rate: str
    tax: Money
    gross: Money
    amount: Money | None = None  # quantity × unit price, before discount (layout 2)


@dataclass(frozen=True)
class PdfDocument:
    """Everything printed on an invoice or credit note, already computed and translated.

    `status_label` is printed as given (may be ""); `related_number` is the original invoice of a
    credit note; `tax_summary` holds (rate label, net, tax) per rate, gross being net + tax.
    """

    kind: Literal["invoice", "credit_note"]
    number: str
    language: str
    issued_at: dt.date
    due_at: dt.date | None
    seller: PdfParty
    buyer: PdfParty
    lines: list[PdfLine]
    subtotal: Money
    discount: Money
    tax: Money
    total: Money
    credit_applied: Money
    amount_paid: Money
    amount_due: Money
    status_label: str
    period: str = ""
    notes: str = ""
    payment_url: str = ""
    bank_details: str = ""  # the seller's bank account and transfer instructions, if any
    related_number: str = ""
    tax_summary: list[tuple[str, Money, Money]] = field(default_factory=list)
    # Layout 2 (invoices issued from 2026-12): lines show their amount before discount, and the
    # totals read subtotal, each discount by name, the amount after discount, each tax (added, or
    # included), total, credit applied, amount due. Layout 1 is kept for older invoices.
    layout: int = 1
    discounts: list[tuple[str, Money]] = field(default_factory=list)  # (label, amount off)
    net: Money | None = None  # subtotal − discounts
    taxes: list[tuple[str, Money, bool]] = field(default_factory=list)  # (label, tax, included)


# -- layout constants (millimetres, points for font sizes) -----------------------------------------

_FONT_DIR = Path(__file__).resolve().parent / "fonts"
_FONT = "DejaVu"
_MARGIN = 15.0
_BOTTOM_MARGIN = 20.0  # room for the footer
_TEXT = (33, 33, 33)
_MUTED = (110, 110, 110)
_RULE = (200, 200, 200)
_HEAD_FILL = (238, 240, 243)
_LINK = (20, 80, 170)

# Line table: column share of the page width (sized so that amounts up to 1 234 567,89 zł fit
# on one line at the body font size), alignment, and the body font size.
_COLUMNS: tuple[tuple[str, float, str], ...] = (
    ("description", 48, "LEFT"),
    ("quantity", 12, "RIGHT"),
    ("unit_price", 25, "RIGHT"),
    ("net", 26, "RIGHT"),
    ("tax_rate", 17, "CENTER"),
    ("tax", 24, "RIGHT"),
    ("gross", 28, "RIGHT"),
)
_COLUMNS_V2: tuple[tuple[str, float, str], ...] = (
    ("description", 80, "LEFT"),
    ("quantity", 12, "RIGHT"),
    ("unit_price", 30, "RIGHT"),
    ("tax_rate", 18, "CENTER"),
    ("amount", 40, "RIGHT"),
)
_TABLE_FONT_SIZE = 8.0
_CELL_PAD_X = 1.5
_CELL_PAD_Y = 1.2
# A table row cannot break across pages, so longer descriptions go into continuation rows of at
# most this many wrapped lines (well under one page).
_MAX_ROW_LINES = 30


# -- entry point -----------------------------------------------------------------------------------


def render_pdf(doc: PdfDocument) -> bytes:
    """Render `doc` as an A4 PDF and return its bytes (same input, same bytes).

    Raises ValueError if `doc.kind` is not "invoice" or "credit_note".
    """
    if doc.kind not in KINDS:
        raise ValueError(f"unknown document kind {doc.kind!r}; expected one of {KINDS}")
    language = resolve_language(doc.language)
    labels = _LABELS[language]
    title = f"{labels[doc.kind]} {doc.number}"

    pdf = _DocumentPdf(running_title=title, page_label=labels["page"])
    _set_metadata(pdf, doc, title, language)
    pdf.add_page()

    _draw_heading(pdf, doc, labels, language)
    _draw_parties(pdf, doc, labels)
    _draw_lines(pdf, doc, labels, language)
    if doc.layout >= 2:  # the totals in reading order first, the per-rate summary after them
        _draw_totals(pdf, doc, labels, language)
        _draw_tax_summary(pdf, doc, labels, language)
    else:
        _draw_tax_summary(pdf, doc, labels, language)
        _draw_totals(pdf, doc, labels, language)
    _draw_payment_link(pdf, doc, labels)
    _draw_bank_details(pdf, doc, labels)
    _draw_notes(pdf, doc, labels)
    return bytes(pdf.output())


def resolve_language(code: str) -> str:
    """The supported language for a Django/Babel code ("pl", "pl-PL", "id_ID"), else English."""
    base = (code or "").replace("_", "-").split("-")[0].lower()
    return base if base in _LABELS else DEFAULT_LANGUAGE


# -- document setup --------------------------------------------------------------------------------


class _DocumentPdf(FPDF):
    """FPDF with the DejaVu fonts registered, a running title from page 2 on and a page footer."""

    def __init__(self, *, running_title: str, page_label: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self._running_title = running_title
        self._page_label = page_label
        self.add_font(_FONT, "", str(_FONT_DIR / "DejaVuSans.ttf"))
        self.add_font(_FONT, "B", str(_FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_margins(_MARGIN, _MARGIN, _MARGIN)
        self.set_auto_page_break(True, margin=_BOTTOM_MARGIN)
        self.set_text_color(*_TEXT)
        self.set_draw_color(*_RULE)
        self.set_font(_FONT, size=9)

    def header(self) -> None:
        """On continuation pages, repeat the document title small at the top."""
        if self.page_no() == 1:
            return
        self.set_font(_FONT, size=8)
        self.set_text_color(*_MUTED)
        self.cell(0, 5, self._running_title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(*_TEXT)
        self.ln(3)

    def footer(self) -> None:
        """Title on the left, "Page X of Y" on the right, on every page."""
        self.set_y(-12)
        self.set_font(_FONT, size=7.5)
        self.set_text_color(*_MUTED)
        width = self.epw / 2
        self.cell(width, 5, self._running_title, align="L")
        # `{nb}` is fpdf2's alias, replaced by the page count when the document is output.
        pages = self._page_label.format(page=self.page_no(), pages=self.str_alias_nb_pages)
        self.cell(width, 5, pages, align="R")
        self.set_text_color(*_TEXT)


def _set_metadata(pdf: FPDF, doc: PdfDocument, title: str, language: str) -> None:
    """Title, language, and a creation date taken from the issue date (keeps output stable)."""
    pdf.set_title(title)
    pdf.set_lang(language)
    pdf.set_subject(title)
    if doc.seller.name:
        pdf.set_author(doc.seller.name)
    pdf.set_creator("Otomat")
    issued = doc.issued_at
    pdf.set_creation_date(dt.datetime(issued.year, issued.month, issued.day, tzinfo=dt.UTC))


# -- heading and parties ---------------------------------------------------------------------------


def _draw_heading(pdf: FPDF, doc: PdfDocument, labels: dict[str, str], language: str) -> None:
    """Title and number on the left; dates, period, related invoice and status on the right."""
    top = pdf.get_y()
    left_width = pdf.epw * 0.5
    pdf.set_font(_FONT, "B", 20)
    pdf.multi_cell(left_width, 9, labels[doc.kind], align="L", new_x=XPos.LMARGIN)
    pdf.set_font(_FONT, "", 11)
    pdf.multi_cell(left_width, 6, f"{labels['number']} {doc.number}", align="L", new_x=XPos.LMARGIN)
    left_bottom = pdf.get_y()

    # (label, value, bold) rows; empty optional fields are left out.
    meta = [(labels["issued_at"], _date(doc.issued_at, language), False)]
    if doc.due_at is not None:
        meta.append((labels["due_at"], _date(doc.due_at, language), False))
    if doc.period:
        meta.append((labels["period"], doc.period, False))
    if doc.related_number:
        meta.append((labels["related"], doc.related_number, False))
    if doc.status_label:
        meta.append((labels["status"], doc.status_label, True))

    label_width, value_width = 34.0, pdf.epw * 0.5 - 34.0
    pdf.set_y(top + 1)
    for label, value, bold in meta:
        pdf.set_x(pdf.l_margin + left_width)
        pdf.set_font(_FONT, "", 8)
        pdf.set_text_color(*_MUTED)
        pdf.cell(label_width, 5, label, align="R")
        pdf.set_text_color(*_TEXT)
        pdf.set_font(_FONT, "B" if bold else "", 9)
        pdf.multi_cell(value_width, 5, value, align="R", new_x=XPos.LMARGIN)
    pdf.set_y(max(left_bottom, pdf.get_y()) + 4)
    _rule(pdf)
    pdf.ln(4)


def _draw_parties(pdf: FPDF, doc: PdfDocument, labels: dict[str, str]) -> None:
    """Seller and buyer side by side, or one under the other if they would not fit on the page."""
    gap = 10.0
    width = (pdf.epw - gap) / 2
    blocks = ((labels["seller"], doc.seller), (labels["buyer"], doc.buyer))
    heights = [_party_height(pdf, party, width) for _, party in blocks]
    if pdf.get_y() + max(heights) <= pdf.page_break_trigger:
        top = pdf.get_y()
        bottoms = []
        for i, (heading, party) in enumerate(blocks):
            pdf.set_y(top)
            _draw_party(pdf, heading, party, pdf.l_margin + i * (width + gap), width)
            bottoms.append(pdf.get_y())
        pdf.set_y(max(bottoms))
    else:  # pathological lengths: full width, letting the text flow over pages
        for heading, party in blocks:
            _draw_party(pdf, heading, party, pdf.l_margin, pdf.epw)
            pdf.ln(2)
    pdf.ln(6)


def _party_texts(party: PdfParty) -> list[tuple[str, str, float]]:
    """The (text, style, font size) lines of a party block, headed by its bold name."""
    texts = [(party.name, "B", 10.0)]
    texts += [(line, "", 9.0) for line in party.lines if line]
    if party.email:
        texts.append((party.email, "", 9.0))
    return texts


def _party_height(pdf: FPDF, party: PdfParty, width: float) -> float:
    """Height the party block would take at `width` (heading included)."""
    height = 6.0
    for text, style, size in _party_texts(party):
        pdf.set_font(_FONT, style, size)
        height += len(_wrap(pdf, text, width)) * 4.6
    return height


def _draw_party(pdf: FPDF, heading: str, party: PdfParty, x: float, width: float) -> None:
    """A small muted heading ("Seller") then the party's name and lines, wrapped to `width`."""
    pdf.set_x(x)
    pdf.set_font(_FONT, "B", 7.5)
    pdf.set_text_color(*_MUTED)
    pdf.cell(width, 5, heading.upper(), new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.ln(1)
    pdf.set_text_color(*_TEXT)
    for text, style, size in _party_texts(party):
        pdf.set_font(_FONT, style, size)
        pdf.set_x(x)
        pdf.multi_cell(width, 4.6, text, align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)


# -- line items ------------------------------------------------------------------------------------


def _draw_lines(pdf: FPDF, doc: PdfDocument, labels: dict[str, str], language: str) -> None:
    """The line table; long descriptions wrap and the header row repeats on every page."""
    columns = _COLUMNS_V2 if doc.layout >= 2 else _COLUMNS
    shares = [share for _, share, _ in columns]
    desc_width = pdf.epw * shares[0] / sum(shares) - 2 * _CELL_PAD_X - 0.5
    pdf.set_font(_FONT, "", _TABLE_FONT_SIZE)
    with pdf.table(
        col_widths=shares,
        text_align=tuple(align for _, _, align in columns),
        v_align="TOP",
        borders_layout="HORIZONTAL_LINES",
        headings_style=FontFace(emphasis="BOLD", fill_color=_HEAD_FILL),
        line_height=_TABLE_FONT_SIZE * 0.47,
        padding=(_CELL_PAD_Y, _CELL_PAD_X),
        repeat_headings=1,
        width=pdf.epw,
    ) as table:
        heading = table.row()
        for key, _, _ in columns:
            heading.cell(labels[key], v_align="MIDDLE")
        if not doc.lines:
            table.row().cell(labels["no_items"], colspan=len(columns), align="CENTER")
        amounts = _line_amounts_v2 if doc.layout >= 2 else _line_amounts
        for line in doc.lines:
            for i, chunk in enumerate(_description_chunks(pdf, line.description, desc_width)):
                row = table.row()
                row.cell(chunk)
                cells = amounts(line, language) if i == 0 else [""] * (len(columns) - 1)
                for text in cells:
                    row.cell(text)
    _rule(pdf)  # the table's layout draws no line under its last row
    pdf.ln(4)


def _line_amounts(line: PdfLine, language: str) -> list[str]:
    """The numeric cells of one line, formatted for `language`."""
    return [
        format_decimal(line.quantity, locale=language),
        line.unit_price.format(language),
        line.net.format(language),
        line.tax_rate,
        line.tax.format(language),
        line.gross.format(language),
    ]


def _line_amounts_v2(line: PdfLine, language: str) -> list[str]:
    """Layout 2: quantity, unit price, tax rate and the amount before discount."""
    amount = line.amount if line.amount is not None else line.unit_price * line.quantity
    return [
        format_decimal(line.quantity, locale=language),
        line.unit_price.format(language),
        line.tax_rate,
        amount.format(language),
    ]


def _description_chunks(pdf: FPDF, text: str, width: float) -> Iterator[str]:
    """`text` wrapped to `width`, grouped into pieces of at most _MAX_ROW_LINES lines."""
    lines = _wrap(pdf, text, width)
    for start in range(0, len(lines), _MAX_ROW_LINES):
        yield "\n".join(lines[start : start + _MAX_ROW_LINES])


# -- tax summary and totals ------------------------------------------------------------------------


def _draw_tax_summary(pdf: FPDF, doc: PdfDocument, labels: dict[str, str], language: str) -> None:
    """Net, tax and gross per tax rate, right-aligned under the line table (skipped if empty)."""
    if not doc.tax_summary:
        return
    width = pdf.epw * 0.6
    # Keep the heading with at least the table header and first row.
    _keep_together(pdf, 8 + 6 * min(len(doc.tax_summary) + 1, 3))
    pdf.set_x(pdf.l_margin + pdf.epw - width)
    pdf.set_font(_FONT, "B", 9)
    pdf.cell(width, 6, labels["tax_summary"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, "", _TABLE_FONT_SIZE)
    with pdf.table(
        col_widths=(20, 26, 26, 28),
        text_align=("CENTER", "RIGHT", "RIGHT", "RIGHT"),
        borders_layout="HORIZONTAL_LINES",
        headings_style=FontFace(emphasis="BOLD", fill_color=_HEAD_FILL),
        line_height=_TABLE_FONT_SIZE * 0.47,
        padding=(_CELL_PAD_Y, _CELL_PAD_X),
        width=width,
        align="RIGHT",
    ) as table:
        heading = table.row()
        for key in ("tax_rate", "net", "tax", "gross"):
            heading.cell(labels[key], v_align="MIDDLE")
        for rate, net, tax in doc.tax_summary:
            row = table.row()
            for text in (rate, net.format(language), tax.format(language)):
                row.cell(text)
            row.cell((net + tax).format(language))
    _rule(pdf, x=pdf.l_margin + pdf.epw - width)
    pdf.ln(4)


def _totals_rows(
    doc: PdfDocument, labels: dict[str, str], language: str
) -> list[tuple[str, str, bool]]:
    """(label, amount, emphasised) rows of the totals block; zero discount and credit are left out."""
    if doc.layout >= 2:
        return _totals_rows_v2(doc, labels, language)
    rows = [(labels["subtotal"], doc.subtotal.format(language), False)]
    if not doc.discount.is_zero:
        rows.append((labels["discount"], doc.discount.format(language), False))
    rows.append((labels["tax"], doc.tax.format(language), False))
    rows.append((labels["total"], doc.total.format(language), True))
    if not doc.credit_applied.is_zero:
        rows.append((labels["credit_applied"], doc.credit_applied.format(language), False))
    rows.append((labels["amount_paid"], doc.amount_paid.format(language), False))
    return rows


def _totals_rows_v2(
    doc: PdfDocument, labels: dict[str, str], language: str
) -> list[tuple[str, str, bool]]:
    """Layout 2: subtotal, discounts by name, the amount after them, taxes, total, credit."""
    rows = [(labels["subtotal"], doc.subtotal.format(language), False)]
    for label, amount in doc.discounts:
        rows.append((label or labels["discount"], f"−{amount.format(language)}", False))
    if doc.discounts and doc.net is not None:
        included = any(inc for _, _, inc in doc.taxes)
        rows.append(
            (labels["after_discount" if included else "net"], doc.net.format(language), False)
        )
    for label, amount, included in doc.taxes:
        if included:
            rows.append((f"{label} ({labels['included']})", amount.format(language), False))
        else:
            rows.append((label, f"+{amount.format(language)}", False))
    rows.append((labels["total"], doc.total.format(language), True))
    if not doc.credit_applied.is_zero:
        rows.append((labels["credit_applied"], f"−{doc.credit_applied.format(language)}", False))
    return rows


def _draw_totals(pdf: FPDF, doc: PdfDocument, labels: dict[str, str], language: str) -> None:
    """The totals block, right-aligned and kept on one page, ending with the bold amount due."""
    rows = _totals_rows(doc, labels, language)
    label_width, value_width = pdf.epw * 0.36, pdf.epw * 0.24
    x = pdf.l_margin + pdf.epw - label_width - value_width
    _keep_together(pdf, 5.5 * len(rows) + 12)
    for label, value, bold in rows:
        pdf.set_x(x)
        pdf.set_font(_FONT, "B" if bold else "", 9)
        pdf.cell(label_width, 5.5, label, align="R")
        pdf.cell(value_width, 5.5, value, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1.5)
    pdf.line(x + label_width * 0.3, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())
    pdf.ln(1.5)
    pdf.set_x(x)
    pdf.set_font(_FONT, "B", 11)
    pdf.cell(label_width, 7, labels["amount_due"], align="R")
    pdf.cell(
        value_width,
        7,
        doc.amount_due.format(language),
        align="R",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(6)


# -- payment link and notes ------------------------------------------------------------------------


def _draw_payment_link(pdf: FPDF, doc: PdfDocument, labels: dict[str, str]) -> None:
    """ "Pay online: <url>" with the URL clickable, only if something is due and the URL is http(s)."""
    if doc.amount_due.amount_minor <= 0 or not _is_web_url(doc.payment_url):
        return
    _keep_together(pdf, 14)
    pdf.set_font(_FONT, "B", 9)
    pdf.cell(0, 5, labels["pay_online"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, "U", 9)  # underlined: fpdf2 draws it, no extra font file
    pdf.set_text_color(*_LINK)
    pdf.multi_cell(0, 5, doc.payment_url, align="L", link=doc.payment_url, new_x=XPos.LMARGIN)
    pdf.set_text_color(*_TEXT)
    pdf.ln(4)


def _draw_bank_details(pdf: FPDF, doc: PdfDocument, labels: dict[str, str]) -> None:
    """The seller's bank details under a heading, only if something is due."""
    if doc.amount_due.amount_minor <= 0 or not doc.bank_details.strip():
        return
    _keep_together(pdf, 14)
    pdf.set_font(_FONT, "B", 9)
    pdf.cell(0, 5, labels["bank_details"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, "", 9)
    pdf.multi_cell(0, 4.6, doc.bank_details.strip(), align="L", new_x=XPos.LMARGIN)
    pdf.ln(4)


def _draw_notes(pdf: FPDF, doc: PdfDocument, labels: dict[str, str]) -> None:
    """The caller's notes under a heading, wrapped and flowing over pages if long."""
    if not doc.notes.strip():
        return
    _keep_together(pdf, 14)
    pdf.set_font(_FONT, "B", 9)
    pdf.cell(0, 5, labels["notes"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, "", 9)
    pdf.multi_cell(0, 4.6, doc.notes.strip(), align="L", new_x=XPos.LMARGIN)


# -- helpers ---------------------------------------------------------------------------------------


def _date(value: dt.date, language: str) -> str:
    """`value` in Babel's long format for `language` ("12 maja 2026", "May 12, 2026")."""
    return format_date(value, format="long", locale=language)


def _wrap(pdf: FPDF, text: str, width: float) -> list[str]:
    """`text` split into the lines multi_cell would print at `width` in the current font."""
    lines = pdf.multi_cell(width, text=text, dry_run=True, output=MethodReturnValue.LINES)
    return list(lines) or [""]


def _keep_together(pdf: FPDF, height: float) -> None:
    """Start a new page unless `height` more millimetres fit on this one."""
    if pdf.get_y() + height > pdf.page_break_trigger:
        pdf.add_page()


def _rule(pdf: FPDF, x: float | None = None) -> None:
    """A thin horizontal line at the current height, from `x` (default: the left margin) to the
    right margin."""
    start = pdf.l_margin if x is None else x
    pdf.line(start, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())


def _is_web_url(url: str) -> bool:
    """Whether `url` is an absolute http(s) URL (other schemes are never made clickable)."""
    parts = urlsplit(url or "")
    return parts.scheme in ("http", "https") and bool(parts.netloc)
