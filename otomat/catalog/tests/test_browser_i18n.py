"""Headless Chromium: a customer reads the catalog, a product's page and its install form in
Indonesian and in Polish, with the first-party products' own texts translated (screenshots at
desktop width under $OTOMAT_SCREENSHOTS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from otomat.catalog.services import import_product
from otomat.testing.browser import log_in, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
TEXTS = {
    "id": {
        "catalog": ["Bot Pencari Film", "Bot Peringatan", "Bot Penyambut"],
        "detail": ["Bulanan", "/ bulan", "Situs blog", "Hapus otomatis setelah (menit)"],
        "install": ["Situs blog", "Pesan sekarang", "Bahasa Indonesia", "Polandia"],
        "greeter": ["Pasang Bot Penyambut", "Teks sambutan", "Bantuan", "Teks bantuan"],
    },
    "pl": {
        "catalog": ["Wyszukiwarka filmów", "Bot alertów", "Bot powitalny"],
        "detail": ["Miesięczny", "/ miesiąc", "Blogi", "Usuwaj po (minutach)"],
        "install": ["Blogi", "Zamów", "Indonezyjski", "Angielski"],
        "greeter": ["Instalacja: Bot powitalny", "Tekst powitania", "Pomoc", "Tekst pomocy"],
    },
}
ENGLISH = [
    "Movie Search Bot",
    "Greeter Bot",
    "Blog sites",
    "Auto-delete after",
    "Welcome text",
    "Help text",
    "Monthly",
    "/ monthly",
]


@pytest.fixture
def products(db):
    from otomat.billing.models import Plan

    versions = {
        slug: import_product(REPO / "products" / slug, actor=None)
        for slug in ("greeter", "movie-search", "alert-bot")
    }
    product = versions["movie-search"].product
    Plan.objects.create(
        product=product, code="monthly-idr", name="Monthly", currency="IDR", price_minor=99_000
    )
    Plan.objects.create(
        product=product,
        code="yearly-idr",
        name="Yearly",
        currency="IDR",
        price_minor=990_000,
        period_months=12,
    )
    return versions


@pytest.mark.parametrize("lang", ["id", "pl"])
def test_a_customer_reads_the_catalog_in_their_language(
    browser_page, live_server, cast, products, lang
):
    cast.alice.language = lang
    cast.alice.save(update_fields=["language"])
    page = browser_page
    log_in(page, live_server.url, cast.alice.email, cast.password)
    texts = TEXTS[lang]
    for name, path in [
        ("catalog", "/catalog/"),
        ("detail", "/catalog/movie-search/"),
        ("install", "/instances/install/movie-search/"),
        ("greeter", "/instances/install/greeter/"),
    ]:
        page.goto(f"{live_server.url}{path}")
        shot(page, f"catalog-{name}-{lang}")
        body = page.inner_text("main") if page.locator("main").count() else page.inner_text("body")
        for phrase in texts[name]:
            assert phrase in body, f"{name} ({lang}): {phrase!r} missing"
        for phrase in ENGLISH:
            assert phrase not in body, f"{name} ({lang}): English {phrase!r} left"
