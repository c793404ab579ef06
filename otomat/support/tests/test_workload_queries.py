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


def test_the_per_person_count_names_staff_not_their_emails(client, cast, department, sla_policy):
    from otomat.accounts.models import User

    named = User.objects.create_user(
        email="dina@example.com",
        password=cast.password,
        is_staff=True,
        first_name="Dina",
        last_name="Dewi",
    )
    _open(cast, 3)
    first, second, _unassigned = cast.alice.account.tickets.order_by("created_at")
    tickets.assign(first, named, actor=cast.staff)
    tickets.assign(second, cast.staff, actor=cast.staff)  # no name: the login before the @
    client.force_login(cast.staff)
    page = client.get(reverse("support:workload")).content.decode()
    section = page.split("Per person", 1)[1].split("</section>", 1)[0]
    assert "Dina Dewi: 1" in section and "staff: 1" in section and "unassigned: 1" in section
    assert "@example.com" not in section


def test_the_deadline_column_is_named_as_a_deadline_in_polish(client, cast, department, sla_policy):
    cast.staff.language = "pl"
    cast.staff.save(update_fields=["language"])
    _open(cast, 1)
    client.force_login(cast.staff)
    page = client.get(reverse("support:workload")).content.decode()
    assert "<th>Termin</th>" in page and "Termin płatności" not in page  # not a payment's due
