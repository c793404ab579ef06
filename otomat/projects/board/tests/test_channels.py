"""Comments on cards arrive by email (support's inbound mail, "[C-42]" in the subject) and by
Telegram (the owner's bot: "C-42 text" or a Reply to a notice about the card), through
support's channels; strangers cannot write on a card, and ticket mail still reaches tickets."""

from __future__ import annotations

from email.message import EmailMessage

from otomat.notify.services import MESSAGE_HANDLERS
from otomat.projects.board import channels
from otomat.projects.board.models import CardEvent
from otomat.support import inbound
from otomat.support.models import InboundEmail


def _mail(sender: str, subject: str, body: str = "The dates are 1–5 July.") -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "support@example.com", subject
    msg["Message-ID"] = f"<{abs(hash((sender, subject)))}@example.com>"
    msg.set_content(body)
    return bytes(msg)


def test_an_email_reply_comments_on_the_card(card, cast):
    card.status = "waiting_client"
    card.whose_move = "client"
    card.save()
    status, detail = inbound.handle_raw(
        _mail("bob@example.com", f"Re: [{card.reference}] Your move: Sync the calendar"),
        source="webhook",
    )
    assert (status, detail) == (200, f"added to {card.reference}")
    event = card.events.get(kind="comment")
    assert (event.author, event.channel, event.side) == (cast.bob, "email", "client")
    assert "1–5 July" in event.body
    card.refresh_from_db()
    assert card.whose_move == "us"  # the client answered
    assert InboundEmail.objects.get().status == InboundEmail.Status.TICKET


def test_strangers_cannot_write_on_a_card_by_email(card, cast):
    for sender in ("charlie@example.com", "nobody@example.com"):
        status, _detail = inbound.handle_raw(
            _mail(sender, f"[{card.reference}] hello"), source="webhook"
        )
        assert status == 400
    assert not card.events.exists()
    assert not InboundEmail.objects.filter(status=InboundEmail.Status.TICKET).exists()


def test_telegram_messages_naming_a_card_comment_on_it(card, cast):
    assert MESSAGE_HANDLERS[0] is channels.handle_telegram  # before support's ticket handler
    answer = channels.handle_telegram(cast.alice, f"{card.reference} Blocked dates attached")
    assert answer == f"Added to {card.reference}."
    reply = channels.handle_telegram(
        cast.alice, "Yes, go ahead", replied_to=f"[{card.reference}] New comment: Sync"
    )
    assert reply == f"Added to {card.reference}."
    bodies = list(card.events.values_list("body", "channel"))
    assert bodies == [("Blocked dates attached", "telegram"), ("Yes, go ahead", "telegram")]
    # Not about a card: support's handler takes it.
    assert channels.handle_telegram(cast.alice, "Hello, my bot is down") is None
    # Another client's card is "no such card"; an empty body is refused.
    assert "no card" in channels.handle_telegram(cast.charlie, f"{card.reference} hi")
    assert card.events.filter(kind=CardEvent.Kind.COMMENT).count() == 2
