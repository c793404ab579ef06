"""Business actions on incidents, in the style of ``instances.services``: each is atomic, writes
its timeline entry and, for people's actions, the audit row; notices go out on commit through
``notices``. Raises :class:`IncidentError` (message shown to the person) and changes nothing
when refused."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from otomat.accounts.models import Account, User
from otomat.accounts.services import record_audit
from otomat.instances.models import Instance
from otomat.monitoring.models import Alert, Incident, IncidentUpdate, Severity
from otomat.monitoring.platform import PLATFORM_WIDE_CHECKS

log = logging.getLogger("otomat.monitoring")
ACTOR = "system:monitoring"
K = IncidentUpdate.Kind
MAX_TEXT = 10_000
SEVERITY_ORDER = [Severity.CRITICAL, Severity.MAJOR, Severity.MINOR]  # gravest first


class IncidentError(Exception):
    """A refused incident action; the message is shown to the person."""


def _entry(incident: Incident, kind: str, text: str = "", *, actor=None, public=False, at=None):
    return IncidentUpdate.objects.create(
        incident=incident,
        kind=kind,
        text=text[:MAX_TEXT],
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_label="" if actor is not None else ACTOR,
        public=public,
        at=at or timezone.now(),
    )


def _clean(text: str, *, required: str = "") -> str:
    text = (text or "").strip()
    if required and not text:
        raise IncidentError(gettext(required))
    if len(text) > MAX_TEXT:
        raise IncidentError(gettext("Keep it under %(n)s characters.") % {"n": MAX_TEXT})
    return text


def open_incident(
    *,
    title: str,
    severity: str,
    summary: str = "",
    accounts: Iterable[Account] = (),
    instances: Iterable[Instance] = (),
    actor: User | None = None,
    source: str = Incident.Source.MANUAL,
    public: bool = False,
    public_title: str = "",
    group_key: str = "",
    check: str = "",
    now: datetime | None = None,
) -> Incident:
    """Open an incident with its "opened" entry; affected instances bring their accounts. For
    affected customers whose plan has its own SLA policy, a support ticket is opened and
    linked, so the SLA clock runs. Raises IncidentError on a bad title or severity."""
    title = " ".join((title or "").split())
    if not title:
        raise IncidentError(gettext("Write a title."))
    if len(title) > 200:
        raise IncidentError(gettext("Keep the title under 200 characters."))
    if severity not in Severity.values:
        raise IncidentError(gettext("Choose a severity."))
    summary = _clean(summary)
    instances = list(instances)
    accounts = {a.pk: a for a in accounts}
    for inst in instances:
        accounts.setdefault(inst.account_id, inst.account)
    now = now or timezone.now()
    with transaction.atomic():
        incident = Incident.objects.create(
            title=title,
            severity=severity,
            summary=summary,
            source=source,
            opened_at=now,
            opened_by=actor if actor is not None and actor.is_authenticated else None,
            public=public,
            public_title=(public_title or "").strip()[:200],
            group_key=group_key,
            check_name=check,
        )
        if accounts:
            incident.accounts.add(*accounts.values())
        if instances:
            incident.instances.add(*instances)
        _entry(incident, K.OPENED, summary or title, actor=actor, at=now)
        if source == Incident.Source.MANUAL:
            from otomat.monitoring import notices

            notices.incident_opened(incident)  # the engine tells of its own incidents itself
        if actor is not None:
            record_audit(
                "monitoring.incident_opened",
                actor=actor,
                account=None,
                target=incident,
                data={"severity": severity, "accounts": sorted(accounts)},
            )
        # A customer named without an instance (an incident opened by hand): their live
        # instances speak for them, so the one on an SLA plan gets the ticket.
        bare = set(accounts) - {i.account_id for i in instances}
        covered = instances + list(
            Instance.objects.filter(account_id__in=bare, kind=Instance.Kind.CUSTOMER)
            .exclude(state=Instance.State.TERMINATED)
            .select_related("account")
        )
        link_sla_tickets(incident, covered, now=now)
    return incident


def sla_covered_instances(*, exclude=()) -> list[Instance]:
    """The live customer instances whose plan has its own SLA policy (one query): whom a
    platform-wide incident affects under a contract."""
    from otomat.support.models import SlaPolicy

    S = Instance.State
    sla_plans = SlaPolicy.objects.filter(plan__isnull=False).values("plan_id")
    return list(
        Instance.objects.filter(
            kind=Instance.Kind.CUSTOMER,
            desired=Instance.Desired.RUNNING,
            subscription__plan_id__in=sla_plans,
        )
        .exclude(state__in=[S.TERMINATED, S.SUSPENDED, S.PENDING])
        .exclude(pk__in=list(exclude))
        .select_related("account")
        .order_by("account_id", "created_at")
    )


def link_sla_tickets(incident: Incident, instances: list[Instance], *, now=None) -> int:
    """Open one support ticket per affected customer whose plan has its own SLA policy and who
    has none linked yet; returns how many were opened. Through support's own service, so the
    ticket's SLA clock starts as for any other."""
    if not instances:
        return 0
    from otomat.billing.models import Subscription
    from otomat.support.models import SlaPolicy, Ticket
    from otomat.support.tickets import TicketError, open_ticket

    plan_of = dict(
        Subscription.objects.filter(instance__in=instances).values_list("instance_id", "plan_id")
    )
    sla_plans = set(
        SlaPolicy.objects.filter(plan_id__in=set(plan_of.values())).values_list(
            "plan_id", flat=True
        )
    )
    linked = set(incident.tickets.values_list("account_id", flat=True))
    opened = 0
    for inst in instances:
        if plan_of.get(inst.pk) not in sla_plans or inst.account_id in linked:
            continue
        try:
            with transaction.atomic():
                ticket = open_ticket(
                    account=inst.account,
                    requester=None,
                    subject=f"Incident: {incident.title}"[:200],
                    body=(
                        f"We are working on a problem affecting {inst.name}.\n\n"
                        f"{incident.summary or incident.title}"
                    ),
                    instance=inst,
                    kind=Ticket.Kind.PROBLEM,
                    priority="high",
                    now=now,
                )
        except TicketError as exc:
            log.info("no SLA ticket for incident %s: %s", incident.pk, exc)
            continue
        incident.tickets.add(ticket)
        linked.add(inst.account_id)
        _entry(incident, K.UPDATE, f"Support ticket {ticket.number} opened for {inst.account}.")
        opened += 1
    return opened


def open_for_alerts(alerts: list[Alert], *, key: str, now: datetime) -> Incident:
    """The incident of newly firing alerts of one group (called by the engine inside its
    transaction): one incident, whatever the number of alerts."""
    first = alerts[0]
    rule = first._rule
    instances = list(
        Instance.objects.filter(pk__in=[a.instance_id for a in alerts if a.instance_id])
        .select_related("account")
        .order_by("name")
    )
    account_ids = {a.account_id for a in alerts if a.account_id and not a.instance_id}
    accounts = list(Account.objects.filter(pk__in=account_ids))
    if first.check_name in PLATFORM_WIDE_CHECKS:
        # A full disk or a dead worker names no customer but affects them all: those whose
        # contract (plan) has an SLA are linked, so their ticket's clock starts now.
        instances += sla_covered_instances(exclude=[i.pk for i in instances])
    title = first.summary or f"{first.check_name} {first.subject}"
    if len(alerts) > 1:
        title = f"{len(alerts)} × {first.check_name} down on {first.group or first.check_name}"
    summary = "\n".join(f"{a.subject}: {a.summary}" for a in alerts[:50])
    incident = open_incident(
        title=title[:200],
        severity=rule.severity,
        summary=summary[:MAX_TEXT],
        instances=instances,
        accounts=accounts,
        source=Incident.Source.ALERT,
        group_key=key,
        check=first.check_name,
        now=now,
    )
    return incident


def attach_alerts(incident: Incident, alerts: list[Alert], *, now: datetime) -> None:
    """More alerts of the incident's group: note them on the timeline, add whom they affect."""
    instances = list(
        Instance.objects.filter(
            pk__in=[a.instance_id for a in alerts if a.instance_id]
        ).select_related("account")
    )
    if instances:
        incident.instances.add(*instances)
        incident.accounts.add(*{i.account for i in instances})
        link_sla_tickets(incident, instances, now=now)
    account_ids = {a.account_id for a in alerts if a.account_id and not a.instance_id}
    if account_ids:
        incident.accounts.add(*account_ids)
    text = "\n".join(f"{a.subject}: {a.summary}" for a in alerts[:50])
    _entry(incident, K.ALERT, text, at=now)
    # A later stage of the same problem may be graver (a bot restarting with backoff, then
    # given up on): the incident takes the gravest severity of its alerts.
    severities = [a._rule.severity for a in alerts if getattr(a, "_rule", None) is not None]
    gravest = min(severities, key=SEVERITY_ORDER.index, default=incident.severity)
    if SEVERITY_ORDER.index(gravest) < SEVERITY_ORDER.index(incident.severity):
        Incident.objects.filter(pk=incident.pk).update(severity=gravest)
        incident.severity = gravest


def post_update(
    incident: Incident, text: str, *, actor: User, public: bool = False
) -> IncidentUpdate:
    """Add an update to the timeline. Raises IncidentError on an empty or too long text."""
    text = _clean(text, required=gettext_noop("Write the update."))
    with transaction.atomic():
        entry = _entry(incident, K.UPDATE, text, actor=actor, public=public)
        record_audit("monitoring.incident_update", actor=actor, account=None, target=incident)
    return entry


def acknowledge(incident: Incident, *, actor: User) -> Incident:
    """Someone is on it: reminders stop. Raises IncidentError unless the incident is open."""
    with transaction.atomic():
        now = timezone.now()
        done = Incident.objects.filter(pk=incident.pk, status=Incident.Status.OPEN).update(
            status=Incident.Status.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=actor
        )
        if not done:
            raise IncidentError(gettext("Only an open incident can be acknowledged."))
        incident.refresh_from_db()
        _entry(incident, K.ACKNOWLEDGED, f"Acknowledged by {actor}.", actor=actor, at=now)
        record_audit("monitoring.incident_acknowledged", actor=actor, account=None, target=incident)
    return incident


def resolve(
    incident: Incident,
    *,
    actor: User | None = None,
    note: str = "",
    now: datetime | None = None,
    automatic: bool = False,
) -> Incident:
    """Close the incident (by a person, or by the engine when every alert recovered) and tell
    those who were told it opened. Raises IncidentError when it is resolved already."""
    from otomat.monitoring import notices

    note = _clean(note)
    now = now or timezone.now()
    with transaction.atomic():
        done = (
            Incident.objects.filter(pk=incident.pk)
            .exclude(status=Incident.Status.RESOLVED)
            .update(
                status=Incident.Status.RESOLVED,
                resolved_at=now,
                resolved_by=actor if actor is not None else None,
            )
        )
        if not done:
            raise IncidentError(gettext("This incident is resolved already."))
        incident.refresh_from_db()
        text = note or ("Recovered: every alert is healthy again." if automatic else "Resolved.")
        _entry(incident, K.RESOLVED, text, actor=actor, at=now, public=incident.public)
        if actor is not None:
            record_audit("monitoring.incident_resolved", actor=actor, account=None, target=incident)
        notices.incident_resolved(incident)
    return incident


def reopen(incident: Incident, *, note: str = "", now: datetime | None = None) -> Incident:
    """The engine reopens a just-resolved incident whose alert fires again (flapping)."""
    with transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(
            status=Incident.Status.OPEN, resolved_at=None, resolved_by=None
        )
        incident.refresh_from_db()
        _entry(incident, K.REOPENED, note or "It fails again.", at=now)
    return incident


def set_postmortem(incident: Incident, text: str, *, actor: User) -> Incident:
    """Write (or rewrite) the postmortem note. Raises IncidentError on an empty or long text."""
    text = _clean(text, required=gettext_noop("Write the postmortem."))
    with transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(postmortem=text)
        incident.refresh_from_db()
        _entry(incident, K.POSTMORTEM, "Postmortem written.", actor=actor)
        record_audit("monitoring.incident_postmortem", actor=actor, account=None, target=incident)
    return incident


def set_public(incident: Incident, *, public: bool, public_title: str, actor: User) -> Incident:
    """Show the incident on the status page under ``public_title`` (never customers' names),
    or hide it. Raises IncidentError when a public incident has no public title."""
    public_title = " ".join((public_title or "").split())
    if public and not public_title:
        raise IncidentError(gettext("A public incident needs a public title."))
    if len(public_title) > 200:
        raise IncidentError(gettext("Keep the title under 200 characters."))
    with transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(public=public, public_title=public_title)
        incident.refresh_from_db()
        _entry(
            incident,
            K.UPDATE,
            f"Shown on the status page as “{public_title}”."
            if public
            else "Hidden from the status page.",
            actor=actor,
        )
        record_audit(
            "monitoring.incident_public",
            actor=actor,
            account=None,
            target=incident,
            data={"public": public, "public_title": public_title},
        )
    return incident
