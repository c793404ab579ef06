"""An invoice reads as an accountant reads it, on its page and in its PDF.

Lines with their amounts before discount, the subtotal, each discount by name (the coupon's
code), the net, the tax (added, or included), the total, the credit and the amount due — and
every figure shown adds up. Lines are described in the account's language at issue ("first
period", "Setup fee"), the PDF keeps the language of its issue, and dates read in the locale's
format and the account's zone.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
import time_machine
from django.urls import reverse
from pypdf import PdfReader

from otomat.billing.documents import invoice_document, stored_pdf
from otomat.billing.dunning import run_billing
from otomat.billing.models import Coupon, Invoice, Plan
from otomat.billing.money import Money
from otomat.billing.pdf import render_pdf

from .conftest import T0

DAY = timedelta(days=1)


@pytest.fixture
def hemat20(db):
    return Coupon.objects.create(code="HEMAT20", percent_off=Decimal(20))


@pytest.fixture
def demo_plan(greeter, policy, ppn):
    """The demo's shape: IDR 49,000 a month, PPN 11 % included, a setup fee."""
    return Plan.objects.create(
        product=greeter.product,
        code="starter",
        name="Starter",
        currency="IDR",
        price_minor=49_000,
        period_months=1,
        setup_fee_minor=25_000,
        tax_rate=ppn,
        dunning_policy=policy,
    )


@pytest.fixture
def pln_plan(greeter, policy, vat_pl):
    """PLN 100.00 a month, VAT 23 % added."""
    return Plan.objects.create(
        product=greeter.product,
        code="pl",
        name="Polska",
        currency="PLN",
        price_minor=10_000,
        period_months=1,
        tax_rate=vat_pl,
        dunning_policy=policy,
    )


class _Figures(HTMLParser):
    """The figures of an invoice page: each line's amount and each totals row, as minor units
    from their data attributes, with the text shown for each."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[int] = []
        self.figures: list[tuple[str, int]] = []
        self._in_lines = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "invoice-lines" in (attrs.get("class") or ""):
            self._in_lines = True
        if tag == "td" and self._in_lines and "data-amount" in attrs:
            self.lines.append(int(attrs["data-amount"]))
        if tag == "dd" and "data-figure" in attrs:
            self.figures.append((attrs["data-figure"], int(attrs["data-amount"])))

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_lines = False


def page_figures(html: str) -> _Figures:
    parser = _Figures()
    parser.feed(html)
    return parser


def assert_page_adds_up(html: str) -> dict[str, int]:
    """Recompute the page's figures: Σ lines = subtotal, subtotal − discounts = net, net +
    added tax = total, total − credit − paid = amount due. Returns the figures by name."""
    parsed = page_figures(html)
    names = [name for name, _ in parsed.figures]
    figures: dict[str, int] = {}
    for name, amount in parsed.figures:
        figures[name] = figures.get(name, 0) + amount
    assert parsed.lines, "the page shows no line amounts"
    assert sum(parsed.lines) == figures["subtotal"]
    net = figures["subtotal"] - figures.get("discount", 0)
    if "discount" in figures:
        assert figures["net"] == net
        # Accountant's order: subtotal, discount, net, tax, total, credit, amount due.
        assert names.index("subtotal") < names.index("discount") < names.index("net")
    taxes = [n for n in names if n.startswith("tax_")]
    assert all(names.index(t) < names.index("total") for t in taxes)
    assert net + figures.get("tax_added", 0) == figures["total"]
    due = figures["total"] - figures.get("credit_applied", 0) - figures.get("amount_paid", 0)
    assert due == figures["amount_due"]
    return figures


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


_AMOUNT = re.compile(r"([−+-]?)\s*(?:IDR|Rp|zł|PLN|\$)?\s*([0-9][0-9.,\u00a0\u202f ]*[0-9])")


def _minor(text: str, exponent: int) -> int:
    """The last amount printed in ``text`` ("Rp89.200", "123,00 zł") in minor units."""
    matches = list(_AMOUNT.finditer(text))
    assert matches, text
    sign, digits = matches[-1].groups()
    digits = re.sub(r"[\u00a0\u202f ]", "", digits)
    if exponent:
        whole, frac = digits[: -exponent - 1], digits[-exponent:]
        value = int(re.sub(r"[.,]", "", whole) + frac)
    else:
        value = int(re.sub(r"[.,]", "", digits))
    return -value if sign in ("−", "-") else value


def pdf_row(text: str, label: str, exponent: int) -> int:
    """The amount on the PDF's line that starts with ``label``."""
    for line in text.splitlines():
        if line.strip().startswith(label):
            return _minor(line[len(label) :], exponent)
    raise AssertionError(f"no {label!r} row in:\n{text}")


# -- the invoice page and PDF add up ------------------------------------------------------------


def test_the_page_reads_lines_subtotal_coupon_net_tax_total(
    client, cast, order, demo_plan, hemat20
):
    _instance, invoice = order(plan_=demo_plan, coupon="HEMAT20")
    # 49,000 + 25,000 setup = 74,000; the coupon takes 20 % of the plan's price: 9,800.
    assert invoice.total_minor == 74_000 - 9_800
    for user, url in (
        (cast.alice, reverse("billing:invoice", args=[invoice.id])),
        (cast.staff, reverse("billing:invoice_manage", args=[invoice.id])),
    ):
        client.force_login(user)
        html = client.get(url).content.decode()
        figures = assert_page_adds_up(html)
        assert figures["subtotal"] == 74_000 and figures["discount"] == 9_800
        assert figures["net"] == figures["total"] == 64_200
        assert figures["tax_included"] == invoice.tax_minor and "tax_added" not in figures
        assert "Coupon HEMAT20 (−20%)" in html
        assert "PPN 11% (included)" in html
        assert "Setup fee: " in html and "first period" in html


def test_the_pdf_adds_up_with_the_coupon_and_the_included_tax(cast, order, demo_plan, hemat20):
    _instance, invoice = order(plan_=demo_plan, coupon="HEMAT20")
    text = pdf_text(stored_pdf(invoice).content)
    subtotal = pdf_row(text, "Subtotal", 0)
    discount = pdf_row(text, "Coupon HEMAT20 (−20%)", 0)
    after = pdf_row(text, "After discount", 0)
    tax = pdf_row(text, "PPN 11% (included)", 0)
    total = pdf_row(text, "Total", 0)
    due = pdf_row(text, "Amount due", 0)
    assert subtotal == 74_000 and discount == -9_800
    assert subtotal + discount == after == total == invoice.total_minor
    assert tax == invoice.tax_minor  # shown as included: not added again
    assert due == total
    # The line amounts (before discount) are what the subtotal sums.
    assert "Rp49.000" in text.replace("IDR", "Rp") or "IDR49,000" in text
    assert "Setup fee: " in text and "first period" in text


def test_an_added_tax_adds_up_on_the_page_and_the_pdf(client, cast, order, pln_plan):
    cast.alice.account.currency = "PLN"
    cast.alice.account.save()
    _instance, invoice = order(plan_=pln_plan)
    client.force_login(cast.alice)
    html = client.get(reverse("billing:invoice", args=[invoice.id])).content.decode()
    figures = assert_page_adds_up(html)
    assert figures["tax_added"] == 2_300 and figures["total"] == 12_300
    assert "VAT 23% (added)" in html
    text = pdf_text(stored_pdf(invoice).content)
    assert pdf_row(text, "Subtotal", 2) + pdf_row(text, "VAT 23%", 2) == pdf_row(text, "Total", 2)
    assert pdf_row(text, "Total", 2) == 12_300


def test_invoices_issued_before_keep_their_pdf_layout(cast, order, demo_plan, hemat20):
    _instance, invoice = order(plan_=demo_plan, coupon="HEMAT20")
    stored = stored_pdf(invoice)
    # The stored bytes are what the PDF of the invoice is, whatever the rendering becomes.
    assert stored_pdf(invoice).sha256 == stored.sha256
    Invoice.objects.filter(pk=invoice.pk).update(layout=1)
    invoice.refresh_from_db()
    old = pdf_text(render_pdf(invoice_document(invoice, invoice.lines.all())))
    assert "Gross" in old and "After discount" not in old  # the old layout, as issued then


# -- labels and languages -----------------------------------------------------------------------


def test_the_first_invoice_after_a_trial_says_first_period(client, cast, order, demo_plan):
    demo_plan.trial_days = 7
    demo_plan.save()
    _instance, none = order(plan_=demo_plan)
    assert none is None
    with time_machine.travel(T0 + 6 * DAY, tick=False):
        run_billing()
    first = Invoice.objects.get()
    assert first.kind == Invoice.Kind.RENEWAL
    descriptions = [line.description for line in first.lines.all()]
    assert "first period" in descriptions[0] and "Setup fee: " in descriptions[1]
    client.force_login(cast.alice)
    html = client.get(reverse("billing:invoice", args=[first.id])).content.decode()
    assert "First period · issued" in html and "Renewal" not in html
    listing = client.get(reverse("billing:invoices")).content.decode()
    assert "First period" in listing


def test_lines_and_pdf_are_in_the_language_at_issue(cast, order, demo_plan, hemat20):
    alice = cast.alice
    english, _ = order(plan_=demo_plan, name="First")
    first = Invoice.objects.get(subscription__instance=english)
    alice.language = "pl"
    alice.save(update_fields=["language"])
    polish, _ = order(plan_=demo_plan, coupon="HEMAT20", name="Drugi")
    second = Invoice.objects.get(subscription__instance=polish)
    assert first.language == "en" and second.language == "pl"
    lines = [line.description for line in second.lines.all()]
    assert "pierwszy okres" in lines[0] and lines[1].startswith("Opłata instalacyjna")
    assert second.lines.first().discount_label.startswith("Kupon HEMAT20")
    polish_pdf = pdf_text(stored_pdf(second).content)
    assert "Faktura" in polish_pdf and "pierwszy okres" in polish_pdf
    assert "Kupon HEMAT20" in polish_pdf
    # The invoice issued in English stays English after the switch.
    english_pdf = pdf_text(stored_pdf(first).content)
    assert "Invoice" in english_pdf and "first period" in english_pdf


def test_indonesian_lines_use_the_products_translated_name(cast, order, demo_plan, greeter):
    translated = (greeter.manifest.get("i18n", {}).get("id") or {}).get("name")
    cast.alice.language = "id"
    cast.alice.save(update_fields=["language"])
    _instance, invoice = order(plan_=demo_plan)
    first_line = invoice.lines.first().description
    assert "periode pertama" in first_line
    if translated:
        assert first_line.startswith(translated)
    assert invoice.lines.last().description.startswith("Biaya pemasangan")


# -- dates --------------------------------------------------------------------------------------


def test_billing_dates_read_in_the_locale_and_the_accounts_zone(client, cast, order, demo_plan):
    cast.alice.timezone = "Asia/Jakarta"
    cast.alice.save(update_fields=["timezone"])
    _instance, invoice = order(plan_=demo_plan)
    client.force_login(cast.alice)
    html = client.get(reverse("billing:invoice", args=[invoice.id])).content.decode()
    assert "Jan 10, 2026" in html  # issued at 09:00 UTC, 16:00 in Jakarta
    assert "(Asia/Jakarta)" in html  # the due time names its zone
    assert not re.search(r"\b\d{2}/\d{2}/\d{4}\b", html)
    listing = client.get(reverse("billing:invoices")).content.decode()
    assert not re.search(r"\b\d{2}/\d{2}/\d{4}\b", listing)


# -- the order form's trial wording -------------------------------------------------------------


def test_the_order_form_promises_a_trial_only_when_there_is_one(client, cast, demo_plan, greeter):
    client.force_login(cast.alice)
    url = reverse("instances:install", args=[greeter.product.slug])
    html = client.get(url).content.decode()
    assert "trial" not in html.lower()
    assert "You pay the first invoice now" in html
    demo_plan.trial_days = 7
    demo_plan.save()
    html = client.get(url).content.decode()
    assert "With a free trial the bot starts at once" in html


def test_money_display_helpers_refuse_nothing_and_show_nothing_for_empty(db):
    from otomat.billing.templatetags.billing_tags import local_date, local_datetime, with_trial

    assert local_date(None) == "" and local_datetime(None) == ""
    assert with_trial(None) == []
    assert Money(0, "IDR").is_zero


def test_the_invoice_notice_is_in_the_customers_language_and_zone(cast, order, demo_plan):
    from otomat.notify.models import Notification
    from otomat.notify.services import deliver

    cast.alice.language, cast.alice.timezone = "pl", "Asia/Jakarta"
    cast.alice.save(update_fields=["language", "timezone"])
    _instance, invoice = order(plan_=demo_plan)
    notice = Notification.objects.get(kind="billing/invoice_issued", channel="email")
    deliver(notice.pk, now=notice.next_attempt_at)
    notice.refresh_from_db()
    assert notice.sent_at is not None, notice.last_error
    assert notice.subject.startswith("Faktura") and invoice.number in notice.subject
    assert "(Asia/Jakarta)" in notice.body  # the due time names its zone
    assert not re.search(r"\b\d{2}/\d{2}/\d{4}\b", notice.body)


def test_the_pay_link_shows_the_due_time_in_the_accounts_zone(client, cast, order, demo_plan):
    cast.alice.timezone = "Asia/Jakarta"
    cast.alice.save(update_fields=["timezone"])
    _instance, invoice = order(plan_=demo_plan)
    html = client.get(reverse("billing:pay", args=[invoice.token])).content.decode()
    assert "Jan 17, 2026" in html and "(Asia/Jakarta)" in html  # not logged in: the account's zone
    assert not re.search(r"\b\d{2}/\d{2}/\d{4}\b", html)


def test_plan_change_and_late_fee_lines_are_in_the_accounts_language(
    cast, order, demo_plan, pro_plan, policy
):
    from otomat.billing.models import Subscription
    from otomat.billing.subscriptions import change_plan

    from .conftest import pay

    policy.late_fee_percent, policy.late_fee_after_days = Decimal(5), 3
    policy.save()
    cast.alice.language = "id"
    cast.alice.save(update_fields=["language"])
    instance, invoice = order(plan_=demo_plan)
    pay(invoice, at=T0)
    sub = Subscription.objects.get(instance=instance)
    with time_machine.travel(T0 + 10 * DAY, tick=False):
        upgrade = change_plan(sub, pro_plan, actor=cast.alice)
    credit, charge = [line.description for line in upgrade.lines.all()]
    assert credit.startswith("Sisa waktu pada Starter")
    assert " hingga " in charge and "until" not in charge
    # The upgrade is left unpaid: its late fee is described in Indonesian too.
    for days in (4, 5):
        with time_machine.travel(upgrade.due_at + days * DAY, tick=False):
            run_billing()
    fee = Invoice.objects.get(kind=Invoice.Kind.LATE_FEE)
    assert fee.lines.get().description == f"Denda keterlambatan untuk {upgrade.number}"


def test_describing_a_batch_of_renewals_costs_no_query_per_invoice(
    cast, order, demo_plan, django_assert_num_queries
):
    from otomat.accounts.models import Account
    from otomat.billing.models import Subscription
    from otomat.billing.subscriptions import period_bounds, plan_lines

    for n in range(3):
        order(plan_=demo_plan, name=f"Bot {n}")
    subs = list(Subscription.objects.select_related("instance", "account").order_by("pk"))
    Account.preload_responsible([sub.account for sub in subs])
    plan = Plan.objects.select_related("product", "tax_rate").get(pk=demo_plan.pk)
    for sub in subs:
        sub.plan = plan  # as the billing run shares one plan object per batch

    def describe(sub):
        period = period_bounds(T0, 1, 1)
        return plan_lines(sub, plan, period=period, with_setup_fee=False)[0].description

    describe(subs[0])  # the version's translations, read once
    with django_assert_num_queries(0):
        descriptions = [describe(sub) for sub in subs[1:]]
    assert all(", period " in d and "first period" not in d for d in descriptions)
