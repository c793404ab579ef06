"""Offers: create (from scratch or from an estimate), edit (a new version once sent), send,
withdraw, accept and decline. Each action validates everything before it changes anything,
runs in one transaction and writes its audit row. Contracts and signatures: ``contracts``;
invoices of the payment schedule: ``schedule``.

Versions: an offer row always holds its current version. Editing an offer the client has been
sent freezes the version they saw (an ``OfferVersion``) and bumps ``version``; the client reads
the current one and accepts it by its number, so a stale page cannot accept a version that was
replaced. Accepting freezes the accepted version too; an accepted (or declined, expired,
withdrawn) offer cannot be edited.

Validity: ``valid_until`` is the last day (in UTC) the offer can be accepted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from otomat.accounts.models import Account, User
from otomat.accounts.services import AccountError, record_audit, send_password_link, sign_up
from otomat.billing.money import Money
from otomat.projects.models import Estimate, Lead
from otomat.projects.offers import notices
from otomat.projects.offers.models import (
    Milestone,
    Offer,
    OfferLine,
    OfferVersion,
    PaymentStep,
)
from otomat.projects.offers.validation import (  # noqa: F401 - the services' vocabulary
    LANGUAGES,
    LineIn,
    MilestoneIn,
    OfferError,
    OfferIn,
    StepIn,
    clean_text,
    today_utc,
    validate,
)

# -- reading ---------------------------------------------------------------------------------------


def totals(offer: Offer) -> dict:
    """The offer's range (``low``/``high`` as Money, equal for an exact offer), weeks, and the
    schedule's ``base`` (the total, or a range offer's agreed price; None when unset)."""
    lines = list(offer.lines.all())
    low = sum(line.low_minor for line in lines)
    high = sum(line.high_minor for line in lines)
    is_range = any(line.kind == OfferLine.Kind.RANGE for line in lines)
    base = offer.agreed_total_minor if is_range else high
    return {
        "low": Money(low, offer.currency),
        "high": Money(high, offer.currency),
        "is_range": is_range,
        "weeks_min": sum((line.weeks_min for line in lines), Decimal(0)),
        "weeks_max": sum((line.weeks_max for line in lines), Decimal(0)),
        "base": Money(base, offer.currency) if base is not None else None,
    }


def schedule_amounts(offer: Offer) -> list[tuple[PaymentStep, Money]]:
    """Each payment step with its amount: fixed amounts as given, percentages of what the fixed
    ones leave of the base, the last percentage step taking the rounding remainder so the
    steps add up to the base exactly."""
    steps = list(offer.payment_steps.select_related("milestone"))
    base = totals(offer)["base"]
    if base is None:
        return [(s, Money(s.amount_minor or 0, offer.currency)) for s in steps]
    rest = base.amount_minor - sum(s.amount_minor or 0 for s in steps)
    percent_steps = [s for s in steps if s.percent is not None]
    percent_sum = sum((s.percent for s in percent_steps), Decimal(0))
    out, left = [], rest
    for step in steps:
        if step.amount_minor is not None:
            minor = step.amount_minor
        elif step is percent_steps[-1]:
            minor = left
        else:
            minor = int((Decimal(rest) * step.percent / percent_sum).quantize(Decimal(1)))
            left -= minor
        out.append((step, Money(minor, offer.currency)))
    return out


def content(offer: Offer) -> dict:
    """The whole current version as plain JSON: what a frozen version keeps."""
    t = totals(offer)
    return {
        "number": offer.number,
        "version": offer.version,
        "title": offer.title,
        "summary": offer.summary,
        "currency": offer.currency,
        "language": offer.language,
        "valid_until": offer.valid_until.isoformat(),
        "revision_rounds": offer.revision_rounds,
        "agreed_total_minor": offer.agreed_total_minor,
        "low_minor": t["low"].amount_minor,
        "high_minor": t["high"].amount_minor,
        "weeks_min": str(t["weeks_min"]),
        "weeks_max": str(t["weeks_max"]),
        "lines": [
            {
                "kind": line.kind,
                "title": line.title,
                "description": line.description,
                "quantity": line.quantity,
                "unit_price_minor": line.unit_price_minor,
                "cost_min_minor": line.low_minor,
                "cost_max_minor": line.high_minor,
                "weeks_min": str(line.weeks_min),
                "weeks_max": str(line.weeks_max),
            }
            for line in offer.lines.all()
        ],
        "milestones": [
            {
                "title": m.title,
                "weeks": str(m.weeks) if m.weeks is not None else None,
                "due_date": m.due_date.isoformat() if m.due_date else None,
                "amount_minor": m.amount_minor,
            }
            for m in offer.milestones.all()
        ],
        "schedule": [
            {
                "label": step.label,
                "trigger": step.trigger,
                "milestone": step.milestone.title if step.milestone else None,
                "percent": str(step.percent) if step.percent is not None else None,
                "amount_minor": amount.amount_minor,
            }
            for step, amount in schedule_amounts(offer)
        ],
    }


def digest(data: dict) -> str:
    """SHA-256 of the canonical JSON of ``data`` (sorted keys, no spaces)."""
    raw = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def accepted_content(offer: Offer) -> dict:
    """The accepted version as frozen (raises OfferVersion.DoesNotExist before acceptance)."""
    return offer.versions.get(accepted=True).content


def recipient(offer: Offer) -> tuple[str, str]:
    """(name, email) of the person the offer is for: the lead, else the account's responsible
    person; ("", "") when there is nobody to send it to."""
    if offer.lead is not None:
        return offer.lead.name, offer.lead.email
    person = offer.account.responsible if offer.account else None
    if person is not None:
        return (person.get_full_name() or person.email), person.email
    return "", ""


def client_url(offer: Offer) -> str:
    return settings.BASE_URL + reverse("offers:client_offer", args=[offer.token])


def for_account(account: Account):
    """The offers a customer account may read: sent ones and later (never drafts)."""
    return Offer.objects.filter(account=account).exclude(status=Offer.Status.DRAFT)


def signed_offer_for_account(account: Account) -> Offer | None:
    """The account's most recent offer whose contract is signed (what the board starts a
    project from: ``revision_rounds``, ``milestones``, ``title``, ``currency``), or None."""
    return (
        Offer.objects.filter(account=account, contract__status="signed")
        .order_by("-contract__signed_at", "-pk")
        .first()
    )


# -- actions ---------------------------------------------------------------------------------------


def _write_content(offer: Offer, data: OfferIn) -> None:
    offer.title, offer.summary = data.title, data.summary
    offer.currency, offer.language = data.currency, data.language
    offer.valid_until, offer.revision_rounds = data.valid_until, data.revision_rounds
    offer.agreed_total_minor = data.agreed_total_minor
    offer.save()
    offer.payment_steps.all().delete()
    offer.milestones.all().delete()
    offer.lines.all().delete()
    OfferLine.objects.bulk_create(
        OfferLine(offer=offer, position=n, **line.__dict__) for n, line in enumerate(data.lines)
    )
    milestones = [
        Milestone.objects.create(offer=offer, position=n, **m.__dict__)
        for n, m in enumerate(data.milestones)
    ]
    PaymentStep.objects.bulk_create(
        PaymentStep(
            offer=offer,
            position=n,
            label=s.label,
            trigger=s.trigger,
            percent=s.percent,
            amount_minor=s.amount_minor,
            milestone=milestones[s.milestone] if s.milestone is not None else None,
        )
        for n, s in enumerate(data.steps)
    )


def _number(offer: Offer) -> str:
    return f"OF-{offer.created_at:%Y}-{offer.pk:04d}"


def create_offer(
    data: OfferIn,
    *,
    actor: User,
    lead: Lead | None = None,
    account: Account | None = None,
    estimate: Estimate | None = None,
    now: dt.datetime | None = None,
) -> Offer:
    """A draft offer for ``lead`` and/or ``account``. Raises OfferError (nothing saved)."""
    now = now or timezone.now()
    if not actor.is_staff:
        raise OfferError(_("Only staff write offers."))
    if lead is None and account is None:
        raise OfferError(_("Choose the lead or the customer account the offer is for."))
    if account is None and lead is not None:
        account = lead.account
    data = validate(data, now=now)
    with transaction.atomic():
        offer = Offer.objects.create(
            lead=lead,
            account=account,
            estimate=estimate,
            number=f"new-{secrets.token_hex(8)}",  # replaced at once by OF-<year>-<pk>
            title=data.title,
            currency=data.currency,
            valid_until=data.valid_until,
            created_by=actor,
            created_at=now,
        )
        offer.number = _number(offer)
        _write_content(offer, data)
        record_audit(
            "offer.created",
            actor=actor,
            account=account,
            target=offer,
            data={"lead": lead.pk if lead else None, "estimate": estimate.pk if estimate else None},
        )
    return offer


def from_estimate(
    estimate: Estimate, *, actor: User, valid_days: int = 30, now: dt.datetime | None = None
) -> Offer:
    """A draft range offer with the estimate's lines copied as ranges (cost and weeks) in its
    language and currency, for its lead. Raises OfferError."""
    now = now or timezone.now()
    lines = []
    for row in estimate.lines or []:
        quantity = row.get("quantity") or 1
        title = str(row.get("title") or row.get("key") or "")
        lines.append(
            LineIn(
                title=f"{title} × {quantity}" if quantity > 1 else title,
                kind=OfferLine.Kind.RANGE,
                cost_min_minor=int(row.get("cost_min_minor") or 0),
                cost_max_minor=int(row.get("cost_max_minor") or 0),
                weeks_min=Decimal(str(row.get("weeks_min") or 0)),
                weeks_max=Decimal(str(row.get("weeks_max") or 0)),
            )
        )
    # What the estimate's own base range adds over its options' lines, as its own line.
    base_low = estimate.cost_min_minor - sum(line.cost_min_minor for line in lines)
    base_high = estimate.cost_max_minor - sum(line.cost_max_minor for line in lines)
    weeks_low = estimate.weeks_min - sum((line.weeks_min for line in lines), Decimal(0))
    weeks_high = estimate.weeks_max - sum((line.weeks_max for line in lines), Decimal(0))
    if base_high > 0 or weeks_high > 0:
        with translation.override(estimate.language):
            base_title = _("Project set-up, design and launch")
        lines.insert(
            0,
            LineIn(
                title=base_title,
                kind=OfferLine.Kind.RANGE,
                cost_min_minor=max(base_low, 0),
                cost_max_minor=max(base_high, 0),
                weeks_min=max(weeks_low, Decimal(0)),
                weeks_max=max(weeks_high, Decimal(0)),
            ),
        )
    lead = estimate.lead
    with translation.override(estimate.language):
        title = _("Your project") + (f" — {lead.company or lead.name}" if lead else "")
    data = OfferIn(
        title=title,
        currency=estimate.currency,
        language=estimate.language if estimate.language in LANGUAGES else "en",
        valid_until=today_utc(now) + dt.timedelta(days=valid_days),
        lines=tuple(lines),
    )
    return create_offer(
        data,
        actor=actor,
        lead=lead,
        account=lead.account if lead else None,
        estimate=estimate,
        now=now,
    )


def update_offer(
    offer: Offer, data: OfferIn, *, actor: User, now: dt.datetime | None = None
) -> Offer:
    """Save the offer's content. A sent offer keeps the version the client saw (frozen) and
    becomes the next version, which the client then reads; an expired one becomes the next
    version and is open again (its validity date must be today or later). Raises OfferError
    (nothing saved), also for an offer that is accepted, declined or withdrawn."""
    now = now or timezone.now()
    if not actor.is_staff:
        raise OfferError(_("Only staff write offers."))
    data = validate(data, now=now)
    with transaction.atomic():
        offer = Offer.objects.select_for_update().get(pk=offer.pk)
        if not offer.is_editable:
            raise OfferError(
                _("This offer is %(status)s and can no longer change.")
                % {"status": offer.get_status_display().lower()}
            )
        previous = offer.version
        if offer.status in (Offer.Status.SENT, Offer.Status.EXPIRED):
            _freeze(offer, accepted=False, now=now)
            offer.version = previous + 1
            offer.status = Offer.Status.SENT  # a renewed expired offer is open again
        _write_content(offer, data)
        record_audit(
            "offer.updated",
            actor=actor,
            account=offer.account,
            target=offer,
            data={"version": offer.version, "previous": previous},
        )
    return offer


def _freeze(offer: Offer, *, accepted: bool, now: dt.datetime) -> OfferVersion:
    snapshot = content(offer)
    version, _created = OfferVersion.objects.get_or_create(
        offer=offer,
        number=offer.version,
        defaults={
            "content": snapshot,
            "sha256": digest(snapshot),
            "accepted": accepted,
            "created_at": now,
        },
    )
    if accepted and not version.accepted:
        OfferVersion.objects.filter(pk=version.pk).update(accepted=True)
        version.accepted = True
    return version


def send_offer(offer: Offer, *, actor: User, now: dt.datetime | None = None) -> Offer:
    """Email the client the link to the offer (again, when already sent: the current version)
    and mark it sent; the lead's status becomes "offer sent". Raises OfferError."""
    now = now or timezone.now()
    if not actor.is_staff:
        raise OfferError(_("Only staff send offers."))
    with transaction.atomic():
        offer = (
            Offer.objects.select_for_update(of=("self",))
            .select_related("lead", "account")
            .get(pk=offer.pk)
        )
        if offer.status not in (Offer.Status.DRAFT, Offer.Status.SENT):
            raise OfferError(
                _("This offer is %(status)s and cannot be sent.")
                % {"status": offer.get_status_display().lower()}
            )
        if offer.valid_until < today_utc(now):
            raise OfferError(_("The offer's validity date has passed; set a new one first."))
        t = totals(offer)
        if t["is_range"] and offer.payment_steps.exists() and t["base"] is None:
            raise OfferError(_("Set the agreed price the payment schedule is computed on."))
        name, email = recipient(offer)
        if not email:
            raise OfferError(_("Nobody to send it to: the account has no responsible person."))
        first = offer.status == Offer.Status.DRAFT
        offer.status = Offer.Status.SENT
        offer.sent_at = now
        offer.save(update_fields=["status", "sent_at", "updated_at"])
        if offer.lead is not None and offer.lead.status not in (Lead.Status.WON, Lead.Status.LOST):
            Lead.objects.filter(pk=offer.lead_id).update(status=Lead.Status.OFFER)
        record_audit(
            "offer.sent" if first else "offer.resent",
            actor=actor,
            account=offer.account,
            target=offer,
            data={"version": offer.version, "to": email},
        )
        transaction.on_commit(lambda: _mail_offer(offer, name, email))
    return offer


def _mail_offer(offer: Offer, name: str, email: str) -> None:
    with translation.override(offer.language):
        subject = _("Offer %(number)s: %(title)s") % {"number": offer.number, "title": offer.title}
        body = _(
            "Hello %(name)s,\n\nyour offer is ready to read (version %(version)s, valid until "
            "%(valid)s):\n%(url)s\n\nYou can accept or decline it on that page. The link is "
            "yours alone; please do not forward it."
        ) % {
            "name": name,
            "version": offer.version,
            "valid": offer.valid_until.isoformat(),
            "url": client_url(offer),
        }
    send_mail(subject, body, None, [email])


def withdraw_offer(offer: Offer, *, actor: User) -> Offer:
    if not actor.is_staff:
        raise OfferError(_("Only staff withdraw offers."))
    with transaction.atomic():
        offer = Offer.objects.select_for_update().get(pk=offer.pk)
        if offer.status not in (Offer.Status.DRAFT, Offer.Status.SENT):
            raise OfferError(
                _("This offer is %(status)s and cannot be withdrawn.")
                % {"status": offer.get_status_display().lower()}
            )
        offer.status = Offer.Status.WITHDRAWN
        offer.save(update_fields=["status", "updated_at"])
        record_audit("offer.withdrawn", actor=actor, account=offer.account, target=offer)
    return offer


def expire_offers(*, now: dt.datetime | None = None) -> int:
    """Mark every sent offer past its validity date expired; returns how many (idempotent: a
    conditional update). Run daily; acceptance checks the date itself as well."""
    now = now or timezone.now()
    stale = list(
        Offer.objects.filter(status=Offer.Status.SENT, valid_until__lt=today_utc(now)).values_list(
            "pk", flat=True
        )
    )
    count = 0
    for pk in stale:
        if Offer.objects.filter(pk=pk, status=Offer.Status.SENT).update(
            status=Offer.Status.EXPIRED
        ):
            offer = Offer.objects.get(pk=pk)
            record_audit(
                "offer.expired", actor_label="system:scheduler", account=offer.account, target=offer
            )
            count += 1
    return count


def _expire_if_due(offer: Offer, *, now: dt.datetime) -> None:
    """Record the expiry (committed on its own) before a refused late decision."""
    if offer.valid_until < today_utc(now):
        expire_offers(now=now)


def _open_for_decision(offer: Offer, *, version: int, now: dt.datetime) -> Offer:
    """The locked offer if the client may still decide on ``version``; raises OfferError."""
    if offer.status == Offer.Status.EXPIRED or offer.valid_until < today_utc(now):
        raise OfferError(
            _("This offer expired on %(date)s and can no longer be accepted.")
            % {"date": offer.valid_until.isoformat()}
        )
    if offer.status != Offer.Status.SENT:
        raise OfferError(
            _("This offer is %(status)s; there is nothing to decide.")
            % {"status": offer.get_status_display().lower()}
        )
    if version != offer.version:
        raise OfferError(
            _(
                "The offer has changed since you opened it: please read version "
                "%(version)s and decide on it."
            )
            % {"version": offer.version}
        )
    return offer


def _client_actor(offer: Offer, actor: User | None) -> None:
    if actor is not None and actor.is_authenticated and actor.is_staff:
        raise OfferError(_("Only the client decides on an offer."))


def _ensure_account(offer: Offer, *, now: dt.datetime) -> Account:
    """The offer's customer account, making the lead a customer first if needed (they get a
    link to choose a password). Raises OfferError when the lead's email belongs to staff."""
    if offer.account is not None:
        return offer.account
    lead = offer.lead
    if lead.account is not None:
        return lead.account
    user = User.objects.filter(email__iexact=lead.email.strip()).first()
    if user is not None:
        if user.account is None:
            raise OfferError(_("This email address cannot accept offers; please contact us."))
        account = user.account
    else:
        try:
            user = sign_up(
                email=lead.email,
                password=None,
                full_name=lead.name,
                account_name=lead.company or lead.name,
                language=lead.language if lead.language in LANGUAGES else "en",
            )
        except AccountError as exc:  # pragma: no cover - raced with another sign-up
            raise OfferError(str(exc)) from exc
        account = user.account
        User.objects.filter(pk=user.pk).update(timezone=lead.timezone or "UTC")
        Account.objects.filter(pk=account.pk).update(currency=offer.currency)
        account.currency = offer.currency
        new_user = user
        transaction.on_commit(lambda: send_password_link(new_user))
    Lead.objects.filter(pk=lead.pk).update(account=account)
    lead.account = account
    return account


def accept_offer(
    offer: Offer,
    *,
    version: int,
    actor: User | None = None,
    ip: str | None = None,
    now: dt.datetime | None = None,
):
    """The client accepts ``version`` (the one they read): the version is frozen, the lead
    becomes a customer account if it is none yet (and its status "won"), and the contract is
    created from the template in the client's language, awaiting signature. Returns the
    contract; accepting an accepted offer again returns the same contract. ``actor``: the
    logged-in customer, or None for the lead by the private link (the caller checked access).
    Raises OfferError (nothing changed) when it is expired, decided, withdrawn or changed."""
    from otomat.projects.offers.contracts import create_contract

    now = now or timezone.now()
    _client_actor(offer, actor)
    _expire_if_due(offer, now=now)
    with transaction.atomic():
        locked = (
            Offer.objects.select_for_update(of=("self",))
            .select_related("lead", "account")
            .get(pk=offer.pk)
        )
        if locked.status == Offer.Status.ACCEPTED and locked.accepted_version == version:
            return locked.contract
        locked = _open_for_decision(locked, version=version, now=now)
        account = _ensure_account(locked, now=now)
        locked.account = account
        frozen = _freeze(locked, accepted=True, now=now)
        locked.status = Offer.Status.ACCEPTED
        locked.accepted_at, locked.accepted_version = now, locked.version
        locked.save(
            update_fields=["account", "status", "accepted_at", "accepted_version", "updated_at"]
        )
        if locked.lead_id:
            Lead.objects.filter(pk=locked.lead_id).update(status=Lead.Status.WON, account=account)
        record_audit(
            "offer.accepted",
            actor=actor,
            actor_label="" if actor else f"lead:{locked.lead.email if locked.lead else ''}",
            account=account,
            target=locked,
            ip=ip,
            data={"version": locked.version, "sha256": frozen.sha256},
        )
        contract = create_contract(locked, now=now)
        notices.offer_decided(locked)
    offer.refresh_from_db()
    return contract


def decline_offer(
    offer: Offer,
    *,
    version: int,
    reason: str,
    actor: User | None = None,
    ip: str | None = None,
    now: dt.datetime | None = None,
) -> Offer:
    """The client declines, saying why. Raises OfferError (nothing changed)."""
    now = now or timezone.now()
    _client_actor(offer, actor)
    reason = clean_text(reason, _("The reason"), most=2000)
    _expire_if_due(offer, now=now)
    with transaction.atomic():
        locked = (
            Offer.objects.select_for_update(of=("self",)).select_related("lead").get(pk=offer.pk)
        )
        locked = _open_for_decision(locked, version=version, now=now)
        locked.status, locked.declined_at, locked.decline_reason = (
            Offer.Status.DECLINED,
            now,
            reason,
        )
        locked.save(update_fields=["status", "declined_at", "decline_reason", "updated_at"])
        record_audit(
            "offer.declined",
            actor=actor,
            actor_label="" if actor else f"lead:{locked.lead.email if locked.lead else ''}",
            account=locked.account,
            target=locked,
            ip=ip,
            data={"version": locked.version, "reason": reason[:500]},
        )
        notices.offer_decided(locked)
    offer.refresh_from_db()
    return offer
