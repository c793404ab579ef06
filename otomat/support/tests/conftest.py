"""Support fixtures: a department open Mon–Fri 09:00–17:00 in Jakarta with Indonesian public
holidays, an SLA policy, support terms on a plan, and installed instances for the cast."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from otomat.billing.tests.conftest import greeter_config

# Thursday 13 August 2026, 09:00 in Jakarta (02:00 UTC); Monday 17 August is Independence Day.
T0 = datetime(2026, 8, 13, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _immediate_tasks(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture
def department(db):
    from otomat.support.models import Department

    return Department.objects.create(
        name="Support",
        slug="support",
        hours={"mon-fri": "09:00-17:00"},
        timezone="Asia/Jakarta",
        holiday_country="ID",
        is_default=True,
    )


@pytest.fixture
def sla_policy(db):
    from otomat.support.models import SlaPolicy

    return SlaPolicy.objects.create(
        name="Normal",
        priority="normal",
        first_response_minutes=8 * 60,  # one business day
        next_response_minutes=8 * 60,
        resolution_minutes=24 * 60,  # three business days
        warn_percent=75,
        escalate_percent=90,
    )


@pytest.fixture
def terms(plan):
    from otomat.support.models import SupportTerms

    return SupportTerms.objects.create(
        plan=plan,
        free_support_days=30,
        revision_quota=3,
        included_minutes=0,
        hourly_rate_minor=250_000,
    )


@pytest.fixture
def installed(cast, greeter, plan, terms):
    """install(user) → a running, paid instance on the basic plan (bought at T0)."""
    from otomat.billing.subscriptions import place_order
    from otomat.billing.tests.conftest import pay

    def install(user=None, name="Bot"):
        user = user or cast.alice
        with time_machine.travel(T0, tick=False):
            instance, invoice = place_order(
                account=user.account,
                version=greeter,
                plan=plan,
                name=name,
                config=greeter_config(),
                actor=user,
            )
            pay(invoice)
        instance.refresh_from_db()
        return instance

    return install
