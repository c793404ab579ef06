"""Invoices of an offer's payment schedule, issued through billing once per step.

Each step's invoice carries the idempotency key ``offer-step:<step id>``, so whoever asks again
(a retried signature, a milestone marked done twice, two workers) gets the same invoice. The
invoice is issued in the customer's language (billing's buyer snapshot) with the order payment
terms, as support's accepted quotes are.
"""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from otomat.accounts.models import User
from otomat.accounts.services import record_audit
from otomat.billing.invoicing import LineSpec, account_language, issue_invoice
from otomat.billing.models import BillingSettings, Invoice
from otomat.projects.offers.models import Contract, Milestone, Offer, PaymentStep
from otomat.projects.offers.services import OfferError, schedule_amounts


def payment_due(now: dt.datetime) -> dt.datetime:
    """The billing's payment terms for an order (at least a day)."""
    return now + timedelta(days=max(BillingSettings.get().order_payment_days, 1))


def _issue(
    offer: Offer, step: PaymentStep, amount, *, now: dt.datetime, actor_label: str
) -> Invoice:
    account = offer.account
    with translation.override(account_language(account)):
        description = _("%(offer)s %(title)s: %(step)s") % {
            "offer": offer.number,
            "title": offer.title,
            "step": step.label,
        }
    invoice, created = issue_invoice(
        account=account,
        currency=offer.currency,
        lines=[LineSpec(description[:300], amount)],
        kind=Invoice.Kind.MANUAL,
        due_at=payment_due(now),
        idempotency_key=f"offer-step:{step.pk}",
        now=now,
        reason=f"Offer {offer.number}: {step.label}"[:300],
        actor_label=actor_label,
    )
    if step.invoice_id is None:
        PaymentStep.objects.filter(pk=step.pk, invoice__isnull=True).update(invoice=invoice)
        step.invoice = invoice
    if created:
        record_audit(
            "offer.invoiced",
            actor_label=actor_label,
            account=account,
            target=offer,
            data={"step": step.pk, "invoice": invoice.number},
        )
    return invoice


def _due_steps(offer: Offer, trigger: str, milestone: Milestone | None = None):
    for step, amount in schedule_amounts(offer):
        if step.trigger != trigger or amount.amount_minor <= 0:
            continue
        if milestone is not None and step.milestone_id != milestone.pk:
            continue
        yield step, amount


def issue_on_signing(contract: Contract, *, now: dt.datetime | None = None) -> list[Invoice]:
    """The deposit (every "on signing" step) of a signed contract; idempotent."""
    now = now or timezone.now()
    offer = contract.offer
    return [
        _issue(offer, step, amount, now=now, actor_label="system:offers")
        for step, amount in _due_steps(offer, PaymentStep.Trigger.SIGNING)
    ]


def _signed(offer: Offer) -> Contract:
    contract = Contract.objects.filter(offer=offer, status=Contract.Status.SIGNED).first()
    if contract is None:
        raise OfferError(_("The contract is not signed yet."))
    return contract


def complete_milestone(
    milestone: Milestone, *, actor: User | None = None, now: dt.datetime | None = None
) -> list[Invoice]:
    """Mark ``milestone`` done (once) and issue the invoices of the steps billed on it;
    returns them. Marking it again issues nothing new. The board calls this when its
    milestone is finished. Raises OfferError before the contract is signed."""
    now = now or timezone.now()
    if actor is not None and not actor.is_staff:
        raise OfferError(_("Only staff complete milestones."))
    label = f"user:{actor.email}" if actor else "system:board"
    with transaction.atomic():
        milestone = (
            Milestone.objects.select_for_update(of=("self",))
            .select_related("offer")
            .get(pk=milestone.pk)
        )
        offer = milestone.offer
        _signed(offer)
        if milestone.done_at is None:
            milestone.done_at = now
            milestone.save(update_fields=["done_at"])
            record_audit(
                "offer.milestone_done",
                actor=actor,
                actor_label="" if actor else label,
                account=offer.account,
                target=offer,
                data={"milestone": milestone.title},
            )
        return [
            _issue(offer, step, amount, now=now, actor_label=label)
            for step, amount in _due_steps(offer, PaymentStep.Trigger.MILESTONE, milestone)
        ]


def invoice_release(
    offer: Offer, *, actor: User | None = None, now: dt.datetime | None = None
) -> list[Invoice]:
    """Issue the "on release" steps (once). Raises OfferError before the contract is signed."""
    now = now or timezone.now()
    if actor is not None and not actor.is_staff:
        raise OfferError(_("Only staff invoice a release."))
    label = f"user:{actor.email}" if actor else "system:board"
    with transaction.atomic():
        offer = Offer.objects.select_for_update().get(pk=offer.pk)
        _signed(offer)
        return [
            _issue(offer, step, amount, now=now, actor_label=label)
            for step, amount in _due_steps(offer, PaymentStep.Trigger.RELEASE)
        ]
