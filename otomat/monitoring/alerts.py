"""The alert engine: observations (:class:`~otomat.monitoring.signals.Signal`) in, alerts,
incidents and notices out.

Per (check, subject) an :class:`~otomat.monitoring.models.Alert` row keeps the streak: it goes
``ok → pending`` on a failing observation, ``pending → firing`` once ``failure_threshold``
consecutive failures lasted ``grace_seconds``, and ``firing → ok`` after ``recovery_threshold``
consecutive healthy observations (so one healthy observation in a crash does not resolve and
re-alert). Every change between failing and healthy observations is remembered for
``flap_window_seconds``; ``flap_changes`` of them mark the alert *flapping*: it stays firing and
one digest replaces the per-change messages until it is stable again.

A firing alert opens — or joins — an incident: alerts of one rule and one group (a shared host,
a product version) share the open incident of that group, so ten bots of one dead host make one
incident and one message. An alert fires silently (``suppressed``) during a matching
maintenance window or silence, or while an alert on its group's subject (the host) or on the
runner fires (inhibition); it speaks once that ends while it still fires.

``report()`` reads in batches: the rules, the active windows, and the alerts that are not
healthy or changed recently (one query each), plus the rows of failing subjects not among
those. A healthy observation of a healthy subject writes nothing.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from otomat.monitoring.models import Alert, AlertRule, Incident, Maintenance, Severity, Silence
from otomat.monitoring.signals import Signal

log = logging.getLogger("otomat.monitoring")
ACTOR = "system:monitoring"

# The defaults of every known check; a saved AlertRule row overrides all of its fields.
DEFAULT_RULES: dict[str, dict] = {
    # A crash loop: the runner already gave up after its restarts, so alert at once.
    "instance": {
        "severity": Severity.CRITICAL,
        "failure_threshold": 1,
        "recovery_threshold": 2,
        "grace_seconds": 0,
        "repeat_seconds": 3600,
        "flap_window_seconds": 900,
        "flap_changes": 3,
        "group_by": AlertRule.GroupBy.GROUP,
    },
    # Exited and being restarted with backoff: a crash loop in progress. A bot back within a
    # few seconds (its first restart after 1 s) says nothing; one still down after the grace
    # alerts then — long before the runner gives up (~15 s) — and its later "instance" alert
    # joins the same incident (INCIDENT_FAMILY) without a second message.
    "instance.backoff": {
        "severity": Severity.MAJOR,
        "failure_threshold": 2,
        "recovery_threshold": 2,
        "grace_seconds": 5,
        "group_by": AlertRule.GroupBy.GROUP,
    },
    "telegram": {"severity": Severity.MAJOR, "failure_threshold": 2, "grace_seconds": 120},
    "host.disk": {"severity": Severity.CRITICAL, "failure_threshold": 1},
    "host.memory": {"severity": Severity.MAJOR, "failure_threshold": 3, "grace_seconds": 120},
    "host.load": {"severity": Severity.MINOR, "failure_threshold": 5, "grace_seconds": 300},
    "service.worker": {"severity": Severity.CRITICAL},
    "service.scheduler": {"severity": Severity.CRITICAL},
    "service.runner": {"severity": Severity.CRITICAL},
    "service.web": {"severity": Severity.CRITICAL},
    "queue.lag": {"severity": Severity.MAJOR, "failure_threshold": 2, "grace_seconds": 60},
    "database.size": {"severity": Severity.MAJOR, "failure_threshold": 2},
}
RULE_FIELDS = [
    "enabled",
    "severity",
    "failure_threshold",
    "recovery_threshold",
    "grace_seconds",
    "repeat_seconds",
    "flap_window_seconds",
    "flap_changes",
    "group_by",
    "open_incident",
    "notify_customers",
]
# While one of these fires, every instance check is inhibited (nothing observes the bots).
INHIBIT_INSTANCES = {"service.runner"}
INSTANCE_CHECKS = {"instance", "instance.backoff", "telegram"}
# Checks that are stages of one problem share their incident key: a bot restarting with backoff
# and then given up on ("instance") is one crash loop, one incident, one message.
INCIDENT_FAMILY = {"instance.backoff": "instance"}
# A pending alert whose grace ends within this many seconds asks for a scan just after it
# (so it fires on time, not at the next periodic scan); longer graces wait for the scheduler.
FOLLOW_UP_MAX_SECONDS = 300
FOLLOW_UP_MARGIN_SECONDS = 0.25

# -- rules ------------------------------------------------------------------------------------


def default_rule(check: str) -> AlertRule:
    """An unsaved rule with the defaults of ``check`` (the model's defaults for unknown ones)."""
    return AlertRule(check_name=check, **DEFAULT_RULES.get(check, {}))


def rules() -> dict[str, AlertRule]:
    """Every known check's rule, saved rows over defaults (one query)."""
    result = {check: default_rule(check) for check in DEFAULT_RULES}
    for rule in AlertRule.objects.all():
        result[rule.check_name] = rule
    return result


def save_rule(rule: AlertRule, *, actor) -> AlertRule:
    """Store the owner's changes to a rule (validated by AlertRuleForm) with an audit row."""
    from otomat.accounts.services import record_audit

    with transaction.atomic():
        rule.updated_at = timezone.now()
        rule.updated_by = actor
        rule.save()
        record_audit(
            "monitoring.rule_changed",
            actor=actor,
            account=None,
            target=rule,
            data={name: getattr(rule, name) for name in RULE_FIELDS},
        )
    return rule


# -- maintenance windows and silences ---------------------------------------------------------


def create_maintenance(window: Maintenance, *, actor) -> Maintenance:
    from otomat.accounts.services import record_audit

    with transaction.atomic():
        window.created_by = actor
        window.save()
        record_audit(
            "monitoring.maintenance_created",
            actor=actor,
            account=None,
            target=window,
            data={"scope": window.scope, "value": window.scope_value},
        )
    return window


def create_silence(silence: Silence, *, actor) -> Silence:
    from otomat.accounts.services import record_audit

    with transaction.atomic():
        silence.created_by = actor
        silence.save()
        record_audit(
            "monitoring.silence_created",
            actor=actor,
            account=None,
            target=silence,
            data={
                "check": silence.check_name,
                "match": silence.match,
                "until": str(silence.ends_at),
            },
        )
    return silence


def end_early(window: Maintenance | Silence, *, actor) -> bool:
    """End a maintenance window or silence now; False when it had ended already."""
    from otomat.accounts.services import record_audit

    now = timezone.now()
    with transaction.atomic():
        done = (
            type(window)
            .objects.filter(pk=window.pk, ended_early_at=None, ends_at__gt=now)
            .update(ended_early_at=now)
        )
        if done:
            record_audit(
                f"monitoring.{type(window).__name__.lower()}_ended",
                actor=actor,
                account=None,
                target=window,
            )
    return bool(done)


# -- the registry of checks that scan() runs ---------------------------------------------------

CheckFn = Callable[[datetime], Iterable[Signal]]
CHECKS: list[CheckFn] = []


def register_check(fn: CheckFn) -> CheckFn:
    """Add ``fn(now) -> Iterable[Signal]`` to what ``scan()`` runs (usable as a decorator;
    registering the same function twice keeps one)."""
    if fn not in CHECKS:
        CHECKS.append(fn)
    return fn


# -- report -----------------------------------------------------------------------------------


@dataclass
class _Outcome:
    """What one report() decided, acted on after the alert rows are written."""

    fired: list[Alert] = field(default_factory=list)  # newly firing and speaking
    resolved: list[Alert] = field(default_factory=list)
    flapping: list[Alert] = field(default_factory=list)  # just started flapping: a digest
    reminders: list[Alert] = field(default_factory=list)


def _matches_window(window, signal: Signal) -> bool:
    if isinstance(window, Maintenance):
        if window.scope == Maintenance.Scope.ALL:
            return True
        if window.scope == Maintenance.Scope.GROUP:
            return bool(window.scope_value) and window.scope_value in (signal.group, signal.subject)
        if window.scope == Maintenance.Scope.INSTANCE:
            return bool(signal.instance_id) and window.scope_value == str(signal.instance_id)
        return signal.account_id is not None and window.scope_value == str(signal.account_id)
    if window.check_name and window.check_name != signal.check:
        return False
    if not window.match:
        return True
    return signal.subject.startswith(window.match) or (
        bool(signal.group) and signal.group.startswith(window.match)
    )


def _suppression(signal: Signal, windows: list, inhibitors: set[str], runner_down: bool) -> str:
    for window in windows:
        if _matches_window(window, signal):
            return "maintenance" if isinstance(window, Maintenance) else "silence"
    if signal.group and signal.group in inhibitors and signal.group != signal.subject:
        return "inhibited"
    if runner_down and signal.check in INSTANCE_CHECKS:
        return "inhibited"
    return ""


def active_windows(now: datetime) -> list:
    """Maintenance windows and silences in force at ``now`` (two queries)."""
    maintenance = list(
        Maintenance.objects.filter(starts_at__lte=now, ends_at__gt=now, ended_early_at=None)
    )
    silences = list(
        Silence.objects.filter(starts_at__lte=now, ends_at__gt=now, ended_early_at=None)
    )
    return maintenance + silences


def _prune(changes: list[str], cutoff: datetime) -> list[str]:
    return [c for c in changes if datetime.fromisoformat(c) >= cutoff]


def report(signals: Iterable[Signal], *, now: datetime | None = None) -> None:
    """The single entry point for every check. Applies the rule of each signal's check and
    opens, updates and resolves alerts and incidents, queueing the notices. Idempotent for a
    repeated identical observation (an ``at`` not newer than the last one counted is skipped).
    Returns None; runs in one transaction (a database error rolls all of it back)."""
    now = now or timezone.now()
    latest: dict[tuple[str, str], Signal] = {}
    for signal in signals:
        latest[(signal.check, signal.subject)] = signal  # the last word per subject
    if not latest:
        return
    all_rules = rules()
    longest = max([r.flap_window_seconds for r in all_rules.values()] + [3600])
    tracked = {
        (a.check_name, a.subject): a
        for a in Alert.objects.filter(
            ~Q(state=Alert.State.OK)
            | Q(flapping=True)
            | Q(changed_at__gte=now - timedelta(seconds=longest))
        )
    }
    missing = [k for k, s in latest.items() if not s.ok and k not in tracked]
    for start in range(0, len(missing), 500):
        chunk = missing[start : start + 500]
        query = Q()
        for check, subject in chunk:
            query |= Q(check_name=check, subject=subject)
        for alert in Alert.objects.filter(query):
            tracked[(alert.check_name, alert.subject)] = alert
    windows = active_windows(now)

    outcome = _Outcome()
    created: list[Alert] = []
    changed: list[Alert] = []
    seen: list[tuple[Alert, Signal, AlertRule, tuple | None]] = []
    for key, signal in latest.items():
        rule = all_rules.get(signal.check) or default_rule(signal.check)
        if not rule.enabled:
            continue
        alert = tracked.get(key)
        if alert is None:
            if signal.ok:
                continue  # healthy and never tracked: nothing to write
            alert = Alert(check_name=signal.check, subject=signal.subject)
            created.append(alert)
        elif alert.last_seen_at and signal.at and signal.at <= alert.last_seen_at:
            continue  # this observation was counted already
        before = _snapshot(alert, rule) if alert.pk else None
        _apply(alert, signal, rule, signal.at or now, outcome)
        seen.append((alert, signal, rule, before))
    # Inhibition by what fires after this report (a host and its bots failing in one report:
    # the bots are silenced at once).
    firing = [a for a in tracked.values() if a.state == Alert.State.FIRING]
    firing += [a for a in created if a.state == Alert.State.FIRING]
    inhibitors = {a.subject for a in firing}
    runner_down = any(a.check_name in INHIBIT_INSTANCES for a in firing)
    for alert, signal, rule, before in seen:
        alert.suppressed = (
            _suppression(signal, windows, inhibitors, runner_down)
            if alert.state == Alert.State.FIRING
            else ""
        )
        if before is not None and _snapshot(alert, rule) != before:
            changed.append(alert)
    pending = [(alert, rule) for alert, _signal, rule, _before in seen]
    if not (created or changed or outcome.fired or outcome.resolved or outcome.flapping) and not (
        outcome.reminders
    ):
        _follow_up(pending, now)
        return  # nothing changed: nothing to write
    with transaction.atomic():
        # A concurrent reporter may have created one of these rows: keep theirs. Ignoring
        # conflicts returns no ids (neither does MariaDB), so they are read back.
        Alert.objects.bulk_create(created, batch_size=500, ignore_conflicts=True)
        if created:
            _fill_ids(created)
        Alert.objects.bulk_update(changed, _ALERT_FIELDS, batch_size=500)
        _act(outcome, all_rules, now)
        _follow_up(pending, now)  # scheduled once these rows are committed


_follow_ups: set[datetime] = set()  # the follow-up scans this process asked for
_follow_ups_lock = threading.Lock()


def follow_up_at(alert: Alert, rule: AlertRule, now: datetime) -> datetime | None:
    """When a scan can fire this pending alert: just after its grace, if that is still ahead
    and within FOLLOW_UP_MAX_SECONDS; None otherwise (nothing pending, or the grace is over and
    only more observations can fire it: the periodic scan brings those)."""
    if alert.state != Alert.State.PENDING or not alert.failing_since or not rule.grace_seconds:
        return None
    if rule.grace_seconds > FOLLOW_UP_MAX_SECONDS:
        return None
    due = alert.failing_since + timedelta(seconds=rule.grace_seconds)
    if due < now:
        return None
    return due + timedelta(seconds=FOLLOW_UP_MARGIN_SECONDS)


def _follow_up(seen: list[tuple[Alert, AlertRule]], now: datetime) -> None:
    """Schedule one scan for the earliest pending alert's end of grace (after the commit; once
    per instant and process). A backend that cannot defer tasks gets none: the periodic scan
    is the net."""
    times = [t for t in (follow_up_at(a, r, now) for a, r in seen) if t is not None]
    if not times:
        return
    when = min(times)
    with _follow_ups_lock:
        for old in [t for t in _follow_ups if t < now]:
            _follow_ups.discard(old)
        if when in _follow_ups:
            return
        _follow_ups.add(when)
    transaction.on_commit(lambda: schedule_scan(when))


def schedule_scan(when: datetime) -> bool:
    """Enqueue a scan to run at ``when``; False when the task backend cannot defer (or fails)."""
    from otomat.monitoring.tasks import scan_task

    try:
        if not scan_task.get_backend().supports_defer:
            return False
        scan_task.using(run_after=when).enqueue()
    except Exception:
        log.exception("could not schedule a monitoring scan")
        return False
    return True


def _fill_ids(created: list[Alert]) -> None:
    for start in range(0, len(created), 500):
        chunk = created[start : start + 500]
        query = Q()
        for alert in chunk:
            query |= Q(check_name=alert.check_name, subject=alert.subject)
        ids = {
            (check, subject): pk
            for pk, check, subject in Alert.objects.filter(query).values_list(
                "pk", "check_name", "subject"
            )
        }
        for alert in chunk:
            alert.pk = alert.id = ids.get((alert.check_name, alert.subject))


_ALERT_FIELDS = [
    "state",
    "group",
    "summary",
    "details",
    "value",
    "account_id",
    "instance_id",
    "fail_count",
    "ok_count",
    "failing_since",
    "fired_at",
    "resolved_at",
    "last_seen_at",
    "changed_at",
    "changes",
    "flapping",
    "suppressed",
    "incident_id",
    "last_notified_at",
]


def _snapshot(alert: Alert, rule: AlertRule) -> tuple:
    """What matters of a row: a firing bot seen failing once more (or a healthy one seen
    healthy) changes nothing worth a write — the streak counters only matter up to their
    thresholds, and ``last_seen_at`` only guards against counting one observation twice."""
    return (
        alert.state,
        min(alert.fail_count, rule.failure_threshold),
        min(alert.ok_count, rule.recovery_threshold),
        alert.failing_since,
        alert.summary,
        alert.group,
        alert.value,
        alert.account_id,
        str(alert.instance_id or ""),
        alert.fired_at,
        alert.resolved_at,
        alert.changed_at,
        tuple(alert.changes or ()),
        alert.flapping,
        alert.suppressed,
        alert.incident_id,
        alert.last_notified_at,
    )


def _apply(alert: Alert, signal: Signal, rule: AlertRule, at: datetime, out: _Outcome) -> None:
    """Move one alert's streak and state by one observation (no database access)."""
    was_suppressed = bool(alert.suppressed)
    previous = alert.state
    alert.last_seen_at = at
    cutoff = at - timedelta(seconds=rule.flap_window_seconds)
    changes = _prune(list(alert.changes or []), cutoff)
    raw_flip = (alert.fail_count == 0) if not signal.ok else (alert.fail_count > 0)
    fired_now = False
    if not signal.ok:
        if alert.fail_count == 0:
            alert.failing_since = at
        alert.fail_count += 1
        alert.ok_count = 0
        alert.summary = signal.summary[:300]
        alert.details = signal.details[-4000:]
        alert.group = signal.group[:200]
        alert.value = signal.value
        alert.account_id = signal.account_id
        alert.instance_id = signal.instance_id
        if alert.state == Alert.State.OK:
            alert.state = Alert.State.PENDING
        if (
            alert.state == Alert.State.PENDING
            and alert.fail_count >= rule.failure_threshold
            and at - alert.failing_since >= timedelta(seconds=rule.grace_seconds)
        ):
            alert.state = Alert.State.FIRING
            alert.fired_at = at
            alert.resolved_at = None
            fired_now = True
    else:
        alert.ok_count += 1
        alert.fail_count = 0
        if alert.state == Alert.State.PENDING:
            alert.state = Alert.State.OK  # shorter than threshold or grace: nobody hears of it
            alert.failing_since = None
    would_resolve = (
        alert.state == Alert.State.FIRING
        and signal.ok
        and alert.ok_count >= rule.recovery_threshold
    )
    # Changes that count towards flapping: firing and resolving; while flapping, every flip
    # of the observations (it stays firing then, so those are the only sign it still flaps).
    if fired_now or (alert.flapping and raw_flip):
        changes.append(at.isoformat())
        alert.changed_at = at
    was_flapping = alert.flapping
    if len(changes) + (1 if would_resolve else 0) >= rule.flap_changes:
        alert.flapping = True
    elif not changes and signal.ok:
        alert.flapping = False  # stable for a whole window
    if would_resolve and not alert.flapping:
        changes.append(at.isoformat())
        alert.changed_at = at
        alert.state = Alert.State.OK
        alert.resolved_at = at
        alert.failing_since = None
        out.resolved.append(alert)
    alert.changes = changes
    alert._was_suppressed = was_suppressed  # read by _act
    alert._rule = rule
    if alert.flapping and not was_flapping:
        out.flapping.append(alert)
    elif alert.state == Alert.State.FIRING and previous != Alert.State.FIRING:
        out.fired.append(alert)
    elif alert.state == Alert.State.FIRING and was_suppressed:
        out.fired.append(alert)  # a window ended while it still fires: speak now (if not still)
    elif (
        alert.state == Alert.State.FIRING
        and rule.repeat_seconds
        and alert.last_notified_at
        and at - alert.last_notified_at >= timedelta(seconds=rule.repeat_seconds)
    ):
        out.reminders.append(alert)


def _group_key(alert: Alert) -> str:
    rule: AlertRule = alert._rule
    family = INCIDENT_FAMILY.get(alert.check_name, alert.check_name)
    if rule.group_by == AlertRule.GroupBy.GROUP and alert.group:
        return f"{family}|{alert.group}"[:250]
    return f"{family}|{alert.subject}"[:250]


def _act(out: _Outcome, all_rules: dict[str, AlertRule], now: datetime) -> None:
    """Open/join/resolve incidents and queue notices for what report() decided."""
    from otomat.monitoring import incidents, notices

    speaking_fired = [a for a in out.fired if not a.suppressed]
    # Flapping alerts that were not firing yet still need their incident.
    new_flapping = [a for a in out.flapping if a.state == Alert.State.FIRING and not a.suppressed]
    need_incident = [a for a in speaking_fired + new_flapping if a._rule.open_incident]
    if need_incident:
        keys = {_group_key(a) for a in need_incident}
        open_by_key = {
            i.group_key: i
            for i in Incident.objects.filter(group_key__in=keys).exclude(
                status=Incident.Status.RESOLVED
            )
        }
        by_key: dict[str, list[Alert]] = {}
        for alert in need_incident:
            by_key.setdefault(_group_key(alert), []).append(alert)
        for key, members in by_key.items():
            first = members[0]
            incident = open_by_key.get(key)
            # A flapping alert's own incident, resolved a moment ago, is reopened, not doubled.
            if incident is None and first.incident_id and first.flapping:
                incident = Incident.objects.filter(pk=first.incident_id).first()
                if incident is not None and not incident.is_open:
                    incidents.reopen(incident, note=first.summary)
            joined = incident is not None
            if incident is None:
                incident = incidents.open_for_alerts(members, key=key, now=now)
            else:
                incidents.attach_alerts(incident, members, now=now)
            Alert.objects.filter(pk__in=[a.pk for a in members]).update(
                incident=incident, last_notified_at=now
            )
            for alert in members:
                alert.incident, alert.incident_id = incident, incident.pk
            # One message per incident: the first time, or the flapping digest.
            if any(a.flapping for a in members):
                notices.flapping(incident, next(a for a in members if a.flapping))
            elif not joined:
                notices.incident_opened(incident, first)
    for alert in out.flapping:
        if alert not in need_incident and not alert.suppressed and alert.incident_id:
            notices.flapping(Incident.objects.get(pk=alert.incident_id), alert)
            Alert.objects.filter(pk=alert.pk).update(last_notified_at=now)
    # Resolve incidents whose every alert is healthy now.
    resolved_incidents = {a.incident_id for a in out.resolved if a.incident_id}
    for incident in Incident.objects.filter(pk__in=resolved_incidents).exclude(
        status=Incident.Status.RESOLVED
    ):
        if incident.source != Incident.Source.ALERT:
            continue
        if incident.alerts.exclude(state=Alert.State.OK).exists():
            continue  # another alert of the group still fires
        incidents.resolve(incident, actor=None, note="", now=now, automatic=True)
    reminded: set[int] = set()
    for alert in out.reminders:
        if alert.suppressed or alert.flapping or not alert.incident_id:
            continue
        Alert.objects.filter(pk=alert.pk).update(last_notified_at=now)
        if alert.incident_id in reminded:
            continue
        reminded.add(alert.incident_id)
        incident = Incident.objects.filter(pk=alert.incident_id).first()
        if incident is not None and incident.status == Incident.Status.OPEN:
            notices.reminder(incident, alert)


# -- scan -------------------------------------------------------------------------------------


def instance_signals(now: datetime) -> list[Signal]:
    """One signal per live customer instance from its recorded state (one query): FAILED is
    down (a crash loop), PROVISIONING after restarts is down with backoff; running, stopped
    by the customer and suspended (billing or staff) are not downtime."""
    from otomat.instances.models import Instance

    S = Instance.State
    rows = (
        Instance.objects.filter(kind=Instance.Kind.CUSTOMER)
        .exclude(state__in=[S.TERMINATED, S.PENDING])
        .values_list(
            "id",
            "name",
            "state",
            "desired",
            "restarts",
            "status_message",
            "account_id",
            "version__version",
            "version__runtime",
            "version__product__slug",
        )
    )
    signals = []
    for iid, name, state, desired, restarts, message, account_id, ver, runtime, slug in rows:
        group = f"host:shared:{slug}@{ver}" if runtime == "shared" else f"version:{slug}@{ver}"
        subject = f"instance:{iid}"
        common = {"group": group, "account_id": account_id, "instance_id": str(iid), "at": now}
        failed = state == S.FAILED and desired == Instance.Desired.RUNNING
        signals.append(
            Signal(
                check="instance",
                subject=subject,
                ok=not failed,
                summary=f"{name}: crash loop, gave up restarting" if failed else "",
                details=(message or "")[-2000:] if failed else "",
                **common,
            )
        )
        backoff = state == S.PROVISIONING and restarts > 0 and desired == Instance.Desired.RUNNING
        signals.append(
            Signal(
                check="instance.backoff",
                subject=subject,
                ok=not backoff,
                summary=f"{name}: exited, restarting (#{restarts})" if backoff else "",
                **common,
            )
        )
    return signals


register_check(instance_signals)
_scan_lock = threading.Lock()
LEASE_WAIT_SECONDS = 10.0


def scan(*, now: datetime | None = None) -> None:
    """Periodic: run every registered check and report what they saw. One scan at a time per
    process, and across processes through a lease (the scheduler's job and the task the runner's
    failures poke may meet)."""
    from otomat.ops import leases

    now = now or timezone.now()
    holder = f"{os.getpid()}:{threading.get_ident()}"
    with _scan_lock:
        # Another reporter (a scan elsewhere, a service watching its peer) holds the lease for
        # a moment: wait for it rather than drop a scan a failure asked for.
        deadline = time.monotonic() + LEASE_WAIT_SECONDS
        while not leases.acquire("monitoring.scan", holder, 120):
            if time.monotonic() >= deadline:
                return
            time.sleep(0.2)
        try:
            signals: list[Signal] = []
            for check in list(CHECKS):
                try:
                    signals.extend(check(now))
                except Exception:
                    log.exception("monitoring check %s failed", getattr(check, "__name__", check))
            report(signals, now=now)
        finally:
            leases.release("monitoring.scan", holder)
