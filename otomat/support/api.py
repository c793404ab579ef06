"""Support endpoints of the REST API: tickets (list, read, open, reply, resolve) scoped to the
token's account (staff see every ticket and may answer), and knowledge-base search. Internal
notes never leave through the API to customers; another account's ticket is a 404."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status
from pydantic import Field

from otomat.api.lists import Offset, narrowed, rows_limit, window
from otomat.api.schemas import Line, Text, answers, line
from otomat.instances.models import Instance
from otomat.support import entitlements, kb, people, tickets
from otomat.support.models import Article, Ticket, TicketMessage

router = Router(tags=["support"])
Limit = rows_limit(50, most=200)


class MessageOut(Schema):
    kind: str
    author: str
    body: str
    channel: str
    created_at: datetime


class EntitlementOut(Schema):
    support_until: datetime
    revision_quota: int
    revisions_used: int
    included_minutes: int
    minutes_used: int


class TicketOut(Schema):
    number: str
    subject: str
    kind: str
    status: str
    priority: str
    instance: UUID | None
    out_of_scope: bool
    counts_as_revision: bool
    created_at: datetime
    updated_at: datetime
    response_due: datetime | None
    resolution_due: datetime | None
    entitlement: EntitlementOut | None = None
    messages: list[MessageOut] = []


class TicketIn(Schema):
    subject: Line = line(200)
    body: Text = Field(max_length=tickets.MAX_BODY)
    kind: Line = line(20, default="question")
    priority: Line = line(20, default="normal")
    instance: UUID | None = None


class ReplyIn(Schema):
    body: Text = Field(max_length=tickets.MAX_BODY)
    internal: bool = False  # staff only: a note the customer never sees


class StatusIn(Schema):
    status: Line = line(20, description="open, waiting (on the customer) or resolved.")


class ArticleOut(Schema):
    slug: str
    title: str
    category: str
    body: str
    language: str


def _scoped(request):
    qs = Ticket.objects.select_related("instance", "account").exclude(status=Ticket.Status.MERGED)
    if request.user.is_staff:
        return qs
    account = request.user.account
    return qs.filter(account=account) if account else qs.none()


def _out(ticket: Ticket, *, request, full: bool = False) -> dict:
    data = {
        "number": ticket.number,
        "subject": ticket.subject,
        "kind": ticket.kind,
        "status": ticket.status,
        "priority": ticket.priority,
        "instance": ticket.instance_id,
        "out_of_scope": ticket.out_of_scope,
        "counts_as_revision": ticket.counts_as_revision,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
        "response_due": ticket.response_due,
        "resolution_due": ticket.resolution_due,
    }
    if full:
        messages = ticket.messages.select_related("author")
        if not request.user.is_staff:
            messages = messages.exclude(kind=TicketMessage.Kind.NOTE)
        data["messages"] = [
            {
                "kind": m.kind,
                "author": "Otomat" if m.kind == TicketMessage.Kind.SYSTEM else m.signature,
                "body": m.body,
                "channel": m.channel,
                "created_at": m.created_at,
            }
            for m in people.sign(messages)
        ]
        if ticket.instance is not None:
            ent = entitlements.for_instance(ticket.instance)
            data["entitlement"] = {
                "support_until": ent.support_until,
                "revision_quota": ent.revision_quota,
                "revisions_used": ent.revisions_used,
                "included_minutes": ent.included_minutes,
                "minutes_used": ent.minutes_used,
            }
    return data


@router.get("/tickets", response=answers({200: list[TicketOut]}, 400, 413, 422))
def list_tickets(
    request,
    status: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
):
    rows = window(limit, offset, most=200)
    qs = narrowed(_scoped(request), "status", status, Ticket.Status.values)
    return [_out(t, request=request) for t in qs.order_by("-updated_at", "-id")[rows]]


@router.get("/tickets/{number}", response=answers({200: TicketOut}, 404, 422))
def get_ticket(request, number: Line):
    return _out(get_object_or_404(_scoped(request), number=number), request=request, full=True)


@router.post("/tickets", response=answers({201: TicketOut}, 400, 413, 422))
def open_ticket(request, body: TicketIn):
    account = request.user.account
    if account is None:
        return Status(400, {"detail": "Only customer accounts open tickets here."})
    instance = None
    if body.instance is not None:
        instance = Instance.objects.filter(pk=body.instance, account=account).first()
        if instance is None:
            return Status(400, {"detail": "Unknown instance."})
    try:
        ticket = tickets.open_ticket(
            account=account,
            requester=request.user,
            subject=body.subject,
            body=body.body,
            instance=instance,
            kind=body.kind,
            priority=body.priority,
        )
    except tickets.TicketError as exc:
        return Status(400, {"detail": str(exc)})
    return Status(201, _out(ticket, request=request, full=True))


@router.post("/tickets/{number}/messages", response=answers({200: TicketOut}, 400, 404, 413, 422))
def reply(request, number: Line, body: ReplyIn):
    ticket = get_object_or_404(_scoped(request), number=number)
    try:
        if request.user.is_staff:
            tickets.staff_reply(ticket, staff=request.user, body=body.body, internal=body.internal)
        else:
            if body.internal:
                return Status(400, {"detail": "Only staff write internal notes."})
            ticket = tickets.customer_message(ticket, author=request.user, body=body.body)
    except tickets.TicketError as exc:
        return Status(400, {"detail": str(exc)})
    ticket.refresh_from_db()
    return _out(ticket, request=request, full=True)


@router.post("/tickets/{number}/status", response=answers({200: TicketOut}, 400, 404, 413, 422))
def set_status(request, number: Line, body: StatusIn):
    ticket = get_object_or_404(_scoped(request), number=number)
    try:
        ticket = tickets.set_status(ticket, body.status, actor=request.user)
    except tickets.TicketError as exc:
        return Status(400, {"detail": str(exc)})
    return _out(ticket, request=request, full=True)


@router.get(
    "/articles",
    response=answers({200: list[ArticleOut]}, 413, 422),
    description=(
        "Published articles matching `q` (all when it is empty), 20 at most, in the request's"
        " language (Accept-Language) first; another language only where an article has no"
        " translation in it."
    ),
)
def search_articles(request, q: Annotated[Line, Query("", max_length=200)] = ""):
    language = kb.reader_language()
    published = Article.objects.filter(status=Article.Status.PUBLISHED)
    found = (
        kb.search(q, limit=20, language=language)
        if q.strip()
        else kb.reader_first(
            list(kb.for_reader(published, language).select_related("category")[:20]), language
        )
    )
    return [
        {
            "slug": a.slug,
            "title": a.title,
            "category": a.category.name,
            "body": a.body,
            "language": a.language,
        }
        for a in found
    ]
