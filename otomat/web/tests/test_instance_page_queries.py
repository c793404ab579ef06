"""The instance page reads a bounded number of rows whatever its history: as many queries with
one open invoice and a short history as with several open invoices, a long history and
sandboxes, for its customer and for staff."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from otomat.billing.invoicing import LineSpec, issue_invoice
from otomat.billing.models import Invoice, Subscription
from otomat.billing.money import Money
from otomat.billing.subscriptions import place_order
from otomat.instances.models import Instance, InstanceEvent

TOKEN = "123456:" + "A" * 35
# The whole request: session, user, 2FA, account, the instance, its product's latest version and
# history, plan and invoices, staff's sandboxes, the bot's Telegram status, the health card
# (alerts, seven for uptime) and the layout. It was 22 (user read twice, membership and account
# apart, the Telegram status twice, the plan's translated name) for the customer alone.
MOST = 19


@pytest.fixture
def ordered(cast, greeter, plan):
    instance, invoice = place_order(
        account=cast.alice.account,
        version=greeter,
        plan=plan,
        name="Shop greeter",
        config={"bot_token": TOKEN},
        actor=cast.alice,
    )
    assert invoice is not None and invoice.status == Invoice.Status.OPEN
    return instance


def grow(instance: Instance, *, invoices: int, events: int, sandboxes: int) -> None:
    """More open invoices of the instance's subscription, more history, and sandboxes."""
    sub = Subscription.objects.get(instance=instance)
    for n in range(invoices):
        issue_invoice(
            account=instance.account,
            currency="IDR",
            lines=[LineSpec(description=f"Extra {n}", unit_price=Money(10_000 + n, "IDR"))],
            kind=Invoice.Kind.MANUAL,
            due_at=timezone.now() + timedelta(days=7 + n),
            subscription=sub,
            notify=False,
        )
    InstanceEvent.objects.bulk_create(
        InstanceEvent(instance=instance, from_state="", to_state="pending", cause=f"note {n}")
        for n in range(events)
    )
    for n in range(sandboxes):
        Instance.objects.create(
            account=instance.account,
            version=instance.version,
            name=f"Sandbox {n}",
            kind=Instance.Kind.SANDBOX,
            sandbox_of=instance,
        )


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as done:
        assert client.get(url).status_code == 200
    return len(done)


@pytest.mark.parametrize("who", ["alice", "staff"])
def test_the_instance_page_reads_as_much_with_a_long_history(
    client, cast, ordered, who, settings, django_assert_max_num_queries
):
    settings.EMULATOR_URL = "http://127.0.0.1:9"  # staff see the sandboxes' card
    client.force_login(getattr(cast, who))
    url = reverse("instances:detail", args=[ordered.id])
    client.get(url)  # the first page of a session may write the session
    short = queries(client, url)
    grow(ordered, invoices=5, events=40, sandboxes=3)
    with django_assert_max_num_queries(MOST):
        page = client.get(url).content.decode()
    assert queries(client, url) == short
    # What was added is on the page: every open invoice to pay, and for staff the sandboxes.
    for invoice in Invoice.objects.filter(status=Invoice.Status.OPEN):
        assert reverse("billing:pay", args=[invoice.token]) in page
    assert ("Sandbox 2" in page) == (who == "staff")
    assert page.count("note ") == 30  # the newest 30 events of the history


def test_the_open_invoices_of_the_instance_page_are_read_through_the_subscriptions_index(
    client, cast, ordered
):
    """The open invoices are found from the subscription, in due order, not by walking every
    open invoice of every customer (16 ms at 100,000 invoices when SQLite took the
    status-and-due-date index to skip the sort)."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's plan is fixed by its rules; other servers plan from statistics")
    client.force_login(cast.alice)
    url = reverse("instances:detail", args=[ordered.id])
    client.get(url)
    with CaptureQueriesContext(connection) as done:
        assert client.get(url).status_code == 200
    [sql] = [
        q["sql"]
        for q in done.captured_queries
        if 'FROM "billing_invoice"' in q["sql"] and '"subscription_id" =' in q["sql"]
    ]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        plan = " ".join(str(row[-1]) for row in cursor.fetchall())
    assert "billing_inv_sub_due" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # no sort either
