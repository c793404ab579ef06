"""Prometheus /metrics: behind a bearer token, parsed by prometheus_client's own parser, the
numbers the owner needs, and nothing private of any customer."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from otomat.billing.models import Invoice
from otomat.instances import services
from otomat.monitoring import incidents
from otomat.ops import heartbeats
from otomat.support.tickets import open_ticket

TOKEN = "metrics-" + "s3cr3t" * 6
BOT_TOKEN = "123456:" + "M" * 35


@pytest.fixture
def scrape(client, settings):
    settings.METRICS_TOKEN = TOKEN

    def get(token: str | None = TOKEN, **headers):
        if token is not None:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        return client.get("/metrics", **headers)

    return get


def families(response) -> dict:
    return {f.name: f for f in text_string_to_metric_families(response.content.decode())}


def samples(family, **labels) -> list:
    return [s for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items())]


@pytest.fixture
def business(cast, greeter):
    """Alice's bot and unpaid invoice, her ticket, an open incident, a beating runner."""
    instance = services.create_instance(
        account=cast.alice.account,
        version=greeter,
        name="Alice Secret Shop Bot",
        config={"bot_token": BOT_TOKEN},
        actor=cast.alice,
    )
    services.provision_instance(instance, actor=cast.alice, cause="installed")
    Invoice.objects.create(
        account=cast.alice.account,
        kind="manual",
        number="INV-METRICS-1",
        currency="IDR",
        due_at=timezone.now() - timedelta(days=3),
        amount_due_minor=15_000_000,
        buyer={"name": "Alice Anders", "email": "alice@example.com"},
    )
    Invoice.objects.create(  # not due yet: not overdue
        account=cast.charlie.account,
        kind="manual",
        number="INV-METRICS-2",
        currency="PLN",
        due_at=timezone.now() + timedelta(days=3),
        amount_due_minor=9_900,
    )
    open_ticket(
        account=cast.alice.account,
        requester=cast.alice,
        subject="Alice's private question",
        body="my phone is +62 811 0000",
    )
    incidents.open_incident(
        title="Movie bot of Alice's Bots down", severity="major", accounts=[cast.alice.account]
    )
    heartbeats.beat("runner")
    return instance


def test_without_a_token_configured_metrics_are_not_there(client, db, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_PUBLIC = False
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_a_missing_or_wrong_token_is_refused(scrape, db):
    for response in (
        scrape(None),
        scrape("wrong"),
        scrape(TOKEN + "x"),
        scrape(None, HTTP_AUTHORIZATION=f"Basic {TOKEN}"),
    ):
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert b"otomat_" not in response.content
    assert scrape().status_code == 200


def test_metrics_can_be_made_public(client, db, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_PUBLIC = True
    response = client.get("/metrics")
    assert response.status_code == 200 and "otomat_instances" in families(response)


def test_metrics_parse_and_count_what_the_owner_needs(scrape, business):
    response = scrape()
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    found = families(response)

    provisioning = samples(found["otomat_instances"], state="provisioning", product="greeter")
    assert [s.value for s in provisioning] == [1.0]
    assert samples(found["otomat_instances"], kind="customer")
    assert found["otomat_instances_running"].samples[0].value == 0
    assert found["otomat_instances_broken"].samples[0].value == 0
    assert samples(found["otomat_instance_restarts"], product="greeter")[0].value == 0

    assert samples(found["otomat_invoices_overdue"], currency="IDR")[0].value == 1
    amount = samples(found["otomat_invoices_overdue_amount_minor"], currency="IDR")
    assert amount[0].value == 15_000_000
    assert not samples(found["otomat_invoices_overdue"], currency="PLN")  # not due yet

    assert samples(found["otomat_tickets_open"], status="open")[0].value == 1
    assert samples(found["otomat_incidents_open"], severity="major")[0].value == 1

    assert samples(found["otomat_service_up"], service="runner")[0].value == 1
    assert samples(found["otomat_service_up"], service="worker")[0].value == 0
    assert samples(found["otomat_service_heartbeat_age_seconds"], service="runner")
    assert not samples(found["otomat_service_heartbeat_age_seconds"], service="worker")
    disks = found["otomat_host_disk_used_percent"].samples
    assert any(s.labels["role"] == "data" for s in disks)
    assert all(0 <= s.value <= 100 for s in disks)
    assert found["otomat_task_queue_ready"].samples[0].value >= 0
    assert found["otomat_database_size_bytes"].samples[0].value > 0


def test_metrics_show_no_customer_private_data(scrape, business, cast):
    text = scrape().content.decode()
    private = [
        cast.alice.email,
        cast.bob.email,
        cast.charlie.email,
        "Alice Anders",
        "Charlie Chen",
        cast.alice.account.name,
        cast.charlie.account.name,
        "Alice",
        "Charlie",
        "Secret Shop",
        BOT_TOKEN,
        BOT_TOKEN.split(":")[1],
        str(business.id),
        "INV-METRICS",
        "private question",
        "+62",
        TOKEN,
    ]
    for value in private:
        assert value not in text, value
    labels = {
        (name, value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        for name, value in s.labels.items()
    }
    assert {name for name, _ in labels} <= {
        "state",
        "product",
        "kind",
        "currency",
        "status",
        "severity",
        "service",
        "host",
        "path",
        "role",
    }


def test_metrics_only_answer_get(scrape, db):
    assert scrape().status_code == 200
    from django.test import Client

    response = Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405


def test_a_scrape_costs_the_same_queries_for_one_customer_or_many(scrape, business, cast, greeter):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        scrape()
    for n in range(10):
        services.create_instance(
            account=cast.charlie.account,
            version=greeter,
            name=f"bot {n}",
            config={"bot_token": f"{700000 + n}:" + "Q" * 35},
            actor=cast.charlie,
        )
    with CaptureQueriesContext(connection) as many:
        scrape()
    assert len(many) == len(one)
