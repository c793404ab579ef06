"""Billing through the REST API: ordering needs a plan and returns the invoice to pay; invoices
are scoped to the token's account; only staff record payments and read billing's log; bad
bodies get clear 4xx errors and change nothing."""

from __future__ import annotations

import json

import pytest

from otomat.accounts.models import ApiToken
from otomat.billing.models import Invoice, Payment
from otomat.billing.tests.conftest import GREETER_CONFIG
from otomat.catalog.checks import CHECKS
from otomat.instances.models import Instance

pytestmark = pytest.mark.smoke


@pytest.fixture
def api(client, cast, monkeypatch):
    monkeypatch.setitem(CHECKS, "telegram_token", lambda value: "@greeter_bot")
    tokens = {
        name: ApiToken.issue(getattr(cast, name), "tests")[1]
        for name in ("alice", "charlie", "staff")
    }

    def call(who: str, method: str, path: str, body=None):
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {tokens[who]}"}
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["content_type"] = "application/json"
        return getattr(client, method)(f"/api/v1{path}", **kwargs)

    return call


def test_ordering_a_subscription_product_needs_a_plan(api, plan):
    body = {"product": "greeter", "name": "api bot", "config": GREETER_CONFIG}
    response = api("alice", "post", "/instances", body)
    assert response.status_code == 400 and "Choose a plan: basic" in response.json()["detail"]
    assert not Instance.objects.exists()
    response = api("alice", "post", "/instances", body | {"plan": "basic", "coupon": "BOGUS"})
    assert response.status_code == 400 and "coupon" in response.json()["detail"]
    assert not Instance.objects.exists()
    response = api("alice", "post", "/instances", body | {"plan": "basic"})
    assert response.status_code == 201, response.content
    order = response.json()
    assert order["state"] == "pending" and order["pay_url"].endswith("/")
    invoice = Invoice.objects.get(pk=order["invoice_id"])
    assert invoice.token in order["pay_url"]
    # Starting it before paying is refused.
    started = api("alice", "post", f"/instances/{order['id']}/actions/start")
    assert started.status_code == 400 and "paid" in started.json()["detail"]


def test_invoices_are_scoped_and_only_staff_record_payments(api, order, cast):
    _instance, invoice = order()
    mine = api("alice", "get", "/billing/invoices").json()
    assert [i["number"] for i in mine] == [invoice.number]
    assert mine[0]["total"] == "200000" and mine[0]["amount_due"] == "200000"
    assert api("charlie", "get", "/billing/invoices").json() == []
    assert api("charlie", "get", f"/billing/invoices/{invoice.id}").status_code == 404
    assert (
        api(
            "charlie", "post", f"/billing/invoices/{invoice.id}/checkout", {"method": "stripe"}
        ).status_code
        == 404
    )
    assert (
        api(
            "alice",
            "post",
            f"/billing/invoices/{invoice.id}/payments",
            {"amount": "200000", "reference": "x"},
        ).status_code
        == 403
    )
    bad = api(
        "staff",
        "post",
        f"/billing/invoices/{invoice.id}/payments",
        {"amount": "2e5", "reference": "x"},
    )
    assert bad.status_code == 400 and not Payment.objects.exists()
    ok = api(
        "staff",
        "post",
        f"/billing/invoices/{invoice.id}/payments",
        {"amount": "200.000", "reference": "BCA-77"},
    )
    assert ok.status_code == 201 and ok.json()["status"] == "paid"
    again = api(
        "staff",
        "post",
        f"/billing/invoices/{invoice.id}/payments",
        {"amount": "200.000", "reference": "BCA-77"},
    )
    assert again.status_code == 200 and Payment.objects.count() == 1
    assert api("alice", "get", "/billing/actions").status_code == 403
    kinds = [a["kind"] for a in api("staff", "get", "/billing/actions").json()]
    assert "paid" in kinds and "invoiced" in kinds
    paid = api("staff", "get", "/billing/actions?kind=paid&limit=1").json()
    assert [a["kind"] for a in paid] == ["paid"]
    assert api("staff", "get", "/billing/actions?kind=bogus").status_code == 400
    assert api("staff", "get", "/billing/actions?limit=0").status_code == 400
    assert api("alice", "get", "/billing/invoices?status=weird").status_code == 400
    for bad_window in ("limit=0", "limit=501", "offset=-1"):
        response = api("alice", "get", f"/billing/invoices?{bad_window}")
        assert response.status_code == 400 and "limit must be 1–500" in response.json()["detail"]
    assert api("alice", "get", "/billing/invoices?status=open&limit=1&offset=5").json() == []
    subs = api("alice", "get", "/billing/subscriptions").json()
    assert len(subs) == 1 and subs[0]["plan"] == "basic"
    plans = api("charlie", "get", "/billing/plans?product=greeter").json()
    assert [(p["code"], p["price"]) for p in plans] == [("basic", "150000")]


def test_checkout_with_an_unknown_method_is_refused(api, order):
    _instance, invoice = order()
    response = api("alice", "post", f"/billing/invoices/{invoice.id}/checkout", {"method": "cash"})
    assert response.status_code == 400 and "not available" in response.json()["detail"]
    response = api(
        "alice",
        "post",
        f"/billing/invoices/{invoice.id}/checkout",
        {"method": "cash", "return_url": "javascript:alert(1)"},
    )
    assert response.status_code == 400
