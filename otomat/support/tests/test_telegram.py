"""Tickets through the owner's Telegram bot, end to end in the emulator: a customer with two open
tickets answers a notice about one of them with Telegram's "Reply", and the answer lands on
that ticket."""

from __future__ import annotations

import pytest
from django.test import TestCase

from otomat.notify import services
from otomat.notify.tests.test_notify import OWNER_BOT, link_alice, owner_bot  # noqa: F401
from otomat.support import tickets
from otomat.support.models import Ticket, TicketMessage

pytestmark = pytest.mark.smoke


def test_a_reply_to_a_ticket_notice_goes_to_that_ticket(client, cast, department, owner_bot):  # noqa: F811
    chat_id = link_alice(client, cast, owner_bot)
    first, second = (
        tickets.open_ticket(
            account=cast.alice.account, requester=cast.alice, subject=subject, body="?"
        )
        for subject in ("Invoice address", "Bot is slow")
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        tickets.staff_reply(second, staff=cast.staff, body="Is it faster after a restart?")
    services.deliver_pending()
    notice = next(
        m
        for m in reversed(owner_bot.bot_replies(OWNER_BOT, chat_id, 0))
        if "Is it faster after a restart?" in m["text"]
    )
    assert second.number in notice["text"]

    owner_bot.say(OWNER_BOT, "Yes, fast again.", user_id=chat_id, reply_to=notice["message_id"])
    assert services.poll_owner_bot() == 1
    answer = owner_bot.bot_replies(OWNER_BOT, chat_id, notice["message_id"])[-1]["text"]
    assert answer == f"Added to {second.number}."
    said = TicketMessage.objects.filter(kind="customer", body="Yes, fast again.")
    assert [m.ticket_id for m in said] == [second.pk]
    assert first.messages.count() == 1

    # Without a Reply, plain text with two open tickets asks which one; nothing is added.
    sent = owner_bot.say(OWNER_BOT, "And another thing", user_id=chat_id)
    assert services.poll_owner_bot() == 1
    replies = owner_bot.bot_replies(OWNER_BOT, chat_id, sent["message_id"])
    assert [r["text"] for r in replies][:1] == [
        f"You have several open tickets: start with the number, e.g. {second.number} your text."
    ], replies
    assert not TicketMessage.objects.filter(body="And another thing").exists()
    assert Ticket.objects.count() == 2
