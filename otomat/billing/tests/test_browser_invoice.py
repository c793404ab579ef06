"""Headless Chromium: the invoice page in Indonesian and Polish, with a coupon, at desktop and
phone widths — the figures shown add up and the lines are in the customer's language."""

from __future__ import annotations

from decimal import Decimal

import pytest

from otomat.billing.models import Coupon, Plan
from otomat.testing.browser import log_in, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The figures of the page: each line amount and each totals row (minor units, from the markup).
FIGURES_JS = """() => ({
  lines: [...document.querySelectorAll('table.invoice-lines td[data-amount]')]
    .map(td => Number(td.dataset.amount)),
  rows: [...document.querySelectorAll('dl.invoice-totals dd[data-figure]')]
    .map(dd => [dd.dataset.figure, Number(dd.dataset.amount), dd.previousElementSibling.innerText]),
})"""


@pytest.mark.parametrize(
    ("lang", "first_period", "coupon_label", "included"),
    [
        ("id", "periode pertama", "Kupon HEMAT20", "sudah termasuk"),
        ("pl", "pierwszy okres", "Kupon HEMAT20", "w cenie"),
    ],
)
def test_the_invoice_page_adds_up_in_the_customers_language(
    browser_page,
    live_server,
    cast,
    order,
    greeter,
    policy,
    ppn,
    lang,
    first_period,
    coupon_label,
    included,
):
    Coupon.objects.create(code="HEMAT20", percent_off=Decimal(20))
    plan = Plan.objects.create(
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
    cast.alice.language, cast.alice.timezone = lang, "Asia/Jakarta"
    cast.alice.save(update_fields=["language", "timezone"])
    _instance, invoice = order(plan_=plan, coupon="HEMAT20")
    page = browser_page
    log_in(page, live_server.url, cast.alice.email, cast.password)
    for width, suffix in ((1200, "desktop"), (390, "phone")):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server.url}/billing/invoices/{invoice.id}/")
        shot(page, f"invoice-{lang}-{suffix}")
        body = page.inner_text("main")
        assert first_period in body and coupon_label in body and included in body
        if lang == "id":
            assert "IDR" not in body  # rupiah as Indonesian writes it (Rp49.000)
        figures = page.evaluate(FIGURES_JS)
        rows = {name: amount for name, amount, _label in figures["rows"]}
        assert sum(figures["lines"]) == rows["subtotal"] == 74_000
        assert rows["subtotal"] - rows["discount"] == rows["net"] == rows["total"] == 64_200
        assert rows["amount_due"] == rows["total"]
