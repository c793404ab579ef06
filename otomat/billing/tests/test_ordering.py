"""One ordering service (``otomat.billing.ordering.order_product``) behind the order form and
the API's ``POST /instances``: both go through it; a free product is installed and started, one
sold by subscription is ordered with its invoice to pay; a refused order stores nothing."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from otomat.accounts.models import ApiToken
from otomat.billing import ordering
from otomat.billing.invoicing import BillingError
from otomat.billing.models import Invoice, Plan, Subscription
from otomat.billing.tests.conftest import GREETER_CONFIG
from otomat.catalog.checks import CHECKS
from otomat.catalog.schema_form import ConfigError
from otomat.instances.models import Instance
from otomat.instances.services import InstanceError
from otomat.testing.forms import greeter_install_form


@pytest.fixture(autouse=True)
def _token_check(monkeypatch):
    monkeypatch.setitem(CHECKS, "telegram_token", lambda value: "@greeter_bot")


@pytest.fixture
def spy(monkeypatch):
    """The calls of the two ways the service ends: place_order and install_instance."""
    calls: list[str] = []
    for name in ("place_order", "install_instance"):
        real = getattr(ordering, name)

        def recording(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(ordering, name, recording)
    return calls


def api_post(client, user, body: dict):
    _, token = ApiToken.issue(user, "tests")
    return client.post(
        "/api/v1/instances",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_the_form_and_the_api_order_through_the_one_service(client, cast, plan, spy):
    client.force_login(cast.alice)
    form = greeter_install_form(GREETER_CONFIG["bot_token"], plan=str(plan.pk))
    response = client.post(reverse("instances:install", args=["greeter"]), form)
    assert response.status_code == 302
    order_invoice = Invoice.objects.get()
    assert response["Location"] == reverse("billing:pay", args=[order_invoice.token])
    body = {
        "product": "greeter",
        "name": "via api",
        "plan": plan.code,
        "config": {**GREETER_CONFIG, "bot_token": "654321:" + "B" * 35},
    }
    answer = api_post(client, cast.bob, body)
    assert answer.status_code == 201, answer.content
    api_invoice = Invoice.objects.exclude(pk=order_invoice.pk).get()
    assert answer.json()["invoice_id"] == api_invoice.id
    assert answer.json()["pay_url"].endswith(reverse("billing:pay", args=[api_invoice.token]))
    assert spy == ["place_order", "place_order"]


def test_a_free_product_is_installed_through_the_service_by_both(client, cast, greeter, spy):
    client.force_login(cast.alice)
    form = greeter_install_form(GREETER_CONFIG["bot_token"])
    response = client.post(reverse("instances:install", args=["greeter"]), form)
    instance = Instance.objects.get()
    assert response["Location"] == reverse("instances:detail", args=[instance.id])
    body = {"product": "greeter", "config": {**GREETER_CONFIG, "bot_token": "654321:" + "B" * 35}}
    assert api_post(client, cast.bob, body).status_code == 201
    assert spy == ["install_instance", "install_instance"]
    assert not Invoice.objects.exists()
    assert set(Instance.objects.values_list("state", flat=True)) == {Instance.State.PROVISIONING}


def test_an_order_on_a_plan_has_its_invoice_to_pay(cast, greeter, plan):
    order = ordering.order_product(
        account=cast.alice.account,
        version=greeter,
        plan=plan,
        name="",
        config=GREETER_CONFIG,
        actor=cast.alice,
    )
    assert order.instance.state == Instance.State.PENDING
    assert order.invoice.kind == Invoice.Kind.ORDER and order.to_pay == order.invoice
    assert Subscription.objects.get().instance == order.instance


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("bad config", ConfigError),
        ("no plan for a product sold by subscription", InstanceError),
        ("a plan no longer offered", BillingError),
        ("an unknown coupon", BillingError),
    ],
)
def test_a_refused_order_stores_nothing(cast, greeter, plan, case, error):
    kwargs = {
        "account": cast.alice.account,
        "version": greeter,
        "plan": plan,
        "name": "",
        "config": GREETER_CONFIG,
        "actor": cast.alice,
    }
    if case == "bad config":
        kwargs["config"] = {"bot_token": "not a token"}
    elif case.startswith("no plan"):
        kwargs["plan"] = None
    elif case.startswith("a plan no"):
        Plan.objects.filter(pk=plan.pk).update(is_active=False)
        plan.refresh_from_db()
    else:
        kwargs["coupon_code"] = "NO-SUCH-COUPON"
    with pytest.raises(error):
        ordering.order_product(**kwargs)
    assert not Instance.objects.exists()
    assert not Subscription.objects.exists() and not Invoice.objects.exists()
