"""The event lines the main command's console shows: one per notable event, and nothing for the
routine saves in between."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from otomat.billing.invoicing import LineSpec, issue_invoice
from otomat.billing.models import Invoice
from otomat.billing.money import Money
from otomat.billing.payments import record_payment
from otomat.instances import services
from otomat.runtime.backends.base import ActualState, Phase
from otomat.runtime.observe import record_observation

TOKEN = "123456:" + "C" * 35


@pytest.fixture
def events(caplog):
    caplog.set_level(logging.INFO, logger="otomat.events")

    def lines() -> list[str]:
        found = [r.getMessage() for r in caplog.records if r.name == "otomat.events"]
        caplog.clear()
        return found

    return lines


def test_an_instance_says_when_it_runs_stops_and_is_removed(cast, greeter, events):
    instance = services.create_instance(
        account=cast.alice.account,
        version=greeter,
        name="shop bot",
        config={"bot_token": TOKEN},
        actor=cast.alice,
    )
    events()
    services.provision_instance(instance, actor=cast.alice, cause="installed")
    assert events() == []  # provisioning is not news; running is
    instance.refresh_from_db()
    record_observation(
        ActualState(
            instance_id=str(instance.id), phase=Phase.RUNNING, generation=instance.generation, pid=7
        )
    )
    assert events() == ['instance "shop bot" (Greeter Bot, Alice\'s Bots) running']
    services.stop_instance(instance, actor=cast.alice)
    assert events() == ['instance "shop bot" (Greeter Bot, Alice\'s Bots) stopped (stopped)']


def test_an_invoice_says_once_when_it_is_paid(cast, events):
    invoice, _ = issue_invoice(
        account=cast.alice.account,
        currency="IDR",
        lines=[LineSpec("x", Money.of("49000", "IDR"))],
        kind=Invoice.Kind.MANUAL,
        due_at=timezone.now() + timedelta(days=7),
        use_credit=False,
        notify=False,
    )
    events()
    half = Money.of("24500", "IDR")
    record_payment(invoice, amount=half, gateway="manual", provider_payment_id="a", actor_label="t")
    assert events() == []
    invoice.refresh_from_db()
    record_payment(invoice, amount=half, gateway="manual", provider_payment_id="b", actor_label="t")
    (line,) = events()
    assert line.startswith(f"invoice {invoice.number} paid: ") and "49,000" in line
    assert line.endswith("by Alice's Bots")


def test_a_sign_up_is_news(db, events):
    from otomat.accounts.services import sign_up

    sign_up(
        email="d@example.com", password="a-long-pass-phrase", full_name="D", account_name="Dewi"
    )
    assert events() == ["new customer account: Dewi"]
