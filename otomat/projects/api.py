"""REST endpoints of leads and the estimator (``/api/v1/projects/``).

Public (no token): the offered options and the range of a selection (computed, not stored).
With a token: leads — staff see and enter every lead; a customer reads their own account's
(another account's is a 404, exactly like a missing one) and cannot enter one (403)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from django.db.models import Q
from django.shortcuts import get_object_or_404
from ninja import Path, Query, Router, Schema, Status
from pydantic import Field

from otomat.api.lists import Offset, narrowed, rows_limit, window
from otomat.api.schemas import Line, Text, answers, line
from otomat.projects import estimator, leads
from otomat.projects.models import Estimate, Lead

router = Router(tags=["projects"])
Limit = rows_limit(50, most=200)
LANGUAGE = Annotated[
    Line, Query("", max_length=8, description="en, id or pl (default: the request's).")
]


class EstimateSelectionIn(Schema):
    key: Line = line(64)
    quantity: int = Field(1, ge=0, le=1000)


class EstimateIn(Schema):
    selections: list[EstimateSelectionIn] = Field(
        max_length=estimator.MAX_SELECTIONS,
        description="What is picked ([] for nothing: the base range); a quantity of 0 is not picked.",
    )
    language: Line = line(8, default="", description="en, id or pl (default: the request's).")


class EstimateLineOut(Schema):
    key: str
    title: str
    quantity: int
    weeks_min: str
    weeks_max: str
    cost_min_minor: int
    cost_max_minor: int


class EstimateOut(Schema):
    currency: str
    language: str
    weeks_min: str
    weeks_max: str
    cost_min_minor: int = Field(description="In the currency's minor unit (grosze, cents, rupiah).")
    cost_max_minor: int
    summary: str = Field(description='For people: "4–7 weeks, PLN 18,000–31,000".')
    lines: list[EstimateLineOut]


class EstimatorOptionOut(Schema):
    key: str
    kind: str
    group: str
    title: str
    description: str
    max_quantity: int
    requires: list[str]
    weeks_min: str
    weeks_max: str
    cost_min_minor: int
    cost_max_minor: int


class StoredEstimateOut(EstimateOut):
    token: str
    created_at: datetime


class LeadOut(Schema):
    id: int
    name: str
    email: str
    phone: str
    company: str
    message: str
    language: str
    timezone: str
    source: str
    status: str
    account: int | None
    assignee: str | None
    created_at: datetime
    estimates: list[StoredEstimateOut] = []


class LeadIn(Schema):
    name: Line = line(200, min_length=1)
    email: Line = line(254, description="Checked like the forms check it (400 when invalid).")
    phone: Line = line(40, default="")
    company: Line = line(200, default="")
    message: Text = Field("", max_length=leads.MAX_MESSAGE)
    language: Line = line(8, default="en")


def _language(value: str) -> str:
    from django.utils.translation import get_language

    if value and value[:2] not in leads.LANGUAGES:
        from ninja.errors import HttpError

        raise HttpError(400, f"Unknown language {value!r}; one of en, id, pl")
    return (value or get_language() or "en")[:2]


def _estimate_out(result, language: str) -> dict:
    lines = [line.as_json() if hasattr(line, "as_json") else line for line in result.lines]
    return {
        "currency": result.currency,
        "language": result.language,
        "weeks_min": str(result.weeks_min),
        "weeks_max": str(result.weeks_max),
        "cost_min_minor": result.cost_min_minor,
        "cost_max_minor": result.cost_max_minor,
        "summary": estimator.summary(result, language),
        "lines": lines,
    }


@router.get("/options", auth=None, response=answers({200: list[EstimatorOptionOut]}, 400, 413, 422))
def list_options(request, language: LANGUAGE = ""):
    language = _language(language)
    return [
        {
            "key": o.key,
            "kind": o.kind,
            "group": o.text("group", language),
            "title": o.text("title", language),
            "description": o.text("description", language),
            "max_quantity": 1 if o.kind == o.Kind.CHOICE else o.max_quantity,
            "requires": [r.key for r in o.requires.all()],
            "weeks_min": str(o.weeks_min),
            "weeks_max": str(o.weeks_max),
            "cost_min_minor": o.cost_min_minor,
            "cost_max_minor": o.cost_max_minor,
        }
        for o in estimator.active_options()
    ]


@router.post(
    "/estimate",
    auth=None,
    response=answers({200: EstimateOut}, 400, 413, 422),
    description="The range of the picked options (the base range plus each option's range "
    "times its quantity); nothing is stored. 400 names an unknown or withdrawn option, a "
    "quantity out of range or a missing dependency.",
)
def compute_estimate(request, body: EstimateIn):
    language = _language(body.language)
    try:
        result = estimator.compute(
            [{"key": s.key, "quantity": s.quantity} for s in body.selections], language=language
        )
    except estimator.EstimateError as exc:
        return Status(400, {"detail": str(exc)})
    return _estimate_out(result, language)


def _scoped(request):
    qs = Lead.objects.select_related("assignee")
    if request.user.is_staff:
        return qs
    account = request.user.account
    return qs.filter(account=account) if account else qs.none()


def _lead_out(lead: Lead, *, full: bool = False) -> dict:
    data = {
        "id": lead.pk,
        "name": lead.name,
        "email": lead.email,
        "phone": lead.phone,
        "company": lead.company,
        "message": lead.message,
        "language": lead.language,
        "timezone": lead.timezone,
        "source": lead.source,
        "status": lead.status,
        "account": lead.account_id,
        "assignee": lead.assignee.email if lead.assignee_id else None,
        "created_at": lead.created_at,
    }
    if full:
        data["estimates"] = [
            {
                **_estimate_out(e, e.language),
                "token": e.token,
                "created_at": e.created_at,
            }
            for e in Estimate.objects.filter(lead=lead)
        ]
    return data


@router.get("/leads", response=answers({200: list[LeadOut]}, 400, 413, 422))
def list_leads(
    request,
    status: str | None = None,
    source: str | None = None,
    q: Annotated[Line, Query("", max_length=100)] = "",
    limit: Limit = 50,
    offset: Offset = 0,
):
    rows = window(limit, offset, most=200)
    qs = narrowed(_scoped(request), "status", status, Lead.Status.values)
    qs = narrowed(qs, "source", source, Lead.Source.values)
    if q.strip():
        term = q.strip()
        qs = qs.filter(
            Q(name__icontains=term) | Q(email__icontains=term) | Q(company__icontains=term)
        )
    return [_lead_out(lead) for lead in qs.order_by("-created_at", "-id")[rows]]


@router.get("/leads/{lead_id}", response=answers({200: LeadOut}, 404, 422))
def get_lead(request, lead_id: Annotated[int, Path(ge=1, le=2**62)]):
    return _lead_out(get_object_or_404(_scoped(request), pk=lead_id), full=True)


@router.post("/leads", response=answers({201: LeadOut}, 400, 403, 413, 422))
def create_lead(request, body: LeadIn):
    if not request.user.is_staff:
        return Status(403, {"detail": "Only staff enter leads."})
    if body.language not in leads.LANGUAGES:
        return Status(400, {"detail": "Unknown language; one of en, id, pl."})
    try:
        lead = leads.create_lead_by_hand(
            actor=request.user,
            name=body.name,
            email=body.email,
            phone=body.phone,
            company=body.company,
            message=body.message,
            language=body.language,
        )
    except leads.LeadError as exc:
        return Status(400, {"detail": str(exc)})
    return Status(201, _lead_out(lead, full=True))
