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
    lines.append(f"Owner:    {OWNER_EMAIL} / {creds['owner_password']}")
    lines.append(f"Customer: {CUSTOMER_EMAIL} / {creds['customer_password']}")
    if emulator_url:
        token = ensure_demo_bot(emulator_url)
        if token:
            lines.append(f"Demo bot token (paste it in the install form): {token}")
    return lines


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
    try:
        install_instance(
            account=customer.account,
            version=version,
            name="Demo films",
            config={
                "bot_token": token,
                "sites": [f"{settings.BASE_URL}/demo/blog/"],
                "auto_delete_minutes": 10,
            },
            actor=customer,
        )
    except (InstanceError, CatalogError):
        return []
    return [line]
