"""How people are named to customers: a staff member signs with their name (full, or first),
or with the seller's name when they gave none — never with their email address, which is an
internal login. Customers' own names are shown as the account knows them."""

from __future__ import annotations

from collections.abc import Iterable

from otomat.accounts.models import User
from otomat.billing.invoicing import account_language
from otomat.billing.models import BillingSettings
from otomat.support.models import Ticket, TicketMessage


def seller_name() -> str:
    return BillingSettings.get().seller_name.strip() or "Otomat"


def display_name(user: User | None, *, seller: str | None = None) -> str:
    """The name a customer sees for ``user``: for staff the full name, else the first name,
    else the seller's name (``seller`` spares the lookup); for anyone else ``str(user)``."""
    if user is None:
        return seller or seller_name()
    if not user.is_staff:
        return str(user)
    return user.get_full_name().strip() or user.first_name.strip() or seller or seller_name()


def staff_name(user: User) -> str:
    """A staff member as colleagues name them: their name, else the part of their login before
    the "@" (staff pages only; customers see :func:`display_name`)."""
    return user.get_full_name().strip() or user.first_name.strip() or user.email.split("@")[0]


def workload_per_person(rows: Iterable[dict]) -> list[dict]:
    """``rows`` of ``{"assignee": id or None, "n": count}`` with each person's ``name`` ("" when
    unassigned), the people read in one query."""
    rows = list(rows)
    users = User.objects.in_bulk([r["assignee"] for r in rows if r["assignee"]])
    return [
        {**r, "name": staff_name(users[r["assignee"]]) if r["assignee"] in users else ""}
        for r in rows
    ]


def signature(message: TicketMessage, *, seller: str | None = None) -> str:
    """Who wrote ``message``, as shown on the ticket, in emails and Telegram notices."""
    if message.kind == TicketMessage.Kind.SYSTEM:
        return seller or seller_name()
    if message.kind in (TicketMessage.Kind.STAFF, TicketMessage.Kind.NOTE):
        # A staff member who has since been deleted: the seller answered.
        return display_name(message.author, seller=seller)
    return str(message.author) if message.author else message.author_label


def sign(messages: Iterable[TicketMessage]) -> list[TicketMessage]:
    """The messages with ``.signature`` set (the seller's name read once for them all)."""
    rows = list(messages)
    seller = None
    if any(
        m.kind != TicketMessage.Kind.CUSTOMER
        and not (m.author and (m.author.get_full_name().strip() or m.author.first_name.strip()))
        for m in rows
    ):
        seller = seller_name()
    for m in rows:
        m.signature = signature(m, seller=seller)
    return rows


def ticket_language(ticket: Ticket) -> str:
    """The language the platform's own messages on ``ticket`` are written in (at the time they
    are written): its requester's, else the account's."""
    person = ticket.requester
    return (person.language if person else "") or account_language(ticket.account)
