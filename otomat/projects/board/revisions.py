"""Revision rounds: a change the client asks for on a card they already accepted counts one
round of the offer's quota ("2 of 3 used") and becomes a new card for us. Past the quota the
change becomes a support ticket (linked to the new card through its ``RevisionRound``), and the
owner answers it with a paid quote through support's quote flow: the client accepts the quote,
billing issues the invoice, and once it is paid the card is ours to do (``on_invoice_paid``).
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from otomat.accounts.models import User
from otomat.billing.money import Money
from otomat.notify.services import notify_user
from otomat.projects.board import services
from otomat.projects.board.models import Card, CardEvent, Project, RevisionRound, Side
from otomat.projects.board.services import BoardError
from otomat.support import quotes, tickets
from otomat.support.models import Quote, Ticket

CHANGEABLE = [Card.Status.ACCEPTED, Card.Status.RELEASED]


def usage_text(project: Project) -> str:
    """ "2 of 3 used" (and the paid ones past the quota, when there are any)."""
    text = _("%(used)d of %(quota)d used") % {
        "used": project.revisions_used,
        "quota": project.revision_quota,
    }
    paid = project.revision_rounds.filter(within_quota=False).count()
    if paid:
        text += " · " + _("%(n)d past the quota") % {"n": paid}
    return text


def request_change(
    card: Card, *, user: User, body: str, now: datetime | None = None
) -> RevisionRound:
    """The client asks for a change on an accepted (or released) card. Within the quota it
    uses the next round and a change card goes to "to do"; past it, a ticket is opened for the
    change and the change card waits on us (the owner's quote). Raises BoardError."""
    now = now or timezone.now()
    if not services.is_client_of(user, card.project):
        raise BoardError(_("Only the client asks for changes."))
    body = services._body(body)
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=card.project_id)
        card = Card.objects.select_for_update().get(pk=card.pk)
        if card.status not in CHANGEABLE:
            raise BoardError(
                _("Ask for changes once the card is accepted; until then, comment on it.")
            )
        within = project.revisions_used < project.revision_quota
        number = project.revision_rounds.count() + 1
        change = Card.objects.create(
            project=project,
            milestone=card.milestone,
            title=(_("Change: %(title)s") % {"title": card.title})[: services.MAX_TITLE],
            description=body,
            is_change_request=True,
            position=card.position,
            whose_move=Side.US,
            move_since=now,
            status_since=now,
            status=Card.Status.TODO if within else Card.Status.WAITING_US,
            assignee=card.assignee,
            created_at=now,
        )
        ticket = None
        if not within:
            ticket = _open_ticket(project, change, user=user, body=body, now=now)
        revision = RevisionRound.objects.create(
            project=project,
            card=change,
            number=number,
            within_quota=within,
            request=body,
            requested_by=user,
            ticket=ticket,
            counted_at=now,
        )
        if within:
            services.bump_revisions_used(project)
            project.revisions_used += 1
        note = (
            _("Change requested: revision round %(used)d of %(quota)d.")
            % {"used": project.revisions_used, "quota": project.revision_quota}
            if within
            else _("Change requested past the %(quota)d included rounds: a paid quote follows.")
            % {"quota": project.revision_quota}
        )
        for target in (card, change):
            CardEvent.objects.create(
                card=target,
                kind=CardEvent.Kind.SYSTEM,
                author=user,
                side=Side.CLIENT,
                body=f"{note}\n\n{body}" if target is change else note,
                created_at=now,
            )
        services._audit(
            "board.revision_requested",
            actor=user,
            project=project,
            target=change,
            number=number,
            within_quota=within,
            ticket=ticket.number if ticket else "",
        )
        for person in services.staff_people(change):
            notify_user(
                person,
                "board/change_requested",
                {**services.card_context(change), "revision": revision, "author": user},
                dedupe_key=f"board-revision:{revision.pk}:{person.pk}",
            )
    return revision


def _open_ticket(project: Project, change: Card, *, user: User, body: str, now) -> Ticket:
    subject = _("Change request %(card)s on %(project)s") % {
        "card": change.reference,
        "project": project.title,
    }
    try:
        return tickets.open_ticket(
            account=project.account,
            requester=user,
            subject=subject[:200],
            body=body,
            kind=Ticket.Kind.QUESTION,
            now=now,
        )
    except tickets.TicketError as exc:
        raise BoardError(str(exc)) from exc


def send_change_quote(
    revision: RevisionRound,
    *,
    staff: User,
    price: Money,
    days: int,
    description: str = "",
    now: datetime | None = None,
) -> Quote:
    """The owner's paid quote for a change past the quota, sent on its ticket (support's
    out-of-scope reply and quote). The change card then waits on the client. Raises
    BoardError."""
    services._require_staff(staff)
    if revision.within_quota or revision.ticket_id is None:
        raise BoardError(_("This change is within the included rounds: no quote is needed."))
    if price.currency != revision.project.currency:
        raise BoardError(
            _("Quote in the project's currency (%(c)s).") % {"c": revision.project.currency}
        )
    try:
        with transaction.atomic():
            quote = quotes.send_quote(
                revision.ticket,
                staff=staff,
                price=price,
                days=days,
                description=description or revision.card.title,
                now=now,
            )
            card = Card.objects.select_for_update().get(pk=revision.card_id)
            services._apply_status(
                card,
                Card.Status.WAITING_CLIENT,
                now=now or timezone.now(),
                actor=staff,
                side=Side.US,
            )
            services._audit(
                "board.revision_quoted",
                actor=staff,
                project=revision.project,
                target=card,
                quote=quote.pk,
                price_minor=price.amount_minor,
                days=days,
            )
    except tickets.TicketError as exc:
        raise BoardError(str(exc)) from exc
    return quote


def on_invoice_paid(sender, invoice, **kwargs) -> None:
    """Billing's signal: the invoice of a change's quote is paid → the change card is ours to
    do (inside the payment's transaction)."""
    quote = Quote.objects.filter(invoice=invoice).only("ticket_id").first()
    if quote is None:
        return
    revision = RevisionRound.objects.filter(ticket_id=quote.ticket_id).first()
    if revision is None:
        return
    card = Card.objects.select_for_update().get(pk=revision.card_id)
    if card.status != Card.Status.WAITING_CLIENT:
        return
    now = invoice.paid_at or timezone.now()
    services._apply_status(card, Card.Status.TODO, now=now, actor=None)
    CardEvent.objects.create(
        card=card,
        kind=CardEvent.Kind.SYSTEM,
        body=f"Invoice {invoice.number} paid: the change is ours to do.",
        created_at=now,
    )
    services._audit(
        "board.revision_paid",
        actor=None,
        project=revision.project,
        target=card,
        invoice=invoice.number,
    )
