"""Billing fixtures: the Greeter product with plans in IDR and PLN, the standard dunning policy,
Indonesian and Polish VAT, and helpers to order, pay and move time."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
import time_machine

from otomat.billing.models import GatewayConfig, Plan

T0 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
GREETER_CONFIG = {
    "bot_token": "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi",
    "welcome_text": "Hello {name}",
    "language": "en",
    "max_daily_greetings": 50,
    "reply_delay_seconds": 0,
}
_bot_ids = itertools.count(700001)


def greeter_config() -> dict:
    """GREETER_CONFIG with a token of a bot of its own: a bot serves one live instance."""
    return {**GREETER_CONFIG, "bot_token": f"{next(_bot_ids)}:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi"}


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Counters kept in the cache (the callback throttle) start at zero in every test, and the
    dashboard's figures (the cache shared by processes) are computed afresh."""
    from django.core.cache import cache, caches

    cache.clear()
    caches["shared"].clear()
    yield
    cache.clear()
    caches["shared"].clear()


@pytest.fixture(autouse=True)
def _immediate_tasks(settings):
    """Tasks enqueued by billing (notification delivery) run at once in tests."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture
def pro_plan(greeter, policy, ppn):
    return Plan.objects.create(
        product=greeter.product,
        code="pro",
        name="Pro",
        currency="IDR",
        price_minor=300_000,
        period_months=1,
        tax_rate=ppn,
        dunning_policy=policy,
    )


@pytest.fixture
def order(cast, greeter, plan):
    """order(**kw) places an order for alice on the basic plan at T0 unless told otherwise."""
    from otomat.billing.subscriptions import place_order

    def make(*, user=None, plan_=None, now=T0, coupon="", name="Alice's greeter"):
        user = user or cast.alice
        with time_machine.travel(now, tick=False):
            return place_order(
                account=user.account,
                version=greeter,
                plan=plan_ or plan,
                name=name,
                config=greeter_config(),
                actor=user,
                coupon_code=coupon,
                now=now,
            )

    return make


def plan_in(greeter, policy, currency: str, price_minor: int, *, code: str, name: str) -> Plan:
    """A plan of the greeter in ``currency`` at ``price_minor`` (minor units), for the payment
    tests that need a price a gateway takes."""
    return Plan.objects.create(
        product=greeter.product,
        code=code,
        name=name,
        currency=currency,
        price_minor=price_minor,
        dunning_policy=policy,
    )


def enable_gateway(code: str, fake) -> GatewayConfig:
    """Turn on the ``code`` payment method, talking to the local ``fake`` provider."""
    settings_ = fake.gateway_settings()
    return GatewayConfig.objects.create(
        code=code,
        enabled=True,
        credentials=settings_["credentials"],
        api_base=settings_["api_base"],
    )


def pay(invoice, *, at=None, reference=None, amount=None):
    """Record a bank transfer for what is due on ``invoice`` (as staff would)."""
    from django.test import TestCase

    from otomat.billing.payments import record_payment

    invoice.refresh_from_db()
    # Tests run inside a transaction: run the after-commit work (the immediate follow-up).
    with TestCase.captureOnCommitCallbacks(execute=True):
        return record_payment(
            invoice,
            amount=amount or invoice.amount_due,
            gateway="manual",
            provider_payment_id=reference or f"transfer-{invoice.number}",
            actor_label="test",
            now=at,
        )
