"""Billing's notices to customers (email and Telegram, in the customer's language).

Every notice about money owed carries the invoice number, the amount due and a payment link
that works without logging in (the invoice's token). Each is queued with a dedupe key, so the
same reminder never goes out twice whatever retries.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from otomat.billing.models import Invoice, Payment, Subscription, TransferProof
from otomat.notify.services import notify_account


def _invoice_context(invoice: Invoice) -> dict:
    return {
        "invoice": invoice,
        "number": invoice.number,
        "amount_due": invoice.amount_due,
        "total": invoice.total,
        "due_at": invoice.due_at,
        "pay_url": invoice.pay_url(),
        "instance": invoice.subscription.instance if invoice.subscription_id else None,
    }


def _instance_url(subscription: Subscription) -> str:
    return settings.BASE_URL + reverse("instances:detail", args=[subscription.instance_id])


def invoice_issued(invoice: Invoice) -> None:
    notify_account(
        invoice.account,
        "billing/invoice_issued",
        _invoice_context(invoice),
        dedupe_key=f"billing:issued:{invoice.pk}",
    )


def reminder(invoice: Invoice, *, day: int) -> None:
    context = _invoice_context(invoice) | {"day": day, "overdue_days": max(day, 0)}
    notify_account(
        invoice.account,
        "billing/reminder",
        context,
        dedupe_key=f"billing:reminder:{invoice.pk}:{day}",
    )


def payment_received(invoice: Invoice, payment: Payment) -> None:
    notify_account(
        invoice.account,
        "billing/payment_received",
        _invoice_context(invoice) | {"payment": payment, "amount": payment.amount},
        dedupe_key=f"billing:paid:{payment.pk}",
    )


def suspended(subscription: Subscription, invoice: Invoice) -> None:
    notify_account(
        subscription.account,
        "billing/suspended",
        _invoice_context(invoice) | {"instance_url": _instance_url(subscription)},
        dedupe_key=f"billing:suspended:{subscription.pk}:{invoice.pk}",
    )


def unsuspended(subscription: Subscription, *, key: str) -> None:
    notify_account(
        subscription.account,
        "billing/unsuspended",
        {"instance": subscription.instance, "instance_url": _instance_url(subscription)},
        dedupe_key=f"billing:unsuspended:{key}",
    )


def activated(subscription: Subscription) -> None:
    notify_account(
        subscription.account,
        "billing/activated",
        {"instance": subscription.instance, "instance_url": _instance_url(subscription)},
        dedupe_key=f"billing:activated:{subscription.pk}",
    )


def export_offered(subscription: Subscription, invoice: Invoice, *, terminate_at) -> None:
    export_url = settings.BASE_URL + reverse("instances:export", args=[subscription.instance_id])
    notify_account(
        subscription.account,
        "billing/export_offered",
        _invoice_context(invoice) | {"export_url": export_url, "terminate_at": terminate_at},
        dedupe_key=f"billing:export:{subscription.pk}:{invoice.pk}",
    )


def terminated(subscription: Subscription, invoice: Invoice | None, *, delete_at) -> None:
    context = {"instance": subscription.instance, "delete_at": delete_at}
    if invoice is not None:
        context |= _invoice_context(invoice)
    context["export_url"] = settings.BASE_URL + reverse(
        "instances:export", args=[subscription.instance_id]
    )
    notify_account(
        subscription.account,
        "billing/terminated",
        context,
        dedupe_key=f"billing:terminated:{subscription.pk}",
    )


def proof_rejected(proof: TransferProof) -> None:
    notify_account(
        proof.invoice.account,
        "billing/proof_rejected",
        _invoice_context(proof.invoice) | {"proof": proof},
        dedupe_key=f"billing:proof_rejected:{proof.pk}",
    )


def load_context(kind: str, refs: dict) -> dict:
    """The template context of a billing notice queued in bulk (see notify.notify_many)."""
    invoice = Invoice.objects.select_related("account", "subscription__instance").get(
        pk=refs["invoice"]
    )
    return _invoice_context(invoice) | {"account": invoice.account}
