"""Paid support: when a request is outside what was bought, staff answer with one click — the
out-of-scope reply (a canned reply with the ticket's figures filled in) and a quote (price and
days). The customer accepts it, pays the invoice billing issues, and the ticket continues.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from otomat.accounts.models import User
from otomat.billing.invoicing import LineSpec, account_language, issue_invoice
from otomat.billing.models import BillingSettings, Invoice, Subscription
from otomat.billing.money import Money
from otomat.support import entitlements
from otomat.support.models import (
    CannedReply,
    Quote,
    Ticket,
    TicketEvent,
    TicketMessage,
    locked_tickets,
)
from otomat.support.people import ticket_language
from otomat.support.tickets import TicketError, _set_status, staff_reply

DEFAULT_OUT_OF_SCOPE = (
    "Hello {customer_name},\n\n"
    "Your plan includes {revisions_included} changes; {revisions_used} have been used "
    "({revisions_left} left), and free support runs until {support_until}. This request is "
    "outside what was bought, and we can still do it for you: it takes about {quote_days} days "
    "and costs {quote_price}. Accept the quote on this ticket and we start as soon as it is paid."
)

# Every {placeholder} a canned reply may use, filled from the ticket (and the quote it is
# sent with). Saving a reply with any other name is refused (``check_placeholders``).
PLACEHOLDERS = (
    "customer_name",
    "account",
    "ticket",
    "subject",
    "instance",
    "product",
    "revision_quota",
    "revisions_included",
    "revisions_used",
    "revisions_left",
    "support_until",
    "minutes_left",
    "hourly_rate",
    "quote_price",
    "quote_days",
)
_FIELD = re.compile(r"\{([^{}]*)\}")


def check_placeholders(text: str) -> None:
    """Raise ValidationError naming every ``{placeholder}`` of ``text`` that is not one of
    PLACEHOLDERS (a stray or unclosed brace included); return None when all are known."""
    unknown = sorted({name for name in _FIELD.findall(text or "") if name not in PLACEHOLDERS})
    if unknown:
        raise ValidationError(
            _("Unknown placeholders: %(names)s. Use only: %(known)s.")
            % {
                "names": ", ".join("{" + n + "}" for n in unknown),
                "known": " ".join("{" + n + "}" for n in PLACEHOLDERS),
            }
        )
    rest = _FIELD.sub("", text or "")
    if "{" in rest or "}" in rest:
        raise ValidationError(_("A brace is not closed: write placeholders as {name}."))


def _long_date(moment: datetime, language: str, person: User | None) -> str:
    """A date as the customer reads it ("13 September 2026" in Indonesian), in their zone."""
    zone = ZoneInfo(person.timezone if person and person.timezone else "UTC")
    try:
        locale = Locale.parse(language.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        locale = Locale.parse("en")
    return format_date(moment.astimezone(zone).date(), format="long", locale=locale)


def render_canned(
    text: str,
    ticket: Ticket,
    *,
    quote: Quote | None = None,
    language: str | None = None,
    entitlement: entitlements.Entitlement | None = None,
) -> str:
    """Fill the ``{placeholders}`` of a canned reply from the ticket: quotas as numbers,
    amounts with the billing's money formatter in the customer's locale ("Rp250.000" in
    Indonesian). Never raises: an unknown placeholder or a stray brace stays as written, and
    values are never interpreted as format strings themselves. ``entitlement``: the ticket's,
    when the caller already has it (filling many replies for one page)."""
    person = ticket.requester
    language = language or (person.language if person else "") or "en"
    values = {
        "customer_name": (person.get_full_name() if person else "") or ticket.account.name,
        "account": ticket.account.name,
        "ticket": ticket.number,
        "subject": ticket.subject,
        "instance": ticket.instance.name if ticket.instance else "",
        "product": ticket.product.name if ticket.product else "",
    }
    if ticket.instance is not None:
        ent = entitlement or entitlements.for_instance(ticket.instance)
        values |= {
            "revision_quota": str(ent.revision_quota),
            "revisions_included": str(ent.revision_quota),
            "revisions_used": str(ent.revisions_used),
            "revisions_left": str(ent.revisions_left),
            "support_until": _long_date(ent.support_until, language, person),
            "minutes_left": str(ent.minutes_left),
            "hourly_rate": ent.hourly_rate.format(language) if ent.hourly_rate else "",
        }
    if quote is not None:
        values |= {"quote_price": quote.price.format(language), "quote_days": str(quote.days)}
    return _FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def currency_for(ticket: Ticket) -> str:
    sub = (
        Subscription.objects.filter(instance_id=ticket.instance_id).select_related("plan").first()
        if ticket.instance_id
        else None
    )
    return sub.plan.currency if sub else ticket.account.currency


def support_line(ticket: Ticket, quote: Quote, lang: str) -> str:
    """The invoice line of an accepted quote, in ``lang`` (the account's, at issue)."""
    with translation.override(lang):
        return _("Paid support %(ticket)s: %(description)s") % {
            "ticket": ticket.number,
            "description": quote.description,
        }


def payment_due(now: datetime) -> datetime:
    """When a quote's invoice falls due: the billing's payment terms for an order (at least a
    day), so an accepted quote is never overdue the second it is issued."""
    days = max(BillingSettings.get().order_payment_days, 1)
    return now + timedelta(days=days)


def send_quote(
    ticket: Ticket,
    *,
    staff: User,
    price: Money,
    days: int,
    description: str,
    reply: CannedReply | None = None,
    now: datetime | None = None,
) -> Quote:
    """One click: post the out-of-scope reply and a quote; the ticket waits for the customer
    to accept and pay. Raises TicketError."""
    now = now or timezone.now()
    if not staff.is_staff:
        raise TicketError("Only staff send quotes.")
    if price.amount_minor <= 0:
        raise TicketError("A quote needs a price.")
    if not isinstance(days, int) or not 1 <= days <= 365:
        raise TicketError("Estimate between 1 and 365 days.")
    description = (description or "").strip()[:300] or ticket.subject
    if not ticket.is_open:
        raise TicketError("This ticket is not open.")
    if ticket.quotes.filter(status__in=[Quote.Status.SENT, Quote.Status.ACCEPTED]).exists():
        raise TicketError("A quote on this ticket is still waiting; withdraw it first.")
    with transaction.atomic():
        quote = Quote.objects.create(
            ticket=ticket,
            description=description,
            price_minor=price.amount_minor,
            currency=price.currency,
            days=days,
            created_by=staff,
            created_at=now,
        )
        template = reply or CannedReply.objects.filter(out_of_scope=True).first()
        text = render_canned(
            template.body if template else DEFAULT_OUT_OF_SCOPE, ticket, quote=quote
        )
        staff_reply(ticket, staff=staff, body=text, status=Ticket.Status.AWAITING_PAYMENT, now=now)
        TicketEvent.objects.create(
            ticket=ticket,
            kind="quote",
            detail=f"quote sent: {price} for {days} days",
            actor=staff,
        )
    return quote


def accept_quote(quote: Quote, *, user: User, now: datetime | None = None) -> Invoice:
    """The customer accepts: billing issues the invoice (paid at once from credit if it
    covers it). Returns the invoice. Raises TicketError."""
    now = now or timezone.now()
    ticket = quote.ticket
    if user.is_staff or user.account != ticket.account:
        raise TicketError("Only the customer accepts a quote.")
    with transaction.atomic():
        quote = Quote.objects.select_for_update().get(pk=quote.pk)
        if quote.status == Quote.Status.ACCEPTED and quote.invoice_id:
            return quote.invoice
        if quote.status != Quote.Status.SENT:
            raise TicketError("This quote is no longer open.")
        quote.status, quote.decided_at, quote.decided_by = Quote.Status.ACCEPTED, now, user
        sub = (
            Subscription.objects.filter(instance_id=ticket.instance_id)
            .select_related("plan__tax_rate")
            .first()
        )
        invoice, _created = issue_invoice(
            account=ticket.account,
            currency=quote.currency,
            lines=[
                LineSpec(support_line(ticket, quote, account_language(ticket.account)), quote.price)
            ],
            kind=Invoice.Kind.SUPPORT,
            due_at=payment_due(now),
            tax_rate=sub.plan.tax_rate if sub and sub.plan.currency == quote.currency else None,
            idempotency_key=f"quote:{quote.pk}",
            now=now,
            reason=f"Quote accepted on {ticket.number}",
            actor_label=f"user:{user.email}",
        )
        quote.invoice = invoice
        quote.save()
        TicketEvent.objects.create(
            ticket=ticket,
            kind="quote",
            detail=f"quote accepted; invoice {invoice.number}",
            actor=user,
        )
    quote.refresh_from_db()
    return invoice


def decline_quote(quote: Quote, *, user: User) -> Quote:
    ticket = quote.ticket
    if user.account != ticket.account and not user.is_staff:
        raise TicketError("Only the customer declines a quote.")
    with transaction.atomic():
        quote = Quote.objects.select_for_update().get(pk=quote.pk)
        if quote.status != Quote.Status.SENT:
            raise TicketError("This quote is no longer open.")
        quote.status = Quote.Status.WITHDRAWN if user.is_staff else Quote.Status.DECLINED
        quote.decided_at, quote.decided_by = timezone.now(), user
        quote.save()
        ticket = locked_tickets().select_related("sla_policy", "department").get(pk=ticket.pk)
        if ticket.status == Ticket.Status.AWAITING_PAYMENT:
            _set_status(ticket, Ticket.Status.OPEN, timezone.now(), actor=user)
            ticket.save()
        TicketEvent.objects.create(
            ticket=ticket,
            kind="quote",
            detail=f"quote {quote.get_status_display().lower()}",
            actor=user,
        )
    return quote


def on_invoice_paid(sender, invoice: Invoice, **kwargs) -> None:
    """Billing's signal: a quote's invoice is paid → the ticket is unlocked and work continues
    (runs inside the payment's transaction, so both happen or neither)."""
    quote = Quote.objects.filter(invoice=invoice).select_related("ticket").first()
    if quote is None or quote.status == Quote.Status.PAID:
        return
    now = invoice.paid_at or timezone.now()
    Quote.objects.filter(pk=quote.pk).update(status=Quote.Status.PAID, paid_at=now)
    ticket = locked_tickets().select_related("sla_policy", "department").get(pk=quote.ticket_id)
    ticket.out_of_scope = False
    _set_status(ticket, Ticket.Status.OPEN, now, actor=None)
    ticket.updated_at = now
    ticket.save()
    with translation.override(ticket_language(ticket)):
        body = ngettext(
            "Invoice %(number)s paid: the work (%(days)s day estimated) continues.",
            "Invoice %(number)s paid: the work (%(days)s days estimated) continues.",
            quote.days,
        ) % {"number": invoice.number, "days": quote.days}
    TicketMessage.objects.create(
        ticket=ticket, kind=TicketMessage.Kind.SYSTEM, body=body, created_at=now
    )
    TicketEvent.objects.create(
        ticket=ticket,
        kind="quote",
        detail=f"quote paid ({invoice.number}); ticket unlocked",
        actor_label="system:billing",
        at=now,
    )
