"""Retention: rows that only grow are pruned when they are older than what is kept.

One periodic job (``prune_old_records``, hourly from the scheduler) applies every rule below. Each
rule deletes the rows it selects in batches of ``RETENTION_BATCH`` primary keys (a short
transaction each, so neither SQLite's single writer nor a PostgreSQL table is held for long)
and at most ``RETENTION_MAX_ROWS`` rows per rule and run; what is left over goes at the next
run. The job is idempotent: a second run (or two schedulers at once) deletes what the first left.
Counts are logged and returned. A number of days of 0 keeps those rows for ever.

What is kept, and why (docs/operations.md has the table with the settings):

* Gateway callbacks that were rejected (signature, token or provider confirmation failed) are
  noise, kept a short time to look at an attack or a misconfiguration.
* Verified callbacks that moved no money (duplicates, ignored kinds, pending statuses) are kept
  half a year to answer questions about them.
* Callbacks that moved money (a ``ProcessedEvent`` points at them: payment, refund, chargeback,
  expiry) are the provider's own message proving it, kept as long as the invoices by default
  (never pruned). Their ``ProcessedEvent`` is never pruned, so a replay stays a duplicate
  however old it is. Callbacks still waiting or failing are never pruned: they are retried.
* Delivered notifications (and ones given up on), instance events (each instance's newest event
  is always kept: it says why the instance is in its state), billing's automatic-action log (not
  the rows of an invoice still open: their keys keep reminders from going out twice) and
  finished task results (the database queue's rows, left-over ones too after a move to RQ; on
  RQ, failed jobs in Redis — RQ expires finished ones itself after 500 s).
* The audit log is kept longer than anything else: never pruned unless ``RETENTION_DAYS["audit"]``
  is set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.db.models import Max, Q, QuerySet
from django.utils import timezone

log = logging.getLogger("otomat.ops")


@dataclass(frozen=True)
class Rule:
    """Rows of ``model`` that ``select(queryset, cutoff)`` picks once older than the number of
    days under ``key`` in ``settings.RETENTION_DAYS``, except the primary keys ``keep(model)``
    returns (computed once per run)."""

    key: str
    model: str  # "app_label.ModelName"
    select: Callable[[QuerySet, datetime], QuerySet]
    keep: Callable[[type], set] | None = None


def _rejected_callbacks(qs: QuerySet, cutoff: datetime) -> QuerySet:
    return qs.filter(status="rejected", received_at__lt=cutoff)


def _money_callback_ids() -> QuerySet:
    ProcessedEvent = apps.get_model("billing", "ProcessedEvent")
    return ProcessedEvent.objects.filter(callback__isnull=False).values("callback_id")


def _verified_callbacks(qs: QuerySet, cutoff: datetime) -> QuerySet:
    return qs.filter(
        status__in=["processed", "ignored", "duplicate"], received_at__lt=cutoff
    ).exclude(pk__in=_money_callback_ids())


def _money_callbacks(qs: QuerySet, cutoff: datetime) -> QuerySet:
    return qs.filter(status="processed", received_at__lt=cutoff, pk__in=_money_callback_ids())


def _notifications(qs: QuerySet, cutoff: datetime) -> QuerySet:
    return qs.filter(Q(sent_at__lt=cutoff) | Q(gave_up=True, created_at__lt=cutoff))


def _outbox_messages(qs: QuerySet, cutoff: datetime) -> QuerySet:
    return qs.filter(created_at__lt=cutoff)


def _instance_events(qs: QuerySet, cutoff: datetime) -> QuerySet:
    return qs.filter(at__lt=cutoff)


def _newest_event_of_each_instance(model) -> set:
    # One grouped scan per run; a per-row "is there a newer one" check costs a scan of the
    # instance's events per row (quadratic), measured in bench/retention.py.
    return set(
        model.objects.values("instance_id").annotate(last=Max("id")).values_list("last", flat=True)
    )


def _billing_actions(qs: QuerySet, cutoff: datetime) -> QuerySet:
    return qs.filter(at__lt=cutoff).exclude(invoice__status="open")


def _successful_task_results(qs: QuerySet, cutoff: datetime) -> QuerySet:
    return qs.filter(status="SUCCESSFUL", finished_at__lt=cutoff)


def _failed_task_results(qs: QuerySet, cutoff: datetime) -> QuerySet:
    return qs.filter(status="FAILED", finished_at__lt=cutoff)


def _audit(qs: QuerySet, cutoff: datetime) -> QuerySet:
    return qs.filter(at__lt=cutoff)


RULES: tuple[Rule, ...] = (
    Rule("rejected_callbacks", "billing.GatewayCallback", _rejected_callbacks),
    Rule("callbacks", "billing.GatewayCallback", _verified_callbacks),
    Rule("payment_callbacks", "billing.GatewayCallback", _money_callbacks),
    Rule("notifications", "notify.Notification", _notifications),
    Rule("notifications", "notify.OutboxMessage", _outbox_messages),
    Rule(
        "instance_events",
        "instances.InstanceEvent",
        _instance_events,
        keep=_newest_event_of_each_instance,
    ),
    Rule("billing_actions", "billing.BillingAction", _billing_actions),
    Rule("task_results", "django_tasks_database.DBTaskResult", _successful_task_results),
    Rule("failed_task_results", "django_tasks_database.DBTaskResult", _failed_task_results),
    Rule("audit", "accounts.AuditEvent", _audit),
)


def _model(label: str):
    try:
        return apps.get_model(label)
    except LookupError:  # an app that is not installed (e.g. another task queue)
        return None


def prune_rule(rule: Rule, *, now: datetime, batch: int, max_rows: int) -> int:
    """Delete what ``rule`` selects, at most ``max_rows`` rows, ``batch`` at a time; returns
    how many rows went (cascaded rows not counted)."""
    days = settings.RETENTION_DAYS[rule.key]
    model = _model(rule.model)
    if not days or model is None:
        return 0
    cutoff = now - timedelta(days=days)
    keep = rule.keep(model) if rule.keep else set()
    # The primary keys in one read, then DELETE … WHERE pk IN (…) per batch: selecting again
    # for every batch would walk the rows just deleted (PostgreSQL keeps them in its indexes
    # until VACUUM) and sort what is left each time; MariaDB cannot LIMIT a DELETE through
    # Django nor delete with a subquery on the same table.
    candidates = (
        rule.select(model.objects.all(), cutoff).order_by("pk").values_list("pk", flat=True)
    )
    ids = [pk for pk in candidates[: max_rows + len(keep)] if pk not in keep][:max_rows]
    for start in range(0, len(ids), batch):
        # Only the keys: the delete collector need not load whole rows (callback bodies).
        model.objects.filter(pk__in=ids[start : start + batch]).only("pk").delete()
    return len(ids)


def prune_old_records(*, now: datetime | None = None) -> dict[str, int]:
    """Apply every retention rule once; returns {"<rule>:<model>": rows deleted}."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    for rule in RULES:
        key = f"{rule.key}:{rule.model}"
        try:
            counts[key] = prune_rule(
                rule,
                now=now,
                batch=settings.RETENTION_BATCH,
                max_rows=settings.RETENTION_MAX_ROWS,
            )
        except Exception:  # one failing rule must not stop the others
            log.exception("retention: pruning %s failed", key)
            counts[key] = 0
    if settings.TASKS_USE_RQ:  # failed jobs in Redis (finished ones expire by themselves)
        key = "failed_task_results:rq"
        try:
            from otomat.ops.rq import prune_failed

            counts[key] = prune_failed(
                now=now,
                days=settings.RETENTION_DAYS["failed_task_results"],
                max_rows=settings.RETENTION_MAX_ROWS,
            )
        except Exception:
            log.exception("retention: pruning %s failed", key)
            counts[key] = 0
    pruned = {k: v for k, v in counts.items() if v}
    log.info("retention: pruned %s", pruned or "nothing")
    return counts
