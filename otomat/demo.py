"""Demo data for the main command: an owner, a customer, the first-party products and a bot in the
emulator to install. Idempotent: passwords are generated once and kept in DATA_DIR."""

from __future__ import annotations

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


def ensure_demo_bot(emulator_url: str) -> str | None:
    """Create (once) a bot in the emulator and return its token; None if it is unreachable."""
    try:
        with httpx.Client(base_url=emulator_url, timeout=5) as client:
            for bot in _bots(client):
                if bot.get("username") == DEMO_BOT:
                    return bot.get("token")
            response = client.post(
                "/control/bots", json={"username": DEMO_BOT, "first_name": "Demo Greeter"}
            )
            response.raise_for_status()
            return response.json()["token"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None


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
    lines.append(f"Owner:    {OWNER_EMAIL} / {creds['owner_password']}")
    lines.append(f"Customer: {CUSTOMER_EMAIL} / {creds['customer_password']}")
    if emulator_url:
        token = ensure_demo_bot(emulator_url)
        if token:
            lines.append(f"Demo bot token (paste it in the install form): {token}")
    return lines


DEMO_OWNER_BOT = "demo_owner_bot"
FAKEPAY_PORT_DEFAULT = 8091


def ensure_owner_bot(emulator_url: str) -> str | None:
    """The owner's Telegram bot in the emulator (billing notices go through it); its token."""
    try:
        with httpx.Client(base_url=emulator_url, timeout=5) as client:
            for bot in _bots(client):
                if bot.get("username") == DEMO_OWNER_BOT:
                    return bot.get("token")
            response = client.post(
                "/control/bots", json={"username": DEMO_OWNER_BOT, "first_name": "Otomat Notices"}
            )
            response.raise_for_status()
            return response.json()["token"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None


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
    try:
        with httpx.Client(base_url=emulator_url, timeout=5) as client:
            token = next(
                (b.get("token") for b in _bots(client) if b.get("username") == DEMO_MOVIES_BOT),
                None,
            )
            if token is None:
                response = client.post(
                    "/control/bots", json={"username": DEMO_MOVIES_BOT, "first_name": "Demo Films"}
                )
                response.raise_for_status()
                token = response.json()["token"]
    except (httpx.HTTPError, ValueError, KeyError):
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
    return [line]
