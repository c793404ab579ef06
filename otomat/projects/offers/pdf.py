"""The contract PDF: the contract's text, the accepted offer as its annex and, once signed, the
certificate of completion as the last page.

Built on billing's PDF setup (``otomat.billing.pdf``: the vendored DejaVu fonts that carry
Polish and Indonesian letters, the running title and the "Page X of Y" footer), so fonts and
Unicode handling live in one place. Like invoices, the output is deterministic: the same
contract gives the same bytes. The signed PDF repeats the contract's pages with their text
unchanged (only the footer's page count now includes the certificate page).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from fpdf.enums import XPos, YPos

from otomat.billing.money import Money
from otomat.billing.pdf import _FONT, _MUTED, _TEXT, _date, _DocumentPdf, resolve_language

_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "contract": "Contract",
        "number": "No.",
        "date": "Date",
        "seller": "Contractor",
        "client": "Client",
        "annex": "Annex 1: offer {number}, version {version}",
        "item": "Item",
        "quantity": "Qty",
        "price": "Price",
        "weeks": "Weeks",
        "weeks_unit": "weeks",
        "total": "Total",
        "range": "Price range",
        "agreed": "Agreed price",
        "duration": "Duration",
        "milestones": "Milestones",
        "schedule": "Payment schedule",
        "revisions": "Revision rounds included: {n}",
        "valid_until": "Offer valid until",
        "weeks_from_start": "week {n}",
        "signing": "on signing",
        "milestone": "when “{m}” is done",
        "release": "on release",
        "signature": "Signature",
        "signature_note": "Signed electronically (simple electronic signature); the evidence is "
        "in the certificate of completion.",
        "certificate": "Certificate of completion",
        "document": "Document",
        "document_sha256": "SHA-256 of the document signed",
        "offer_sha256": "SHA-256 of the accepted offer version",
        "accepted_at": "Offer accepted (UTC)",
        "signer": "Signed by",
        "email": "Email",
        "signed_at": "Signed at (UTC)",
        "ip": "IP address",
        "user_agent": "Browser",
        "consent": "Consent text as shown",
        "method": "Method",
        "method_text": "Typed name and consent checkbox on the private contract page",
        "hash_note": "The SHA-256 of this signed PDF is kept by the contractor with the "
        "evidence and shown on the online certificate.",
    },
    "id": {
        "contract": "Kontrak",
        "number": "No.",
        "date": "Tanggal",
        "seller": "Pelaksana",
        "client": "Klien",
        "annex": "Lampiran 1: penawaran {number}, versi {version}",
        "item": "Item",
        "quantity": "Jml.",
        "price": "Harga",
        "weeks": "Minggu",
        "weeks_unit": "minggu",
        "total": "Total",
        "range": "Kisaran harga",
        "agreed": "Harga yang disepakati",
        "duration": "Durasi",
        "milestones": "Tahapan",
        "schedule": "Jadwal pembayaran",
        "revisions": "Putaran revisi yang termasuk: {n}",
        "valid_until": "Penawaran berlaku sampai",
        "weeks_from_start": "minggu ke-{n}",
        "signing": "saat penandatanganan",
        "milestone": "setelah “{m}” selesai",
        "release": "saat rilis",
        "signature": "Tanda tangan",
        "signature_note": "Ditandatangani secara elektronik (tanda tangan elektronik sederhana); "
        "buktinya ada di sertifikat penyelesaian.",
        "certificate": "Sertifikat penyelesaian",
        "document": "Dokumen",
        "document_sha256": "SHA-256 dokumen yang ditandatangani",
        "offer_sha256": "SHA-256 versi penawaran yang diterima",
        "accepted_at": "Penawaran diterima (UTC)",
        "signer": "Ditandatangani oleh",
        "email": "Email",
        "signed_at": "Waktu tanda tangan (UTC)",
        "ip": "Alamat IP",
        "user_agent": "Peramban",
        "consent": "Teks persetujuan seperti yang ditampilkan",
        "method": "Metode",
        "method_text": "Nama yang diketik dan kotak persetujuan di halaman kontrak pribadi",
        "hash_note": "SHA-256 PDF bertanda tangan ini disimpan oleh pelaksana bersama buktinya "
        "dan ditampilkan pada sertifikat daring.",
    },
    "pl": {
        "contract": "Umowa",
        "number": "Nr",
        "date": "Data",
        "seller": "Wykonawca",
        "client": "Zamawiający",
        "annex": "Załącznik nr 1: oferta {number}, wersja {version}",
        "item": "Pozycja",
        "quantity": "Ilość",
        "price": "Cena",
        "weeks": "Tygodnie",
        "weeks_unit": "tyg.",
        "total": "Razem",
        "range": "Widełki cenowe",
        "agreed": "Uzgodniona cena",
        "duration": "Czas realizacji",
        "milestones": "Etapy",
        "schedule": "Harmonogram płatności",
        "revisions": "Rundy poprawek w cenie: {n}",
        "valid_until": "Oferta ważna do",
        "weeks_from_start": "tydzień {n}",
        "signing": "przy podpisaniu",
        "milestone": "po zakończeniu etapu „{m}”",
        "release": "przy wdrożeniu",
        "signature": "Podpis",
        "signature_note": "Podpisano elektronicznie (zwykły podpis elektroniczny); dowody są w "
        "certyfikacie zakończenia.",
        "certificate": "Certyfikat zakończenia",
        "document": "Dokument",
        "document_sha256": "SHA-256 podpisanego dokumentu",
        "offer_sha256": "SHA-256 zaakceptowanej wersji oferty",
        "accepted_at": "Oferta zaakceptowana (UTC)",
        "signer": "Podpisał(a)",
        "email": "E-mail",
        "signed_at": "Czas podpisu (UTC)",
        "ip": "Adres IP",
        "user_agent": "Przeglądarka",
        "consent": "Treść zgody w brzmieniu wyświetlonym",
        "method": "Sposób",
        "method_text": "Wpisane imię i nazwisko oraz pole zgody na prywatnej stronie umowy",
        "hash_note": "SHA-256 tego podpisanego pliku PDF wykonawca przechowuje razem z dowodami "
        "i pokazuje w certyfikacie online.",
    },
}


@dataclass(frozen=True)
class Evidence:
    """What the certificate page lists."""

    name: str
    email: str
    signed_at: dt.datetime
    ip: str
    user_agent: str
    consent_text: str
    document_sha256: str


@dataclass(frozen=True)
class ContractPdf:
    number: str
    title: str
    language: str
    date: dt.date
    seller_name: str
    seller_lines: list[str]
    client_name: str
    client_lines: list[str]
    body: str
    offer: dict  # the accepted version as frozen (services.content)
    offer_sha256: str
    accepted_at: dt.datetime
    evidence: Evidence | None = None
    extra: dict = field(default_factory=dict)


def labels_for(language: str) -> dict[str, str]:
    return _LABELS[resolve_language(language)]


def render_contract(doc: ContractPdf) -> bytes:
    """The contract (and, with ``evidence``, its certificate page) as PDF bytes."""
    language = resolve_language(doc.language)
    labels = _LABELS[language]
    title = f"{labels['contract']} {doc.number}"
    pdf = _DocumentPdf(running_title=title, page_label=_page_label(language))
    pdf.set_title(title)
    pdf.set_lang(language)
    pdf.set_creator("Otomat")
    pdf.set_author(doc.seller_name or "Otomat")
    created = doc.evidence.signed_at if doc.evidence else doc.accepted_at
    pdf.set_creation_date(created.astimezone(dt.UTC).replace(microsecond=0))
    pdf.add_page()
    _heading(pdf, doc, labels, language)
    _parties(pdf, doc, labels)
    pdf.set_font(_FONT, size=9.5)
    pdf.multi_cell(0, 5, doc.body, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)
    _signature_block(pdf, doc, labels)
    _annex(pdf, doc, labels, language)
    if doc.evidence is not None:
        _certificate(pdf, doc, labels)
    return bytes(pdf.output())


def _page_label(language: str) -> str:
    from otomat.billing.pdf import _LABELS as billing_labels

    return billing_labels[language]["page"]


def _heading(pdf, doc: ContractPdf, labels, language) -> None:
    pdf.set_font(_FONT, "B", 15)
    pdf.multi_cell(0, 8, doc.title, new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    pdf.set_font(_FONT, size=9)
    pdf.set_text_color(*_MUTED)
    pdf.cell(
        0,
        5,
        f"{labels['number']} {doc.number} · {labels['date']}: {_date(doc.date, language)}",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.set_text_color(*_TEXT)
    pdf.ln(4)


def _parties(pdf, doc: ContractPdf, labels) -> None:
    width = pdf.epw / 2 - 3
    top = pdf.get_y()
    bottom = top
    for n, (heading, name, lines) in enumerate(
        (
            (labels["seller"], doc.seller_name, doc.seller_lines),
            (labels["client"], doc.client_name, doc.client_lines),
        )
    ):
        pdf.set_xy(pdf.l_margin + n * (width + 6), top)
        pdf.set_font(_FONT, "B", 8)
        pdf.set_text_color(*_MUTED)
        pdf.cell(width, 5, heading.upper(), new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.set_text_color(*_TEXT)
        pdf.set_font(_FONT, "B", 10)
        pdf.multi_cell(width, 5, name or "—", new_x=XPos.LEFT, new_y=YPos.NEXT, align="L")
        pdf.set_font(_FONT, size=9)
        for line in lines:
            pdf.multi_cell(width, 4.5, line, new_x=XPos.LEFT, new_y=YPos.NEXT, align="L")
        bottom = max(bottom, pdf.get_y())
    pdf.set_xy(pdf.l_margin, bottom + 6)


def _signature_block(pdf, doc: ContractPdf, labels) -> None:
    pdf.set_font(_FONT, "B", 10)
    pdf.cell(0, 6, labels["signature"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, size=9)
    pdf.multi_cell(0, 5, labels["signature_note"], new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")


def _money(minor: int | None, currency: str, language: str) -> str:
    if minor is None:
        return "—"
    return Money(int(minor), currency).format(language)


def _annex(pdf, doc: ContractPdf, labels, language) -> None:
    offer = doc.offer
    cur = offer["currency"]
    pdf.add_page()
    pdf.set_font(_FONT, "B", 13)
    pdf.multi_cell(
        0,
        7,
        labels["annex"].format(number=offer["number"], version=offer["version"]),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
        align="L",
    )
    pdf.set_font(_FONT, "B", 11)
    pdf.multi_cell(0, 6, offer["title"], new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    if offer.get("summary"):
        pdf.set_font(_FONT, size=9)
        pdf.multi_cell(0, 5, offer["summary"], new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    pdf.ln(3)
    pdf.set_font(_FONT, size=8.5)
    with pdf.table(
        col_widths=(90, 15, 45, 30), text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"), line_height=5
    ) as table:
        table.row([labels["item"], labels["quantity"], labels["price"], labels["weeks"]])
        for line in offer["lines"]:
            text = line["title"] + (f"\n{line['description']}" if line.get("description") else "")
            if line["kind"] == "exact":
                price = _money(line["quantity"] * line["unit_price_minor"], cur, language)
                if line["quantity"] > 1:
                    price = (
                        f"{line['quantity']} × {_money(line['unit_price_minor'], cur, language)}"
                    )
                weeks = _num(line["weeks_max"])
            else:
                price = (
                    f"{_money(line['cost_min_minor'], cur, language)} – "
                    f"{_money(line['cost_max_minor'], cur, language)}"
                )
                weeks = f"{_num(line['weeks_min'])}–{_num(line['weeks_max'])}"
            table.row([text, str(line["quantity"]), price, weeks])
    pdf.ln(3)
    pdf.set_font(_FONT, "B", 9.5)
    if offer["low_minor"] == offer["high_minor"]:
        pdf.cell(
            0,
            5,
            f"{labels['total']}: {_money(offer['high_minor'], cur, language)}",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
    else:
        pdf.cell(
            0,
            5,
            f"{labels['range']}: {_money(offer['low_minor'], cur, language)} – "
            f"{_money(offer['high_minor'], cur, language)}",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        if offer.get("agreed_total_minor") is not None:
            pdf.cell(
                0,
                5,
                f"{labels['agreed']}: {_money(offer['agreed_total_minor'], cur, language)}",
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )
    weeks = (
        _num(offer["weeks_max"])
        if offer["weeks_min"] == offer["weeks_max"]
        else f"{_num(offer['weeks_min'])}–{_num(offer['weeks_max'])}"
    )
    pdf.set_font(_FONT, size=9)
    pdf.cell(
        0,
        5,
        f"{labels['duration']}: {weeks} {labels['weeks_unit']}",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.cell(
        0,
        5,
        labels["revisions"].format(n=offer["revision_rounds"]),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    if offer["milestones"]:
        pdf.ln(3)
        pdf.set_font(_FONT, "B", 10)
        pdf.cell(0, 6, labels["milestones"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(_FONT, size=9)
        for n, m in enumerate(offer["milestones"], start=1):
            when = []
            if m.get("weeks") is not None:
                when.append(labels["weeks_from_start"].format(n=_num(m["weeks"])))
            if m.get("due_date"):
                when.append(_date(dt.date.fromisoformat(m["due_date"]), language))
            amount = (
                f" — {_money(m['amount_minor'], cur, language)}" if m.get("amount_minor") else ""
            )
            suffix = f" ({', '.join(when)})" if when else ""
            pdf.multi_cell(
                0,
                5,
                f"{n}. {m['title']}{suffix}{amount}",
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
                align="L",
            )
    if offer["schedule"]:
        pdf.ln(3)
        pdf.set_font(_FONT, "B", 10)
        pdf.cell(0, 6, labels["schedule"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(_FONT, size=9)
        for n, step in enumerate(offer["schedule"], start=1):
            if step["trigger"] == "milestone":
                when = labels["milestone"].format(m=step.get("milestone") or "")
            else:
                when = labels[step["trigger"]]
            share = f" ({_num(step['percent'])} %)" if step.get("percent") else ""
            pdf.multi_cell(
                0,
                5,
                f"{n}. {step['label']}: "
                f"{_money(step['amount_minor'], cur, language)}{share}, {when}",
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
                align="L",
            )
    pdf.ln(3)
    pdf.set_text_color(*_MUTED)
    pdf.set_font(_FONT, size=8)
    pdf.multi_cell(
        0,
        4.5,
        f"{labels['offer_sha256']}: {doc.offer_sha256}",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
        align="L",
    )
    pdf.set_text_color(*_TEXT)


def _certificate(pdf, doc: ContractPdf, labels) -> None:
    ev = doc.evidence
    pdf.add_page()
    pdf.set_font(_FONT, "B", 14)
    pdf.cell(0, 8, labels["certificate"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    rows = [
        (labels["document"], f"{labels['contract']} {doc.number}: {doc.title}"),
        (labels["document_sha256"], ev.document_sha256),
        (labels["offer_sha256"], doc.offer_sha256),
        (labels["accepted_at"], doc.accepted_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")),
        (labels["signer"], ev.name),
        (labels["email"], ev.email),
        (labels["signed_at"], ev.signed_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")),
        (labels["ip"], ev.ip or "—"),
        (labels["user_agent"], ev.user_agent or "—"),
        (labels["method"], labels["method_text"]),
        (labels["consent"], ev.consent_text),
    ]
    for label, value in rows:
        pdf.set_font(_FONT, "B", 8.5)
        pdf.set_text_color(*_MUTED)
        pdf.multi_cell(0, 4.5, label, new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
        pdf.set_text_color(*_TEXT)
        pdf.set_font(_FONT, size=9)
        pdf.multi_cell(0, 5, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
        pdf.ln(1.5)
    pdf.ln(2)
    pdf.set_font(_FONT, size=8)
    pdf.set_text_color(*_MUTED)
    pdf.multi_cell(0, 4.5, labels["hash_note"], new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    pdf.set_text_color(*_TEXT)


def _num(value) -> str:
    """A decimal as printed: no trailing zeros ("2", "2.5", "30")."""
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return str(value)
    return format(number.normalize(), "f") if number.is_finite() else str(value)
