"""The weekly workshop view: per client, every open card that waits on them, on us, or is
blocked (with its reason), and since when — what the owner reviews before meeting them."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet

from otomat.projects.board.models import OPEN_STATUSES, Card, Project, Side

SORTS = {
    "since": ("move_since", "pk"),
    "-since": ("-move_since", "-pk"),
    "project": ("project__title", "move_since", "pk"),
    "title": ("title", "pk"),
}


@dataclass
class ClientRow:
    account: object
    waiting_on_client: list[Card] = field(default_factory=list)
    waiting_on_us: list[Card] = field(default_factory=list)
    blocked: list[Card] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "client": len(self.waiting_on_client),
            "us": len(self.waiting_on_us),
            "blocked": len(self.blocked),
        }


def open_cards(account=None) -> QuerySet[Card]:
    cards = Card.objects.filter(
        status__in=OPEN_STATUSES,
        project__status__in=[Project.Status.ACTIVE, Project.Status.ON_HOLD],
    ).select_related("project__account", "assignee", "milestone")
    return cards.filter(project__account=account) if account is not None else cards


def review(*, sort: str = "since", account=None) -> list[ClientRow]:
    """One row per client with open cards, the clients with the most waiting on us first. A
    blocked card is listed under blocked only (whose move it is stays on the card); ``sort``
    orders each list (a key of SORTS; anything else: oldest move first)."""
    order = SORTS.get(sort, SORTS["since"])
    rows: dict[int, ClientRow] = {}
    for card in open_cards(account).order_by(*order):
        row = rows.setdefault(card.project.account_id, ClientRow(account=card.project.account))
        if card.status == Card.Status.BLOCKED:
            row.blocked.append(card)
        elif card.whose_move == Side.CLIENT:
            row.waiting_on_client.append(card)
        else:
            row.waiting_on_us.append(card)
    return sorted(
        rows.values(),
        key=lambda r: (-len(r.blocked) - len(r.waiting_on_us), r.account.name.lower()),
    )


def totals(rows: list[ClientRow]) -> dict[str, int]:
    return {key: sum(r.counts[key] for r in rows) for key in ("client", "us", "blocked")}
