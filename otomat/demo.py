"""Demo data for the main command: an owner, a customer, the first-party products and a bot in the
emulator to install. Idempotent: passwords are generated once and kept in DATA_DIR."""

from __future__ import annotations

import contextlib
import json
import secrets
from pathlib import Path

import httpx
from django.conf import settings

OWNER_EMAIL = "owner@otomat.local"
CUSTOMER_EMAIL = "demo@otomat.local"
DEMO_BOT = "demo_greeter_bot"


def _credentials_file() -> Path:
    return Path(settings.DATA_DIR) / "demo-credentials.json"


def _load_credentials() -> dict:
    path = _credentials_file()
    if path.exists():
        return json.loads(path.read_text())
    creds = {
        "owner_password": "owner-" + secrets.token_urlsafe(9),
        "customer_password": "demo-" + secrets.token_urlsafe(9),
    }
    path.touch(mode=0o600)
    path.write_text(json.dumps(creds, indent=2))
    return creds


def _bots(client: httpx.Client) -> list[dict]:
    payload = client.get("/control/bots").json()
    return payload if isinstance(payload, list) else payload.get("bots", [])


def _emulator_bot(emulator_url: str, username: str, first_name: str) -> str | None:
    """Create (once) the bot ``username`` in the emulator and return its token; None if the
    emulator is unreachable."""
    try:
        with httpx.Client(base_url=emulator_url, timeout=5) as client:
            for bot in _bots(client):
                if bot.get("username") == username:
                    return bot.get("token")
            response = client.post(
                "/control/bots", json={"username": username, "first_name": first_name}
            )
            response.raise_for_status()
            return response.json()["token"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def ensure_demo_bot(emulator_url: str) -> str | None:
    """The bot whose token the demo customer pastes in the install form."""
    return _emulator_bot(emulator_url, DEMO_BOT, "Demo Greeter")


def ensure_demo_data(emulator_url: str | None = None) -> list[str]:
    from otomat.accounts.models import User
    from otomat.accounts.services import create_owner, sign_up
    from otomat.catalog.services import import_builtin_products

    creds = _load_credentials()
    lines: list[str] = []
    owner = User.objects.filter(email=OWNER_EMAIL).first()
    if owner is None:
        create_owner(email=OWNER_EMAIL, password=creds["owner_password"])
    if not User.objects.filter(email=CUSTOMER_EMAIL).exists():
        sign_up(
            email=CUSTOMER_EMAIL,
            password=creds["customer_password"],
            full_name="Dewi Demo",
            account_name="Demo Customer",
        )
    for version in import_builtin_products(actor=None):
        lines.append(f"Imported product {version.product.slug} {version.version}")
    customer = User.objects.get(email=CUSTOMER_EMAIL)
    if customer.account.currency != "IDR" and not customer.account.invoices.exists():
        customer.account.currency = "IDR"  # Dewi pays in rupiah: the plans she sees are in IDR
        customer.account.save(update_fields=["currency"])
    ensure_demo_billing()
    ensure_demo_support()
    ensure_demo_projects(owner=User.objects.get(email=OWNER_EMAIL), customer=customer)
    lines.append(f"Owner:    {OWNER_EMAIL} / {creds['owner_password']}")
    lines.append(f"Customer: {CUSTOMER_EMAIL} / {creds['customer_password']}")
    if emulator_url:
        token = ensure_demo_bot(emulator_url)
        if token:
            lines.append(f"Demo bot token (paste it in the install form): {token}")
    return lines


def ensure_demo_projects(*, owner, customer) -> None:
    """The software house's pipeline (idempotent): estimator options, the owner's meeting type
    and hours, contract templates and offers, and a project board for the demo customer."""
    from otomat.projects import demo as estimator_demo
    from otomat.projects.board import demo as board_demo
    from otomat.projects.booking import demo as booking_demo
    from otomat.projects.offers import demo as offers_demo

    estimator_demo.seed_demo()
    booking_demo.seed_demo(owner)
    offers_demo.seed_demo(customer.account)
    board_demo.seed_demo(CUSTOMER_EMAIL)


DEMO_OWNER_BOT = "demo_owner_bot"
FAKEPAY_PORT_DEFAULT = 8091


def ensure_owner_bot(emulator_url: str) -> str | None:
    """The owner's Telegram bot in the emulator (billing notices go through it); its token."""
    return _emulator_bot(emulator_url, DEMO_OWNER_BOT, "Otomat Notices")


def ensure_demo_billing(*, fakepay_port: int | None = None) -> None:
    """Seller details, taxes, a dunning policy, plans for the paid products, a coupon, and the
    payment methods (manual transfer; the gateways pointed at ``otomat fakepay`` when a port is
    given). Idempotent: what the owner has changed is left alone."""
    from decimal import Decimal

    from otomat.billing.gateways.fakes.serve import FAKES, demo_settings
    from otomat.billing.models import (
        BillingSettings,
        Coupon,
        DunningPolicy,
        GatewayConfig,
        Plan,
        TaxRate,
    )
    from otomat.catalog.models import Product

    config = BillingSettings.get()
    if config.seller_name == "Otomat seller":
        config.seller_name = "Demo Bot Studio"
        config.seller_address = "Jl. Contoh No. 1\nJakarta 10110\nIndonesia"
        config.seller_tax_id = "01.234.567.8-901.000"
        config.seller_email = "billing@otomat.local"
        config.bank_transfer_instructions = (
            "Bank BCA 123-456-7890, a.n. Demo Bot Studio\n"
            "mBank PL61 1090 1014 0000 0712 1981 2874 (PLN)"
        )
        config.save()
    ppn, _ = TaxRate.objects.get_or_create(
        name="PPN 11%", defaults={"rate_percent": Decimal(11), "inclusive": True}
    )
    vat, _ = TaxRate.objects.get_or_create(
        name="VAT 23%", defaults={"rate_percent": Decimal(23), "inclusive": False}
    )
    policy = DunningPolicy.default()
    plans = {
        "movie-search": [
            ("monthly-idr", "Monthly", "IDR", 99_000, 1, 50_000, 7, ppn),
            ("yearly-idr", "Yearly", "IDR", 990_000, 12, 0, 7, ppn),
            ("monthly-pln", "Miesięczny", "PLN", 3_900, 1, 0, 7, vat),
            ("monthly-usd", "Monthly", "USD", 900, 1, 0, 7, None),
        ],
        "alert-bot": [
            ("monthly-idr", "Monthly", "IDR", 49_000, 1, 0, 0, ppn),
            ("quarterly-idr", "Quarterly", "IDR", 135_000, 3, 0, 0, ppn),
            ("monthly-pln", "Miesięczny", "PLN", 1_999, 1, 0, 0, vat),
            ("monthly-eur", "Monthly", "EUR", 499, 1, 0, 0, None),
        ],
    }
    for slug, rows in plans.items():
        product = Product.objects.filter(slug=slug).first()
        if product is None or product.plans.exists():
            continue
        for position, (code, name, cur, price, months, setup, trial, tax) in enumerate(rows):
            Plan.objects.create(
                product=product,
                code=code,
                name=name,
                currency=cur,
                price_minor=price,
                period_months=months,
                setup_fee_minor=setup,
                trial_days=trial,
                tax_rate=tax,
                dunning_policy=policy,
                position=position,
            )
    Coupon.objects.get_or_create(code="HEMAT20", defaults={"percent_off": Decimal(20)})
    GatewayConfig.objects.get_or_create(code="manual", defaults={"enabled": True})
    if fakepay_port:
        for position, code in enumerate(FAKES, start=1):
            gateway = demo_settings(code, fakepay_port)
            GatewayConfig.objects.get_or_create(
                code=code,
                defaults={
                    "enabled": True,
                    "credentials": gateway["credentials"],
                    "api_base": gateway["api_base"],
                    "position": position,
                },
            )


DEMO_MOVIES_BOT = "demo_movies_bot"


def ensure_demo_instances(emulator_url: str) -> list[str]:
    """Install (once) a Movie Search Bot for the demo customer, indexing the demo film blog this
    installation serves, so there is something to talk to at once. Call it when the web server
    answers (the bot indexes the blog when it starts)."""
    from otomat.accounts.models import User
    from otomat.catalog.errors import CatalogError
    from otomat.catalog.models import Product
    from otomat.instances.models import Instance
    from otomat.instances.services import InstanceError, install_instance

    customer = User.objects.filter(email=CUSTOMER_EMAIL).first()
    product = Product.objects.filter(slug="movie-search").first()
    version = product.latest_version() if product else None
    if customer is None or version is None:
        return []
    line = f"Demo Movie Search Bot: @{DEMO_MOVIES_BOT} in the emulator — try /search matrix"
    if Instance.objects.filter(account=customer.account, version__product=product).exists():
        return [line]
    token = _emulator_bot(emulator_url, DEMO_MOVIES_BOT, "Demo Films")
    if token is None:
        return []
    from otomat.billing.invoicing import BillingError
    from otomat.billing.subscriptions import place_order, plans_for

    config = {
        "bot_token": token,
        "sites": [f"{settings.BASE_URL}/demo/blog/"],
        "auto_delete_minutes": 10,
    }
    plans = [p for p in plans_for(product, customer.account) if p.trial_days]
    try:
        if plans:  # sold by subscription: the demo customer is on a trial
            place_order(
                account=customer.account,
                version=version,
                plan=plans[0],
                name="Demo films",
                config=config,
                actor=customer,
            )
        else:
            install_instance(
                account=customer.account,
                version=version,
                name="Demo films",
                config=config,
                actor=customer,
            )
    except (InstanceError, CatalogError, BillingError):
        return []
    _open_demo_ticket(customer, product)
    return [line]


def _open_demo_ticket(customer, product) -> None:
    """A change request from the demo customer about her new bot, so the support desk has a
    ticket waiting on the owner, with its SLA clock and the plan's revision quota."""
    from otomat.instances.models import Instance
    from otomat.support.models import Ticket
    from otomat.support.tickets import TicketError, open_ticket

    instance = Instance.objects.filter(account=customer.account, version__product=product).first()
    with contextlib.suppress(TicketError):  # the demo runs without it
        open_ticket(
            account=customer.account,
            requester=customer,
            subject="Can the bot also search films by year?",
            body="Hi! Our members often ask for films of one year, e.g. /search 1999. "
            "Could the bot understand that?",
            instance=instance,
            kind=Ticket.Kind.CHANGE,
        )


def ensure_demo_support() -> None:
    """A support department (Jakarta hours, Indonesian holidays), SLA policies, support terms
    for the demo plans, the out-of-scope reply and a few knowledge-base articles. Idempotent."""
    from otomat.billing.models import Plan
    from otomat.support.models import (
        Article,
        CannedReply,
        Department,
        KbCategory,
        SlaPolicy,
        SupportTerms,
    )

    Department.objects.get_or_create(
        slug="support",
        defaults={
            "name": "Support",
            "hours": {"mon-fri": "09:00-17:00", "sat": "09:00-12:00"},
            "timezone": "Asia/Jakarta",
            "holiday_country": "ID",
            "is_default": True,
        },
    )
    for priority, first, resolution in (
        ("low", 16 * 60, 5 * 8 * 60),
        ("normal", 8 * 60, 3 * 8 * 60),
        ("high", 2 * 60, 8 * 60),
        ("urgent", 30, 4 * 60),
    ):
        SlaPolicy.objects.get_or_create(
            plan=None,
            priority=priority,
            defaults={
                "name": f"Standard ({priority})",
                "first_response_minutes": first,
                "next_response_minutes": first,
                "resolution_minutes": resolution,
            },
        )
    for plan in Plan.objects.all():
        yearly = plan.period_months == 12
        SupportTerms.objects.get_or_create(
            plan=plan,
            defaults={
                "free_support_days": 365 if yearly else 30,
                "revision_quota": 5 if yearly else 3,
                "included_minutes": 120 if yearly else 30,
                "hourly_rate_minor": {"IDR": 250_000, "PLN": 15_000}.get(plan.currency, 4_000),
            },
        )
    CannedReply.objects.get_or_create(
        title="Out of scope (Bahasa Indonesia)",
        defaults={
            "out_of_scope": True,
            "body": (
                "Halo {customer_name},\n\nSesuai paket yang Anda ambil, Anda mendapat "
                "{revisions_included}x revisi gratis: {revisions_used} sudah terpakai, sisa "
                "{revisions_left}. Permintaan ini di luar cakupan paket, jadi dikenai biaya sesuai "
                "tingkat kesulitan dan lama pengerjaan. Permintaan ini bisa kami penuhi dalam "
                "waktu {quote_days} hari dengan biaya {quote_price}. Silakan terima penawaran di "
                "tiket {ticket}; pekerjaan dimulai setelah dibayar."
            ),
        },
    )
    CannedReply.objects.get_or_create(
        title="Out of scope (English)",
        defaults={
            "out_of_scope": True,
            "body": (
                "Hello {customer_name},\n\nYour plan includes {revisions_included} changes "
                "({revisions_used} used, {revisions_left} left) and free support until "
                "{support_until}. We can do this "
                "in {quote_days} days for {quote_price}: accept the quote on {ticket} and we start "
                "as soon as it is paid."
            ),
        },
    )
    CannedReply.objects.get_or_create(
        title="Restart after settings",
        defaults={
            "body": "Hello {customer_name}, please restart {instance} from its page and try again."
        },
    )
    start, _ = KbCategory.objects.get_or_create(
        slug="getting-started", defaults={"name": "Getting started"}
    )
    billing, _ = KbCategory.objects.get_or_create(slug="billing", defaults={"name": "Billing"})
    # Each article in en, id and pl, one translation group per topic (the English slug); the
    # English ones keep their first slugs, so a second run (or an older demo database) only
    # adds what is missing.
    articles = [
        (
            start,
            "bot-token",
            {
                "en": (
                    "Where do I get a bot token?",
                    "Open @BotFather in Telegram, send /newbot and follow the questions. It "
                    "answers with a token like 123456789:AA…; paste it into the install form. "
                    "Keep it secret.",
                ),
                "id": (
                    "Dari mana saya mendapatkan token bot?",
                    "Buka @BotFather di Telegram, kirim /newbot dan jawab pertanyaannya. Ia "
                    "membalas dengan token seperti 123456789:AA…; tempelkan ke formulir "
                    "pemasangan. Rahasiakan token itu.",
                ),
                "pl": (
                    "Skąd wziąć token bota?",
                    "Otwórz @BotFather w Telegramie, wyślij /newbot i odpowiedz na pytania. "
                    "Odpowie tokenem w rodzaju 123456789:AA…; wklej go do formularza "
                    "instalacji. Zachowaj go w tajemnicy.",
                ),
            },
        ),
        (
            start,
            "bot-does-not-answer",
            {
                "en": (
                    "My bot does not answer",
                    "1. Open the instance page: is it Running?\n2. If it is Suspended, an "
                    "invoice is unpaid: pay it and the bot runs again within seconds.\n3. Check "
                    "the token in Settings; a token revoked in @BotFather stops the bot.\n4. "
                    "Look at the recent logs on the same page.",
                ),
                "id": (
                    "Bot saya tidak menjawab",
                    "1. Buka halaman instance: apakah statusnya Berjalan?\n2. Jika Ditangguhkan, "
                    "ada tagihan yang belum dibayar: bayar dan bot berjalan lagi dalam beberapa "
                    "detik.\n3. Periksa token di Pengaturan; token yang dicabut di @BotFather "
                    "menghentikan bot.\n4. Lihat log terbaru di halaman yang sama.",
                ),
                "pl": (
                    "Mój bot nie odpowiada",
                    "1. Otwórz stronę instancji: czy jest Uruchomiona?\n2. Jeśli jest "
                    "Zawieszona, faktura jest nieopłacona: zapłać ją, a bot ruszy w ciągu kilku "
                    "sekund.\n3. Sprawdź token w Ustawieniach; token unieważniony w @BotFather "
                    "zatrzymuje bota.\n4. Przejrzyj najnowsze logi na tej samej stronie.",
                ),
            },
        ),
        (
            billing,
            "why-suspended",
            {
                "en": (
                    "Why was my bot suspended?",
                    "A bot is suspended when its invoice stays unpaid some days after the due "
                    "date. Its data is kept. Pay the invoice from the link in the notice or on "
                    "the instance page and it starts again at once.",
                ),
                "id": (
                    "Mengapa bot saya ditangguhkan?",
                    "Bot ditangguhkan jika tagihannya belum dibayar beberapa hari setelah jatuh "
                    "tempo. Datanya tetap disimpan. Bayar tagihan lewat tautan di pemberitahuan "
                    "atau di halaman instance dan bot langsung berjalan lagi.",
                ),
                "pl": (
                    "Dlaczego mój bot został zawieszony?",
                    "Bot zostaje zawieszony, gdy faktura pozostaje nieopłacona kilka dni po "
                    "terminie. Jego dane są zachowane. Zapłać fakturę z linku w powiadomieniu "
                    "lub na stronie instancji, a bot od razu ruszy ponownie.",
                ),
            },
        ),
        (
            billing,
            "revisions-and-paid-support",
            {
                "en": (
                    "How do revisions and paid support work?",
                    "Each plan includes free support for a period after purchase and a number "
                    "of change requests (revisions). Both are shown on every ticket. Beyond "
                    "them we send a quote with a price and the days of work; accept and pay it "
                    "on the ticket and the work starts.",
                ),
                "id": (
                    "Bagaimana revisi dan dukungan berbayar bekerja?",
                    "Setiap paket mencakup dukungan gratis selama suatu periode setelah "
                    "pembelian dan sejumlah permintaan perubahan (revisi). Keduanya terlihat di "
                    "setiap tiket. Di luar itu kami mengirim penawaran dengan harga dan lama "
                    "pengerjaan; setujui dan bayar di tiket, lalu pekerjaan dimulai.",
                ),
                "pl": (
                    "Jak działają poprawki i płatne wsparcie?",
                    "Każdy plan obejmuje bezpłatne wsparcie przez pewien czas po zakupie i "
                    "pewną liczbę próśb o zmiany (poprawek). Oba limity widać w każdym "
                    "zgłoszeniu. Ponad nie wysyłamy wycenę z ceną i czasem pracy; zaakceptuj ją "
                    "i opłać w zgłoszeniu, a praca się zacznie.",
                ),
            },
        ),
    ]
    from django.utils import timezone

    for category, key, texts in articles:
        for language, (title, body) in texts.items():
            slug = key if language == "en" else f"{key}-{language}"
            article, created = Article.objects.get_or_create(
                slug=slug,
                defaults={
                    "category": category,
                    "title": title,
                    "body": body,
                    "language": language,
                    "translation_key": key,
                    "status": Article.Status.PUBLISHED,
                    "updated_at": timezone.now(),
                },
            )
            if not created and not article.translation_key:
                # A demo database from before articles had languages: join the group.
                Article.objects.filter(pk=article.pk).update(translation_key=key)
