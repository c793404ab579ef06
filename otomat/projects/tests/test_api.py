"""The REST API of leads and the estimator: the public range computation and options (no
token), and leads for staff (list with filters, detail with estimates, entering one); bad
input is a 400 or 422 that names the problem and stores nothing."""

from __future__ import annotations

import pytest

from otomat.accounts.models import ApiToken
from otomat.projects import estimator
from otomat.projects.models import Estimate, Lead


def bearer(user) -> dict:
    _, token = ApiToken.issue(user, "test")
    return {"authorization": f"Bearer {token}"}


def test_anyone_computes_a_range_without_a_token(client, options):
    answer = client.post(
        "/api/v1/projects/estimate",
        {"selections": [{"key": "shop"}, {"key": "languages", "quantity": 2}], "language": "pl"},
        content_type="application/json",
    )
    assert answer.status_code == 200
    body = answer.json()
    assert (body["currency"], body["weeks_min"], body["weeks_max"]) == ("PLN", "5.0", "9.0")
    assert (body["cost_min_minor"], body["cost_max_minor"]) == (1800000, 3100000)
    assert body["summary"] == "5–9 tygodni, 18\xa0000–31\xa0000\xa0zł"
    assert [line["title"] for line in body["lines"]][1:] == [
        "Sklep internetowy",
        "Dodatkowe języki",
    ]
    assert Estimate.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"selections": [{"key": "payments"}]}, 400, "needs “Online shop”"),
        ({"selections": [{"key": "teleporter"}]}, 400, "is not an option"),
        ({"selections": [{"key": "languages", "quantity": 11}]}, 400, "between 1 and 10"),
        ({"selections": [{"key": "shop"}, {"key": "shop"}]}, 400, "picked twice"),
        ({"selections": [], "language": "de"}, 400, "Unknown language"),
        ({"selections": [{"key": "shop", "quantity": "lots"}]}, 422, None),
        ({"selections": [{"key": "shop", "quantity": 1001}]}, 422, None),
        ({"selections": "shop"}, 422, None),
        ({}, 422, None),
        ([None, None], 422, None),
        ({"selections": [{"key": "x" * 65}]}, 422, None),
        ({"selections": [{"key": f"k{i}"} for i in range(201)]}, 422, None),
    ],
)
def test_bad_selections_are_refused(client, options, body, status, detail):
    answer = client.post("/api/v1/projects/estimate", body, content_type="application/json")
    assert answer.status_code == status
    if detail:
        assert detail in answer.json()["detail"]


def test_the_options_are_public_in_the_asked_language(client, options):
    rows = client.get("/api/v1/projects/options?language=id").json()
    payments = next(r for r in rows if r["key"] == "payments")
    assert payments["title"] == "Pembayaran online" and payments["requires"] == ["shop"]
    assert client.get("/api/v1/projects/options?language=xx").status_code == 400


def test_leads_need_a_token(client, options):
    assert client.get("/api/v1/projects/leads").status_code == 401
    assert (
        client.post("/api/v1/projects/leads", {}, content_type="application/json").status_code
        == 401
    )


def test_staff_list_filter_and_read_leads(client, cast, options):
    lead = Lead.objects.create(name="Marta Nowak", email="marta@example.pl", source="estimator")
    estimator.create_estimate({"booking": 1}, lead=lead, language="pl")
    Lead.objects.create(name="Budi", email="budi@example.id", source="contact", status="won")
    auth = bearer(cast.staff)
    rows = client.get("/api/v1/projects/leads", headers=auth).json()
    assert [r["name"] for r in rows] == ["Budi", "Marta Nowak"]
    rows = client.get("/api/v1/projects/leads?source=estimator", headers=auth).json()
    assert [r["name"] for r in rows] == ["Marta Nowak"]
    rows = client.get("/api/v1/projects/leads?q=budi&status=won", headers=auth).json()
    assert [r["name"] for r in rows] == ["Budi"]
    assert client.get("/api/v1/projects/leads?status=bogus", headers=auth).status_code == 400
    assert client.get("/api/v1/projects/leads?limit=0", headers=auth).status_code == 400
    detail = client.get(f"/api/v1/projects/leads/{lead.pk}", headers=auth).json()
    assert detail["estimates"][0]["lines"][1]["title"] == "Kalendarz rezerwacji"
    assert detail["estimates"][0]["token"]
    assert client.get("/api/v1/projects/leads/999999", headers=auth).status_code == 404
    assert client.get("/api/v1/projects/leads/0", headers=auth).status_code == 422


def test_staff_enter_a_lead(client, cast, options):
    answer = client.post(
        "/api/v1/projects/leads",
        {"name": "Budi Santoso", "email": "budi@example.id", "language": "id"},
        content_type="application/json",
        headers=bearer(cast.staff),
    )
    assert answer.status_code == 201
    assert answer.json()["source"] == "manual"
    assert Lead.objects.get().language == "id"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "B", "email": "not-an-email"}, 400),
        ({"name": "B", "email": "b@example.id", "language": "de"}, 400),
        ({"name": "", "email": "b@example.id"}, 422),
        ({"name": "B" * 201, "email": "b@example.id"}, 422),
        ({"name": "B\x00", "email": "b@example.id"}, 422),
        ({"email": "b@example.id"}, 422),
    ],
)
def test_bad_leads_are_refused(client, cast, body, status):
    answer = client.post(
        "/api/v1/projects/leads", body, content_type="application/json", headers=bearer(cast.staff)
    )
    assert answer.status_code == status
    assert not Lead.objects.exists()


def test_customers_cannot_enter_leads(client, cast):
    answer = client.post(
        "/api/v1/projects/leads",
        {"name": "X", "email": "x@example.com"},
        content_type="application/json",
        headers=bearer(cast.alice),
    )
    assert answer.status_code == 403
    assert not Lead.objects.exists()
