"""List pages and the owner's dashboard cost the same number of queries with few rows as with
many: no query per row (N+1), no query per month shown."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from otomat.billing.models import Invoice, Subscription
from otomat.instances.models import Instance
from otomat.support.models import Department, Ticket

_serial = itertools.count(1)


def add_rows(cast, greeter, plan, n: int) -> None:
    """``n`` more instances, each with a subscription, an invoice and a ticket, for Alice and
    Charlie in turn (bulk-created: these tests count queries of the pages, not of setup)."""
    now = timezone.now()
    department, _ = Department.objects.get_or_create(slug="general", defaults={"name": "General"})
    accounts = [cast.alice.account, cast.charlie.account]
    instances = [
        Instance(
            account=accounts[i % 2],
            version=greeter,
            name=f"bot {k}",
            state=Instance.State.RUNNING,
            created_at=now - timedelta(minutes=k),
        )
        for i, k in ((i, next(_serial)) for i in range(n))
    ]
    Instance.objects.bulk_create(instances)
    subs = Subscription.objects.bulk_create(
        Subscription(
            account=inst.account,
            instance=inst,
            plan=plan,
            status=Subscription.Status.ACTIVE,
            activated_at=now - timedelta(days=40 * (i % 9)),
            ended_at=None if i % 4 else now - timedelta(days=20),
        )
        for i, inst in enumerate(instances)
    )
    Invoice.objects.bulk_create(
        Invoice(
            account=sub.account,
            subscription=sub,
            kind=Invoice.Kind.RENEWAL,
            status=Invoice.Status.OPEN if i % 2 else Invoice.Status.PAID,
            number=f"T-{next(_serial):06d}",
            currency="IDR",
            total_minor=150_000,
            amount_due_minor=150_000 if i % 2 else 0,
            due_at=now - timedelta(days=3 * i),
        )
        for i, sub in enumerate(subs)
    )
    Ticket.objects.bulk_create(
        Ticket(
            number=f"T-{next(_serial):06d}",
            account=inst.account,
            requester=cast.alice if inst.account == cast.alice.account else cast.charlie,
            instance=inst,
            department=department,
            subject=f"about {inst.name}",
            response_due=now + timedelta(hours=i),
        )
        for i, inst in enumerate(instances)
    )


def queries(client, url: str) -> int:
    caches["shared"].clear()  # the dashboard's figures computed afresh: the cost of a cold view
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured)


PAGES = [
    ("staff", "instances:manage"),
    ("alice", "instances:list"),
    ("staff", "billing:manage_invoices"),
    ("alice", "billing:invoices"),
    ("alice", "support:list"),
    ("staff", "support:workload"),
    ("owner", "billing:dashboard"),
]


@pytest.mark.parametrize(("who", "name"), PAGES)
def test_the_page_costs_the_same_queries_with_ten_rows_and_with_sixty(
    client, cast, greeter, plan, who, name
):
    client.force_login(getattr(cast, who))
    add_rows(cast, greeter, plan, 10)
    few = queries(client, reverse(name))
    add_rows(cast, greeter, plan, 50)
    many = queries(client, reverse(name))
    assert many == few, f"{name}: {few} queries with 10 rows, {many} with 60"


def test_the_dashboard_reads_the_subscriptions_in_a_handful_of_queries(client, cast, greeter, plan):
    """Not one query per month shown (it was 2 × 12 for churn and 11 for the MRR chart, 41 in
    all): the MRR chart, the MRR card, churn, the counts, failing runs and revenue by product."""
    add_rows(cast, greeter, plan, 10)
    client.force_login(cast.owner)
    caches["shared"].clear()
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("billing:dashboard")).status_code == 200
    on_subscriptions = [q for q in captured if '"billing_subscription"' in q["sql"]]
    assert len(on_subscriptions) <= 7, [q["sql"][:120] for q in on_subscriptions]


def on_subscriptions(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("billing:dashboard")).status_code == 200
    return sum('"billing_subscription"' in q["sql"] for q in captured)


def test_the_figures_are_kept_until_billing_changes(client, cast, greeter, plan):
    add_rows(cast, greeter, plan, 10)
    client.force_login(cast.owner)
    caches["shared"].clear()
    assert on_subscriptions(client) > 1
    # Kept: the next views count only the failing runs (not a figure of the cache).
    assert on_subscriptions(client) == 1
    response = client.get(reverse("billing:dashboard"))
    active = response.context["counts"]["active"]
    sub = Subscription.objects.filter(status=Subscription.Status.ACTIVE, ended_at=None).first()
    sub.status = Subscription.Status.SUSPENDED
    sub.save(update_fields=["status"])  # any save of a subscription drops the figures
    response = client.get(reverse("billing:dashboard"))
    assert response.context["counts"]["active"] == active - 1
    assert response.context["counts"]["suspended"] == 1
