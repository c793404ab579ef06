"""The board's business actions, one function per action. Each checks who may do it, changes the
rows under a lock inside one transaction, writes the card's event and the audit row itself, and
queues the notices (they go out after commit). Every refusal raises ``BoardError`` with a
sentence for a person and changes nothing.

Revision rounds and the paid quote live in ``revisions.py``, releases in ``releases.py``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from otomat.accounts.models import Account, User
from otomat.accounts.services import record_audit
from otomat.notify.services import notify_user
from otomat.projects.board.models import (
    BLOCKED_MOVE,
    WHOSE_MOVE,
    Card,
    CardEvent,
    Milestone,
    Project,
    Side,
    TimeEntry,
)

MAX_TITLE = 200
MAX_BODY = 10_000
MAX_MINUTES = 24 * 60  # one time entry covers at most a day
HOURS_PER_WEEK = Decimal(getattr(settings, "BOARD_HOURS_PER_WEEK", 40))


class BoardError(Exception):
    """A board action was refused; the message says why, for a person."""


# -- who may act -------------------------------------------------------------------------------


def is_client_of(user: User, project: Project) -> bool:
    """A person of the project's customer account (not staff acting for them)."""
    return (
        user.is_authenticated
        and not user.is_staff
        and user.account is not None
        and user.account.pk == project.account_id
    )


def _require_staff(user: User) -> None:
    if not (user.is_authenticated and user.is_staff):
        raise BoardError(_("Only staff may do this."))


def _require_party(user: User, project: Project) -> str:
    """The side ``user`` writes for on ``project`` ("us" for staff, "client"), or refuse."""
    if user.is_authenticated and user.is_staff:
        return Side.US
    if is_client_of(user, project):
        return Side.CLIENT
    raise BoardError(_("This project is not yours."))


def _title(value: str) -> str:
    value = " ".join((value or "").split())
    if not value:
        raise BoardError(_("Write a title."))
    if len(value) > MAX_TITLE:
        raise BoardError(_("A title has at most %(n)d characters.") % {"n": MAX_TITLE})
    return value


def _body(value: str, *, required: bool = True) -> str:
    value = (value or "").replace("\r\n", "\n").strip()
    if required and not value:
        raise BoardError(_("Write something first."))
    if len(value) > MAX_BODY:
        raise BoardError(_("A text has at most %(n)d characters.") % {"n": MAX_BODY})
    return value


def _hours(value, what: str) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        hours = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise BoardError(_("%(what)s is not a number of hours.") % {"what": what}) from None
    if not hours.is_finite() or hours < 0 or hours > 100_000:
        raise BoardError(_("%(what)s is not a number of hours.") % {"what": what})
    return hours.quantize(Decimal("0.1"))


def _audit(action: str, *, actor: User | None, project: Project, target=None, **data) -> None:
    record_audit(
        action,
        actor=actor,
        account=project.account,
        target=target if target is not None else project,
        data={"project": project.pk, **data},
    )


def client_people(project: Project) -> list[User]:
    """Who hears about a project: the account's responsible person (billing's contact)."""
    person = project.account.responsible
    return [person] if person is not None and person.is_active else []


def staff_people(card: Card) -> list[User]:
    """Who hears of a client's word on a card: its assignee, else the owners."""
    if card.assignee is not None and card.assignee.is_active:
        return [card.assignee]
    return list(User.objects.filter(is_superuser=True, is_active=True).order_by("pk")[:3])


def card_context(card: Card) -> dict:
    from django.urls import reverse

    return {
        "card": card,
        "project": card.project,
        "card_url": settings.BASE_URL + reverse("board:card", args=[card.pk]),
    }


# -- projects ----------------------------------------------------------------------------------


def _weeks_of_offer(offer) -> tuple[Decimal | None, Decimal | None]:
    """The offer's time range: the sum of its lines' weeks, else its estimate's range."""
    totals = offer.lines.aggregate(low=Sum("weeks_min"), high=Sum("weeks_max"))
    if totals["high"]:
        return totals["low"] or Decimal(0), totals["high"]
    if offer.estimate_id:
        return offer.estimate.weeks_min, offer.estimate.weeks_max
    return None, None


def start_project_from_offer(offer, *, actor: User, now: datetime | None = None) -> Project:
    """The board of an accepted offer: its title, account and currency, its milestones copied,
    the revision quota from ``offer.revision_rounds`` and the hours from its weeks range.
    Starting it again returns the same project. Raises BoardError."""
    _require_staff(actor)
    now = now or timezone.now()
    existing = Project.objects.filter(offer=offer).first()
    if existing is not None:
        return existing
    if offer.accepted_at is None:
        raise BoardError(_("The offer is not accepted yet."))
    if offer.account_id is None:
        raise BoardError(_("The offer has no customer account yet."))
    weeks_min, weeks_max = _weeks_of_offer(offer)
    with transaction.atomic():
        project = Project.objects.create(
            account=offer.account,
            offer=offer,
            estimate=offer.estimate,
            title=offer.title[:MAX_TITLE],
            description=getattr(offer, "summary", "") or "",
            currency=offer.currency,
            revision_quota=offer.revision_rounds,
            weeks_min=weeks_min,
            weeks_max=weeks_max,
            hours_min=weeks_min * HOURS_PER_WEEK if weeks_min is not None else None,
            hours_max=weeks_max * HOURS_PER_WEEK if weeks_max is not None else None,
            created_by=actor,
            created_at=now,
        )
        Milestone.objects.bulk_create(
            Milestone(
                project=project,
                title=m.title,
                position=m.position,
                amount_minor=m.amount_minor or 0,
                due_date=m.due_date,
                offer_milestone_id=m.pk,
            )
            for m in offer.milestones.order_by("position", "pk")
        )
        _audit(
            "board.project_started",
            actor=actor,
            project=project,
            offer=offer.number,
            revision_quota=project.revision_quota,
        )
    return project


def start_project(
    *,
    account: Account,
    title: str,
    actor: User,
    description: str = "",
    revision_quota: int = 0,
    hours_min=None,
    hours_max=None,
    milestones: list[str] | None = None,
    now: datetime | None = None,
) -> Project:
    """A project started by hand (no offer). Raises BoardError."""
    _require_staff(actor)
    if account is None or account.status != Account.Status.ACTIVE:
        raise BoardError(_("Choose an active customer account."))
    title = _title(title)
    if not isinstance(revision_quota, int) or not 0 <= revision_quota <= 100:
        raise BoardError(_("Revision rounds: a whole number from 0 to 100."))
    low, high = _hours(hours_min, _("Hours (from)")), _hours(hours_max, _("Hours (to)"))
    if low is not None and high is not None and low > high:
        raise BoardError(_("The range's start is after its end."))
    names = [_title(m) for m in (milestones or []) if (m or "").strip()]
    with transaction.atomic():
        project = Project.objects.create(
            account=account,
            title=title,
            description=_body(description, required=False),
            currency=account.currency,
            revision_quota=revision_quota,
            hours_min=low,
            hours_max=high,
            created_by=actor,
            created_at=now or timezone.now(),
        )
        Milestone.objects.bulk_create(
            Milestone(project=project, title=name, position=i) for i, name in enumerate(names)
        )
        _audit("board.project_started", actor=actor, project=project, by_hand=True)
    return project


def add_milestone(project: Project, *, title: str, actor: User) -> Milestone:
    _require_staff(actor)
    title = _title(title)
    with transaction.atomic():
        last = project.milestones.aggregate(top=Max("position"))["top"]
        milestone = Milestone.objects.create(
            project=project, title=title, position=(last + 1) if last is not None else 0
        )
        _audit("board.milestone_added", actor=actor, project=project, target=milestone)
    return milestone


def finish_project(project: Project, *, actor: User) -> Project:
    """Mark the project finished (every card released). Raises BoardError."""
    _require_staff(actor)
    if project.status == Project.Status.RELEASED:
        return project
    if project.cards.exclude(status=Card.Status.RELEASED).exists():
        raise BoardError(_("Some cards are not released yet."))
    if not project.cards.exists():
        raise BoardError(_("A project without cards cannot be finished."))
    with transaction.atomic():
        Project.objects.filter(pk=project.pk).update(status=Project.Status.RELEASED)
        project.status = Project.Status.RELEASED
        _audit("board.project_finished", actor=actor, project=project)
    return project


# -- cards -------------------------------------------------------------------------------------


def _milestone_of(project: Project, milestone) -> Milestone | None:
    if milestone in (None, ""):
        return None
    if isinstance(milestone, Milestone):
        milestone = milestone.pk
    found = Milestone.objects.filter(project=project, pk=milestone).first()
    if found is None:
        raise BoardError(_("That milestone is not on this project."))
    return found


def _assignee(assignee) -> User | None:
    if assignee in (None, ""):
        return None
    if not isinstance(assignee, User):
        assignee = User.objects.filter(pk=assignee).first()
    if assignee is None or not assignee.is_staff or not assignee.is_active:
        raise BoardError(_("Assign the card to a member of staff."))
    return assignee


def add_card(
    project: Project,
    *,
    title: str,
    actor: User,
    description: str = "",
    milestone=None,
    assignee=None,
    staging_url: str = "",
    is_change_request: bool = False,
    now: datetime | None = None,
) -> Card:
    """A new card in "to do" (our move since now), last on the board. Raises BoardError."""
    _require_staff(actor)
    now = now or timezone.now()
    title = _title(title)
    description = _body(description, required=False)
    milestone = _milestone_of(project, milestone)
    assignee = _assignee(assignee)
    staging_url = _staging_url(staging_url)
    with transaction.atomic():
        last = project.cards.aggregate(top=Max("position"))["top"]
        card = Card.objects.create(
            project=project,
            milestone=milestone,
            title=title,
            description=description,
            assignee=assignee,
            staging_url=staging_url,
            is_change_request=is_change_request,
            position=(last + 1) if last is not None else 0,
            whose_move=WHOSE_MOVE[Card.Status.TODO],
            move_since=now,
            status_since=now,
            created_at=now,
        )
        _audit("board.card_added", actor=actor, project=project, target=card)
    return card


def _staging_url(value: str) -> str:
    from django.core.exceptions import ValidationError
    from django.core.validators import URLValidator

    value = (value or "").strip()
    if not value:
        return ""
    try:
        URLValidator(schemes=["http", "https"])(value)
    except ValidationError:
        raise BoardError(_("The staging link must be an http(s) address.")) from None
    if len(value) > 500:
        raise BoardError(_("The staging link is too long."))
    return value


def update_card(
    card: Card,
    *,
    actor: User,
    title: str,
    description: str = "",
    milestone=None,
    assignee=None,
    staging_url: str = "",
) -> Card:
    """Edit a card's text, milestone, assignee and staging link. Raises BoardError."""
    _require_staff(actor)
    fields = {
        "title": _title(title),
        "description": _body(description, required=False),
        "milestone": _milestone_of(card.project, milestone),
        "assignee": _assignee(assignee),
        "staging_url": _staging_url(staging_url),
    }
    with transaction.atomic():
        for name, value in fields.items():
            setattr(card, name, value)
        card.save(update_fields=[*fields, "updated_at"])
        _audit("board.card_updated", actor=actor, project=card.project, target=card)
    return card


def move_card(card: Card, *, position: int, actor: User, milestone=None) -> Card:
    """Put a card at ``position`` (0 = first) among its project's cards, optionally under
    another milestone; the others shift. Raises BoardError."""
    _require_staff(actor)
    if not isinstance(position, int) or position < 0:
        raise BoardError(_("A position is a whole number from 0."))
    target = _milestone_of(card.project, milestone) if milestone is not None else card.milestone
    with transaction.atomic():
        cards = list(
            Card.objects.select_for_update().filter(project=card.project).order_by("position", "pk")
        )
        moving = next(c for c in cards if c.pk == card.pk)
        cards.remove(moving)
        cards.insert(min(position, len(cards)), moving)
        for i, each in enumerate(cards):
            if each.position != i:
                Card.objects.filter(pk=each.pk).update(position=i)
        Card.objects.filter(pk=card.pk).update(milestone=target)
        _audit(
            "board.card_moved", actor=actor, project=card.project, target=card, position=position
        )
    card.refresh_from_db()
    return card


def _apply_status(
    card: Card,
    status: str,
    *,
    now: datetime,
    reason: str = "",
    note: str = "",
    actor: User | None,
    side: str = "",
) -> bool:
    """Set the locked ``card``'s status and the derived whose-move (its ``move_since`` only
    when the side changes) and record the event. Returns False when nothing changed."""
    move = BLOCKED_MOVE[reason] if status == Card.Status.BLOCKED else WHOSE_MOVE[status]
    if card.status == status and card.blocked_reason == reason and card.blocked_note == note:
        return False
    previous = card.status
    if move != card.whose_move:
        card.whose_move, card.move_since = move, now
    if status != previous:
        card.status_since = now
    card.status = status
    card.blocked_reason = reason if status == Card.Status.BLOCKED else ""
    card.blocked_note = note if status == Card.Status.BLOCKED else ""
    card.save()
    CardEvent.objects.create(
        card=card,
        kind=CardEvent.Kind.STATUS,
        author=actor,
        side=side,
        from_status=previous,
        to_status=status,
        body=card.blocked_note,
        created_at=now,
    )
    return True


def _locked(card: Card) -> Card:
    """The card's row locked FOR UPDATE — only the card's: the project and account are joined
    for reading (MariaDB has no OF, and locks them too)."""
    from django.db import connection

    cards = Card.objects.select_related("project__account")
    if connection.features.has_select_for_update_of:
        return cards.select_for_update(of=("self",)).get(pk=card.pk)
    return cards.select_for_update().get(pk=card.pk)


def set_status(
    card: Card,
    status: str,
    *,
    actor: User,
    reason: str = "",
    note: str = "",
    now: datetime | None = None,
) -> Card:
    """Move a card to ``status`` (staff). "blocked" needs a ``reason`` (technical: our move;
    communication: the client's) and may carry a short note. When the move passes to the
    client, the client is told. Raises BoardError."""
    _require_staff(actor)
    now = now or timezone.now()
    if status not in Card.Status.values:
        raise BoardError(_("Unknown status."))
    reason = (reason or "").strip()
    note = " ".join((note or "").split())
    if status == Card.Status.BLOCKED:
        if reason not in Card.BlockedReason.values:
            raise BoardError(_("Say why it is blocked: technical or communication."))
        if len(note) > 300:
            raise BoardError(_("A note has at most 300 characters."))
    elif reason:
        raise BoardError(_("Only a blocked card has a reason."))
    with transaction.atomic():
        card = _locked(card)
        before = card.whose_move
        if status == Card.Status.STAGING and not card.staging_url:
            raise BoardError(_("Add the staging link before moving the card to staging."))
        if not _apply_status(
            card, status, now=now, reason=reason, note=note, actor=actor, side=Side.US
        ):
            return card
        _audit(
            "board.card_status",
            actor=actor,
            project=card.project,
            target=card,
            status=status,
            reason=reason,
            whose_move=card.whose_move,
        )
        if card.whose_move == Side.CLIENT and before != Side.CLIENT:
            for person in client_people(card.project):
                notify_user(
                    person,
                    "board/your_move",
                    card_context(card),
                    dedupe_key=f"board-move:{card.pk}:{now.isoformat()}",
                )
    return card


def comment(
    card: Card,
    *,
    author: User,
    body: str,
    internal: bool = False,
    channel: str = CardEvent.Channel.WEB,
    now: datetime | None = None,
) -> CardEvent:
    """A comment on a card by the client or staff (``internal``: a staff note the client never
    sees). The client's answer on a card waiting on them gives the move back to us. The other
    side is told (not of internal notes). Raises BoardError."""
    now = now or timezone.now()
    side = _require_party(author, card.project)
    if internal and side != Side.US:
        raise BoardError(_("Only staff write internal notes."))
    if channel not in CardEvent.Channel.values:
        raise BoardError(_("Unknown channel."))
    body = _body(body)
    with transaction.atomic():
        card = _locked(card)
        if card.project.status == card.project.Status.CANCELLED:
            raise BoardError(_("This project is cancelled."))
        event = CardEvent.objects.create(
            card=card,
            kind=CardEvent.Kind.NOTE if internal else CardEvent.Kind.COMMENT,
            author=author,
            side=side,
            body=body,
            channel=channel,
            created_at=now,
        )
        waiting_on_client = card.status == Card.Status.WAITING_CLIENT or (
            card.status == Card.Status.BLOCKED
            and card.blocked_reason == Card.BlockedReason.COMMUNICATION
        )
        if side == Side.CLIENT and waiting_on_client:
            _apply_status(card, Card.Status.WAITING_US, now=now, actor=author, side=side)
        Card.objects.filter(pk=card.pk).update(updated_at=now)
        _audit(
            "board.card_note" if internal else "board.card_comment",
            actor=author,
            project=card.project,
            target=card,
            channel=channel,
            side=side,
        )
        if not internal:
            people = staff_people(card) if side == Side.CLIENT else client_people(card.project)
            kind = "board/client_wrote" if side == Side.CLIENT else "board/we_wrote"
            for person in people:
                if person.pk != author.pk:
                    notify_user(
                        person,
                        kind,
                        {**card_context(card), "event": event, "author": author},
                        dedupe_key=f"board-comment:{event.pk}:{person.pk}",
                    )
    return event


def accept_on_staging(card: Card, *, user: User, now: datetime | None = None) -> Card:
    """The client accepts a card they checked on staging: it is accepted (our move: release
    it), with who and when. Raises BoardError."""
    now = now or timezone.now()
    if not is_client_of(user, card.project):
        raise BoardError(_("Only the client accepts a card."))
    with transaction.atomic():
        card = _locked(card)
        if card.status == Card.Status.ACCEPTED and card.accepted_by_id == user.pk:
            return card
        if card.status != Card.Status.STAGING:
            raise BoardError(_("Only a card on staging can be accepted."))
        card.accepted_at, card.accepted_by = now, user
        _apply_status(card, Card.Status.ACCEPTED, now=now, actor=user, side=Side.CLIENT)
        _audit("board.card_accepted", actor=user, project=card.project, target=card)
        for person in staff_people(card):
            notify_user(
                person,
                "board/accepted",
                {**card_context(card), "author": user},
                dedupe_key=f"board-accepted:{card.pk}:{now.isoformat()}",
            )
    return card


# -- time --------------------------------------------------------------------------------------


def log_time(
    card: Card,
    *,
    staff: User,
    minutes: int,
    day: date | None = None,
    note: str = "",
    now: datetime | None = None,
) -> TimeEntry:
    """Record ``minutes`` spent on a card by ``staff`` on ``day`` (today by default; not in
    the future). Raises BoardError."""
    _require_staff(staff)
    now = now or timezone.now()
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_MINUTES:
        raise BoardError(_("Minutes: a whole number from 1 to %(n)d.") % {"n": MAX_MINUTES})
    today = timezone.localdate(now)
    day = day or today
    if day > today:
        raise BoardError(_("Time cannot be logged for a day that has not come yet."))
    note = " ".join((note or "").split())
    if len(note) > 200:
        raise BoardError(_("A note has at most 200 characters."))
    with transaction.atomic():
        entry = TimeEntry.objects.create(
            card=card, staff=staff, minutes=minutes, date=day, note=note, created_at=now
        )
        _audit("board.time_logged", actor=staff, project=card.project, target=card, minutes=minutes)
    return entry


def _hours_text(value: Decimal) -> str:
    """12.0 → "12", 12.5 → "12.5"."""
    value = value.quantize(Decimal("0.1"))
    return str(int(value)) if value == value.to_integral_value() else str(value)


def time_summary(project: Project) -> dict:
    """Time spent against the estimate: ``minutes``, ``hours`` and the range, ``text`` ("32 h
    of 40–60 h"), and ``state``: "under" (below the range), "within", "over" or "" (no range)."""
    minutes = (
        TimeEntry.objects.filter(card__project=project).aggregate(total=Sum("minutes"))["total"]
        or 0
    )
    hours = (Decimal(minutes) / 60).quantize(Decimal("0.1"))
    spent = _hours_text(hours)
    low, high = project.hours_min, project.hours_max
    if high is None:
        return {
            "minutes": minutes,
            "hours": hours,
            "text": _("%(spent)s h") % {"spent": spent},
            "state": "",
        }
    low = low if low is not None else Decimal(0)
    state = "over" if hours > high else ("within" if hours >= low else "under")
    text = _("%(spent)s h of %(low)s–%(high)s h") % {
        "spent": spent,
        "low": _hours_text(low),
        "high": _hours_text(high),
    }
    return {"minutes": minutes, "hours": hours, "text": text, "state": state}


def bump_revisions_used(project: Project) -> None:
    Project.objects.filter(pk=project.pk).update(revisions_used=F("revisions_used") + 1)
