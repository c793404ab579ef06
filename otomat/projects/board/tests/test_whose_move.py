"""Every card says whose move it is and since when: derived from its status, kept as fields,
and the "since" moves only when the side changes. Blocked needs a reason; the client's answer
gives the move back to us; the client accepts on staging."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from otomat.accounts.models import AuditEvent
from otomat.notify.models import Notification
from otomat.projects.board import services
from otomat.projects.board.models import Card, CardEvent
from otomat.projects.board.services import BoardError
from otomat.projects.board.tests.conftest import T0


def at(hours: int):
    return time_machine.travel(T0 + timedelta(hours=hours), tick=False)


def test_a_new_card_is_our_move_since_it_was_added(card):
    assert card.status == Card.Status.TODO
    assert (card.whose_move, card.move_since, card.status_since) == ("us", T0, T0)


def test_the_since_moves_only_when_the_side_changes(card, cast):
    with at(1):
        card = services.set_status(card, "in_progress", actor=cast.staff)
    assert (card.whose_move, card.move_since) == ("us", T0)  # still ours since Monday 09:00
    assert card.status_since == T0 + timedelta(hours=1)
    with at(2):
        card = services.set_status(card, "waiting_client", actor=cast.staff)
    assert (card.whose_move, card.move_since) == ("client", T0 + timedelta(hours=2))
    with at(5):
        card = services.set_status(card, "waiting_us", actor=cast.staff)
    assert (card.whose_move, card.move_since) == ("us", T0 + timedelta(hours=5))
    card.refresh_from_db()  # the fields are stored, not computed on the fly
    assert (card.whose_move, card.move_since) == ("us", T0 + timedelta(hours=5))
    statuses = list(
        card.events.filter(kind=CardEvent.Kind.STATUS).values_list("from_status", "to_status")
    )
    assert statuses == [
        ("todo", "in_progress"),
        ("in_progress", "waiting_client"),
        ("waiting_client", "waiting_us"),
    ]
    assert AuditEvent.objects.filter(action="board.card_status").count() == 3


def test_the_client_hears_when_the_move_becomes_theirs(card, cast):
    services.set_status(card, "in_progress", actor=cast.staff)
    assert not Notification.objects.filter(kind="board/your_move").exists()
    services.set_status(card, "waiting_client", actor=cast.staff)
    notice = Notification.objects.get(kind="board/your_move", channel="email")
    assert notice.user == cast.alice
    assert f"[{card.reference}]" in notice.subject  # a reply by email finds the card


def test_blocked_needs_a_reason_and_says_whose_move(card, cast):
    for reason in ("", "weather", None):
        with pytest.raises(BoardError, match="technical or communication"):
            services.set_status(card, "blocked", reason=reason or "", actor=cast.staff)
    card.refresh_from_db()
    assert card.status == "todo" and not card.events.exists()
    with at(1):
        card = services.set_status(
            card, "blocked", reason="technical", note="API key missing", actor=cast.staff
        )
    assert (card.whose_move, card.blocked_reason, card.blocked_note) == (
        "us",
        "technical",
        "API key missing",
    )
    with at(3):
        card = services.set_status(card, "blocked", reason="communication", actor=cast.staff)
    assert (card.whose_move, card.move_since) == ("client", T0 + timedelta(hours=3))
    with at(4):
        card = services.set_status(card, "in_progress", actor=cast.staff)
    assert (card.blocked_reason, card.blocked_note, card.whose_move) == ("", "", "us")


def test_bad_statuses_are_refused(card, cast):
    with pytest.raises(BoardError, match="Unknown status"):
        services.set_status(card, "done", actor=cast.staff)
    with pytest.raises(BoardError, match="Only a blocked card"):
        services.set_status(card, "in_progress", reason="technical", actor=cast.staff)
    with pytest.raises(BoardError, match="staging link"):
        services.set_status(card, "staging", actor=cast.staff)
    with pytest.raises(BoardError, match="300"):
        services.set_status(card, "blocked", reason="technical", note="x" * 301, actor=cast.staff)
    with pytest.raises(BoardError, match="Only staff"):
        services.set_status(card, "in_progress", actor=cast.alice)
    card.refresh_from_db()
    assert card.status == "todo" and not card.events.exists()


def test_the_clients_answer_gives_the_move_back_to_us(card, cast):
    with at(1):
        services.set_status(card, "waiting_client", actor=cast.staff)
    with at(26):
        event = services.comment(card, author=cast.bob, body="Here is the API key.")
    card.refresh_from_db()
    assert (card.status, card.whose_move, card.move_since) == (
        "waiting_us",
        "us",
        T0 + timedelta(hours=26),
    )
    assert (event.side, event.kind) == ("client", "comment")
    # The assignee hears of it.
    assert Notification.objects.filter(kind="board/client_wrote", user=cast.staff).exists()


def test_comments_by_both_sides_and_internal_notes(card, cast):
    services.comment(card, author=cast.staff, body="Which dates are blocked?")
    assert Notification.objects.filter(kind="board/we_wrote", user=cast.alice).exists()
    note = services.comment(card, author=cast.staff, body="Client is slow", internal=True)
    assert note.internal
    assert Notification.objects.filter(kind="board/we_wrote").count() == 1  # not for the note
    with pytest.raises(BoardError, match="Only staff write internal notes"):
        services.comment(card, author=cast.alice, body="secret", internal=True)
    for body in ("", "   ", "x" * 10_001):
        with pytest.raises(BoardError):
            services.comment(card, author=cast.alice, body=body)
    with pytest.raises(BoardError, match="not yours"):
        services.comment(card, author=cast.charlie, body="hello")
    assert card.events.count() == 2


def test_the_client_accepts_on_staging(on_staging, cast):
    assert (on_staging.status, on_staging.whose_move) == ("staging", "client")
    with at(30):
        card = services.accept_on_staging(on_staging, user=cast.bob)
    assert (card.status, card.whose_move) == ("accepted", "us")
    assert (card.accepted_at, card.accepted_by) == (T0 + timedelta(hours=30), cast.bob)
    assert Notification.objects.filter(kind="board/accepted", user=cast.staff).exists()
    assert AuditEvent.objects.filter(action="board.card_accepted", actor=cast.bob).exists()
    # Twice is harmless.
    assert services.accept_on_staging(card, user=cast.bob).accepted_at == card.accepted_at


def test_only_the_client_accepts_and_only_on_staging(card, on_staging, cast):
    for person in (cast.staff, cast.charlie):
        with pytest.raises(BoardError, match="Only the client"):
            services.accept_on_staging(on_staging, user=person)
    services.set_status(on_staging, "in_progress", actor=cast.staff)
    with pytest.raises(BoardError, match="Only a card on staging"):
        services.accept_on_staging(on_staging, user=cast.alice)
    on_staging.refresh_from_db()
    assert on_staging.accepted_at is None and on_staging.status == "in_progress"


def test_cards_are_added_edited_and_moved_with_checks(project, card, cast):
    second = services.add_card(project, title="Online payments", actor=cast.staff)
    assert second.position == card.position + 1
    services.move_card(second, position=0, actor=cast.staff)
    assert list(project.cards.values_list("title", flat=True)) == [
        "Online payments",
        "Sync the calendar",
    ]
    with pytest.raises(BoardError, match="title"):
        services.add_card(project, title="  ", actor=cast.staff)
    with pytest.raises(BoardError, match="Only staff"):
        services.add_card(project, title="Mine", actor=cast.alice)
    with pytest.raises(BoardError, match="milestone"):
        other = services.start_project(
            account=cast.charlie.account, title="X", milestones=["M"], actor=cast.staff
        )
        services.add_card(
            project, title="Y", milestone=other.milestones.first().pk, actor=cast.staff
        )
    with pytest.raises(BoardError, match="staff"):
        services.add_card(project, title="Y", assignee=cast.alice.pk, actor=cast.staff)
    with pytest.raises(BoardError, match="http"):
        services.update_card(card, actor=cast.staff, title="T", staging_url="javascript:alert(1)")
    with pytest.raises(BoardError, match="position"):
        services.move_card(card, position=-1, actor=cast.staff)
    assert project.cards.count() == 2
    card.refresh_from_db()
    assert card.staging_url == "" and card.title == "Sync the calendar"
