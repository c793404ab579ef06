"""Billing's notices to customers (email and Telegram, in the customer's language).

Every notice about money owed carries the invoice number, the amount due and a payment link
that works without logging in (the invoice's token). Each is queued with a dedupe key, so the
same reminder never goes out twice whatever retries. Notices are queued as references (ids) in
the transaction of the change they report and rendered when they are delivered
(``load_context`` below): rendering inside a billing run over thousands of subscriptions would
dominate its time.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from otomat.accounts.models import Account
from otomat.billing.models import Invoice, Payment, Subscription, TransferProof
from otomat.notify.services import notify_many


def _queue(account: Account, kind: str, refs: dict, key: str) -> None:
    person = account.responsible
    if person is not None:
        notify_many([(person, f"billing/{kind}", refs, f"billing:{key}")])


def invoice_issued(invoice: Invoice) -> None:
    _queue(invoice.account, "invoice_issued", {"invoice": invoice.pk}, f"issued:{invoice.pk}")


def reminder(invoice: Invoice, *, day: int) -> None:
    _queue(
        invoice.account,
        "reminder",
        {"invoice": invoice.pk, "day": day},
        f"reminder:{invoice.pk}:{day}",
    )


def payment_received(invoice: Invoice, payment: Payment) -> None:
    _queue(
        invoice.account,
        "payment_received",
        {"invoice": invoice.pk, "payment": payment.pk},
        f"paid:{payment.pk}",
    )


def suspended(subscription: Subscription, invoice: Invoice) -> None:
    _queue(
        subscription.account,
        "suspended",
        {"invoice": invoice.pk, "subscription": subscription.pk},
        f"suspended:{subscription.pk}:{invoice.pk}",
    )


def unsuspended(subscription: Subscription, *, key: str) -> None:
    _queue(
        subscription.account, "unsuspended", {"subscription": subscription.pk}, f"unsuspended:{key}"
    )


def activated(subscription: Subscription) -> None:
    _queue(
        subscription.account,
        "activated",
        {"subscription": subscription.pk},
        f"activated:{subscription.pk}",
    )


def export_offered(subscription: Subscription, invoice: Invoice, *, terminate_at: datetime) -> None:
    _queue(
        subscription.account,
        "export_offered",
        {
            "invoice": invoice.pk,
            "subscription": subscription.pk,
            "terminate_at": terminate_at.isoformat(),
        },
        f"export:{subscription.pk}:{invoice.pk}",
    )


def terminated(subscription: Subscription, invoice: Invoice | None, *, delete_at: datetime) -> None:
    refs = {"subscription": subscription.pk, "delete_at": delete_at.isoformat()}
    if invoice is not None:
        refs["invoice"] = invoice.pk
    _queue(subscription.account, "terminated", refs, f"terminated:{subscription.pk}")


def proof_rejected(proof: TransferProof) -> None:
    _queue(
        proof.invoice.account,
        "proof_rejected",
        {"invoice": proof.invoice_id, "proof": proof.pk},
        f"proof_rejected:{proof.pk}",
    )


# -- rendering at delivery --------------------------------------------------------------------


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


def _instance_urls(subscription: Subscription) -> dict:
    args = [subscription.instance_id]
    return {
        "instance": subscription.instance,
        "instance_url": settings.BASE_URL + reverse("instances:detail", args=args),
        "export_url": settings.BASE_URL + reverse("instances:export", args=args),
    }


def load_context(kind: str, refs: dict) -> dict:
    """The template context of a queued billing notice, from its references. Raises
    ``DoesNotExist`` when an object was deleted meanwhile (the notice is then given up)."""
    context: dict = {}
    if "invoice" in refs:
        invoice = Invoice.objects.select_related("account", "subscription__instance").get(
            pk=refs["invoice"]
        )
        context |= _invoice_context(invoice) | {"account": invoice.account}
    if "subscription" in refs:
        sub = Subscription.objects.select_related("account", "instance").get(
            pk=refs["subscription"]
        )
        context |= _instance_urls(sub) | {"account": sub.account}
    if "payment" in refs:
        payment = Payment.objects.get(pk=refs["payment"])
        context |= {"payment": payment, "amount": payment.amount}
    if "proof" in refs:
        context["proof"] = TransferProof.objects.get(pk=refs["proof"])
    if "day" in refs:
        context |= {"day": refs["day"], "overdue_days": max(refs["day"], 0)}
    for name in ("terminate_at", "delete_at"):
        if name in refs:
            context[name] = parse_datetime(refs[name])
    return context
