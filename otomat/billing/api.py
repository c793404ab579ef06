"""Billing endpoints of the REST API: plans, subscriptions, invoices, payment links; staff
record bank payments and read the log of automatic actions. Scoped like the rest of the API:
another account's objects are 404."""

from __future__ import annotations

from datetime import datetime

from django.db.models import F
from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status

from otomat.api.lists import Offset, narrowed, rows_limit, window
from otomat.api.schemas import Line, answers, line
from otomat.billing import payments, subscriptions
from otomat.billing.forms import MoneyField
from otomat.billing.invoicing import BillingError
from otomat.billing.models import BillingAction, Invoice, IssuedDocument, Plan, Subscription

router = Router(tags=["billing"])
Limit = rows_limit(100, most=500)


class PlanOut(Schema):
    id: int
    product: str
    code: str
    name: str
    currency: str
    price: str  # major units as a decimal string, e.g. "150000" or "49.99"
    price_minor: int
    period_months: int
    setup_fee: str
    trial_days: int


class LineOut(Schema):
    description: str
    quantity: int
    net: str
    tax: str
    gross: str


class InvoiceOut(Schema):
    id: int
    number: str
    kind: str
    status: str
    currency: str
    subtotal: str
    tax: str
    total: str
    credit_applied: str
    amount_paid: str
    amount_due: str
    issued_at: datetime
    due_at: datetime
    paid_at: datetime | None
    pay_url: str
    # SHA-256 of the stored PDF (what every download serves); null until it is stored.
    pdf_sha256: str | None
    lines: list[LineOut]


class SubscriptionOut(Schema):
    id: int
    instance: str
    plan: str
    status: str
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool


class CheckoutIn(Schema):
    method: Line = line(20, description="The payment method's code, e.g. `stripe`.")
    return_url: Line = line(
        2000, default="", description="Where the customer returns (http or https)."
    )


class CheckoutOut(Schema):
    redirect_url: str


class PaymentIn(Schema):
    amount: Line = line(30, description='Major units, e.g. "150000" or "49.99".')
    reference: Line = line(200, description="The bank's reference; one payment per reference.")


class ActionOut(Schema):
    at: datetime
    kind: str
    account: str | None
    invoice: str | None
    reason: str
    actor: str


def _dec(minor: int, currency: str) -> str:
    from otomat.billing.money import Money

    return str(Money(minor, currency).decimal)


def _plan_out(plan: Plan) -> dict:
    return {
        "id": plan.id,
        "product": plan.product.slug,
        "code": plan.code,
        "name": plan.name,
        "currency": plan.currency,
        "price": _dec(plan.price_minor, plan.currency),
        "price_minor": plan.price_minor,
        "period_months": plan.period_months,
        "setup_fee": _dec(plan.setup_fee_minor, plan.currency),
        "trial_days": plan.trial_days,
    }


def _invoice_out(invoice: Invoice) -> dict:
    cur = invoice.currency
    return {
        "id": invoice.id,
        "number": invoice.number,
        "kind": invoice.kind,
        "status": invoice.status,
        "currency": cur,
        "subtotal": _dec(invoice.subtotal_minor, cur),
        "tax": _dec(invoice.tax_minor, cur),
        "total": _dec(invoice.total_minor, cur),
        "credit_applied": _dec(invoice.credit_applied_minor, cur),
        "amount_paid": _dec(invoice.amount_paid_minor, cur),
        "amount_due": _dec(invoice.amount_due_minor, cur),
        "issued_at": invoice.issued_at,
        "due_at": invoice.due_at,
        "paid_at": invoice.paid_at,
        "pay_url": invoice.pay_url(),
        "pdf_sha256": invoice.pdf_sha256
        if hasattr(invoice, "pdf_sha256")
        else IssuedDocument.objects.filter(invoice=invoice)
        .values_list("sha256", flat=True)
        .first(),
        "lines": [
            {
                "description": line.description,
                "quantity": line.quantity,
                "net": _dec(line.net_minor, cur),
                "tax": _dec(line.tax_minor, cur),
                "gross": _dec(line.gross_minor, cur),
            }
            for line in invoice.lines.all()
        ],
    }


def _invoices(request):
    # The stored PDF's hash by a join, without loading the PDF itself.
    qs = Invoice.objects.prefetch_related("lines").annotate(pdf_sha256=F("document__sha256"))
    if request.user.is_staff:
        return qs
    account = request.user.account
    return qs.filter(account=account) if account else qs.none()


@router.get("/plans", response=answers({200: list[PlanOut]}, 413, 422), description="500 at most.")
def list_plans(request, product: Line | None = None):
    qs = Plan.objects.filter(is_active=True).select_related("product")
    if product:
        qs = qs.filter(product__slug=product)
    return [_plan_out(p) for p in qs[:500]]


@router.get(
    "/subscriptions", response=answers({200: list[SubscriptionOut]}), description="500 at most."
)
def list_subscriptions(request):
    qs = Subscription.objects.select_related("plan", "instance")
    if not request.user.is_staff:
        account = request.user.account
        qs = qs.filter(account=account) if account else qs.none()
    return [
        {
            "id": s.id,
            "instance": str(s.instance_id),
            "plan": s.plan.code,
            "status": s.status,
            "current_period_start": s.current_period_start,
            "current_period_end": s.current_period_end,
            "cancel_at_period_end": s.cancel_at_period_end,
        }
        for s in qs[:500]
    ]


@router.get("/invoices", response=answers({200: list[InvoiceOut]}, 400, 413, 422))
def list_invoices(
    request,
    status: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
):
    rows = window(limit, offset, most=500)
    qs = narrowed(_invoices(request), "status", status, Invoice.Status.values)
    return [_invoice_out(i) for i in qs.order_by("-issued_at", "-id")[rows]]


@router.get("/invoices/{invoice_id}", response=answers({200: InvoiceOut}, 404, 422))
def get_invoice(request, invoice_id: int):
    return _invoice_out(get_object_or_404(_invoices(request), pk=invoice_id))


@router.post(
    "/invoices/{invoice_id}/checkout",
    response=answers({200: CheckoutOut}, 400, 404, 413, 422),
    summary="Start paying an invoice through a gateway; send the customer to redirect_url",
)
def checkout(request, invoice_id: int, body: CheckoutIn):
    invoice = get_object_or_404(_invoices(request), pk=invoice_id)
    return_url = body.return_url or invoice.pay_url()
    if not return_url.startswith(("https://", "http://")):
        return Status(400, {"detail": "return_url must be an http(s) URL."})
    try:
        session = payments.start_checkout(invoice, body.method, return_url=return_url)
    except BillingError as exc:
        return Status(400, {"detail": str(exc)})
    return {"redirect_url": session.redirect_url}


@router.post(
    "/invoices/{invoice_id}/payments",
    response=answers({201: InvoiceOut, 200: InvoiceOut}, 400, 403, 404, 413, 422),
    summary="Staff: record a bank transfer (the same reference is recorded once)",
)
def record_payment(request, invoice_id: int, body: PaymentIn):
    if not request.user.is_staff:
        return Status(403, {"detail": "Only staff record payments."})
    invoice = get_object_or_404(Invoice, pk=invoice_id)
    try:
        amount = MoneyField().clean_amount(body.amount, invoice.currency)
        _payment, created = payments.record_payment(
            invoice,
            amount=amount,
            gateway=payments.MANUAL,
            provider_payment_id=body.reference,
            actor=request.user,
            actor_label=f"api:{request.user.email}",
        )
    except BillingError as exc:
        return Status(400, {"detail": str(exc)})
    except Exception as exc:  # a ValidationError from the amount
        from django.core.exceptions import ValidationError

        if not isinstance(exc, ValidationError):
            raise
        return Status(400, {"detail": " ".join(exc.messages)})
    invoice.refresh_from_db()
    return Status(201 if created else 200, _invoice_out(invoice))


@router.get("/actions", response=answers({200: list[ActionOut]}, 400, 403, 413, 422))
def list_actions(
    request,
    kind: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
):
    if not request.user.is_staff:
        return Status(403, {"detail": "Only staff read billing's log."})
    rows = window(limit, offset, most=500)
    qs = narrowed(BillingAction.objects.all(), "kind", kind, BillingAction.Kind.values)
    qs = qs.select_related("account", "invoice").order_by("-at", "-id")
    return [
        {
            "at": a.at,
            "kind": a.kind,
            "account": a.account.name if a.account else None,
            "invoice": a.invoice.number if a.invoice else None,
            "reason": a.reason,
            "actor": a.actor_label,
        }
        for a in qs[rows]
    ]


__all__ = ["router", "subscriptions"]
