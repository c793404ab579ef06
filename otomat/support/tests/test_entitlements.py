"""Support within what was bought: change requests use the revision quota ("2 of 3 used");
when it runs out the request is out of scope, staff answer with one click (the out-of-scope
reply and a paid quote), the customer accepts and pays, and the ticket continues."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from otomat.billing.models import Invoice
from otomat.billing.money import Money
from otomat.billing.tests.conftest import pay
from otomat.support import entitlements, quotes, tickets
from otomat.support.models import CannedReply, Quote, Ticket, TicketMessage
from otomat.support.tests.conftest import T0

pytestmark = pytest.mark.smoke


def change(cast, instance, n, user=None):
    return tickets.open_ticket(
        account=cast.alice.account,
        requester=user or cast.alice,
        subject=f"Change {n}",
        body="Please change the welcome text",
        instance=instance,
        kind=Ticket.Kind.CHANGE,
    )


def test_the_quota_runs_out_then_a_paid_quote_unlocks_the_ticket(
    client, cast, department, sla_policy, installed, django_capture_on_commit_callbacks
):
    instance = installed()
    CannedReply.objects.create(
        title="Out of scope",
        out_of_scope=True,
        body="Sesuai paket yang anda ambil, permintaan perubahan maksimal {revision_quota}x "
        "({revisions_used} terpakai). Kami bisa memenuhi dalam waktu {quote_days} hari dengan "
        "biaya {quote_price}.",
    )
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        first, second = change(cast, instance, 1), change(cast, instance, 2, cast.bob)
        assert entitlements.for_instance(instance).revisions_used == 2
        client.force_login(cast.bob)
        page = client.get(reverse("support:ticket", args=[second.number])).content.decode()
        assert "2 of 3 used" in page  # shown to the customer…
        third = change(cast, instance, 3)
        fourth = change(cast, instance, 4)
    assert [t.counts_as_revision for t in (first, second, third, fourth)] == [
        True,
        True,
        True,
        False,
    ]
    assert fourth.out_of_scope and not third.out_of_scope
    assert fourth.events.filter(
        kind="out_of_scope", detail__contains="all 3 revisions used"
    ).exists()
    client.force_login(cast.staff)
    staff_page = client.get(reverse("support:ticket", args=[fourth.number])).content.decode()
    assert "3 of 3 used" in staff_page and "Outside what was bought" in staff_page  # …and staff

    # One click: the out-of-scope reply with the figures filled in, and a quote.
    response = client.post(
        reverse("support:action", args=[fourth.number]),
        {
            "action": "quote",
            "quote-price": "500.000",
            "quote-days": "3",
            "quote-description": "New welcome flow",
        },
    )
    assert response.status_code == 302
    fourth.refresh_from_db()
    shown = client.get(response["Location"]).content.decode()
    assert Quote.objects.exists(), shown[shown.find("message-") :][:500]
    quote = Quote.objects.get()
    assert fourth.status == Ticket.Status.AWAITING_PAYMENT and quote.price == Money(500_000, "IDR")
    reply = fourth.messages.filter(kind=TicketMessage.Kind.STAFF).get()
    assert reply.body == (
        "Sesuai paket yang anda ambil, permintaan perubahan maksimal 3x (3 terpakai). Kami bisa "
        "memenuhi dalam waktu 3 hari dengan biaya IDR500,000."
    )

    # The customer accepts: an invoice to pay; the ticket stays locked until it is paid.
    client.force_login(cast.alice)
    response = client.post(reverse("support:quote", args=[quote.id]), {"decision": "accept"})
    invoice = Invoice.objects.get(kind=Invoice.Kind.SUPPORT)
    assert response["Location"] == reverse("billing:pay", args=[invoice.token])
    assert invoice.total == Money(500_000, "IDR") and invoice.tax_minor == 49_550  # PPN included
    client.post(
        reverse("support:quote", args=[quote.id]), {"decision": "accept"}
    )  # twice: one invoice
    assert Invoice.objects.filter(kind=Invoice.Kind.SUPPORT).count() == 1
    fourth.refresh_from_db()
    assert fourth.status == Ticket.Status.AWAITING_PAYMENT
    pay(invoice)
    fourth.refresh_from_db()
    quote.refresh_from_db()
    assert quote.status == Quote.Status.PAID and fourth.status == Ticket.Status.OPEN
    assert not fourth.out_of_scope
    assert fourth.messages.filter(kind="system", body__contains=invoice.number).exists()
    # The work is tracked against the paid quote.
    client.force_login(cast.staff)
    client.post(
        reverse("support:action", args=[fourth.number]), {"action": "time", "time-minutes": "90"}
    )
    assert fourth.time_entries.get().quote == quote


def test_questions_are_free_in_the_window_then_out_of_scope(
    cast, department, sla_policy, installed
):
    instance = installed()
    with time_machine.travel(T0 + timedelta(days=29), tick=False):
        inside = tickets.open_ticket(
            account=cast.alice.account,
            requester=cast.alice,
            subject="How?",
            body="?",
            instance=instance,
        )
    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        outside = tickets.open_ticket(
            account=cast.alice.account,
            requester=cast.alice,
            subject="How again?",
            body="?",
            instance=instance,
        )
        problem = tickets.open_ticket(
            account=cast.alice.account,
            requester=cast.alice,
            subject="Broken",
            body="!",
            instance=instance,
            kind=Ticket.Kind.PROBLEM,
        )
    assert not inside.out_of_scope and outside.out_of_scope
    assert not problem.out_of_scope  # a defect is always the seller's to fix


def test_a_quote_cannot_be_accepted_by_another_customer_or_twice(
    cast, department, sla_policy, installed
):
    instance = installed()
    ticket = change(cast, instance, 1)
    quote = quotes.send_quote(
        ticket, staff=cast.staff, price=Money(100_000, "IDR"), days=1, description="x"
    )
    with pytest.raises(tickets.TicketError):
        quotes.accept_quote(quote, user=cast.charlie)
    with pytest.raises(tickets.TicketError, match="still waiting"):
        quotes.send_quote(ticket, staff=cast.staff, price=Money(1, "IDR"), days=1, description="y")
    with pytest.raises(tickets.TicketError, match="price"):
        quotes.send_quote(ticket, staff=cast.staff, price=Money(0, "IDR"), days=1, description="y")
    quotes.decline_quote(quote, user=cast.alice)
    with pytest.raises(tickets.TicketError, match="no longer open"):
        quotes.accept_quote(quote, user=cast.alice)
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.OPEN
