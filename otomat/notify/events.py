"""One log line per notable event, on the ``otomat.events`` logger. The main command shows these
lines on its console (and nothing else but warnings and errors); the services' log files have
them too. The list is short on purpose:

- an instance starts running, stops, fails, is suspended or terminated;
- an invoice is paid;
- a customer account signs up;
- a support ticket is opened;
- a lead arrives (the estimator, the contact form).

The receivers watch models of other apps by name (no imports upward) and never let a logging
problem reach the business action that saved the row."""

from __future__ import annotations

import logging

from django.db.models.signals import post_save

log = logging.getLogger("otomat.events")

INSTANCE_STATES = {"running", "stopped", "failed", "suspended", "terminated"}


def _safely(receiver):
    def wrapper(sender, instance, **kwargs) -> None:
        try:
            receiver(instance, **kwargs)
        except Exception:  # an event line is never worth a failed save
            logging.getLogger(__name__).debug("event line failed", exc_info=True)

    wrapper.__name__ = receiver.__name__
    return wrapper


@_safely
def instance_event(event, *, created: bool, **kwargs) -> None:
    if not created or event.to_state not in INSTANCE_STATES:
        return
    instance = event.instance
    product = instance.version.product.name
    cause = f" ({event.cause})" if event.cause and event.to_state != "running" else ""
    log.info(
        'instance "%s" (%s, %s) %s%s',
        instance.name,
        product,
        instance.account,
        event.to_state,
        cause,
    )


@_safely
def invoice_saved(invoice, *, created: bool, update_fields=None, **kwargs) -> None:
    if invoice.status != "paid" or created or not update_fields or "status" not in update_fields:
        return
    log.info(
        "invoice %s paid: %s by %s", invoice.number, invoice.total.format("en"), invoice.account
    )


@_safely
def audit_event(event, *, created: bool, **kwargs) -> None:
    if created and event.action == "account.signed_up":
        log.info("new customer account: %s", event.target_repr or event.account)


@_safely
def ticket_saved(ticket, *, created: bool, **kwargs) -> None:
    if created:
        log.info("ticket %s opened by %s: %s", ticket.number, ticket.account, ticket.subject)


@_safely
def lead_saved(lead, *, created: bool, **kwargs) -> None:
    if created and lead.source != "manual":
        log.info("new lead (%s): %s", lead.source, lead.company or lead.name)


def connect() -> None:
    for receiver, model in (
        (instance_event, "instances.InstanceEvent"),
        (invoice_saved, "billing.Invoice"),
        (audit_event, "accounts.AuditEvent"),
        (ticket_saved, "support.Ticket"),
        (lead_saved, "projects.Lead"),
    ):
        post_save.connect(receiver, sender=model, dispatch_uid=f"otomat.events.{receiver.__name__}")
