"""A plan's price and terms are what its subscribers bought: once it has one, the plan itself
refuses to change them, whoever saves it (the owner's page shows the reason). Labels, the
"offered" flag, the dunning policy and the tax rate may still change."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from otomat.billing.models import DunningPolicy, Plan, TaxRate

CHANGES = {
    "price_minor": 175_000,
    "setup_fee_minor": 0,
    "trial_days": 14,
    "period_months": 12,
    "currency": "PLN",
}


def stored(plan: Plan) -> tuple:
    return Plan.objects.filter(pk=plan.pk).values_list(*Plan.TERMS).get()


@pytest.mark.parametrize("term", sorted(CHANGES))
def test_a_plan_with_subscribers_refuses_to_change_its_terms(plan, order, term):
    order()
    before = stored(plan)
    setattr(plan, term, CHANGES[term])
    with pytest.raises(ValidationError) as refused:
        plan.save()
    assert "has subscribers" in refused.value.messages[0]
    assert "add a plan and stop offering this one" in refused.value.messages[0]
    with pytest.raises(ValidationError):
        plan.full_clean()
    assert stored(plan) == before


def test_the_product_is_a_term_too(plan, order, cast):
    from otomat.catalog.models import Product

    order()
    plan.product = Product.objects.create(slug="other", name="Other")
    with pytest.raises(ValidationError, match="product"):
        plan.save()


def test_the_refusal_names_every_term_changed(plan, order):
    order()
    plan.price_minor, plan.setup_fee_minor = 1, 2
    with pytest.raises(ValidationError) as refused:
        plan.save()
    assert "its price, setup fee cannot change" in refused.value.messages[0]


def test_an_ended_subscription_still_fixes_the_terms(plan, order):
    from otomat.billing.models import Subscription

    order()
    Subscription.objects.update(status=Subscription.Status.CANCELED)
    plan.price_minor = 1
    with pytest.raises(ValidationError):
        plan.save()


def test_labels_the_offer_policy_and_tax_may_still_change(plan, order):
    order()
    plan.name, plan.code, plan.position, plan.is_active = "Basic (old)", "basic-2025", 9, False
    plan.dunning_policy = DunningPolicy.objects.create(name="Lenient", suspend_after_days=14)
    plan.tax_rate = TaxRate.objects.create(name="PPN 12 %", rate_percent=12, inclusive=True)
    plan.full_clean()
    plan.save()
    plan.refresh_from_db()
    assert (plan.name, plan.is_active, plan.tax_rate.name) == ("Basic (old)", False, "PPN 12 %")


def test_a_plan_without_subscribers_may_change_anything(plan):
    for term, value in CHANGES.items():
        setattr(plan, term, value)
    plan.save()
    plan.refresh_from_db()
    assert (plan.price_minor, plan.currency, plan.period_months) == (175_000, "PLN", 12)


def _plan_form(plan, **changes) -> dict:
    data = {
        "product": plan.product_id,
        "code": plan.code,
        "name": plan.name,
        "currency": plan.currency,
        "period_months": plan.period_months,
        "trial_days": plan.trial_days,
        "tax_rate": plan.tax_rate_id or "",
        "dunning_policy": plan.dunning_policy_id or "",
        "price": str(plan.price.decimal),
        "setup_fee": str(plan.setup_fee.decimal),
        "is_active": "on",
        "position": plan.position,
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("field", "value", "term"),
    [("price", "175000", "price"), ("setup_fee", "0", "setup fee"), ("trial_days", 7, "trial")],
)
def test_the_owners_page_shows_the_refusal_and_changes_nothing(
    client, cast, plan, order, field, value, term
):
    """The owner opened the plan before its first order and saves a new price after it."""
    url = reverse("billing:config_edit", args=["plans", plan.pk])
    client.force_login(cast.owner)
    assert "Fixed: the plan has subscribers." not in client.get(url).content.decode()
    order()
    before = stored(plan)
    response = client.post(url, _plan_form(plan, **{field: value}))
    assert response.status_code == 400
    page = response.content.decode()
    assert "This plan has subscribers" in page and term in page
    assert stored(plan) == before
    # Renaming it on the same page still works.
    response = client.post(url, _plan_form(plan, name="Basic (2025)"))
    assert response.status_code == 302
    plan.refresh_from_db()
    assert plan.name == "Basic (2025)" and stored(plan) == before
    assert "Fixed: the plan has subscribers." in client.get(url).content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_price_change_racing_the_first_order_is_refused(cast, plan, order, monkeypatch):
    """The owner saves a new price while the plan's first order is being placed (real
    concurrency on PostgreSQL and MariaDB): the order holds the plan's row, so the change
    waits, then sees the subscriber and is refused; the order was billed at the stored price."""
    import threading

    from django.db import connection

    from otomat.billing import subscriptions
    from otomat.billing.models import Invoice

    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the concurrency test runs on PostgreSQL/MariaDB")
    locked, release = threading.Event(), threading.Event()
    real_create = subscriptions.create_instance

    def create_then_wait(**kwargs):
        instance = real_create(**kwargs)
        locked.set()  # the plan row is locked by now
        assert release.wait(30)
        return instance

    monkeypatch.setattr(subscriptions, "create_instance", create_then_wait)
    outcome: dict[str, object] = {}

    def place():
        try:
            outcome["order"] = order()
        except Exception as exc:  # shown by the assertion below
            outcome["order"] = exc
        finally:
            connection.close()

    def reprice():
        try:
            fresh = Plan.objects.get(pk=plan.pk)
            fresh.price_minor = 999_000
            release.set()  # let the order finish while this save waits for the row
            fresh.save()
            outcome["reprice"] = "saved"
        except ValidationError as exc:
            outcome["reprice"] = exc
        finally:
            connection.close()

    placing = threading.Thread(target=place)
    placing.start()
    assert locked.wait(30)
    repricing = threading.Thread(target=reprice)
    repricing.start()
    placing.join()
    repricing.join()
    assert isinstance(outcome["order"], tuple), outcome
    assert isinstance(outcome["reprice"], ValidationError), outcome
    assert Plan.objects.get(pk=plan.pk).price_minor == 150_000
    invoice = Invoice.objects.get(kind=Invoice.Kind.ORDER)
    assert invoice.lines.filter(unit_price_minor=150_000).exists()
