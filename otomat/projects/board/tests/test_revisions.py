"""A change the client asks for after acceptance counts one revision round of the offer's quota
("1 of 2 used"); past the quota it becomes a support ticket answered with a paid quote, whose
invoice billing issues when the client accepts — and once paid, the change is ours to do."""

from __future__ import annotations

import pytest

from otomat.accounts.models import AuditEvent
from otomat.billing.models import Invoice
from otomat.billing.money import Money
from otomat.billing.tests.conftest import pay
from otomat.projects.board import revisions, services
from otomat.projects.board.models import Card, Project, RevisionRound
from otomat.projects.board.services import BoardError
from otomat.support import quotes
from otomat.support.models import Quote, Ticket


def _accepted_card(project, cast, title):
    card = services.add_card(project, title=title, actor=cast.staff)
    Card.objects.filter(pk=card.pk).update(status="accepted", whose_move="us")
    card.refresh_from_db()
    return card


def test_changes_after_acceptance_count_rounds_until_the_quota(project, accepted, cast):
    first = revisions.request_change(accepted, user=cast.alice, body="Bigger dates, please")
    project.refresh_from_db()
    assert (first.number, first.within_quota, first.ticket) == (1, True, None)
    assert revisions.usage_text(project) == "1 of 2 used"
    change = first.card
    assert (change.is_change_request, change.status, change.whose_move) == (True, "todo", "us")
    assert change.description == "Bigger dates, please"
    assert change.title == "Change: Sync the calendar"

    second = revisions.request_change(accepted, user=cast.bob, body="And a red border")
    project.refresh_from_db()
    assert (second.number, second.within_quota) == (2, True)
    assert revisions.usage_text(project) == "2 of 2 used"
    assert project.revisions_left == 0
    assert AuditEvent.objects.filter(action="board.revision_requested").count() == 2


def test_past_the_quota_a_paid_quote_is_issued_and_paid(project, accepted, cast):
    Project.objects.filter(pk=project.pk).update(revisions_used=2)  # both rounds used
    revision = revisions.request_change(accepted, user=cast.alice, body="A whole new page")
    project.refresh_from_db()
    assert (revision.number, revision.within_quota) == (1, False)
    assert project.revisions_used == 2  # a paid change uses no included round
    assert revisions.usage_text(project) == "2 of 2 used · 1 past the quota"
    ticket = revision.ticket
    assert ticket.account == cast.alice.account and ticket.requester == cast.alice
    assert revision.card.reference in ticket.subject
    assert revision.card.status == "waiting_us"  # the owner owes a quote

    quote = revisions.send_change_quote(
        revision, staff=cast.staff, price=Money.of("1500", "PLN"), days=3
    )
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.AWAITING_PAYMENT
    card = Card.objects.get(pk=revision.card_id)
    assert (card.status, card.whose_move) == ("waiting_client", "client")

    invoice = quotes.accept_quote(quote, user=cast.alice)
    assert invoice.kind == Invoice.Kind.SUPPORT
    assert invoice.total_minor == 150_000 and invoice.currency == "PLN"
    assert invoice.account == cast.alice.account

    pay(invoice)
    quote.refresh_from_db()
    card.refresh_from_db()
    assert quote.status == Quote.Status.PAID
    assert (card.status, card.whose_move) == ("todo", "us")
    assert AuditEvent.objects.filter(action="board.revision_paid").exists()


def test_bad_change_requests_change_nothing(project, card, accepted, cast):
    todo = services.add_card(project, title="Not done", actor=cast.staff)
    with pytest.raises(BoardError, match="once the card is accepted"):
        revisions.request_change(todo, user=cast.alice, body="Change it")
    for person in (cast.staff, cast.charlie):
        with pytest.raises(BoardError, match="Only the client"):
            revisions.request_change(accepted, user=person, body="Change it")
    with pytest.raises(BoardError):
        revisions.request_change(accepted, user=cast.alice, body="   ")
    assert not RevisionRound.objects.exists()
    project.refresh_from_db()
    assert project.revisions_used == 0 and project.cards.count() == 2


def test_a_quote_only_past_the_quota_and_with_sane_figures(project, accepted, cast):
    within = revisions.request_change(accepted, user=cast.alice, body="Small change")
    with pytest.raises(BoardError, match="no quote is needed"):
        revisions.send_change_quote(within, staff=cast.staff, price=Money(100, "PLN"), days=1)
    Project.objects.filter(pk=project.pk).update(revisions_used=2)
    past = revisions.request_change(accepted, user=cast.alice, body="Big change")
    with pytest.raises(BoardError, match="Only staff"):
        revisions.send_change_quote(past, staff=cast.alice, price=Money(100, "PLN"), days=1)
    with pytest.raises(BoardError, match="currency"):
        revisions.send_change_quote(past, staff=cast.staff, price=Money(100, "USD"), days=1)
    with pytest.raises(BoardError, match="price"):
        revisions.send_change_quote(past, staff=cast.staff, price=Money(0, "PLN"), days=1)
    with pytest.raises(BoardError, match="365"):
        revisions.send_change_quote(past, staff=cast.staff, price=Money(100, "PLN"), days=0)
    assert not Quote.objects.exists()
    assert Card.objects.get(pk=past.card_id).status == "waiting_us"
