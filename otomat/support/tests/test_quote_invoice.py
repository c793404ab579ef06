"""A quote's invoice: accepted, it gets the billing's payment terms (never due the second it
is issued), and the customer's invoice page does not call it overdue."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from otomat.billing.models import BillingSettings
from otomat.billing.money import Money
from otomat.support import quotes, tickets
from otomat.support.models import Ticket
from otomat.support.tests.conftest import T0


def _quote(cast, instance):
    ticket = tickets.open_ticket(
        account=cast.alice.account,
        requester=cast.alice,
        subject="A new menu",
        body="Please add a menu",
        instance=instance,
        kind=Ticket.Kind.CHANGE,
    )
    return quotes.send_quote(
        ticket, staff=cast.staff, price=Money(250_000, "IDR"), days=2, description="Menu"
    )


def test_it_gives_a_quotes_invoice_the_payment_terms(
    client, cast, department, sla_policy, installed
):
    instance = installed()
    config = BillingSettings.get()
    config.order_payment_days = 10
    config.save()
    at = T0 + timedelta(days=2)
    with time_machine.travel(at, tick=False):
        invoice = quotes.accept_quote(_quote(cast, instance), user=cast.alice)
        assert invoice.due_at == at + timedelta(days=10)
        assert invoice.issued_at == at
        assert not invoice.is_overdue(at)
        client.force_login(cast.alice)
        page = client.get(reverse("billing:invoice", args=[invoice.pk])).content.decode()
    assert "Overdue" not in page
    with time_machine.travel(at + timedelta(days=11), tick=False):
        assert invoice.is_overdue()


@pytest.mark.parametrize("days", [0, 7])
def test_it_is_due_at_least_a_day_after_issue(cast, department, sla_policy, installed, days):
    instance = installed()
    BillingSettings.objects.filter(pk=BillingSettings.get().pk).update(order_payment_days=days)
    at = T0 + timedelta(days=2)
    with time_machine.travel(at, tick=False):
        invoice = quotes.accept_quote(_quote(cast, instance), user=cast.alice)
    assert invoice.due_at == at + timedelta(days=max(days, 1))


@pytest.mark.parametrize(
    ("lang", "line", "paid"),
    [
        ("id", "Dukungan berbayar", "Faktur"),
        ("pl", "Płatne wsparcie", "Faktura"),
        ("en", "Paid support", "Invoice"),
    ],
)
def test_the_quotes_invoice_line_and_notes_are_in_the_customers_language_at_issue(
    cast, department, sla_policy, installed, lang, line, paid
):
    from otomat.support.models import TicketMessage

    cast.alice.language = lang
    cast.alice.save(update_fields=["language"])
    with time_machine.travel(T0 + timedelta(days=40), tick=False):  # free support is over
        quote = _quote(cast, installed())
        invoice = quotes.accept_quote(quote, user=cast.alice)
    quotes.on_invoice_paid(None, invoice)
    note = quote.ticket.messages.filter(kind=TicketMessage.Kind.SYSTEM).last()
    assert note.body.startswith(paid) and invoice.number in note.body
    cast.alice.language = "en"  # a later change of language leaves the issued lines alone
    cast.alice.save(update_fields=["language"])
    description = invoice.lines.get().description
    assert description.startswith(line) and quote.ticket.number in description
    assert description.endswith(": Menu")
