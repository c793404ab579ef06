"""Tickets through the owner's Telegram bot, for people who linked their chat: ``/new`` opens a
ticket (first line: subject), ``T-000123 text`` answers that ticket, ``/tickets`` lists the open
ones, a Telegram "Reply" to a notice about a ticket answers that ticket, and plain text goes to
their only open ticket (or opens one). Staff answers come back to
the chat as notices."""

from __future__ import annotations

import re

from django.utils.translation import gettext as _
from django.utils.translation import override

from otomat.accounts.models import User
from otomat.support import tickets
from otomat.support.models import Ticket

OPEN = [Ticket.Status.OPEN, Ticket.Status.PENDING, Ticket.Status.AWAITING_PAYMENT]
TICKET_IN_TEXT = re.compile(r"\b(T-\d{1,9})\b")


def handle_message(user: User, text: str, *, replied_to: str = "") -> str | None:
    """Act on one message from ``user``'s linked chat; returns the bot's answer. ``replied_to``
    is the text of the message it answers with Telegram's "Reply" (e.g. a notice about a
    ticket: the answer goes to that ticket)."""
    account = user.account
    if account is None:
        return None
    text = (text or "").strip()
    if not text:
        return None
    with override(user.language):
        try:
            return _handle(user, account, text, replied_to)
        except tickets.TicketError as exc:
            return str(exc)


def _open_new(user, account, text: str) -> str:
    subject, _sep, body = text.partition("\n")
    ticket = tickets.open_ticket(
        account=account,
        requester=user,
        subject=subject[:200],
        body=body.strip() or subject,
        channel=Ticket.Channel.TELEGRAM,
    )
    return _("Ticket %(number)s opened. Answers come here and by email.") % {
        "number": ticket.number
    }


def _handle(user, account, text: str, replied_to: str = "") -> str:
    if text.startswith("/tickets"):
        mine = Ticket.objects.filter(account=account, status__in=OPEN).order_by("-updated_at")[:10]
        if not mine:
            return _("You have no open tickets. Send /new followed by your question.")
        return "\n".join(f"{t.number} · {t.get_status_display()} · {t.subject}" for t in mine)
    if text.startswith("/new"):
        rest = text[4:].strip()
        if not rest:
            return _("Write /new, then your question (the first line is the subject).")
        return _open_new(user, account, rest)
    # "T-000123 text" names the ticket; so does a Reply to a notice about it.
    match = re.match(r"^(T-\d{1,9})[\s:]+(.+)$", text, re.S)
    quoted = TICKET_IN_TEXT.search(replied_to)
    number, body = match.groups() if match else (quoted.group(1) if quoted else None, text)
    if number:
        ticket = Ticket.objects.filter(account=account, number=number).first()
        if ticket is None:
            return _("There is no ticket %(number)s on your account.") % {"number": number}
        # On a closed ticket this opens a follow-up: name the ticket it went to.
        result = tickets.customer_message(
            ticket, author=user, body=body, channel=Ticket.Channel.TELEGRAM
        )
        return _("Added to %(number)s.") % {"number": result.number}
    mine = list(Ticket.objects.filter(account=account, requester=user, status__in=OPEN)[:2])
    if len(mine) == 1:
        tickets.customer_message(mine[0], author=user, body=text, channel=Ticket.Channel.TELEGRAM)
        return _("Added to %(number)s.") % {"number": mine[0].number}
    if len(mine) > 1:
        return _(
            "You have several open tickets: start with the number, e.g. %(number)s your text."
        ) % {"number": mine[0].number}
    return _open_new(user, account, text)
