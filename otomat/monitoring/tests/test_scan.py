"""scan(): instance states become signals (billing suspensions are no downtime), incidents name
the affected customers and open an SLA ticket where the plan has one, customers hear only of
their own bots when they asked to, and the scan stays at a few queries however many bots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from otomat.instances.models import Instance
from otomat.monitoring import alerts, notices, receivers
from otomat.monitoring.models import Alert, AlertPreference, Incident
from otomat.notify.models import Notification

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
S = Instance.State


@pytest.fixture(autouse=True)
def instances_only(monkeypatch):
    """The scan of the instances alone: the platform checks read this machine's real disk,
    memory and load (tested in test_platform.py), which would alert here at random."""
    monkeypatch.setattr(alerts, "CHECKS", [alerts.instance_signals])


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def bot(cast, greeter, name="Movie Search Bot", account=None, **fields) -> Instance:
    fields.setdefault("state", S.RUNNING)
    fields.setdefault("desired", Instance.Desired.RUNNING)
    return Instance.objects.create(
        account=account or cast.alice.account, version=greeter, name=name, **fields
    )


def crash(instance: Instance, lines: str = "Traceback: KeyError 'token'") -> None:
    Instance.objects.filter(pk=instance.pk).update(
        state=S.FAILED, status_message=f"gave up after 5 restarts\n{lines}"
    )


def scan_at(clock, seconds: float) -> None:
    clock.move_to(T0 + timedelta(seconds=seconds))
    alerts.scan()


def test_a_crash_loop_opens_one_incident_with_the_bot_the_customer_and_the_log(
    cast, greeter, clock
):
    instance = bot(cast, greeter)
    alerts.scan()
    assert not Alert.objects.exists()
    crash(instance)
    scan_at(clock, 15)
    scan_at(clock, 30)
    incident = Incident.objects.get()
    assert incident.source == Incident.Source.ALERT
    assert list(incident.instances.all()) == [instance]
    assert list(incident.accounts.all()) == [cast.alice.account]
    [message] = Notification.objects.filter(user=cast.owner, kind__startswith="monitoring/")
    assert "Movie Search Bot" in message.subject
    assert "Alice's Bots" in message.body and "KeyError 'token'" in message.body
    assert notices.incident_url(incident) in message.body
    # Runs again: resolved after the recovery threshold (two healthy scans).
    Instance.objects.filter(pk=instance.pk).update(state=S.RUNNING, status_message="")
    scan_at(clock, 45)
    assert Incident.objects.get().status == Incident.Status.OPEN
    scan_at(clock, 60)
    assert Incident.objects.get().status == Incident.Status.RESOLVED


def test_the_message_names_the_bot_by_its_username_when_telegram_told_it(cast, greeter, clock):
    from otomat.monitoring.models_uptime import TelegramStatus

    instance = bot(cast, greeter, "Films")
    TelegramStatus.objects.create(instance=instance, checked_at=T0, username="films_bot")
    crash(instance)
    alerts.scan()
    message = Notification.objects.get(user=cast.owner, channel="email")
    assert message.subject == "Down: @films_bot (Films)"


def test_billing_suspensions_and_customer_stops_are_not_downtime(cast, greeter, clock):
    suspended = bot(cast, greeter, "Unpaid", state=S.SUSPENDED, suspension_source="billing")
    stopped = bot(cast, greeter, "Parked", state=S.STOPPED, desired=Instance.Desired.STOPPED)
    alerts.scan()
    assert not Alert.objects.exclude(state=Alert.State.OK).exists()
    # A bot that was down and is then suspended for non-payment stops counting as down.
    crash(stopped)
    Instance.objects.filter(pk=stopped.pk).update(desired=Instance.Desired.RUNNING)
    scan_at(clock, 15)
    assert Incident.objects.filter(status=Incident.Status.OPEN).count() == 1
    Instance.objects.filter(pk=stopped.pk).update(
        state=S.SUSPENDED, suspension_source="billing", desired=Instance.Desired.STOPPED
    )
    scan_at(clock, 30)
    scan_at(clock, 45)
    assert not Incident.objects.filter(status=Incident.Status.OPEN).exists()
    assert not Alert.objects.filter(subject=f"instance:{suspended.pk}").exists()


def test_a_backoff_alerts_only_after_its_grace(cast, greeter, clock):
    instance = bot(cast, greeter, state=S.PROVISIONING, restarts=3)
    alerts.scan()
    scan_at(clock, 4)
    assert not Incident.objects.exists()
    scan_at(clock, 5.25)
    incident = Incident.objects.get()
    assert incident.check_name == "instance.backoff"
    Instance.objects.filter(pk=instance.pk).update(state=S.RUNNING)
    scan_at(clock, 15)
    scan_at(clock, 30)
    assert Incident.objects.get().status == Incident.Status.RESOLVED


def owner_notices(cast) -> list[Notification]:
    return list(
        Notification.objects.filter(
            user=cast.owner, channel="email", kind__startswith="monitoring/"
        ).order_by("id")
    )


def test_a_bot_back_within_the_backoff_grace_alerts_no_one(cast, greeter, clock):
    instance = bot(cast, greeter)
    alerts.scan()
    # Killed: the runner restarts it after 1 s; it counts as running again a second later.
    Instance.objects.filter(pk=instance.pk).update(state=S.PROVISIONING, restarts=1)
    scan_at(clock, 0.2)  # the scan the recorded exit poked
    assert Alert.objects.get(check_name="instance.backoff").state == Alert.State.PENDING
    Instance.objects.filter(pk=instance.pk).update(state=S.RUNNING)
    scan_at(clock, 5.45)  # the follow-up just after the grace
    scan_at(clock, 15)
    assert not Alert.objects.exclude(state=Alert.State.OK).exists()
    assert not Incident.objects.exists()
    assert not Notification.objects.filter(kind__startswith="monitoring/").exists()


def test_a_crash_loop_alerts_during_its_backoff_and_its_failure_joins_without_a_second_message(
    cast, greeter, clock
):
    instance = bot(cast, greeter)
    alerts.scan()
    Instance.objects.filter(pk=instance.pk).update(state=S.PROVISIONING, restarts=1)
    scan_at(clock, 0.2)  # poked by the recorded exit: pending
    assert not Incident.objects.exists()
    Instance.objects.filter(pk=instance.pk).update(restarts=3)
    scan_at(clock, 5.45)  # the follow-up after the grace: still restarting, so it fires
    incident = Incident.objects.get()
    assert incident.check_name == "instance.backoff"
    assert incident.group_key == f"instance|version:greeter@{greeter.version}"
    assert incident.severity == "major"
    [opened] = owner_notices(cast)
    assert opened.kind == "monitoring/incident_opened" and "Movie Search Bot" in opened.subject
    # The runner gives up: the "instance" alert fires and joins the same incident, silently.
    crash(instance)
    scan_at(clock, 15.6)
    assert Alert.objects.get(check_name="instance").state == Alert.State.FIRING
    assert Incident.objects.get() == incident
    incident.refresh_from_db()
    assert incident.severity == "critical"  # the gravest of its alerts
    assert incident.alerts.count() == 2
    assert list(incident.updates.values_list("kind", flat=True)) == ["opened", "alert"]
    assert "crash loop, gave up restarting" in incident.updates.last().text
    assert owner_notices(cast) == [opened]
    # The backoff alert recovers while it is failed; the incident stays open for the failure.
    scan_at(clock, 30)
    scan_at(clock, 45)
    assert Alert.objects.get(check_name="instance.backoff").state == Alert.State.OK
    assert Incident.objects.get().status == Incident.Status.OPEN
    # It runs again: resolved, and the owner hears that once.
    Instance.objects.filter(pk=instance.pk).update(state=S.RUNNING, status_message="")
    scan_at(clock, 60)
    scan_at(clock, 75)
    assert Incident.objects.get().status == Incident.Status.RESOLVED
    assert [n.kind for n in owner_notices(cast)] == [
        "monitoring/incident_opened",
        "monitoring/incident_resolved",
    ]


def test_a_pending_backoff_schedules_a_scan_just_after_its_grace(
    cast, greeter, clock, monkeypatch, django_capture_on_commit_callbacks
):
    asked = []
    monkeypatch.setattr(alerts, "schedule_scan", asked.append)
    monkeypatch.setattr(alerts, "_follow_ups", set())
    instance = bot(cast, greeter)
    with django_capture_on_commit_callbacks(execute=True):
        alerts.scan()
    assert asked == []  # nothing pending: no follow-up
    Instance.objects.filter(pk=instance.pk).update(state=S.PROVISIONING, restarts=1)
    clock.move_to(T0 + timedelta(seconds=0.5))
    with django_capture_on_commit_callbacks(execute=True):
        alerts.scan()
    assert asked == [T0 + timedelta(seconds=0.5 + 5 + alerts.FOLLOW_UP_MARGIN_SECONDS)]
    # A periodic scan in between asks for no second one.
    clock.move_to(T0 + timedelta(seconds=2))
    with django_capture_on_commit_callbacks(execute=True):
        alerts.scan()
    assert len(asked) == 1
    # The follow-up fires it; nothing is pending after that, so nothing more is asked for.
    clock.move_to(asked[0])
    with django_capture_on_commit_callbacks(execute=True):
        alerts.scan()
    assert Incident.objects.count() == 1
    assert len(asked) == 1


def test_a_long_grace_leaves_the_follow_up_to_the_periodic_scan(cast, greeter, clock):
    from otomat.monitoring.models import AlertRule

    rule = AlertRule(check_name="instance.backoff", failure_threshold=2, grace_seconds=600)
    alert = Alert(check_name="instance.backoff", state=Alert.State.PENDING, failing_since=T0)
    assert alerts.follow_up_at(alert, rule, T0) is None
    rule.grace_seconds = 5
    assert alerts.follow_up_at(alert, rule, T0 + timedelta(seconds=6)) is None  # grace over
    alert.state = Alert.State.FIRING
    assert alerts.follow_up_at(alert, rule, T0) is None


def test_scheduled_scans_go_to_the_task_queue_with_their_time(cast, monkeypatch):
    from django_tasks_db.models import DBTaskResult

    from otomat.monitoring import tasks

    when = datetime(2030, 1, 1, tzinfo=UTC)
    assert alerts.schedule_scan(when) is True
    row = DBTaskResult.objects.get(task_path="otomat.monitoring.tasks.scan_task")
    assert row.run_after == when
    # A backend that cannot defer (the immediate one) gets none: no scan runs now instead.
    monkeypatch.setattr(tasks, "scan_task", _NoDeferTask())
    assert alerts.schedule_scan(when) is False
    assert DBTaskResult.objects.count() == 1


class _NoDeferTask:
    def get_backend(self):
        return type("Backend", (), {"supports_defer": False})()

    def using(self, **kwargs):
        raise AssertionError("not to be enqueued")


def test_bots_of_one_version_down_together_make_one_incident(cast, greeter, clock):
    bots = [bot(cast, greeter, f"bot {i}") for i in range(10)]
    for b in bots:
        crash(b)
    alerts.scan()
    incident = Incident.objects.get()
    assert incident.instances.count() == 10
    assert Notification.objects.filter(user=cast.owner).count() == 1


def test_customers_hear_of_their_own_bots_only_when_they_asked(cast, greeter, clock):
    AlertPreference.objects.create(user=cast.alice, instance_alerts=True)
    AlertPreference.objects.create(user=cast.charlie, instance_alerts=True)
    mine = bot(cast, greeter, "Alice's bot")
    crash(mine)
    alerts.scan()
    [told] = Notification.objects.filter(user=cast.alice, kind__startswith="monitoring/")
    assert told.kind == "monitoring/customer_incident_opened"
    assert "Alice's bot" in told.subject and "KeyError" not in told.body
    assert not told.headers  # no staff buttons for customers
    assert not Notification.objects.filter(user=cast.bob).exists()  # did not opt in
    assert not Notification.objects.filter(user=cast.charlie).exists()  # not theirs
    staff = Notification.objects.get(user=cast.owner, channel="email")
    assert staff.kind == "monitoring/incident_opened"


def test_an_incident_opens_a_ticket_whose_sla_clock_runs_where_the_plan_has_an_sla(
    cast, greeter, plan, clock
):
    from otomat.billing.models import Subscription
    from otomat.support.models import SlaPolicy

    SlaPolicy.objects.create(
        name="Business",
        plan=plan,
        priority="high",
        first_response_minutes=60,
        next_response_minutes=60,
        resolution_minutes=240,
    )
    covered = bot(cast, greeter, "Covered")
    Subscription.objects.create(account=cast.alice.account, instance=covered, plan=plan)
    plain = bot(cast, greeter, "Plain", account=cast.charlie.account)
    crash(covered)
    crash(plain)
    alerts.scan()
    incident = Incident.objects.get()
    [ticket] = incident.tickets.all()
    assert ticket.account == cast.alice.account and ticket.instance == covered
    assert ticket.sla_policy.plan == plan
    assert ticket.response_due is not None  # the clock runs
    assert not ticket.counts_as_revision
    assert incident.updates.filter(text__contains=ticket.number).exists()


def test_a_recorded_failure_pokes_a_scan_after_commit(
    cast, greeter, monkeypatch, django_capture_on_commit_callbacks
):
    from otomat.instances.services import transition

    poked = []
    monkeypatch.setattr(receivers, "poke_scan", lambda: poked.append(1))
    instance = bot(cast, greeter)
    with django_capture_on_commit_callbacks(execute=True):
        transition(instance, S.STOPPED, cause="customer stopped it", actor_label="t")
    assert not poked  # a stop is no failure
    instance.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        transition(instance, S.PROVISIONING, cause="started", actor_label="t")
        Instance.objects.filter(pk=instance.pk).update(state=S.RUNNING)
    poked.clear()
    instance.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        transition(instance, S.FAILED, cause="gave up after 5 restarts", actor_label="t")
    assert poked


@pytest.mark.parametrize("count", [100])
def test_the_scan_is_a_few_queries_however_many_bots(cast, greeter, clock, count):
    def make(n, start):
        Instance.objects.bulk_create(
            Instance(
                account=cast.alice.account,
                version=greeter,
                name=f"bot {start + i}",
                state=S.RUNNING,
                desired=Instance.Desired.RUNNING,
            )
            for i in range(n)
        )

    make(count, 0)
    crash(Instance.objects.first())
    alerts.scan()  # the incident is opened once; later scans change nothing
    scan_at(clock, 15)
    with CaptureQueriesContext(connection) as small:
        scan_at(clock, 30)
    make(count * 9, count)
    scan_at(clock, 45)
    with CaptureQueriesContext(connection) as large:
        scan_at(clock, 60)
    assert Instance.objects.count() == count * 10
    assert len(large) == len(small), [q["sql"][:80] for q in large.captured_queries]
    # The scan lease (take: an update, then an insert in a savepoint; release), the instances,
    # the rules, the alerts not healthy, the maintenance windows, the silences. A bot still
    # down and already alerted writes nothing.
    sql = [q["sql"] for q in large.captured_queries]
    assert len(sql) <= 10, sql
    assert not [q for q in sql if "monitoring_" in q and not q.startswith("SELECT")], sql


def test_a_manual_incident_for_a_customer_on_an_sla_plan_opens_their_ticket(cast, greeter, plan):
    from otomat.billing.models import Subscription
    from otomat.monitoring import incidents
    from otomat.support.models import SlaPolicy

    SlaPolicy.objects.create(
        name="Business",
        plan=plan,
        priority="high",
        first_response_minutes=60,
        next_response_minutes=60,
        resolution_minutes=240,
    )
    covered = bot(cast, greeter, "Covered")
    Subscription.objects.create(account=cast.alice.account, instance=covered, plan=plan)
    incident = incidents.open_incident(
        title="Payments slow",
        severity="major",
        accounts=[cast.alice.account, cast.charlie.account],
        actor=cast.staff,
    )
    [ticket] = incident.tickets.all()
    assert ticket.account == cast.alice.account and ticket.response_due is not None
