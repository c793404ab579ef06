"""Offers endpoints of the REST API (/api/v1/projects/offers): staff list and create offers
(from scratch or from an estimate) and read any; a customer reads their own account's offers
(never drafts) and contracts. Another account's offer or contract is a 404, like a missing one;
creating is staff only (403). Bad input is a 400 (or 422 for the wrong shape) and saves nothing.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status
from pydantic import Field

from otomat.accounts.models import Account
from otomat.api.lists import Offset, narrowed, rows_limit, window
from otomat.api.schemas import Line, Text, answers, line
from otomat.projects.models import Estimate, Lead
from otomat.projects.offers import services
from otomat.projects.offers.contracts import verify
from otomat.projects.offers.models import Contract, Offer

router = Router(tags=["projects"])
Limit = rows_limit(50, most=200)


class OfferLineOut(Schema):
    kind: str
    title: str
    description: str
    quantity: int
    unit_price_minor: int
    cost_min_minor: int
    cost_max_minor: int
    weeks_min: Decimal
    weeks_max: Decimal


class OfferMilestoneOut(Schema):
    title: str
    weeks: Decimal | None
    due_date: dt.date | None
    amount_minor: int | None
    done: bool


class OfferStepOut(Schema):
    label: str
    trigger: str
    milestone: str | None
    percent: Decimal | None
    amount_minor: int = Field(description="This payment's amount, in the currency's minor unit.")
    invoice: str | None


class OfferOut(Schema):
    number: str
    title: str
    summary: str
    status: str
    version: int
    currency: str
    language: str
    valid_until: dt.date
    revision_rounds: int
    low_minor: int
    high_minor: int
    agreed_total_minor: int | None
    lines: list[OfferLineOut] = []
    milestones: list[OfferMilestoneOut] = []
    schedule: list[OfferStepOut] = []
    contract: str | None = None


class OfferContractOut(Schema):
    number: str
    offer: str
    status: str
    language: str
    document_sha256: str
    signed_sha256: str
    signed_at: dt.datetime | None
    intact: bool = Field(description="Whether the stored PDFs still match their SHA-256.")


class OfferLineIn(Schema):
    kind: Line = line(8, default="exact", description="exact or range")
    title: Line = line(200)
    description: Text = Field("", max_length=5000)
    quantity: int = 1
    unit_price_minor: int = 0
    cost_min_minor: int = 0
    cost_max_minor: int = 0
    weeks_min: Decimal = Decimal(0)
    weeks_max: Decimal = Decimal(0)


class OfferMilestoneIn(Schema):
    title: Line = line(200)
    weeks: Decimal | None = None
    due_date: dt.date | None = None
    amount_minor: int | None = None


class OfferStepIn(Schema):
    label: Line = line(200)
    trigger: Line = line(16, description="signing, milestone or release")
    milestone: int | None = Field(None, description="The index of its milestone (from 0).")
    percent: Decimal | None = None
    amount_minor: int | None = None


class OfferCreateIn(Schema):
    lead: int | None = None
    account: int | None = None
    estimate: int | None = Field(
        None,
        description="Draft the offer from this estimate (its lines as ranges); the other "
        "content fields are then ignored.",
    )
    title: Line = line(200, default="")
    summary: Text = Field("", max_length=20000)
    currency: Line = line(3, default="")
    language: Line = line(8, default="en")
    valid_until: dt.date | None = None
    revision_rounds: int = 2
    agreed_total_minor: int | None = None
    lines: list[OfferLineIn] = Field([], max_length=100)
    milestones: list[OfferMilestoneIn] = Field([], max_length=30)
    schedule: list[OfferStepIn] = Field([], max_length=20)


def _scoped(request):
    qs = Offer.objects.select_related("lead", "account")
    if request.user.is_staff:
        return qs
    account = request.user.account
    return services.for_account(account).select_related("account") if account else qs.none()


def _out(offer: Offer, *, full: bool = False) -> dict:
    t = services.totals(offer)
    contract = Contract.objects.filter(offer=offer).only("number").first()
    data = {
        "number": offer.number,
        "title": offer.title,
        "summary": offer.summary,
        "status": offer.status,
        "version": offer.version,
        "currency": offer.currency,
        "language": offer.language,
        "valid_until": offer.valid_until,
        "revision_rounds": offer.revision_rounds,
        "low_minor": t["low"].amount_minor,
        "high_minor": t["high"].amount_minor,
        "agreed_total_minor": offer.agreed_total_minor,
        "contract": contract.number if contract else None,
    }
    if full:
        data["lines"] = list(offer.lines.all())
        data["milestones"] = [
            {
                "title": m.title,
                "weeks": m.weeks,
                "due_date": m.due_date,
                "amount_minor": m.amount_minor,
                "done": m.done_at is not None,
            }
            for m in offer.milestones.all()
        ]
        data["schedule"] = [
            {
                "label": s.label,
                "trigger": s.trigger,
                "milestone": s.milestone.title if s.milestone else None,
                "percent": s.percent,
                "amount_minor": amount.amount_minor,
                "invoice": s.invoice.number if s.invoice_id else None,
            }
            for s, amount in services.schedule_amounts(offer)
        ]
    return data


@router.get("/offers", response=answers({200: list[OfferOut]}, 400, 413, 422))
def list_offers(request, status: str | None = None, limit: Limit = 50, offset: Offset = 0):
    rows = window(limit, offset, most=200)
    qs = narrowed(_scoped(request), "status", status, Offer.Status.values)
    return [_out(o) for o in qs.order_by("-created_at", "-pk")[rows]]


@router.get("/offers/{number}", response=answers({200: OfferOut}, 404, 422))
def get_offer(request, number: Line):
    return _out(get_object_or_404(_scoped(request), number=number), full=True)


@router.post("/offers", response=answers({201: OfferOut}, 400, 403, 413, 422))
def create_offer(request, body: OfferCreateIn):
    if not request.user.is_staff:
        return Status(403, {"detail": "Only staff write offers."})
    try:
        if body.estimate is not None:
            estimate = Estimate.objects.filter(pk=body.estimate).first()
            if estimate is None:
                return Status(400, {"detail": "Unknown estimate."})
            offer = services.from_estimate(estimate, actor=request.user)
            return Status(201, _out(offer, full=True))
        lead = Lead.objects.filter(pk=body.lead).first() if body.lead is not None else None
        account = (
            Account.objects.filter(pk=body.account, is_internal=False).first()
            if body.account is not None
            else None
        )
        if (body.lead is not None and lead is None) or (body.account is not None and not account):
            return Status(400, {"detail": "Unknown lead or account."})
        if body.valid_until is None:
            return Status(400, {"detail": "valid_until is required."})
        data = services.OfferIn(
            title=body.title,
            currency=body.currency,
            language=body.language,
            valid_until=body.valid_until,
            revision_rounds=body.revision_rounds,
            summary=body.summary,
            agreed_total_minor=body.agreed_total_minor,
            lines=tuple(services.LineIn(**row.dict()) for row in body.lines),
            milestones=tuple(services.MilestoneIn(**row.dict()) for row in body.milestones),
            steps=tuple(services.StepIn(**row.dict()) for row in body.schedule),
        )
        offer = services.create_offer(data, actor=request.user, lead=lead, account=account)
    except services.OfferError as exc:
        return Status(400, {"detail": str(exc)})
    return Status(201, _out(offer, full=True))


def _contracts(request):
    qs = Contract.objects.select_related("offer")
    if request.user.is_staff:
        return qs
    account = request.user.account
    return qs.filter(account=account) if account else qs.none()


def _contract_out(contract: Contract) -> dict:
    return {
        "number": contract.number,
        "offer": contract.offer.number,
        "status": contract.status,
        "language": contract.language,
        "document_sha256": contract.document_sha256,
        "signed_sha256": contract.signed_sha256,
        "signed_at": contract.signed_at,
        "intact": verify(contract),
    }


@router.get("/contracts", response=answers({200: list[OfferContractOut]}, 400, 413, 422))
def list_contracts(request, limit: Limit = 50, offset: Offset = 0):
    rows = window(limit, offset, most=200)
    return [_contract_out(c) for c in _contracts(request).order_by("-created_at", "-pk")[rows]]


@router.get("/contracts/{number}", response=answers({200: OfferContractOut}, 404, 422))
def get_contract(request, number: Line):
    return _contract_out(get_object_or_404(_contracts(request), number=number))
