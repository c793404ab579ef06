"""Offers through the REST API: staff create and list; customers read only their own offers
and contracts (drafts never); bad bodies are 400s that save nothing."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from otomat.accounts.models import ApiToken
from otomat.projects.offers import contracts, services
from otomat.projects.offers.models import Offer

from .conftest import NOW, exact_data


@pytest.fixture
def api(client, cast):
    tokens = {
        name: ApiToken.issue(getattr(cast, name), "tests")[1]
        for name in ("alice", "bob", "charlie", "staff")
    }

    def call(who, method, path, body=None):
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {tokens[who]}"}
        if body is not None:
            kwargs |= {"data": json.dumps(body), "content_type": "application/json"}
        return getattr(client, method)(f"/api/v1/projects/offers{path}", **kwargs)

    return call


BODY = {
    "title": "Shop",
    "currency": "USD",
    "language": "en",
    "valid_until": (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)).isoformat(),
    "lines": [{"title": "Build", "unit_price_minor": 500_00}],
}


def test_staff_create_offers(api, cast, estimate):
    body = {**BODY, "account": cast.alice.account.pk}
    assert api("alice", "post", "/offers", body).status_code == 403
    assert api("staff", "post", "/offers", {**body, "valid_until": "2099-01-01"}).status_code == 400
    assert api("staff", "post", "/offers", {**body, "valid_until": None}).status_code == 400
    assert not Offer.objects.exists()
    created = api("staff", "post", "/offers", body)
    assert created.status_code == 201, created.content
    assert created.json()["status"] == "draft" and created.json()["high_minor"] == 500_00
    from_estimate = api("staff", "post", "/offers", {"estimate": estimate.pk})
    assert from_estimate.status_code == 201
    assert [line["kind"] for line in from_estimate.json()["lines"]] == ["range"] * 3
    assert api("staff", "post", "/offers", {"estimate": 999}).status_code == 400
    assert len(api("staff", "get", "/offers").json()) == 2


def test_customers_read_only_their_own(api, cast):
    offer = services.create_offer(
        exact_data(language="en"), actor=cast.owner, account=cast.alice.account, now=NOW
    )
    assert api("alice", "get", "/offers").json() == []  # a draft is not theirs to read yet
    assert api("alice", "get", f"/offers/{offer.number}").status_code == 404
    services.send_offer(offer, actor=cast.owner, now=NOW)
    listed = api("bob", "get", "/offers").json()
    assert [o["number"] for o in listed] == [offer.number]
    detail = api("alice", "get", f"/offers/{offer.number}").json()
    assert detail["schedule"][0]["amount_minor"] == 540_000 and detail["revision_rounds"] == 3
    assert api("charlie", "get", f"/offers/{offer.number}").status_code == 404
    assert api("charlie", "get", "/offers").json() == []
    contract = services.accept_offer(offer, version=1, actor=cast.alice, now=NOW)
    contracts.sign_contract(
        contract,
        name="Alice Anders",
        consent=True,
        consent_shown=contracts.consent_text("en"),
        document_sha256=contract.document_sha256,
        user=cast.alice,
        now=NOW,
    )
    mine = api("alice", "get", f"/contracts/{contract.number}").json()
    assert mine["status"] == "signed" and mine["intact"] is True
    assert api("charlie", "get", f"/contracts/{contract.number}").status_code == 404
    assert api("charlie", "get", "/contracts").json() == []
    assert api("alice", "get", "/offers?status=bogus").status_code == 400


@pytest.mark.parametrize(
    "changes",
    [
        {"lines": []},
        {"currency": "XYZ"},
        {"lines": [{"title": "Build", "unit_price_minor": -1}]},
        {"lines": [{"title": "Build", "kind": "range", "cost_min_minor": 5, "cost_max_minor": 1}]},
        {"schedule": [{"label": "Deposit", "trigger": "signing", "percent": "30"}]},
        {
            "schedule": [
                {"label": "Deposit", "trigger": "milestone", "milestone": 3, "percent": "100"}
            ]
        },
        {"lead": 999},
    ],
)
def test_bad_bodies_are_refused(api, cast, changes):
    body = {**BODY, "account": cast.alice.account.pk, **changes}
    response = api("staff", "post", "/offers", body)
    assert response.status_code in (400, 422), response.content
    assert not Offer.objects.exists()
