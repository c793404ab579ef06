"""Comments on cards by email and Telegram, through support's channels (no second mailbox or
bot): the board registers the subject tag "[C-42]" with support's inbound mail
(``inbound.register_subject_handler``) and a message handler with the owner's bot
(``notify.services.MESSAGE_HANDLERS``), both in ``BoardConfig.ready()``.

By Telegram: "C-42 text", or a Telegram "Reply" to a notice about card C-42. Only a person of
the card's account (or staff) may write on it; anyone else learns that there is no such card.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _
from django.utils.translation import override

from otomat.accounts.models import User
from otomat.projects.board import services
from otomat.projects.board.models import Card, CardEvent

PREFIX = "C-"
CARD_AT_START = re.compile(r"^C-(\d{1,12})[\s:]+(.+)$", re.S | re.I)
CARD_IN_TEXT = re.compile(r"\bC-(\d{1,12})\b")


def _card_for(user: User, number: str) -> Card | None:
    card = Card.objects.select_related("project").filter(pk=int(number)).first()
    if card is None:
        return None
    if user.is_staff or services.is_client_of(user, card.project):
        return card
    return None


def handle_telegram(user: User, text: str, *, replied_to: str = "") -> str | None:
    """A message to the owner's bot: a comment on a card when it names one (or answers a
    notice that does); None otherwise, so support's ticket handler takes it."""
    text = (text or "").strip()
    match = CARD_AT_START.match(text)
    quoted = CARD_IN_TEXT.search(replied_to or "") if not match else None
    if not (match or quoted):
        return None
    number, body = match.groups() if match else (quoted.group(1), text)
    with override(user.language):
        card = _card_for(user, number)
        if card is None:
            return _("There is no card C-%(number)s on your account.") % {"number": number}
        try:
            services.comment(card, author=user, body=body, channel=CardEvent.Channel.TELEGRAM)
        except services.BoardError as exc:
            return str(exc)
        return _("Added to %(card)s.") % {"card": card.reference}


def handle_email(reference: str, *, user: User | None, body: str, **_kwargs) -> tuple[int, str]:
    """Mail whose subject carries "[C-42]": the sender's comment on that card, when the sender
    is a person of its account (or staff). Returns (status, detail) for support's log."""
    if user is None:
        return 400, "unknown sender"
    card = _card_for(user, reference.removeprefix(PREFIX))
    if card is None:
        return 400, "sender may not write to that card"
    try:
        services.comment(card, author=user, body=body, channel=CardEvent.Channel.EMAIL)
    except services.BoardError as exc:
        return 400, str(exc)
    return 200, f"added to {card.reference}"
