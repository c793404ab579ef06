"""Demo data of the estimator: a small software house's option set in PLN (an online shop, a
booking calendar, online payments that need the shop, a marketplace integration, languages as
a quantity…), in English, Indonesian and Polish. ``seed_demo()`` is idempotent: options are
matched by key and brought back to these values; the settings row is updated in place."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from otomat.projects.models import EstimatorOption, EstimatorSettings

# (key, kind, max units, weeks from, to, cost from, to in PLN, requires,
#  {"en"|"id"|"pl": (group, title, description)})
OPTIONS = [
    (
        "website",
        "choice",
        1,
        "1",
        "2",
        4000,
        7000,
        [],
        {
            "en": ("Website", "Company website", "Up to ten pages, a blog and a contact form."),
            "id": (
                "Situs web",
                "Situs web perusahaan",
                "Hingga sepuluh halaman, blog, dan formulir kontak.",
            ),
            "pl": (
                "Strona",
                "Strona firmowa",
                "Do dziesięciu podstron, blog i formularz kontaktowy.",
            ),
        },
    ),
    (
        "shop",
        "choice",
        1,
        "3",
        "5",
        12000,
        20000,
        [],
        {
            "en": ("Selling online", "Online shop", "Catalogue, cart, orders and an order panel."),
            "id": (
                "Jualan online",
                "Toko online",
                "Katalog, keranjang, pesanan, dan panel pesanan.",
            ),
            "pl": (
                "Sprzedaż online",
                "Sklep internetowy",
                "Katalog, koszyk, zamówienia i panel zamówień.",
            ),
        },
    ),
    (
        "payments",
        "choice",
        1,
        "1",
        "1.5",
        3000,
        5000,
        ["shop"],
        {
            "en": (
                "Selling online",
                "Online payments",
                "Cards, BLIK and fast transfers through your payment operator.",
            ),
            "id": (
                "Jualan online",
                "Pembayaran online",
                "Kartu, e-wallet, dan transfer lewat operator pembayaran Anda.",
            ),
            "pl": (
                "Sprzedaż online",
                "Płatności online",
                "Karty, BLIK i szybkie przelewy przez Twojego operatora płatności.",
            ),
        },
    ),
    (
        "marketplace",
        "choice",
        1,
        "2",
        "4",
        8000,
        15000,
        ["shop"],
        {
            "en": (
                "Selling online",
                "Marketplace integration (Allegro)",
                "Offers, stock and orders synced both ways, without a middleman's fees.",
            ),
            "id": (
                "Jualan online",
                "Integrasi marketplace (Allegro)",
                "Penawaran, stok, dan pesanan tersinkron dua arah, tanpa biaya perantara.",
            ),
            "pl": (
                "Sprzedaż online",
                "Integracja z Allegro",
                "Oferty, stany i zamówienia synchronizowane w obie strony, bez prowizji "
                "pośrednika.",
            ),
        },
    ),
    (
        "booking",
        "choice",
        1,
        "2",
        "3",
        6000,
        10000,
        [],
        {
            "en": (
                "Bookings",
                "Booking calendar",
                "Guests book dates on your site; synced with Booking.com and other channels.",
            ),
            "id": (
                "Reservasi",
                "Kalender reservasi",
                "Tamu memesan tanggal di situs Anda; tersinkron dengan Booking.com dan kanal lain.",
            ),
            "pl": (
                "Rezerwacje",
                "Kalendarz rezerwacji",
                "Goście rezerwują terminy na stronie; synchronizacja z Bookingiem i innymi "
                "kanałami.",
            ),
        },
    ),
    (
        "admin",
        "choice",
        1,
        "2",
        "3",
        5000,
        9000,
        [],
        {
            "en": (
                "Your team",
                "Admin panel",
                "Roles, reports and the everyday work of your staff in one place.",
            ),
            "id": (
                "Tim Anda",
                "Panel admin",
                "Peran, laporan, dan pekerjaan harian staf Anda di satu tempat.",
            ),
            "pl": (
                "Twój zespół",
                "Panel administracyjny",
                "Role, raporty i codzienna praca Twoich pracowników w jednym miejscu.",
            ),
        },
    ),
    (
        "mobile",
        "choice",
        1,
        "6",
        "10",
        30000,
        55000,
        [],
        {
            "en": ("Your team", "Mobile app", "Android and iOS, published in both stores."),
            "id": (
                "Tim Anda",
                "Aplikasi seluler",
                "Android dan iOS, terbit di kedua toko aplikasi.",
            ),
            "pl": ("Twój zespół", "Aplikacja mobilna", "Android i iOS, publikacja w obu sklepach."),
        },
    ),
    (
        "languages",
        "quantity",
        10,
        "0.5",
        "1",
        1500,
        3000,
        [],
        {
            "en": (
                "Reach",
                "Extra languages",
                "Each language beyond the first: translated pages, e-mails and the shop.",
            ),
            "id": (
                "Jangkauan",
                "Bahasa tambahan",
                "Tiap bahasa selain yang pertama: halaman, email, dan toko yang diterjemahkan.",
            ),
            "pl": (
                "Zasięg",
                "Dodatkowe języki",
                "Każdy język poza pierwszym: przetłumaczone strony, e-maile i sklep.",
            ),
        },
    ),
]

SETTINGS = {
    "currency": "PLN",
    "title": "Estimate your project",
    "intro": "Pick what your project needs and see the time and cost range at once. "
    "No plan needed: that is our part.",
    "base_weeks_min": Decimal("1"),
    "base_weeks_max": Decimal("2"),
    "base_cost_min_minor": 3000_00,
    "base_cost_max_minor": 5000_00,
    "translations": {
        "id": {
            "title": "Perkirakan proyek Anda",
            "intro": "Pilih apa yang dibutuhkan proyek Anda dan langsung lihat kisaran waktu "
            "dan biayanya. Tidak perlu rencana: itu bagian kami.",
        },
        "pl": {
            "title": "Wyceń swój projekt",
            "intro": "Zaznacz, czego potrzebuje Twój projekt, i od razu zobacz widełki czasowe "
            "i kosztowe. Nie musisz mieć planu: to jest po naszej stronie.",
        },
    },
}


@transaction.atomic
def seed_demo() -> list[EstimatorOption]:
    """The demo option set and settings; running it again changes nothing further."""
    row = EstimatorSettings.current()
    for name, value in SETTINGS.items():
        setattr(row, name, value)
    row.save()
    made: dict[str, EstimatorOption] = {}
    for position, (key, kind, most, w_min, w_max, c_min, c_max, _needs, texts) in enumerate(
        OPTIONS, start=1
    ):
        group, title, description = texts["en"]
        made[key], _created = EstimatorOption.objects.update_or_create(
            key=key,
            defaults={
                "kind": kind,
                "max_quantity": most,
                "group": group,
                "title": title,
                "description": description,
                "weeks_min": Decimal(w_min),
                "weeks_max": Decimal(w_max),
                "cost_min_minor": c_min * 100,  # PLN in grosze
                "cost_max_minor": c_max * 100,
                "position": position * 10,
                "is_active": True,
                "translations": {
                    lang: {"group": g, "title": t, "description": d}
                    for lang, (g, t, d) in texts.items()
                    if lang != "en"
                },
            },
        )
    for key, *_rest, needs, _texts in OPTIONS:
        made[key].requires.set([made[k] for k in needs])
    return list(made.values())
