"""Board endpoints of the REST API (/api/v1/projects/board): a client's own projects and cards,
comments by both sides, the client's acceptance on staging; staff see every project and set a
card's status or add cards. Internal notes never reach clients; another account's project or
card is a 404, exactly like a missing one."""

from __future__ import annotations

from datetime import datetime

from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from otomat.api.schemas import Line, Text, answers, line
from otomat.projects.board import revisions, services
from otomat.projects.board.models import Card, CardEvent, Project

router = Router(tags=["projects"])


class ProjectOut(Schema):
    id: int
    title: str
    status: str
    account: str
    revision_quota: int
    revisions_used: int
    revisions: str
    release_date: str | None
    open_cards: int
    waiting_on_client: int
    time: str | None = None  # staff only: "32 h of 40–60 h"


class EventOut(Schema):
    kind: str
    side: str
    author: str
    body: str
    channel: str
    to_status: str
    created_at: datetime


class CardOut(Schema):
    id: int
    reference: str
    project: int
    title: str
    description: str
    status: str
    blocked_reason: str
    blocked_note: str
    whose_move: str
    move_since: datetime
    staging_url: str
    accepted_at: datetime | None
    milestone: str | None
    events: list[EventOut] = []


class CommentIn(Schema):
    body: Text = Field(max_length=services.MAX_BODY)
    internal: bool = False  # staff only: a note the client never sees


class StatusIn(Schema):
    status: Line = line(20, description=", ".join(Card.Status.values))
    reason: Line = line(20, default="", description="When blocked: technical or communication.")
    note: Line = line(300, default="")


class CardIn(Schema):
    title: Line = line(200)
    description: Text = Field("", max_length=services.MAX_BODY)


class ChangeIn(Schema):
    body: Text = Field(max_length=services.MAX_BODY)


def _projects(request):
    qs = Project.objects.select_related("account")
    if request.user.is_staff:
        return qs
    account = request.user.account
    return qs.filter(account=account) if account else qs.none()


def _cards(request):
    qs = Card.objects.select_related("project__account", "milestone")
    if request.user.is_staff:
        return qs
    account = request.user.account
    return qs.filter(project__account=account) if account else qs.none()


def _project_out(project: Project, request) -> dict:
    return {
        "id": project.pk,
        "title": project.title,
        "status": project.status,
        "account": project.account.name,
        "revision_quota": project.revision_quota,
        "revisions_used": project.revisions_used,
        "revisions": revisions.usage_text(project),
        "release_date": project.release_date.isoformat() if project.release_date else None,
        "open_cards": project.cards.exclude(status=Card.Status.RELEASED).count(),
        "waiting_on_client": project.cards.filter(whose_move="client").count(),
        "time": services.time_summary(project)["text"] if request.user.is_staff else None,
    }


def _card_out(card: Card, request, *, full: bool = False) -> dict:
    data = {
        "id": card.pk,
        "reference": card.reference,
        "project": card.project_id,
        "title": card.title,
        "description": card.description,
        "status": card.status,
        "blocked_reason": card.blocked_reason,
        "blocked_note": card.blocked_note,
        "whose_move": card.whose_move,
        "move_since": card.move_since,
        "staging_url": card.staging_url,
        "accepted_at": card.accepted_at,
        "milestone": card.milestone.title if card.milestone else None,
    }
    if full:
        events = card.events.select_related("author")
        if not request.user.is_staff:
            events = events.exclude(kind=CardEvent.Kind.NOTE)
        data["events"] = [
            {
                "kind": e.kind,
                "side": e.side,
                "author": (e.author.get_full_name() or e.author.email) if e.author else "Otomat",
                "body": e.body,
                "channel": e.channel,
                "to_status": e.to_status,
                "created_at": e.created_at,
            }
            for e in events
        ]
    return data


def _refused(exc: services.BoardError):
    return Status(400, {"detail": str(exc)})


@router.get("/projects", response=answers({200: list[ProjectOut]}))
def list_projects(request):
    return [_project_out(p, request) for p in _projects(request).order_by("-created_at")[:200]]


@router.get("/projects/{project_id}", response=answers({200: ProjectOut}, 404, 422))
def get_project(request, project_id: int):
    return _project_out(get_object_or_404(_projects(request), pk=project_id), request)


@router.get(
    "/projects/{project_id}/cards", response=answers({200: list[CardOut]}, 400, 404, 413, 422)
)
def list_cards(request, project_id: int, whose_move: str | None = None):
    if whose_move is not None and whose_move not in ("client", "us"):
        raise HttpError(400, "whose_move must be client or us")
    project = get_object_or_404(_projects(request), pk=project_id)
    cards = project.cards.select_related("milestone").order_by("position", "pk")
    if whose_move is not None:
        cards = cards.filter(whose_move=whose_move)
    return [_card_out(c, request) for c in cards[:500]]


@router.post(
    "/projects/{project_id}/cards", response=answers({201: CardOut}, 400, 403, 404, 413, 422)
)
def add_card(request, project_id: int, body: CardIn):
    project = get_object_or_404(_projects(request), pk=project_id)
    if not request.user.is_staff:
        return Status(403, {"detail": "Only staff add cards."})
    try:
        card = services.add_card(
            project, title=body.title, description=body.description, actor=request.user
        )
    except services.BoardError as exc:
        return _refused(exc)
    return Status(201, _card_out(card, request, full=True))


@router.get("/cards/{card_id}", response=answers({200: CardOut}, 404, 422))
def get_card(request, card_id: int):
    return _card_out(get_object_or_404(_cards(request), pk=card_id), request, full=True)


@router.post("/cards/{card_id}/comments", response=answers({201: CardOut}, 400, 404, 413, 422))
def add_comment(request, card_id: int, body: CommentIn):
    card = get_object_or_404(_cards(request), pk=card_id)
    try:
        services.comment(
            card,
            author=request.user,
            body=body.body,
            internal=body.internal,
            channel=CardEvent.Channel.API,
        )
    except services.BoardError as exc:
        return _refused(exc)
    card.refresh_from_db()
    return Status(201, _card_out(card, request, full=True))


@router.post("/cards/{card_id}/status", response=answers({200: CardOut}, 400, 403, 404, 413, 422))
def set_status(request, card_id: int, body: StatusIn):
    card = get_object_or_404(_cards(request), pk=card_id)
    if not request.user.is_staff:
        return Status(403, {"detail": "Only staff set a card's status."})
    try:
        card = services.set_status(
            card, body.status, reason=body.reason, note=body.note, actor=request.user
        )
    except services.BoardError as exc:
        return _refused(exc)
    return _card_out(card, request, full=True)


@router.post("/cards/{card_id}/accept", response=answers({200: CardOut}, 400, 404, 422))
def accept(request, card_id: int):
    card = get_object_or_404(_cards(request), pk=card_id)
    try:
        card = services.accept_on_staging(card, user=request.user)
    except services.BoardError as exc:
        return _refused(exc)
    return _card_out(card, request, full=True)


@router.post("/cards/{card_id}/changes", response=answers({201: CardOut}, 400, 404, 413, 422))
def request_change(request, card_id: int, body: ChangeIn):
    card = get_object_or_404(_cards(request), pk=card_id)
    try:
        revision = revisions.request_change(card, user=request.user, body=body.body)
    except services.BoardError as exc:
        return _refused(exc)
    return Status(201, _card_out(revision.card, request, full=True))
