"""Ending a relationship with a customer: the account is closed to new orders and tickets with
a message, running services run to the end of what was paid (then stop), and the customer can
still download an export of their data."""

from __future__ import annotations

import io
import json
import zipfile

from django.db import transaction
from django.utils import timezone

from otomat.accounts.models import Account, User
from otomat.accounts.services import record_audit
from otomat.billing.models import Invoice, Subscription
from otomat.support import people
from otomat.support.models import Ticket, TicketMessage
from otomat.support.tickets import TicketError


def end_relationship(account: Account, *, message: str, actor: User) -> int:
    """Close ``account``: no new orders or tickets (they see ``message``); every live
    subscription ends with its paid period. Returns the number of subscriptions set to end."""
    if not actor.is_staff:
        raise TicketError("Only staff end a relationship.")
    message = (message or "").strip()
    if not message:
        raise TicketError("Write the message the customer will see.")
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        if locked.status == Account.Status.CLOSED:
            raise TicketError("This account is already closed.")
        locked.status = Account.Status.CLOSED
        locked.closed_message = message[:2000]
        locked.closed_at = timezone.now()
        locked.save(update_fields=["status", "closed_message", "closed_at"])
        live = Subscription.objects.filter(
            account=locked,
            status__in=[
                Subscription.Status.TRIALING,
                Subscription.Status.ACTIVE,
                Subscription.Status.PAST_DUE,
                Subscription.Status.PENDING,
            ],
        )
        ending = 0
        from otomat.billing.subscriptions import cancel_subscription

        for sub in live:
            cancel_subscription(sub, actor=actor)
            ending += 1
        record_audit(
            "account.closed",
            actor=actor,
            account=locked,
            target=locked,
            data={"subscriptions_ending": ending},
        )
    return ending


def export_account(account: Account) -> bytes:
    """A zip of what the customer may take with them: their account, people, instances (settings
    without secrets), invoices and tickets with the messages they saw."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        about = {
            "name": account.name,
            "status": account.status,
            "currency": account.currency,
            "created_at": account.created_at.isoformat(),
            "people": [
                {"email": m.user.email, "name": m.user.get_full_name(), "role": m.role}
                for m in account.memberships.select_related("user")
            ],
            "instances": [
                {
                    "id": str(i.pk),
                    "name": i.name,
                    "product": i.version.product.slug,
                    "version": i.version.version,
                    "state": i.state,
                    "config": i.config,
                }
                for i in account.instances.select_related("version__product")
            ],
        }
        archive.writestr("account.json", json.dumps(about, indent=2, ensure_ascii=False))
        invoices = [
            {
                "number": inv.number,
                "status": inv.status,
                "currency": inv.currency,
                "total": str(inv.total.decimal),
                "amount_due": str(inv.amount_due.decimal),
                "issued_at": inv.issued_at.isoformat(),
            }
            for inv in Invoice.objects.filter(account=account).order_by("issued_at")
        ]
        archive.writestr("invoices.json", json.dumps(invoices, indent=2, ensure_ascii=False))
        conversations = []
        for ticket in Ticket.objects.filter(account=account).order_by("created_at"):
            conversations.append(
                {
                    "number": ticket.number,
                    "subject": ticket.subject,
                    "status": ticket.status,
                    "created_at": ticket.created_at.isoformat(),
                    "messages": [
                        {"at": m.created_at.isoformat(), "from": m.signature, "text": m.body}
                        for m in people.sign(
                            ticket.messages.exclude(kind=TicketMessage.Kind.NOTE).select_related(
                                "author"
                            )
                        )
                    ],
                }
            )
        archive.writestr("tickets.json", json.dumps(conversations, indent=2, ensure_ascii=False))
    return buffer.getvalue()
