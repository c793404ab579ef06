"""SLA clocks: first/next response and resolution, counted in the department's business hours
(its weekly schedule, time zone and public holidays), the resolution clock paused while the
ticket waits on the customer; warnings to the assignee, escalation to the owner before the
breach, and the breach itself — each recorded once, with its reason.

Two clocks per ticket:
* **response** runs from a customer's message until staff answer publicly; its target is the
  policy's first-response time for the first answer and next-response time afterwards;
* **resolution** runs while the ticket waits on us (``open``), pauses while it waits on the
  customer (``pending``, ``awaiting_payment``) and stops when it is resolved.

``scan`` (the scheduler's periodic task) looks only at tickets whose ``sla_check_at`` has come,
like the billing run.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import lru_cache

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from otomat.support.business_hours import BusinessCalendar, Schedule
from otomat.support.models import Department, SlaPolicy, Ticket, TicketEvent, locked_tickets

log = logging.getLogger("otomat.support.sla")
STAGES = ("warn", "escalate", "breach")
ACTOR = "system:sla"
BATCH = 200


@lru_cache(maxsize=64)
def _calendar(hours: str, tz: str, country: str, extra: str) -> BusinessCalendar:
    import json
    from datetime import date

    spec = json.loads(hours) or {"mon-fri": "09:00-17:00"}
    days = [date.fromisoformat(d) for d in json.loads(extra)]
    return BusinessCalendar(Schedule.parse(spec), tz, days, country=country or None)


def calendar_for(department: Department) -> BusinessCalendar:
    import json

    return _calendar(
        json.dumps(department.hours, sort_keys=True),
        department.timezone,
        department.holiday_country,
        json.dumps(sorted(department.extra_holidays or [])),
    )


def policy_for(ticket: Ticket) -> SlaPolicy | None:
    """The plan-specific policy for the ticket's priority, else the general one."""
    plan_id = None
    if ticket.instance_id:
        from otomat.billing.models import Subscription

        plan_id = (
            Subscription.objects.filter(instance_id=ticket.instance_id)
            .values_list("plan_id", flat=True)
            .first()
        )
    policies = SlaPolicy.objects.filter(priority=ticket.priority)
    return (policies.filter(plan_id=plan_id).first() if plan_id else None) or policies.filter(
        plan__isnull=True
    ).first()


def _minutes(policy: SlaPolicy, clock: str, target: str = "") -> int:
    if clock == "resolution":
        return policy.resolution_minutes
    return policy.first_response_minutes if target == "first" else policy.next_response_minutes


# -- clock changes (called by the ticket services inside their transaction) -----------------


def customer_wrote(ticket: Ticket, at: datetime) -> None:
    """A customer message: the response clock starts (unless already running) and the
    resolution clock runs."""
    policy = ticket.sla_policy
    if policy is None:
        return
    cal = calendar_for(ticket.department)
    if not ticket.response_target:
        ticket.response_target = "first" if ticket.first_response_at is None else "next"
        ticket.response_since = at
        minutes = _minutes(policy, "response", ticket.response_target)
        ticket.response_due = cal.add(at, timedelta(minutes=minutes))
        _clear_stages(ticket, "response")
    _resume_resolution(ticket, at, cal)
    reschedule(ticket, at)


def staff_answered(ticket: Ticket, at: datetime, *, actor=None) -> None:
    """A public staff reply stops the response clock (recording a late first response)."""
    if ticket.response_target == "first":
        ticket.first_response_at = at
        if ticket.response_due and at > ticket.response_due and not ticket.first_response_breached:
            ticket.first_response_breached = True
            _event(ticket, "sla_breach", "first response given after its due time", at)
    ticket.response_target, ticket.response_since, ticket.response_due = "", None, None
    _clear_stages(ticket, "response")
    reschedule(ticket, at)


def status_changed(ticket: Ticket, at: datetime) -> None:
    """Run, pause or stop the resolution clock to match the ticket's new status."""
    if ticket.sla_policy is None:
        return
    cal = calendar_for(ticket.department)
    if ticket.status == Ticket.Status.OPEN:
        _resume_resolution(ticket, at, cal)
    else:
        _pause_resolution(ticket, at, cal)
        if ticket.status in (Ticket.Status.RESOLVED, Ticket.Status.CLOSED, Ticket.Status.MERGED):
            target = _minutes(ticket.sla_policy, "resolution") * 60
            if ticket.resolution_used_seconds > target and not ticket.resolution_breached:
                ticket.resolution_breached = True
                _event(ticket, "sla_breach", "resolved after the resolution time", at)
            ticket.response_target, ticket.response_since, ticket.response_due = "", None, None
    reschedule(ticket, at)


def _resume_resolution(ticket: Ticket, at: datetime, cal: BusinessCalendar) -> None:
    if ticket.resolution_running_since is not None or ticket.status != Ticket.Status.OPEN:
        return
    target = _minutes(ticket.sla_policy, "resolution") * 60
    left = max(target - ticket.resolution_used_seconds, 0)
    ticket.resolution_running_since = at
    ticket.resolution_due = cal.add(at, timedelta(seconds=left))


def _pause_resolution(ticket: Ticket, at: datetime, cal: BusinessCalendar) -> None:
    if ticket.resolution_running_since is None:
        return
    used = cal.between(ticket.resolution_running_since, at)
    ticket.resolution_used_seconds += int(used.total_seconds())
    ticket.resolution_running_since = None
    ticket.resolution_due = None


# -- stages -------------------------------------------------------------------------------


def _clear_stages(ticket: Ticket, clock: str) -> None:
    ticket.sla_stage = {
        k: v for k, v in (ticket.sla_stage or {}).items() if not k.startswith(clock)
    }


def _stage_instants(ticket: Ticket) -> list[tuple[str, str, datetime]]:
    """(clock, stage, instant) of every warning, escalation and breach of the running clocks."""
    policy = ticket.sla_policy
    if policy is None:
        return []
    cal = calendar_for(ticket.department)
    percents = {"warn": policy.warn_percent, "escalate": policy.escalate_percent, "breach": 100}
    found = []
    if ticket.response_target and ticket.response_since:
        total = _minutes(policy, "response", ticket.response_target) * 60
        for stage, pct in percents.items():
            at = cal.add(ticket.response_since, timedelta(seconds=total * pct // 100))
            found.append(("response", stage, at))
    if ticket.resolution_running_since is not None:
        total = _minutes(policy, "resolution") * 60
        for stage, pct in percents.items():
            left = max(total * pct // 100 - ticket.resolution_used_seconds, 0)
            at = cal.add(ticket.resolution_running_since, timedelta(seconds=left))
            found.append(("resolution", stage, at))
    return found


def reschedule(ticket: Ticket, now: datetime) -> None:
    """Set ``sla_check_at`` to the next stage not yet recorded (None when nothing runs)."""
    pending = [
        at
        for clock, stage, at in _stage_instants(ticket)
        if f"{clock}:{stage}" not in (ticket.sla_stage or {})
    ]
    ticket.sla_check_at = min(pending) if pending else None


def check(ticket: Ticket, now: datetime) -> list[str]:
    """Record every stage whose moment has come (once each), notify, reschedule. Returns the
    stages recorded, e.g. ["response:warn"]."""
    from otomat.support import notices

    recorded = []
    for clock, stage, at in _stage_instants(ticket):
        key = f"{clock}:{stage}"
        if at > now or key in (ticket.sla_stage or {}):
            continue
        ticket.sla_stage = {**(ticket.sla_stage or {}), key: at.isoformat()}
        what = "first response" if ticket.response_target == "first" else "response"
        label = what if clock == "response" else "resolution"
        detail = {
            "warn": f"{label} time {ticket.sla_policy.warn_percent}% used",
            "escalate": f"{label} time {ticket.sla_policy.escalate_percent}% used: escalated to the owner",
            "breach": f"{label} time exceeded",
        }[stage]
        if stage == "breach":
            if clock == "resolution":
                ticket.resolution_breached = True
            elif ticket.response_target == "first":
                ticket.first_response_breached = True
        _event(ticket, f"sla_{stage}", detail, at)
        notices.sla_stage(ticket, clock=clock, stage=stage, detail=detail)
        recorded.append(key)
    reschedule(ticket, now)
    return recorded


def _event(ticket: Ticket, kind: str, detail: str, at: datetime) -> None:
    TicketEvent.objects.create(
        ticket=ticket, kind=kind, detail=detail[:300], at=at, actor_label=ACTOR
    )


def scan(*, now: datetime | None = None) -> int:
    """Check every ticket whose next SLA moment has come, in bounded batches; returns how many
    stages were recorded. One failing ticket is logged and skipped."""
    now = now or timezone.now()
    recorded = 0
    after: tuple[datetime, int] | None = None
    while True:
        due = Ticket.objects.filter(sla_check_at__lte=now)
        if after is not None:
            due = due.filter(
                Q(sla_check_at__gt=after[0]) | Q(sla_check_at=after[0], id__gt=after[1])
            )
        keys = list(due.order_by("sla_check_at", "id").values_list("sla_check_at", "id")[:BATCH])
        if not keys:
            return recorded
        after = keys[-1]
        for _, pk in keys:
            try:
                with transaction.atomic():
                    ticket = (
                        locked_tickets()
                        .select_related("sla_policy", "department", "assignee", "account")
                        .get(pk=pk)
                    )
                    recorded += len(check(ticket, now))
                    ticket.save(
                        update_fields=[
                            "sla_stage",
                            "sla_check_at",
                            "first_response_breached",
                            "resolution_breached",
                        ]
                    )
            except Exception:
                log.exception("SLA check of ticket %s failed", pk)
                Ticket.objects.filter(pk=pk).update(sla_check_at=now + timedelta(minutes=5))
