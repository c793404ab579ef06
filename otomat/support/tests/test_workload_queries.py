"""The staff workload page costs the same number of queries whatever the number of tickets
(each row names its requester and customer: loaded with the rows, not one query per row)."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from otomat.support import tickets


def _open(cast, n):
    for i in range(n):
        tickets.open_ticket(
            account=cast.alice.account,
            requester=cast.alice if i % 2 else cast.bob,
            subject=f"Question {i}",
            body="How does it work?",
        )


def _queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("support:workload"))
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_the_workload_page_has_no_query_per_ticket(client, cast, department, sla_policy):
    client.force_login(cast.staff)
    _open(cast, 5)
    at_five = _queries(client)
    _open(cast, 45)
    at_fifty = _queries(client)
    page = client.get(reverse("support:workload"))
    assert page.context["ours"].paginator.count == 50
    assert page.content.decode().count("Bob Berg") >= 25  # every row names its requester
    assert at_fifty == at_five


def test_the_staff_ticket_page_fills_canned_replies_without_a_query_each(
    client, cast, department, sla_policy, installed
):
    from otomat.support.models import CannedReply

    instance = installed()
    ticket = tickets.open_ticket(
        account=cast.alice.account,
        requester=cast.alice,
        subject="Change",
        body="Please",
        instance=instance,
    )
    client.force_login(cast.staff)
    url = reverse("support:ticket", args=[ticket.number])

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    CannedReply.objects.create(title="R0", body="{revisions_left} left")
    one = queries()
    for n in range(1, 10):
        CannedReply.objects.create(title=f"R{n}", body="{revisions_left} left, {minutes_left}")
    assert queries() == one
