"""Canned replies with placeholders for quotas and money: the out-of-scope reply states the
revisions used and left as the ticket shows them and the price in the customer's locale
("Rp250.000"); staff are warned when they send it while free revisions remain; an unknown
placeholder is refused when the reply is saved and never breaks a reply being sent."""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse

from otomat.billing.money import Money
from otomat.demo import ensure_demo_support
from otomat.support import quotes, tickets
from otomat.support.forms import CannedReplyForm
from otomat.support.models import CannedReply, Quote, Ticket, TicketMessage
from otomat.support.tests.conftest import T0


def change(cast, instance, n):
    return tickets.open_ticket(
        account=cast.alice.account,
        requester=cast.alice,
        subject=f"Change {n}",
        body="Please change the welcome text",
        instance=instance,
        kind=Ticket.Kind.CHANGE,
    )


@pytest.fixture
def indonesian(cast):
    cast.alice.language = "id"
    cast.alice.save(update_fields=["language"])
    return cast.alice


def test_the_demo_reply_states_the_quota_and_the_price_in_the_customers_locale(
    client, cast, department, sla_policy, installed, indonesian
):
    ensure_demo_support()
    template = CannedReply.objects.get(title="Out of scope (Bahasa Indonesia)")
    instance = installed()
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        ticket = change(cast, instance, 1)  # uses one of the three revisions
        client.force_login(cast.alice)
        page = client.get(reverse("support:ticket", args=[ticket.number])).content.decode()
        assert "1 of 3 used" in page or "1 dari 3" in page
        quotes.send_quote(
            ticket,
            staff=cast.staff,
            price=Money(250_000, "IDR"),
            days=2,
            description="Menu",
            reply=template,
        )
    body = ticket.messages.get(kind=TicketMessage.Kind.STAFF).body
    assert "3x revisi gratis: 1 sudah terpakai, sisa 2" in body
    assert "Rp250.000" in body and "250 000 IDR" not in body and "{" not in body


def test_dates_and_amounts_follow_the_customers_language(
    cast, department, sla_policy, installed, indonesian
):
    instance = installed()  # bought at T0: free support for 30 days
    template = CannedReply.objects.create(
        title="Dates", out_of_scope=True, body="{support_until} · {hourly_rate} · {quote_price}"
    )
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        ticket = change(cast, instance, 1)
        quotes.send_quote(
            ticket,
            staff=cast.staff,
            price=Money(1_500_000, "IDR"),
            days=2,
            description="x",
            reply=template,
        )
    body = ticket.messages.get(kind=TicketMessage.Kind.STAFF).body
    assert body == "12 September 2026 · Rp250.000 · Rp1.500.000"
    cast.alice.language = "pl"
    cast.alice.save(update_fields=["language"])
    assert quotes.render_canned("{support_until}", ticket) == "12 września 2026"


def test_staff_are_warned_when_free_revisions_remain(
    client, cast, department, sla_policy, installed
):
    instance = installed()
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        ticket = change(cast, instance, 1)
    client.force_login(cast.staff)
    page = client.get(reverse("support:ticket", args=[ticket.number])).content.decode()
    assert "2 free revisions are still left on this instance" in page
    response = client.post(
        reverse("support:action", args=[ticket.number]),
        {
            "action": "quote",
            "quote-price": "250.000",
            "quote-days": "2",
            "quote-description": "Menu",
        },
        follow=True,
    )
    shown = response.content.decode()
    assert "Out-of-scope reply and quote sent." in shown
    assert "Check the reply: 2 free revisions are still left on this instance." in shown
    reply = ticket.messages.get(kind=TicketMessage.Kind.STAFF).body
    assert "3 changes; 1 have been used (2 left)" in reply and "IDR250,000" in reply


def test_no_warning_once_the_quota_is_used(client, cast, department, sla_policy, installed):
    instance = installed()
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        for n in range(4):
            ticket = change(cast, instance, n)
    assert ticket.out_of_scope
    client.force_login(cast.staff)
    response = client.post(
        reverse("support:action", args=[ticket.number]),
        {"action": "quote", "quote-price": "250.000", "quote-days": "2", "quote-description": "x"},
        follow=True,
    )
    shown = response.content.decode()
    assert "Out-of-scope reply and quote sent." in shown and "free revision" not in shown


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("Hello {customer}, {revisions_lft} left", "{customer}, {revisions_lft}"),
        ("Price {quote_price:>10}", "{quote_price:>10}"),
        ("Hello {customer_name", "brace is not closed"),
        ("Hello customer_name}", "brace is not closed"),
    ],
)
def test_an_unknown_placeholder_is_refused_when_saved(client, cast, db, body, error):
    form = CannedReplyForm({"title": "Reply", "body": body})
    assert not form.is_valid() and error in " ".join(form.errors["body"])
    client.force_login(cast.staff)
    response = client.post(
        reverse("support:config_new", args=["canned"]), {"title": "Reply", "body": body}
    )
    assert response.status_code == 400 and error in html.unescape(response.content.decode())
    assert not CannedReply.objects.exists()


def test_known_placeholders_are_accepted():
    quotes.check_placeholders(
        "{customer_name} {revisions_included} {revisions_used} {revisions_left} {quote_price}"
    )
    with pytest.raises(ValidationError):
        quotes.check_placeholders("{nope}")


def test_a_reply_with_an_unknown_placeholder_is_sent_as_written(
    cast, department, sla_policy, installed
):
    instance = installed()
    template = CannedReply.objects.create(
        title="Old",
        out_of_scope=True,
        body="Hi {customer_name}: {unknown} {0} {x.y} {quote_price:>9} { and } {revisions_left}",
    )
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        ticket = change(cast, instance, 1)
        quotes.send_quote(
            ticket,
            staff=cast.staff,
            price=Money(250_000, "IDR"),
            days=2,
            description="x",
            reply=template,
        )
    assert Quote.objects.filter(ticket=ticket).exists()
    body = ticket.messages.get(kind=TicketMessage.Kind.STAFF).body
    assert body == "Hi Alice Anders: {unknown} {0} {x.y} {quote_price:>9} { and } 2"
