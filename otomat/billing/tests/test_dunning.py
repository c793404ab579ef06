"""The dunning engine with time moved: order → pay → renew → unpaid → reminders → suspend → pay
→ unsuspend → unpaid again → export offered → terminate, each step once and logged with its
reason; staff suspensions survive payments; a renewal is never invoiced twice; one failing
subscription never stops a run."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection

from otomat.accounts.models import AuditEvent
from otomat.billing.dunning import run_billing, run_subscription
from otomat.billing.models import BillingAction, Invoice, Subscription
from otomat.billing.tests.conftest import T0, pay
from otomat.instances.models import Instance, InstanceEvent
from otomat.instances.services import SuspensionSource, suspend_instance
from otomat.notify.models import Notification

pytestmark = pytest.mark.smoke
DAY = timedelta(days=1)
SS = Subscription.Status


def actions(kind: str) -> list[BillingAction]:
    return list(BillingAction.objects.filter(kind=kind).order_by("at", "id"))


def delivered(notification: Notification) -> Notification:
    """Send a queued notice now (notices are rendered when they are delivered)."""
    from otomat.notify.services import deliver

    deliver(notification.pk, now=notification.next_attempt_at)
    notification.refresh_from_db()
    assert notification.sent_at is not None, notification.last_error
    return notification


def run_at(moment):
    with time_machine.travel(moment, tick=False):
        return run_billing()


def state(instance: Instance) -> str:
    instance.refresh_from_db()
    return instance.state


def test_it_bills_reminds_suspends_unsuspends_and_terminates_on_time(order, cast):
    instance, invoice = order()
    sub = instance.subscription
    assert invoice.number == "INV/2026/000001"
    assert invoice.total.amount_minor == 200_000  # 150,000 plan + 50,000 setup, PPN included
    assert invoice.tax_minor == 19_820  # 11/111 of each line, rounded half up per line
    assert state(instance) == "pending"
    assert Notification.objects.filter(kind="billing/invoice_issued").count() == 1

    # Paid the next day: the bot starts at once (the payment runs the subscription).
    with time_machine.travel(T0 + DAY, tick=False):
        pay(invoice)
    sub.refresh_from_db()
    assert sub.status == SS.ACTIVE and state(instance) == "provisioning"
    assert sub.current_period_start == T0 + DAY
    assert sub.current_period_end == T0 + DAY + timedelta(days=31)  # 11 Jan → 11 Feb
    renewal_at = sub.current_period_end

    # Nothing is due before the renewal invoice (7 days ahead): runs do nothing.
    assert run_at(renewal_at - 8 * DAY).processed == 0
    report = run_at(renewal_at - 7 * DAY)
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    assert report.actions.get("invoiced") == 1
    assert renewal.due_at == renewal_at and renewal.total.amount_minor == 150_000  # no setup fee
    assert renewal.number == "INV/2026/000002"
    run_at(renewal_at - 7 * DAY)  # again: nothing new
    assert Invoice.objects.filter(kind=Invoice.Kind.RENEWAL).count() == 1

    # Reminders: 3 days before, on the day, 3 and 5 days after; each once.
    run_at(renewal_at - 3 * DAY)
    run_at(renewal_at - 3 * DAY + timedelta(hours=1))
    run_at(renewal_at)  # the period renews; the invoice is now due
    sub.refresh_from_db()
    assert sub.status == SS.ACTIVE and sub.period_index == 1
    run_at(renewal_at + DAY)
    sub.refresh_from_db()
    assert sub.status == SS.PAST_DUE and state(instance) == "provisioning"
    run_at(renewal_at + 3 * DAY)
    run_at(renewal_at + 5 * DAY)
    reminders = actions("reminded")
    assert [a.reason.split(",")[-1].strip() for a in reminders] == [
        "3 days before its due date",
        f"due {renewal_at:%Y-%m-%d}",
        "3 days after its due date",
        "5 days after its due date",
    ]
    assert Notification.objects.filter(kind="billing/reminder").count() == 4

    # Suspended after 7 days overdue: the instance stops, data kept, reason recorded.
    run_at(renewal_at + 7 * DAY)
    sub.refresh_from_db()
    instance.refresh_from_db()
    assert sub.status == SS.SUSPENDED
    assert instance.state == "suspended" and instance.desired == "stopped"
    assert instance.suspension_source == "billing"
    assert renewal.number in instance.suspension_reason
    (suspension,) = actions("suspended")
    assert suspension.reason == f"invoice {renewal.number} unpaid 7 days after its due date"
    notice = delivered(Notification.objects.get(kind="billing/suspended", channel="email"))
    renewal.refresh_from_db()
    assert renewal.number in notice.body and renewal.pay_url() in notice.body
    assert "IDR150,000" in notice.body  # the amount due, in the customer's language (en)
    run_at(renewal_at + 8 * DAY)
    assert len(actions("suspended")) == 1

    # Paid: running again at once, without waiting for a run.
    with time_machine.travel(renewal_at + 9 * DAY, tick=False):
        pay(renewal)
    sub.refresh_from_db()
    instance.refresh_from_db()
    assert sub.status == SS.ACTIVE and instance.state == "provisioning"
    assert instance.desired == "running" and instance.suspension_source == ""
    assert len(actions("unsuspended")) == 1

    # The next period goes unpaid to the end: export offered, then terminated, data kept for
    # the grace period.
    second = sub.current_period_end
    run_at(second - 7 * DAY)
    run_at(second + 7 * DAY)
    assert state(instance) == "suspended"
    run_at(second + 26 * DAY)
    assert actions("export_offered") == []
    run_at(second + 27 * DAY)
    assert len(actions("export_offered")) == 1
    export_notice = delivered(
        Notification.objects.get(kind="billing/export_offered", channel="email")
    )
    assert f"/instances/{instance.id}/export/" in export_notice.body
    run_at(second + 30 * DAY)
    sub.refresh_from_db()
    instance.refresh_from_db()
    assert sub.status == SS.TERMINATED and instance.state == "terminated"
    assert instance.data_deleted_at is None  # deleted later, after the grace period
    unpaid = Invoice.objects.filter(kind=Invoice.Kind.RENEWAL).exclude(pk=renewal.pk)
    assert [i.status for i in unpaid] == [Invoice.Status.VOID] * unpaid.count()
    (terminated,) = actions("terminated")
    oldest = unpaid.order_by("due_at").first()
    assert terminated.reason.startswith(f"invoice {oldest.number} unpaid 30 days")
    # Nothing else happens to it, however often billing runs.
    assert run_at(second + 60 * DAY).processed == 0
    # Every notice queued on the way is delivered by email, each once.
    from otomat.notify.services import deliver_pending

    with time_machine.travel(second + 60 * DAY, tick=False):
        deliver_pending()
    emails = Notification.objects.filter(channel="email")
    assert emails.filter(sent_at__isnull=True).count() == 0
    assert sorted(m.subject for m in mail.outbox) == sorted(n.subject for n in emails)


def test_paying_never_lifts_a_staff_suspension(order, cast):
    instance, invoice = order()
    with time_machine.travel(T0, tick=False):
        pay(invoice)
    sub = Subscription.objects.get()
    renewal_at = sub.current_period_end
    run_at(renewal_at - 7 * DAY)
    run_at(renewal_at + 7 * DAY)
    assert state(instance) == "suspended"
    instance.refresh_from_db()
    suspend_instance(
        instance, source=SuspensionSource.STAFF, reason="spam complaints", actor=cast.staff
    )
    with time_machine.travel(renewal_at + 8 * DAY, tick=False):
        pay(Invoice.objects.get(kind=Invoice.Kind.RENEWAL))
    sub.refresh_from_db()
    instance.refresh_from_db()
    assert sub.status == SS.ACTIVE  # billing is satisfied…
    assert instance.state == "suspended" and instance.suspension_reason == "spam complaints"
    (unsuspended,) = actions("unsuspended")
    assert "staff suspension remains" in unsuspended.reason


def test_an_order_never_paid_is_cancelled_and_nothing_ran(order):
    instance, invoice = order()
    run_at(invoice.due_at + 6 * DAY)
    assert state(instance) == "pending"
    run_at(invoice.due_at + 7 * DAY)
    instance.refresh_from_db()
    invoice.refresh_from_db()
    assert instance.state == "terminated" and invoice.status == Invoice.Status.VOID
    assert Subscription.objects.get().status == SS.CANCELED
    assert not instance.events.filter(to_state="provisioning").exists()


def test_a_trial_runs_at_once_then_bills_with_the_setup_fee(order, plan, cast):
    plan.trial_days = 14
    plan.save()
    instance, invoice = order()
    assert invoice is None and state(instance) == "provisioning"
    sub = Subscription.objects.get()
    assert sub.status == SS.TRIALING and sub.trial_end == T0 + 14 * DAY
    run_at(sub.trial_end - 7 * DAY)
    first = Invoice.objects.get()
    assert first.total.amount_minor == 200_000 and first.due_at == sub.trial_end
    run_at(sub.trial_end)
    sub.refresh_from_db()
    assert sub.status == SS.ACTIVE and sub.current_period_start == T0 + 14 * DAY
    # A second order of the same product gets no second trial.
    second, order_invoice = order(name="Another")
    assert order_invoice is not None and state(second) == "pending"


def test_a_renewal_is_invoiced_once_whoever_triggers_it(order):
    _instance, invoice = order()
    with time_machine.travel(T0, tick=False):
        pay(invoice)
    sub = Subscription.objects.get()
    moment = sub.current_period_end - 2 * DAY
    with time_machine.travel(moment, tick=False):
        run_billing()
        run_subscription(sub.pk)
        run_billing()
        run_subscription(sub.pk)
    assert Invoice.objects.filter(kind=Invoice.Kind.RENEWAL).count() == 1
    assert len(actions("invoiced")) == 2  # the order and one renewal


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_renew_once(cast, greeter, plan, order):
    """Several threads run billing at the same moment (real concurrency on PostgreSQL and
    MariaDB); exactly one renewal invoice and one period advance result."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the concurrency test runs on PostgreSQL/MariaDB")
    instances = [order(name=f"bot {i}")[0] for i in range(5)]
    for inst in instances:
        with time_machine.travel(T0, tick=False):
            pay(Invoice.objects.get(subscription__instance=inst, kind=Invoice.Kind.ORDER))
    end = Subscription.objects.first().current_period_end
    errors = []

    def worker():
        try:
            with time_machine.travel(end + DAY, tick=False):
                run_billing(batch_size=2)
        except Exception as exc:  # pragma: no cover - shown in the assertion
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Invoice.objects.filter(kind=Invoice.Kind.RENEWAL).count() == 5
    assert all(s.period_index == 1 for s in Subscription.objects.all())
    assert BillingAction.objects.filter(kind="renewed").count() == 5


def test_one_failing_subscription_does_not_stop_the_run(order, monkeypatch):
    from otomat.billing import dunning

    first, inv1 = order(name="first")
    _second, inv2 = order(name="second")
    for inv in (inv1, inv2):
        with time_machine.travel(T0, tick=False):
            pay(inv)
    broken = first.subscription.pk
    end = Subscription.objects.get(pk=broken).current_period_end
    run_at(end - 7 * DAY)  # both renewal invoices issued (in bulk)
    assert Invoice.objects.filter(kind=Invoice.Kind.RENEWAL).count() == 2
    real = dunning._remind

    def flaky(sub, invoice, ctx, policy):
        if sub.pk == broken:
            raise RuntimeError("disk full")
        return real(sub, invoice, ctx, policy)

    monkeypatch.setattr(dunning, "_remind", flaky)
    moment = end - 3 * DAY
    report = run_at(moment)
    assert report.failed == 1 and report.actions.get("reminded") == 1
    failed = Subscription.objects.get(pk=broken)
    assert failed.failures == 1 and "disk full" in failed.last_error
    assert failed.next_run_at == moment + timedelta(minutes=1)  # retried with backoff
    (failure,) = actions("failed")
    assert "disk full" in failure.reason
    monkeypatch.setattr(dunning, "_remind", real)
    report = run_at(moment + timedelta(minutes=2))
    assert report.failed == 0 and report.actions.get("reminded") == 1
    assert Subscription.objects.get(pk=broken).failures == 0


def test_a_broken_bulk_step_falls_back_to_one_by_one(order, monkeypatch):
    from otomat.billing import dunning_bulk

    for i in range(3):
        _inst, inv = order(name=f"bot {i}")
        with time_machine.travel(T0, tick=False):
            pay(inv)
    monkeypatch.setattr(dunning_bulk, "bulk_candidate", lambda *a: 1 / 0)
    end = Subscription.objects.first().current_period_end
    report = run_at(end - 7 * DAY)
    assert report.failed == 0 and report.actions.get("invoiced") == 3


def test_late_fee_is_charged_once(order, policy):
    from decimal import Decimal

    policy.late_fee_percent = Decimal("5")
    policy.late_fee_after_days = 3
    policy.save()
    _instance, invoice = order()
    with time_machine.travel(T0, tick=False):
        pay(invoice)
    end = Subscription.objects.get().current_period_end
    for days in (2, 3, 4, 5):
        run_at(end + days * DAY)
    fees = Invoice.objects.filter(kind=Invoice.Kind.LATE_FEE)
    assert fees.count() == 1
    assert fees.get().total.amount_minor == 7_500  # 5 % of Rp150.000
    assert len(actions("late_fee")) == 1


def test_runs_read_bounded_batches(order, django_assert_max_num_queries):
    """The run's queries do not grow with the number of subscriptions that have nothing due."""
    for i in range(30):
        _inst, inv = order(name=f"bot {i}")
        with time_machine.travel(T0, tick=False):
            pay(inv)
    with time_machine.travel(T0 + 3 * DAY, tick=False), django_assert_max_num_queries(3):
        assert run_billing().processed == 0


def _world(order, cast):
    """Five subscriptions at different points of dunning, for the same run."""
    subs = []
    for i in range(5):
        _inst, inv = order(name=f"bot {i}")
        with time_machine.travel(T0, tick=False):
            pay(inv)
    end = Subscription.objects.first().current_period_end
    run_at(end - 7 * DAY)  # every renewal invoice issued
    subs = list(Subscription.objects.order_by("id"))
    # Bot 0 paid its renewal; the others did not.
    with time_machine.travel(end - DAY, tick=False):
        pay(Invoice.objects.get(subscription=subs[0], kind=Invoice.Kind.RENEWAL))
    return end


def _snapshot():
    # Ids are left out (PostgreSQL sequences do not roll back); numbers and reasons are compared.
    return {
        "actions": sorted(BillingAction.objects.values_list("kind", "reason")),
        "subs": list(
            Subscription.objects.order_by("id").values_list("status", "next_run_at", "period_index")
        ),
        "instances": list(
            Instance.objects.order_by("name").values_list(
                "state",
                "desired",
                "suspension_source",
                "suspension_reason",
                "desired_before_suspension",
            )
        ),
        "notices": sorted(Notification.objects.values_list("kind", "channel", "user__email")),
        # One code path records a suspension: the same events and audit rows either way.
        "events": sorted(
            InstanceEvent.objects.values_list(
                "instance__name", "from_state", "to_state", "cause", "actor_label"
            )
        ),
        "audit": sorted(
            (a.action, a.actor_label, a.target_repr, sorted(a.data.items()))
            for a in AuditEvent.objects.filter(action__startswith="instance.")
        ),
    }


@pytest.mark.parametrize("days", [[-3, 3, 5, 7, 8], [1, 8], [2, 9, 12], [0, 10, 28, 31]])
def test_the_bulk_path_does_exactly_what_evaluate_does(order, cast, monkeypatch, days):
    """The same dunning days run once through the bulk path and once one by one give the same
    actions, states, notices and next run times."""
    from django.db import transaction as tx

    from otomat.billing import dunning_bulk

    results, handled = [], []
    real = dunning_bulk.dunning_in_bulk

    def spy(*args):
        done = real(*args)
        handled.append(len(done))
        return done

    for bulk in (True, False):
        sid = tx.savepoint()
        monkeypatch.setattr(dunning_bulk, "dunning_in_bulk", spy if bulk else lambda *a: set())
        end = _world(order, cast)
        for day in days:
            run_at(end + day * DAY)
        results.append(_snapshot())
        tx.savepoint_rollback(sid)
        monkeypatch.undo()
    with_bulk, one_by_one = results
    assert with_bulk["subs"] == one_by_one["subs"]
    assert with_bulk["instances"] == one_by_one["instances"]
    assert with_bulk["actions"] == one_by_one["actions"]
    assert with_bulk["notices"] == one_by_one["notices"]
    assert with_bulk["events"] == one_by_one["events"]
    assert with_bulk["audit"] == one_by_one["audit"]
    assert any(kind == "suspended" for kind, _reason in with_bulk["actions"])
    assert sum(handled) > 0  # the bulk path really did the work in the first run
