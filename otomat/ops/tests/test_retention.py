"""Retention: each kind of row that only grows is pruned once older than what is kept, in bounded
batches, by one idempotent job; what must stay (money callbacks, each instance's newest event,
the actions of an open invoice, the audit log by default) stays."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django_tasks_db.models import DBTaskResult

from otomat.accounts.models import AuditEvent
from otomat.billing.models import BillingAction, GatewayCallback, Invoice, ProcessedEvent
from otomat.instances.models import Instance, InstanceEvent
from otomat.notify.models import Notification
from otomat.ops.retention import prune_old_records
from otomat.ops.scheduler import jobs
from otomat.ops.tasks import prune_old_records_task

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def at_t0():
    with time_machine.travel(T0, tick=False):
        yield


def later(days: float):
    """Move the clock ``days`` past T0 (what the hourly job would see then)."""
    return time_machine.travel(T0 + days * DAY, tick=False)


def callback(status: str, **kw) -> GatewayCallback:
    return GatewayCallback.objects.create(gateway="midtrans", body="{}", status=status, **kw)


def total(counts: dict[str, int], rule: str) -> int:
    return sum(n for key, n in counts.items() if key.startswith(f"{rule}:"))


def test_rejected_callbacks_go_after_a_week_verified_ones_after_half_a_year(db, at_t0):
    rejected = callback("rejected")
    ignored = callback("ignored")
    duplicate = callback("duplicate")
    pending = callback("processed")  # verified, moved no money (e.g. a pending status)
    paid = callback("processed", event_id="pay-1")
    ProcessedEvent.objects.create(gateway="midtrans", event_id="pay-1", callback=paid)
    waiting = callback("failed")  # will be retried: never pruned
    with later(6):
        assert total(prune_old_records(), "rejected_callbacks") == 0
    with later(8):
        assert total(prune_old_records(), "rejected_callbacks") == 1
    assert not GatewayCallback.objects.filter(pk=rejected.pk).exists()
    with later(181):
        counts = prune_old_records()
    assert total(counts, "callbacks") == 3
    with later(3000):
        prune_old_records()
    # The callback that moved money, and its event (a replay stays a duplicate), are kept.
    assert set(GatewayCallback.objects.values_list("pk", flat=True)) == {paid.pk, waiting.pk}
    assert ProcessedEvent.objects.get(event_id="pay-1").callback_id == paid.pk
    for gone in (ignored, duplicate, pending):
        assert not GatewayCallback.objects.filter(pk=gone.pk).exists()


def test_money_callbacks_go_only_when_a_period_is_set(db, at_t0, settings):
    settings.RETENTION_DAYS = {**settings.RETENTION_DAYS, "payment_callbacks": 3650}
    paid = callback("processed", event_id="pay-1")
    ProcessedEvent.objects.create(gateway="midtrans", event_id="pay-1", callback=paid)
    with later(3651):
        assert total(prune_old_records(), "payment_callbacks") == 1
    event = ProcessedEvent.objects.get(event_id="pay-1")
    assert event.callback_id is None  # the event itself stays: the payment is still once


def test_delivered_notifications_go_after_90_days_pending_ones_stay(db, cast, at_t0):
    def notice(**kw) -> Notification:
        return Notification.objects.create(user=cast.alice, channel="email", kind="x", **kw)

    sent = notice(sent_at=T0)
    gave_up = notice(gave_up=True)
    pending = notice()
    with later(89):
        assert total(prune_old_records(), "notifications") == 0
    with later(91):
        assert total(prune_old_records(), "notifications") == 2
    assert list(Notification.objects.values_list("pk", flat=True)) == [pending.pk]
    assert not Notification.objects.filter(pk__in=[sent.pk, gave_up.pk]).exists()


def test_instance_events_go_after_a_year_but_each_instances_newest_stays(db, cast, greeter):
    with time_machine.travel(T0, tick=False):
        instance = Instance.objects.create(account=cast.alice.account, version=greeter, name="a")
        old = [InstanceEvent.objects.create(instance=instance, cause=f"old {n}") for n in range(3)]
    with later(200):
        recent = InstanceEvent.objects.create(instance=instance, cause="recent")
    with time_machine.travel(T0, tick=False):
        quiet = Instance.objects.create(account=cast.alice.account, version=greeter, name="b")
        only = InstanceEvent.objects.create(instance=quiet, cause="the only one")
    with later(366):
        assert total(prune_old_records(), "instance_events") == 3
    left = set(InstanceEvent.objects.values_list("pk", flat=True))
    assert left == {recent.pk, only.pk}  # the quiet instance keeps its newest (and only) event
    assert not left & {e.pk for e in old}


def test_billing_actions_go_after_two_years_except_an_open_invoices(db, cast, at_t0):
    account = cast.alice.account

    def invoice(number: str, status: str) -> Invoice:
        return Invoice.objects.create(
            account=account, kind="manual", number=number, currency="IDR", due_at=T0, status=status
        )

    still_open, paid = invoice("T-1", "open"), invoice("T-2", "paid")
    keep = BillingAction.objects.create(kind="reminded", key="r:1", invoice=still_open, reason="x")
    BillingAction.objects.create(kind="paid", key="p:2", invoice=paid, reason="x")
    BillingAction.objects.create(kind="rejected", reason="no invoice")
    with later(729):
        assert total(prune_old_records(), "billing_actions") == 0
    with later(731):
        assert total(prune_old_records(), "billing_actions") == 2
    assert list(BillingAction.objects.values_list("pk", flat=True)) == [keep.pk]


def test_task_results_go_after_a_day_failures_after_two_weeks(db, settings, at_t0):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    ids = {}
    for name, status in [("ok", "SUCCESSFUL"), ("failed", "FAILED"), ("ready", "READY")]:
        result = prune_old_records_task.enqueue()
        DBTaskResult.objects.filter(pk=result.id).update(
            status=status, finished_at=None if status == "READY" else T0
        )
        ids[name] = result.id
    with later(2):
        counts = prune_old_records()
    assert total(counts, "task_results") == 1 and total(counts, "failed_task_results") == 0
    with later(15):
        assert total(prune_old_records(), "failed_task_results") == 1
    assert [str(pk) for pk in DBTaskResult.objects.values_list("pk", flat=True)] == [ids["ready"]]


def test_the_audit_log_survives_by_default_and_goes_only_by_setting(db, cast, settings, at_t0):
    before = AuditEvent.objects.count()
    assert before > 0  # signing up the cast was audited (today, after T0)
    old = AuditEvent.objects.create(action="test.old", actor_label="test")  # at T0
    with later(36500):
        counts = prune_old_records()
    assert total(counts, "audit") == 0 and AuditEvent.objects.count() == before + 1
    settings.RETENTION_DAYS = {**settings.RETENTION_DAYS, "audit": 3650}
    with later(3651):
        assert total(prune_old_records(), "audit") == 1
    assert not AuditEvent.objects.filter(pk=old.pk).exists()
    assert AuditEvent.objects.count() == before


def test_pruning_goes_in_bounded_batches_and_is_idempotent(db, settings, at_t0, caplog):
    settings.RETENTION_BATCH = 4
    settings.RETENTION_MAX_ROWS = 10
    for _ in range(23):
        callback("rejected")
    with later(8), caplog.at_level(logging.INFO, logger="otomat.ops"):
        assert total(prune_old_records(), "rejected_callbacks") == 10  # at most per run
        assert total(prune_old_records(), "rejected_callbacks") == 10
        assert total(prune_old_records(), "rejected_callbacks") == 3
        assert total(prune_old_records(), "rejected_callbacks") == 0  # nothing more to do
    assert GatewayCallback.objects.count() == 0
    assert "rejected_callbacks:billing.GatewayCallback': 10" in caplog.text


def test_zero_days_keeps_rows_for_ever(db, settings, at_t0):
    settings.RETENTION_DAYS = {**settings.RETENTION_DAYS, "rejected_callbacks": 0}
    callback("rejected")
    with later(10000):
        assert total(prune_old_records(), "rejected_callbacks") == 0
    assert GatewayCallback.objects.count() == 1


def test_the_scheduler_prunes_every_hour():
    assert ("prune-old-records", prune_old_records_task, {"hours": 1}) in jobs()
