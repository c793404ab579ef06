"""What becomes a webhook event. Receivers watch the models of the apps below by name (no
import upward, as ``otomat.notify.events`` does) and, once the change is committed, hand the
event to :func:`otomat.hooks.delivery.dispatch`. A receiver never lets a webhook problem reach
the business action that saved the row.

Every payload is ``{"id", "type", "created_at", "data"}``; ``data`` names objects by their
public identifiers (instance UUID, invoice and ticket numbers) and carries no secret and no
customer's personal data beyond their own account's id and name."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import post_init, post_save

log = logging.getLogger(__name__)


def _safely(receiver):
    def wrapper(sender, instance, **kwargs) -> None:
        try:
            receiver(instance, **kwargs)
        except Exception:  # a webhook is never worth a failed save
            log.warning("webhook event of %s failed", sender.__name__, exc_info=True)

    wrapper.__name__ = receiver.__name__
    return wrapper


def _emit(event_type: str, data: dict, *, account_ids: list[int]) -> None:
    from otomat.hooks.delivery import dispatch

    transaction.on_commit(lambda: _dispatch_safely(dispatch, event_type, data, account_ids))


def _dispatch_safely(dispatch, event_type: str, data: dict, account_ids: list[int]) -> None:
    try:
        dispatch(event_type, data, account_ids=account_ids)
    except Exception:
        log.warning("webhook dispatch of %s failed", event_type, exc_info=True)


def _account(account) -> dict:
    return {"id": account.pk, "name": account.name}


def _remember_status(sender, instance, **kwargs) -> None:
    """post_init: the status the row was read with, so post_save can tell a change without a
    query of its own (a row read without its status, or a new one, remembers None)."""
    instance._hooks_old_status = instance.__dict__.get("status") if instance.pk else None


def _saved_status(instance) -> str | None:
    """The status before this save; from now on the saved one is the one remembered."""
    old = getattr(instance, "_hooks_old_status", None)
    instance._hooks_old_status = instance.__dict__.get("status")
    return old


@_safely
def instance_event(event, *, created: bool, **kwargs) -> None:
    if not created or not event.to_state or event.to_state == event.from_state:
        return
    instance = event.instance
    _emit(
        "instance.state_changed",
        {
            "instance": {
                "id": str(instance.pk),
                "name": instance.name,
                "product": instance.version.product.slug,
                "version": instance.version.version,
            },
            "account": _account(instance.account),
            "from_state": event.from_state,
            "to_state": event.to_state,
            "cause": event.cause,
            "at": event.at.isoformat(),
        },
        account_ids=[instance.account_id],
    )


def _invoice_data(invoice) -> dict:
    return {
        "invoice": {
            "number": invoice.number,
            "kind": invoice.kind,
            "status": invoice.status,
            "currency": invoice.currency,
            "total_minor": invoice.total_minor,
            "issued_at": invoice.issued_at.isoformat() if invoice.issued_at else None,
            "due_at": invoice.due_at.isoformat() if invoice.due_at else None,
        },
        "account": _account(invoice.account),
    }


@_safely
def invoice_saved(invoice, *, created: bool, **kwargs) -> None:
    old = _saved_status(invoice)
    if created:
        _emit("invoice.issued", _invoice_data(invoice), account_ids=[invoice.account_id])
    if invoice.status == "paid" and (created or old != "paid"):
        _emit("invoice.paid", _invoice_data(invoice), account_ids=[invoice.account_id])


def _ticket_data(ticket) -> dict:
    return {
        "ticket": {
            "number": ticket.number,
            "subject": ticket.subject,
            "kind": ticket.kind,
            "status": ticket.status,
            "priority": ticket.priority,
        },
        "account": _account(ticket.account),
    }


@_safely
def ticket_saved(ticket, *, created: bool, **kwargs) -> None:
    old = _saved_status(ticket)
    if created:
        _emit("ticket.opened", _ticket_data(ticket), account_ids=[ticket.account_id])
    elif old is not None and old != ticket.status:
        data = _ticket_data(ticket) | {"from_status": old}
        _emit("ticket.status_changed", data, account_ids=[ticket.account_id])


@_safely
def incident_saved(incident, *, created: bool, **kwargs) -> None:
    old = _saved_status(incident)
    if created:
        event_type = "incident.opened"
    elif incident.status == "resolved" and old not in (None, "resolved"):
        event_type = "incident.resolved"
    else:
        return
    pk = incident.pk

    def send() -> None:
        from django.apps import apps

        from otomat.hooks.delivery import dispatch

        row = apps.get_model("monitoring", "Incident").objects.filter(pk=pk).first()
        if row is None:
            return
        accounts = list(row.accounts.values_list("pk", flat=True))
        data = {
            "incident": {
                "id": row.pk,
                "title": row.title,
                "severity": row.severity,
                "status": row.status,
                "opened_at": row.opened_at.isoformat(),
                "resolved_at": row.resolved_at.isoformat() if row.resolved_at else None,
            }
        }
        _dispatch_safely(dispatch, event_type, data, accounts)

    transaction.on_commit(send)


@_safely
def lead_saved(lead, *, created: bool, **kwargs) -> None:
    if created:
        data = {
            "lead": {
                "id": lead.pk,
                "name": lead.name,
                "company": lead.company,
                "email": lead.email,
                "source": lead.source,
            }
        }
        _emit("lead.created", data, account_ids=[])


def connect() -> None:
    for model in ("billing.Invoice", "support.Ticket", "monitoring.Incident"):
        post_init.connect(_remember_status, sender=model, dispatch_uid=f"hooks.status.{model}")
    for receiver, model in (
        (instance_event, "instances.InstanceEvent"),
        (invoice_saved, "billing.Invoice"),
        (ticket_saved, "support.Ticket"),
        (incident_saved, "monitoring.Incident"),
        (lead_saved, "projects.Lead"),
    ):
        post_save.connect(receiver, sender=model, dispatch_uid=f"hooks.{receiver.__name__}")
