"""Invoice and credit-note PDFs: the text a reader extracts is the document, in its language, with
locale-formatted amounts and dates, on as many pages as needed, and the bytes are reproducible."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import date

import pytest
from pypdf import PdfReader

from otomat.billing.money import Money
from otomat.billing.pdf import (
    _LABELS,
    PdfDocument,
    PdfLine,
    PdfParty,
    render_pdf,
    resolve_language,
)

NBSP = "\xa0"
PAY_URL = "https://otomat.example/pay/inv_8f3a2c1d9e"


def line(description: str, currency: str, net_minor: int, quantity: int = 1) -> PdfLine:
    """A line taxed at 23 %, amounts computed like the caller would (tax rounded half up)."""
    net = Money(net_minor * quantity, currency)
    tax = Money((net.amount_minor * 23 + 50) // 100, currency)
    return PdfLine(
        description=description,
        quantity=quantity,
        unit_price=Money(net_minor, currency),
        net=net,
        tax_rate="23%",
        tax=tax,
        gross=net + tax,
    )


def make_doc(language: str = "pl", currency: str = "PLN", **changes) -> PdfDocument:
    """A one-line invoice of 100.00 net + 23 % VAT = 123.00 due (or changed by `changes`)."""
    m = lambda minor: Money(minor, currency)  # noqa: E731
    doc = PdfDocument(
        kind="invoice",
        number="FV/2026/05/000123",
        language=language,
        issued_at=date(2026, 5, 12),
        due_at=date(2026, 5, 26),
        seller=PdfParty(
            "Otomat Sp. z o.o.",
            ["ul. Świętokrzyska 12", "00-916 Warszawa", "NIP 525-000-00-00"],
            "billing@otomat.example",
        ),
        buyer=PdfParty(
            "Żółć Łódź Sp. z o.o.", ["ul. Piotrkowska 104", "90-926 Łódź"], "ksiegowosc@zolc.pl"
        ),
        lines=[line("Subskrypcja bota — plan Pro, maj 2026", currency, 10000)],
        subtotal=m(10000),
        discount=m(0),
        tax=m(2300),
        total=m(12300),
        credit_applied=m(0),
        amount_paid=m(0),
        amount_due=m(12300),
        status_label="",
        period="",
        notes="",
        payment_url=PAY_URL,
        tax_summary=[("23%", m(10000), m(2300))],
    )
    return replace(doc, **changes)


def read(pdf: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(pdf))


def text_of(pdf: bytes) -> str:
    """All pages' extracted text, pages separated by a form feed."""
    return "\f".join(page.extract_text() for page in read(pdf).pages)


def flat(text: str) -> str:
    """`text` with wrapped lines joined by single spaces (no-break spaces are kept)."""
    return re.sub(r"[ \n]+", " ", text)


def link_targets(pdf: bytes) -> list[str]:
    """The URIs of all link annotations in the document."""
    return [
        annot.get_object()["/A"]["/URI"]
        for page in read(pdf).pages
        for annot in page.get("/Annots", [])
        if "/URI" in annot.get_object().get("/A", {})
    ]


# -- content and language --------------------------------------------------------------------------


def test_polish_invoice_shows_labels_parties_dates_and_amounts_with_diacritics():
    text = text_of(render_pdf(make_doc(status_label="Nieopłacona", period="maj 2026")))

    for label in (
        "Faktura",
        "Sprzedawca".upper(),
        "Nabywca".upper(),
        "Data wystawienia",
        "Termin płatności",
        "Okres rozliczeniowy",
        "Nazwa towaru lub usługi",
        "Stawka VAT",
        "Netto",
        "Kwota VAT",
        "Brutto",
        "Zestawienie VAT",
        "Wartość netto",
        "Razem",
        "Zapłacono",
        "Do zapłaty",
        "Zapłać online:",
        "Strona 1 z 1",
    ):
        assert label in text, label
    assert "Nr FV/2026/05/000123" in text
    assert "Żółć Łódź Sp. z o.o." in text
    assert "ul. Świętokrzyska 12" in text
    assert "Subskrypcja bota — plan Pro, maj 2026" in flat(text)
    assert "12 maja 2026" in text and "26 maja 2026" in text
    assert "Nieopłacona" in text and "maj 2026" in text

    # Money.format gives a no-break space before the currency; the totals keep it verbatim.
    amount_due = Money(12300, "PLN").format("pl")
    assert amount_due == f"123,00{NBSP}zł"
    assert f"Do zapłaty {amount_due}" in text
    assert f"Kwota VAT 23,00{NBSP}zł" in text


def test_indonesian_invoice_uses_indonesian_wording_and_rupiah():
    doc = make_doc(
        "id",
        "IDR",
        lines=[line("Langganan bot, paket Pro", "IDR", 150000)],
        subtotal=Money(150000, "IDR"),
        tax=Money(34500, "IDR"),
        total=Money(184500, "IDR"),
        amount_due=Money(184500, "IDR"),
        tax_summary=[("23%", Money(150000, "IDR"), Money(34500, "IDR"))],
    )
    text = text_of(render_pdf(doc))

    for label in (
        "Faktur",
        "PENJUAL",
        "PEMBELI",
        "Tanggal terbit",
        "Jatuh tempo",
        "Harga satuan",
        "PPN",
        "Rekapitulasi PPN",
        "Jumlah yang harus dibayar",
        "Bayar online:",
        "Halaman 1 dari 1",
    ):
        assert label in text, label
    assert "12 Mei 2026" in text
    assert Money(150000, "IDR").format("id") == "Rp150.000"
    assert "Rp150.000" in text
    assert f"Jumlah yang harus dibayar {Money(184500, 'IDR').format('id')}" in text
    assert "Rp184.500" in text


def test_english_invoice():
    text = text_of(render_pdf(make_doc("en", "USD")))
    for label in (
        "Invoice",
        "SELLER",
        "BUYER",
        "Issue date",
        "Due date",
        "Amount due",
        "Page 1 of 1",
    ):
        assert label in text, label
    assert "May 12, 2026" in text
    assert "Amount due $123.00" in text


@pytest.mark.parametrize("code", ["xx", "de", "", "en-GB"])
def test_unknown_language_falls_back_to_english(code):
    assert resolve_language(code) == "en"
    text = text_of(render_pdf(make_doc(code, "USD")))
    assert "Invoice" in text and "Amount due $123.00" in text


def test_regional_language_codes_use_their_language():
    assert resolve_language("pl-PL") == "pl"
    assert resolve_language("id_ID") == "id"
    assert "Do zapłaty" in text_of(render_pdf(make_doc("pl-PL")))


def test_every_language_has_every_label():
    keys = set(_LABELS["en"])
    for language, labels in _LABELS.items():
        assert set(labels) == keys, language
        assert all(value.strip() for value in labels.values()), language


def test_discount_and_credit_rows_appear_only_when_non_zero():
    plain = text_of(render_pdf(make_doc("en", "USD")))
    assert "Discount" not in plain and "Credit applied" not in plain

    text = text_of(
        render_pdf(
            make_doc(
                "en",
                "USD",
                discount=Money(-1000, "USD"),
                credit_applied=Money(-500, "USD"),
                amount_due=Money(10800, "USD"),
            )
        )
    )
    assert "Discount -$10.00" in text
    assert "Credit applied -$5.00" in text
    assert "Amount due $108.00" in text


def test_credit_note_names_the_original_invoice():
    doc = make_doc(
        kind="credit_note",
        number="FK/2026/05/000007",
        related_number="FV/2026/04/000042",
        amount_due=Money(0, "PLN"),
    )
    text = text_of(render_pdf(doc))
    assert "Faktura korygująca" in text
    assert "Nr FK/2026/05/000007" in text
    assert "Faktura korygowana FV/2026/04/000042" in text

    english = text_of(render_pdf(replace(doc, language="en")))
    assert "Credit note" in english and "Original invoice FV/2026/04/000042" in english


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown document kind"):
        render_pdf(make_doc(kind="receipt"))


# -- payment link ----------------------------------------------------------------------------------


def test_payment_link_is_shown_and_clickable_when_something_is_due():
    pdf = render_pdf(make_doc())
    assert PAY_URL in text_of(pdf)
    assert link_targets(pdf) == [PAY_URL]


@pytest.mark.parametrize(
    "changes",
    [
        {"amount_due": Money(0, "PLN"), "amount_paid": Money(12300, "PLN")},
        {"amount_due": Money(-100, "PLN")},
        {"payment_url": ""},
        {"payment_url": "javascript:alert(1)"},
    ],
)
def test_no_payment_link_when_nothing_is_due_or_the_url_is_not_web(changes):
    pdf = render_pdf(make_doc(**changes))
    text = text_of(pdf)
    assert "Zapłać online" not in text
    assert "otomat.example/pay" not in text and "javascript" not in text
    assert link_targets(pdf) == []


# -- pages and wrapping ----------------------------------------------------------------------------


def test_empty_document_says_no_items():
    assert "Brak pozycji" in text_of(render_pdf(make_doc(lines=[], tax_summary=[])))
    assert "No items" in text_of(render_pdf(make_doc("en", "USD", lines=[], tax_summary=[])))


def test_300_lines_continue_over_pages_with_the_header_repeated():
    lines = [line(f"Bot nr {i} — hosting i wsparcie", "PLN", 1000) for i in range(300)]
    reader = read(render_pdf(make_doc(lines=lines)))
    pages = [page.extract_text() for page in reader.pages]
    count = len(pages)

    assert count > 2
    assert f"Strona 2 z {count}" in pages[1]
    assert f"Strona {count} z {count}" in pages[-1]
    for page in pages[1:]:
        assert "Faktura FV/2026/05/000123" in page  # running title
    assert "Nazwa towaru lub usługi" in pages[1]  # table header repeated
    everything = "\n".join(pages)
    assert all(f"Bot nr {i} —" in everything for i in range(300))
    assert "Do zapłaty" in pages[-1]


def test_a_long_word_wraps_inside_its_column_and_nothing_is_lost():
    word = "Q" * 3000  # no Polish label contains a Q
    text = text_of(render_pdf(make_doc(lines=[line(word, "PLN", 100)])))
    runs = re.findall("Q+", text)
    assert sum(map(len, runs)) == 3000
    assert len(runs) > 50
    assert max(map(len, runs)) < 40  # a 48 mm column at 8 pt holds about 25


def test_an_extremely_long_description_continues_on_the_next_pages():
    description = "Bardzo długi opis usługi. " * 1500 + "KONIEC"
    reader = read(render_pdf(make_doc(lines=[line(description, "PLN", 100)])))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert len(reader.pages) > 2
    assert "KONIEC" in text
    assert text.count("Bardzo długi opis usługi.") == 1500


def test_extremely_long_party_names_wrap():
    name = "Łódź" * 300
    buyer = PdfParty(name, ["Adres " * 200], "x" * 100 + "@example.pl")
    text = text_of(render_pdf(make_doc(buyer=buyer)))
    runs = re.findall("(?:Łódź)+", text)
    assert sum(map(len, runs)) == len(name)
    assert len(runs) > 5
    assert max(map(len, runs)) < 120  # a page line holds about 70 such letters at 10 pt
    assert "Do zapłaty" in text


def test_characters_missing_from_the_font_do_not_break_rendering():
    doc = make_doc(lines=[line("Bot 🤖 Pro", "PLN", 100)])
    text = text_of(render_pdf(doc))
    assert "Bot" in text and "Pro" in text


# -- file properties -------------------------------------------------------------------------------


def test_output_is_deterministic():
    doc = make_doc(status_label="Nieopłacona", notes="Dziękujemy.")
    first = render_pdf(doc)
    assert render_pdf(doc) == first
    assert render_pdf(replace(doc, number="FV/2026/05/000124")) != first


def test_metadata_has_title_language_and_issue_date():
    reader = read(render_pdf(make_doc()))
    assert reader.metadata.title == "Faktura FV/2026/05/000123"
    assert reader.metadata["/CreationDate"].startswith("D:20260512")
    assert reader.trailer["/Root"]["/Lang"] == "pl"
    assert reader.pages[0].mediabox.width == pytest.approx(595.28, abs=0.1)  # A4


def test_fonts_are_embedded_as_subsets_so_the_file_stays_small():
    pdf = render_pdf(make_doc(status_label="Nieopłacona", notes="Dziękujemy za zakupy."))
    assert len(read(pdf).pages) == 1
    assert len(pdf) < 150_000
    fonts = read(pdf).pages[0]["/Resources"]["/Font"]
    names = [font.get_object()["/BaseFont"] for font in fonts.values()]
    assert names and all(re.fullmatch(r"/[A-Z]{6}\+DejaVuSans\w*", name) for name in names)


def test_bank_details_are_printed_only_when_something_is_due():
    details = "Bank BCA 123 456 7890, a.n. Otomat"
    text = flat(text_of(render_pdf(make_doc(language="en", bank_details=details))))
    assert "Bank transfer" in text and "BCA 123 456 7890" in text
    paid = make_doc(language="en", bank_details=details, amount_due=Money(0, "PLN"))
    assert "BCA 123" not in flat(text_of(render_pdf(paid)))
