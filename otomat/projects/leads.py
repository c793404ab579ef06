"""Leads: somebody who may become a client, from the estimator, the contact form or entered by
hand. One function per business action; each is atomic and writes its audit row
(``projects.lead_*``), which is the lead's history on its staff page. Internal steps (status,
assignment) are recorded without the customer's account, so they stay out of the customer's
activity page.

Errors are :class:`LeadError` with a sentence for a person; nothing changes then.
"""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext

from otomat.accounts.models import Account, Membership, User
from otomat.accounts.services import record_audit, send_password_link
from otomat.projects import notices
from otomat.projects.models import Estimate, Lead, LeadNote

# Column sizes (the model's) and a bound on free text, so no database refuses what a form took.
MAX_MESSAGE = 5000
MAX_NOTE = 5000
LANGUAGES = {code for code, _name in settings.LANGUAGES}


class LeadError(ValueError):
    """A lead action refused; the message says why, for a person."""


def _clean_contact(name: str, email: str, phone: str, company: str, message: str) -> dict:
    name, email = (name or "").strip(), (email or "").strip().lower()
    phone, company, message = (
        (phone or "").strip(),
        (company or "").strip(),
        (message or "").strip(),
    )
    if not name:
        raise LeadError(gettext("Please give your name."))
    if len(name) > 200 or len(company) > 200 or len(phone) > 40:
        raise LeadError(gettext("A name, company or phone number is too long."))
    try:
        validate_email(email)
    except ValidationError:
        raise LeadError(gettext("Please give a valid email address.")) from None
    if len(message) > MAX_MESSAGE:
        raise LeadError(
            gettext("The message is longer than %(n)d characters.") % {"n": MAX_MESSAGE}
        )
    return {"name": name, "email": email, "phone": phone, "company": company, "message": message}


def clean_timezone(value: str | None) -> str:
    """An IANA zone the browser reported, or UTC when it is missing or unknown."""
    value = (value or "").strip()
    if not value or len(value) > 64:
        return "UTC"
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return value


@transaction.atomic
def submit_lead(
    *,
    source: str,
    name: str,
    email: str,
    phone: str = "",
    company: str = "",
    message: str = "",
    language: str = "en",
    timezone: str = "UTC",
    estimate: Estimate | None = None,
    ip: str | None = None,
) -> Lead:
    """A visitor left their contact (``source`` estimator or contact): store the lead, tie the
    estimate to it, and queue the owner's notice. Raises LeadError for bad contact details or
    an estimate that already belongs to a lead."""
    if source not in (Lead.Source.ESTIMATOR, Lead.Source.CONTACT_FORM):
        raise LeadError(gettext("Unknown source of a lead."))
    contact = _clean_contact(name, email, phone, company, message)
    if source == Lead.Source.CONTACT_FORM and not contact["message"]:
        raise LeadError(gettext("Please write what your project is about."))
    if estimate is not None:
        estimate = Estimate.objects.select_for_update().get(pk=estimate.pk)
        if estimate.lead_id is not None:
            raise LeadError(gettext("This estimate has already been sent."))
    lead = Lead.objects.create(
        **contact,
        source=source,
        language=language if language in LANGUAGES else "en",
        timezone=clean_timezone(timezone),
    )
    if estimate is not None:
        Estimate.objects.filter(pk=estimate.pk).update(lead=lead)
    record_audit(
        "projects.lead_received",
        actor_label=f"public:{source}",
        target=lead,
        data={"source": source, "estimate": estimate.pk if estimate else None},
        ip=ip,
    )
    notices.lead_received(lead, estimate=estimate)
    return lead


@transaction.atomic
def create_lead_by_hand(
    *,
    actor: User,
    name: str,
    email: str,
    phone: str = "",
    company: str = "",
    message: str = "",
    language: str = "en",
    timezone: str = "UTC",
    assignee: User | None = None,
    account: Account | None = None,
) -> Lead:
    """Staff enter a lead they met elsewhere (a call, a fair). No owner notice: the person who
    enters it knows. Raises LeadError."""
    contact = _clean_contact(name, email, phone, company, message)
    if assignee is not None and not (assignee.is_staff and assignee.is_active):
        raise LeadError(gettext("Leads are assigned to active staff only."))
    lead = Lead.objects.create(
        **contact,
        source=Lead.Source.MANUAL,
        language=language if language in LANGUAGES else "en",
        timezone=clean_timezone(timezone),
        assignee=assignee,
        account=account,
    )
    record_audit("projects.lead_created", actor=actor, target=lead, data={"by": "hand"})
    return lead


@transaction.atomic
def set_status(lead: Lead, status: str, *, actor: User) -> Lead:
    """Move ``lead`` to ``status``; the audit row keeps from and to. Raises LeadError for an
    unknown status; the same status is no change (and no row)."""
    if status not in Lead.Status.values:
        raise LeadError(gettext("Unknown status."))
    locked = Lead.objects.select_for_update().get(pk=lead.pk)
    if locked.status == status:
        return locked
    previous = locked.status
    Lead.objects.filter(pk=lead.pk).update(status=status)
    locked.status = status
    record_audit(
        "projects.lead_status",
        actor=actor,
        target=locked,
        data={"from": previous, "to": status},
    )
    return locked


@transaction.atomic
def assign(lead: Lead, assignee: User | None, *, actor: User) -> Lead:
    """Give ``lead`` to a staff member (None: back to the owner). Raises LeadError."""
    if assignee is not None and not (assignee.is_staff and assignee.is_active):
        raise LeadError(gettext("Leads are assigned to active staff only."))
    Lead.objects.filter(pk=lead.pk).update(assignee=assignee)
    lead.assignee = assignee
    record_audit(
        "projects.lead_assigned",
        actor=actor,
        target=lead,
        data={"assignee": assignee.email if assignee else None},
    )
    return lead


@transaction.atomic
def add_note(lead: Lead, body: str, *, actor: User) -> LeadNote:
    """A staff note on ``lead``. Raises LeadError for an empty or too long one."""
    body = (body or "").strip()
    if not body:
        raise LeadError(gettext("The note is empty."))
    if len(body) > MAX_NOTE:
        raise LeadError(gettext("The note is longer than %(n)d characters.") % {"n": MAX_NOTE})
    return LeadNote.objects.create(lead=lead, author=actor, body=body)


@transaction.atomic
def link_account(lead: Lead, account: Account | None, *, actor: User) -> Lead:
    """Tie ``lead`` to a customer account (None unties it); its people then see the lead and
    its estimates. Raises LeadError for a closed or internal account."""
    if account is not None and (account.is_internal or account.status != Account.Status.ACTIVE):
        raise LeadError(gettext("Leads are linked to active customer accounts only."))
    Lead.objects.filter(pk=lead.pk).update(account=account)
    lead.account = account
    record_audit(
        "projects.lead_linked",
        actor=actor,
        account=account,
        target=lead,
        data={"account": account.pk if account else None},
    )
    return lead


@transaction.atomic
def create_account_for(lead: Lead, *, actor: User, account_name: str = "") -> Account:
    """Make the lead a customer: an account named after their company (or them) with the lead
    as its responsible person, who gets a link to choose a password. Raises LeadError when the
    lead already has an account or their email already belongs to a person (link that
    person's account instead)."""
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    if lead.account_id:
        raise LeadError(gettext("This lead already has a customer account."))
    if User.objects.filter(email__iexact=lead.email).exists():
        raise LeadError(
            gettext("%(email)s already belongs to someone on Otomat: link their account instead.")
            % {"email": lead.email}
        )
    name = (account_name or "").strip()[:200] or lead.company or lead.name
    first, _, last = lead.name.partition(" ")
    person = User.objects.create_user(
        email=lead.email,
        password=None,
        first_name=first[:150],
        last_name=last[:150],
        language=lead.language,
        timezone=lead.timezone,
    )
    account = Account.objects.create(name=name)
    Membership.objects.create(account=account, user=person, role=Membership.Role.RESPONSIBLE)
    Lead.objects.filter(pk=lead.pk).update(account=account)
    lead.account = account
    record_audit("projects.lead_account_created", actor=actor, account=account, target=lead)
    transaction.on_commit(lambda: send_password_link(person))
    return account


def history(lead: Lead):
    """The lead's audit rows, newest first (status changes, assignment, links)."""
    from otomat.accounts.models import AuditEvent

    return AuditEvent.objects.filter(target_type="projects.lead", target_id=str(lead.pk)).order_by(
        "-at", "-pk"
    )
