"""The owner's dashboard figures: MRR counts what is paid for (per currency, a yearly plan as
1/12, never a trial), the chart's current point says the same as the MRR card, and overdue
amounts fall in the right age bucket."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from otomat.accounts.services import sign_up
from otomat.billing import reports
from otomat.billing.models import Plan, Subscription
from otomat.billing.money import Money
from otomat.billing.tests.conftest import T0, pay

DAY = timedelta(days=1)
IDR = lambda minor: Money(minor, "IDR")  # noqa: E731


@pytest.fixture
def book(cast, greeter, plan, policy, vat_pl, order):
    """Alice pays Basic (IDR 150,000 a month) and Charlie a yearly PLN 120.00 plan at T0;
    Dewi starts a 30-day trial of a IDR 990,000 plan at T0."""
    yearly = Plan.objects.create(
        product=greeter.product,
        code="yearly-pl",
        name="Yearly",
        currency="PLN",
        price_minor=120_00,
        period_months=12,
        tax_rate=vat_pl,
        dunning_policy=policy,
    )
    trial = Plan.objects.create(
        product=greeter.product,
        code="big",
        name="Big",
        currency="IDR",
        price_minor=990_000,
        period_months=1,
        trial_days=30,
        dunning_policy=policy,
    )
    dewi = sign_up(
        email="dewi@example.com", password=cast.password, full_name="Dewi", account_name="Dewi"
    )
    with time_machine.travel(T0, tick=False):
        for user, plan_ in ((cast.alice, plan), (cast.charlie, yearly)):
            _, invoice = order(user=user, plan_=plan_, name=user.email)
            pay(invoice, at=T0)
        _, nothing_due = order(user=dewi, plan_=trial, name="Dewi's trial")
    assert nothing_due is None or nothing_due.amount_due.amount_minor == 0
    statuses = sorted(Subscription.objects.values_list("status", flat=True))
    assert statuses == ["active", "active", "trialing"]


def test_mrr_counts_paid_subscriptions_per_currency_and_no_trial(book):
    assert reports.mrr() == {"IDR": IDR(150_000), "PLN": Money(10_00, "PLN")}
    counts = reports.counts(T0 + DAY)
    assert (counts["active"], counts["trialing"]) == (2, 1)


def test_the_chart_agrees_with_the_card_and_leaves_trials_out_of_the_past(book):
    now = T0 + 25 * DAY  # 4 February: the trial runs until 9 February
    labels, series = reports.mrr_history(now, months=3)
    assert labels == ["2025-12", "2026-01", "2026-02"]
    # End of December: nothing yet. End of January: Alice only (Dewi was in her trial).
    # Now: the same figure as the MRR card.
    assert series["IDR"] == [IDR(0), IDR(150_000), reports.mrr()["IDR"]]
    assert series["IDR"][-1] == IDR(150_000)
    assert series["PLN"] == [Money(0, "PLN"), Money(10_00, "PLN"), Money(10_00, "PLN")]


def test_a_suspended_subscription_leaves_the_current_figure(book, cast):
    Subscription.objects.filter(account=cast.alice.account).update(
        status=Subscription.Status.SUSPENDED
    )
    _, series = reports.mrr_history(T0 + 25 * DAY, months=2)
    assert series["IDR"][-1] == IDR(0) and "IDR" not in reports.mrr()


def test_churn_counts_paying_subscriptions_that_ended(book, cast):
    now = T0 + 25 * DAY
    Subscription.objects.filter(account=cast.alice.account).update(
        status=Subscription.Status.CANCELED, ended_at=T0 + 22 * DAY
    )
    # A trial that ends without paying is not churn of paying customers.
    Subscription.objects.filter(status=Subscription.Status.TRIALING).update(
        status=Subscription.Status.CANCELED, ended_at=T0 + 23 * DAY
    )
    labels, values = reports.churn(now, months=2)
    assert labels == ["2026-01", "2026-02"]
    assert values[0] == 0  # nobody was paying on 1 January
    assert str(values[1]) == "50.0"  # Alice of the two paying on 1 February


def test_overdue_amounts_fall_in_their_age_bucket(order, cast):
    with time_machine.travel(T0, tick=False):
        _, invoice = order()
    ten_days_late = invoice.due_at + 10 * DAY
    figures = reports.overdue(ten_days_late)
    assert figures == {
        "IDR": {
            "1-7": IDR(0),
            "8-30": invoice.amount_due,
            "31+": IDR(0),
            "total": invoice.amount_due,
        }
    }
    assert reports.overdue(invoice.due_at - DAY) == {}


def test_the_dashboards_charts_follow_the_figures_and_the_readers_language(book, client, cast):
    """The charts are drawn once per computation of the figures and language: another language
    gets its own, and a payment (which drops the figures) draws them again."""
    from django.core.cache import caches

    caches["shared"].clear()
    client.force_login(cast.owner)
    english = client.get("/billing/manage/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "values from" in english and "MRR (IDR)" in english
    client.post("/i18n/setlang/", {"language": "pl", "next": "/"})
    polish = client.get("/billing/manage/").content.decode()
    assert "wartości od" in polish and "values from" not in polish
    before = reports.dashboard_figures(T0)["version"]
    caches["shared"].delete(reports.DASHBOARD_CACHE_KEY)  # as any billing save does
    assert reports.dashboard_figures(T0)["version"] != before
