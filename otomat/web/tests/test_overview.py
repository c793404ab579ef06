"""The owner's overview: running / broken / suspended counts with 14-day sparklines rebuilt from
the recorded transitions, open incidents, overdue money by age, tickets waiting on us and SLA at
risk, each linking to its list; a live fragment for staff only; a fixed number of queries
however many instances there are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from otomat.instances.models import Instance, InstanceEvent
from otomat.monitoring import incidents
from otomat.monitoring.models import Severity
from otomat.web.overview import SPARK_DAYS, state_history

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
S = Instance.State


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def bots(cast, greeter, n, state, account=None):
    Instance.objects.bulk_create(
        Instance(
            account=account or cast.alice.account,
            version=greeter,
            name=f"{state} bot {i}",
            state=state,
            desired=Instance.Desired.RUNNING,
        )
        for i in range(n)
    )


def test_state_history_walks_back_through_the_transitions(cast, greeter, clock):
    bots(cast, greeter, 3, S.RUNNING)
    failed = Instance.objects.create(
        account=cast.alice.account, version=greeter, name="Crashy", state=S.FAILED
    )
    # It crashed yesterday after running, so it ran until then and was failed from then on.
    InstanceEvent.objects.create(
        instance=failed,
        at=T0 - timedelta(days=1),
        from_state=S.RUNNING,
        to_state=S.FAILED,
        cause="crash loop",
    )
    # Three days ago one of the running bots was started (pending → running).
    InstanceEvent.objects.create(
        instance=Instance.objects.filter(state=S.RUNNING).first(),
        at=T0 - timedelta(days=3),
        from_state=S.PENDING,
        to_state=S.RUNNING,
        cause="paid",
    )
    history = state_history({S.RUNNING: 3, S.FAILED: 1}, T0)
    assert len(history[S.RUNNING]) == SPARK_DAYS
    # today, yesterday (crashed that day: failed at its end), two days ago, three days ago...
    assert history[S.FAILED][-3:] == [0, 1, 1]
    assert history[S.RUNNING][-5:] == [3, 4, 4, 3, 3]
    assert history[S.SUSPENDED] == [0] * SPARK_DAYS


def test_the_staff_home_page_shows_every_figure_with_its_link(client, cast, greeter, plan, clock):
    bots(cast, greeter, 4, S.RUNNING)
    bots(cast, greeter, 2, S.FAILED, account=cast.charlie.account)
    bots(cast, greeter, 1, S.SUSPENDED)
    incident = incidents.open_incident(
        title="Movie Search Bot crashes", severity=Severity.CRITICAL, actor=cast.owner
    )
    client.force_login(cast.owner)
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    figures = {
        state: html.split(f'data-state="{state}"')[1].split("</a>")[0]
        for state in (S.RUNNING, S.FAILED, S.SUSPENDED)
    }
    assert '<span class="overview-number">4</span>' in figures[S.RUNNING]
    assert '<span class="overview-number">2</span>' in figures[S.FAILED]
    assert '<span class="overview-number">1</span>' in figures[S.SUSPENDED]
    assert all("<svg" in part for part in figures.values())
    assert reverse("monitoring:incident", args=[incident.pk]) in html
    assert "Movie Search Bot crashes" in html
    for url in (
        reverse("monitoring:incidents"),
        reverse("billing:manage_invoices") + "?status=overdue",
        reverse("support:workload"),
        reverse("instances:manage") + "?state=failed",
    ):
        assert f'href="{url}"' in html
    # The live part polls its own fragment, which answers the same figures.
    assert f'hx-get="{reverse("web:overview")}"' in html
    fragment = client.get(reverse("web:overview"))
    assert fragment.status_code == 200
    assert "Movie Search Bot crashes" in fragment.content.decode()
    assert "<html" not in fragment.content.decode()


def test_overdue_money_and_tickets_are_counted(client, cast, greeter, plan, clock):
    from otomat.billing.models import Invoice
    from otomat.support.models import Department, Ticket

    def invoice(days_late, amount):
        return Invoice.objects.create(
            account=cast.alice.account,
            number=f"INV/{days_late}",
            status=Invoice.Status.OPEN,
            currency="IDR",
            total_minor=amount,
            amount_due_minor=amount,
            issued_at=T0 - timedelta(days=days_late + 14),
            due_at=T0 - timedelta(days=days_late),
        )

    invoice(3, 150_000)
    invoice(40, 200_000)
    department = Department.objects.create(name="Support")

    def ticket(number, **fields):
        return Ticket.objects.create(
            number=number,
            account=cast.alice.account,
            department=department,
            subject="Help",
            **fields,
        )

    ticket("T-1", response_due=T0 + timedelta(hours=1))  # at risk
    ticket("T-2", response_due=T0 - timedelta(hours=1))  # late (and at risk)
    ticket("T-3")  # waiting on us, no SLA
    ticket("T-4", status=Ticket.Status.PENDING)  # waiting on the customer
    client.force_login(cast.staff)
    html = client.get(reverse("web:overview")).content.decode()
    overdue = html.split('id="overview-overdue"')[1].split("</section>")[0]
    # IDR has no minor unit: 3 days late, none 8-30, 40 days late, and the total.
    cells = [c.split("</td>")[0] for c in overdue.split("<td>")[1:]]
    assert cells == ["IDR150,000", "IDR0", "IDR200,000", "<strong>IDR350,000</strong>"]
    tickets = html.split('id="overview-tickets"')[1].split("</section>")[0]
    numbers = [part.split("</strong>")[0] for part in tickets.split("<strong>")[1:]]
    assert numbers == ["3", "2", "1"]


def test_the_overview_is_for_staff_only(client, cast, greeter):
    client.force_login(cast.alice)
    assert client.get("/").status_code == 302  # customers go to their instances
    assert client.get(reverse("web:overview")).status_code == 404
    client.logout()
    response = client.get(reverse("web:overview"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_overview_costs_the_same_queries_with_ten_or_a_thousand_instances(
    client, cast, greeter, clock
):
    client.force_login(cast.owner)

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("web:overview")).status_code == 200
        return len(ctx.captured_queries)

    bots(cast, greeter, 5, S.RUNNING)
    bots(cast, greeter, 5, S.FAILED)
    small = queries()
    bots(cast, greeter, 600, S.RUNNING)
    failed = list(Instance.objects.filter(state=S.RUNNING)[:400])
    Instance.objects.filter(pk__in=[i.pk for i in failed]).update(state=S.FAILED)
    InstanceEvent.objects.bulk_create(
        InstanceEvent(
            instance=i,
            at=T0 - timedelta(days=d % 10),
            from_state=S.RUNNING,
            to_state=S.FAILED,
            cause="crash",
        )
        for d, i in enumerate(failed)
    )
    for n in range(8):
        incidents.open_incident(title=f"Incident {n}", severity=Severity.MAJOR, actor=cast.owner)
    large = queries()
    assert large == small
    assert large <= 16
