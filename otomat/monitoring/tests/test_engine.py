"""The alert engine with time moved: thresholds, grace, recovery, repeat, flapping, grouping,
inhibition, maintenance windows and silences, and its cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from otomat.monitoring import alerts, incidents
from otomat.monitoring.models import Alert, AlertRule, Incident, Maintenance, Silence
from otomat.monitoring.signals import Signal
from otomat.notify.models import Notification

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def down(subject="disk:/data", check="host.disk", **kw) -> Signal:
    return Signal(check=check, subject=subject, ok=False, summary=f"{subject} is down", **kw)


def up(subject="disk:/data", check="host.disk", **kw) -> Signal:
    return Signal(check=check, subject=subject, ok=True, **kw)


def messages(user, kind=None) -> list[Notification]:
    rows = Notification.objects.filter(user=user, kind__startswith="monitoring/")
    if kind:
        rows = rows.filter(kind=f"monitoring/{kind}")
    return list(rows.order_by("id"))


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def at(clock, seconds: float) -> None:
    clock.move_to(T0 + timedelta(seconds=seconds))


def test_it_fires_only_after_the_failure_threshold(cast, clock):
    AlertRule.objects.create(check_name="host.disk", failure_threshold=3, grace_seconds=0)
    alerts.report([down()])
    at(clock, 15)
    alerts.report([down()])
    assert Alert.objects.get().state == Alert.State.PENDING
    assert not Incident.objects.exists() and not messages(cast.owner)
    at(clock, 30)
    alerts.report([down()])
    alert = Alert.objects.get()
    assert alert.state == Alert.State.FIRING and alert.incident is not None
    assert [m.kind for m in messages(cast.owner)] == ["monitoring/incident_opened"]
    assert len(messages(cast.staff)) == 1
    assert not messages(cast.alice)  # a customer hears nothing of the platform's disk


def test_a_failure_shorter_than_grace_tells_no_one(cast, clock):
    AlertRule.objects.create(check_name="host.disk", failure_threshold=1, grace_seconds=60)
    alerts.report([down()])
    at(clock, 30)
    alerts.report([down()])
    at(clock, 45)
    alerts.report([up()])
    assert Alert.objects.get().state == Alert.State.OK
    at(clock, 50)
    alerts.report([down()])  # a new streak: grace starts again
    at(clock, 100)
    alerts.report([down()])
    assert not Incident.objects.exists()
    at(clock, 111)
    alerts.report([down()])
    assert Incident.objects.count() == 1


def test_one_healthy_observation_does_not_resolve_and_realert(cast, clock):
    alerts.report([down()])  # host.disk: failure threshold 1, recovery threshold 2
    at(clock, 15)
    alerts.report([up()])
    at(clock, 30)
    alerts.report([down()])
    assert Incident.objects.count() == 1
    assert len(messages(cast.owner)) == 1
    at(clock, 45)
    alerts.report([up()])
    at(clock, 60)
    alerts.report([up()])
    incident = Incident.objects.get()
    assert incident.status == Incident.Status.RESOLVED
    assert [m.kind for m in messages(cast.owner)] == [
        "monitoring/incident_opened",
        "monitoring/incident_resolved",
    ]
    kinds = list(incident.updates.values_list("kind", flat=True))
    assert kinds[0] == "opened" and kinds[-1] == "resolved"


def test_it_reminds_after_the_repeat_interval_until_acknowledged(cast, clock):
    AlertRule.objects.create(check_name="host.disk", repeat_seconds=600)
    alerts.report([down()])
    at(clock, 300)
    alerts.report([down()])
    assert len(messages(cast.owner)) == 1
    at(clock, 601)
    alerts.report([down()])
    assert len(messages(cast.owner, "reminder")) == 1
    at(clock, 700)
    alerts.report([down()])
    assert len(messages(cast.owner, "reminder")) == 1  # not again before the next interval
    incidents.acknowledge(Incident.objects.get(), actor=cast.owner)
    at(clock, 1300)
    alerts.report([down()])
    assert len(messages(cast.owner, "reminder")) == 1  # acknowledged: no more reminders


def test_a_flapping_check_yields_one_digest_not_a_storm(cast, clock):
    # host.disk: 3 changes (fire, resolve, fire) in 15 minutes are flapping; observe every
    # 15 s, failing and healthy in pairs (so each pair fires or resolves).
    t = 0
    for _ in range(12):
        for ok in (False, False, True, True):
            at(clock, t)
            alerts.report([up() if ok else down()])
            t += 15
    kinds = [m.kind for m in messages(cast.owner)]
    assert kinds.count("monitoring/flapping") == 1
    assert len(kinds) <= 3, kinds  # opened, resolved once, then the digest and silence
    assert Incident.objects.exclude(status=Incident.Status.RESOLVED).count() == 1
    assert Alert.objects.get().flapping
    # Stable again for a window: it resolves once, the flapping mark goes.
    for _ in range(80):
        at(clock, t)
        alerts.report([up()])
        t += 15
    alert = Alert.objects.get()
    assert not alert.flapping and alert.state == Alert.State.OK
    assert not Incident.objects.exclude(status=Incident.Status.RESOLVED).exists()
    assert len(messages(cast.owner, "flapping")) == 1


def test_ten_subjects_of_one_group_make_one_incident_and_one_message(cast, clock):
    group = "host:shared:movie@1.0"
    alerts.report([down(f"instance:{i}", check="instance", group=group) for i in range(6)])
    at(clock, 5)
    alerts.report([down(f"instance:{i}", check="instance", group=group) for i in range(10)])
    assert Alert.objects.filter(state=Alert.State.FIRING).count() == 10
    assert Incident.objects.count() == 1
    assert Incident.objects.get().alerts.count() == 10
    assert len(messages(cast.owner)) == 1
    # Another group is another incident.
    alerts.report([down("instance:x", check="instance", group="version:other@2")])
    assert Incident.objects.count() == 2
    # It resolves when the last of the group recovers.
    for t in (20, 35):
        at(clock, t)
        alerts.report([up(f"instance:{i}", check="instance", group=group) for i in range(9)])
    assert Incident.objects.get(group_key__endswith=group).status == Incident.Status.OPEN
    for t in (50, 65):
        at(clock, t)
        alerts.report([up(f"instance:{i}", check="instance", group=group) for i in range(10)])
    assert Incident.objects.get(group_key__endswith=group).status == Incident.Status.RESOLVED


def test_a_host_down_silences_its_bots(cast, clock):
    alerts.report([down("host:h1", check="host.memory_dead")])
    bots = [down(f"instance:{i}", check="instance", group="host:h1") for i in range(3)]
    at(clock, 5)
    alerts.report(bots)
    assert Incident.objects.count() == 1  # the host's only
    assert set(
        Alert.objects.filter(check_name="instance").values_list("suppressed", flat=True)
    ) == {"inhibited"}
    assert len(messages(cast.owner)) == 1


def test_a_host_and_its_bots_failing_in_one_report_tell_of_the_host_only(cast, clock):
    bots = [down(f"instance:{i}", check="instance", group="host:h2") for i in range(3)]
    alerts.report([*bots, down("host:h2", check="host.memory_dead")])
    assert Incident.objects.count() == 1
    assert Incident.objects.get().check_name == "host.memory_dead"
    assert len(messages(cast.owner)) == 1


def test_the_runner_down_silences_every_bot(cast, clock):
    alerts.report([down("service:runner", check="service.runner")])
    at(clock, 5)
    alerts.report([down("instance:a", check="instance", group="version:x@1")])
    assert Incident.objects.count() == 1
    assert Alert.objects.get(check_name="instance").suppressed == "inhibited"


def test_a_maintenance_window_silences_and_speaks_when_it_ends_still_failing(cast, clock):
    Maintenance.objects.create(
        title="Upgrade",
        starts_at=T0 - timedelta(minutes=1),
        ends_at=T0 + timedelta(minutes=10),
        scope=Maintenance.Scope.GROUP,
        scope_value="version:movie@1.0",
    )
    signal = down("instance:a", check="instance", group="version:movie@1.0")
    alerts.report([signal])
    alerts.report([down("instance:b", check="instance", group="version:other@1")])
    assert Alert.objects.get(subject="instance:a").suppressed == "maintenance"
    assert Incident.objects.count() == 1  # only the other version's
    at(clock, 300)
    alerts.report([signal])
    assert Incident.objects.count() == 1
    at(clock, 601)
    alerts.report([signal])
    assert Incident.objects.count() == 2
    assert Alert.objects.get(subject="instance:a").suppressed == ""


def test_a_silence_mutes_matching_alerts_only_until_it_ends(cast, clock):
    silence = Silence.objects.create(
        check_name="host.disk",
        match="disk:/data",
        reason="moving disks",
        ends_at=T0 + timedelta(hours=1),
    )
    alerts.report([down(), down("disk:/var/db")])
    assert Alert.objects.get(subject="disk:/data").suppressed == "silence"
    assert Incident.objects.count() == 1
    Silence.objects.filter(pk=silence.pk).update(ended_early_at=T0 + timedelta(seconds=5))
    at(clock, 10)
    alerts.report([down()])
    assert Incident.objects.count() == 2


def test_a_repeated_observation_counts_once(cast, clock):
    AlertRule.objects.create(check_name="host.disk", failure_threshold=2)
    signal = down(at=T0)
    alerts.report([signal])
    alerts.report([signal])
    alert = Alert.objects.get()
    assert alert.fail_count == 1 and alert.state == Alert.State.PENDING


def test_healthy_observations_of_healthy_subjects_write_nothing(cast, clock):
    alerts.report([up(f"instance:{i}", check="instance") for i in range(50)])
    assert not Alert.objects.exists()


def test_a_disabled_rule_does_nothing(cast, clock):
    AlertRule.objects.create(check_name="host.disk", enabled=False)
    alerts.report([down()])
    assert not Alert.objects.exists() and not Incident.objects.exists()


def test_the_hourly_limit_per_person_and_channel_holds_messages_back(cast, clock, settings):
    settings.MONITORING_NOTICES_PER_HOUR = 2
    for i in range(4):
        alerts.report([down(f"disk:/d{i}")])
    assert len(messages(cast.owner)) == 2
    held = Incident.objects.order_by("id").last().updates.filter(kind="notified")
    assert held.exists()


def test_a_backoff_then_its_crash_loop_is_one_incident_and_one_message(cast, clock):
    """The stages of one problem ("instance.backoff", then "instance") share an incident."""
    bot = {"subject": "instance:7", "group": "version:movie@1.0"}
    alerts.report([down(check="instance.backoff", **bot)])
    at(clock, 4.9)
    alerts.report([down(check="instance.backoff", **bot)])
    assert not Incident.objects.exists()  # within its grace (5 s)
    at(clock, 5.3)
    alerts.report([down(check="instance.backoff", **bot)])
    incident = Incident.objects.get()
    assert [m.kind for m in messages(cast.owner)] == ["monitoring/incident_opened"]
    told = len(messages(cast.owner))
    at(clock, 16)
    alerts.report([up(check="instance.backoff", **bot), down(check="instance", **bot)])
    assert Incident.objects.get() == incident
    assert Alert.objects.get(check_name="instance").incident == incident
    assert len(messages(cast.owner)) == told
    incident.refresh_from_db()
    assert incident.severity == "critical"
    # Both must be healthy before it resolves.
    for t in (30, 45):
        at(clock, t)
        alerts.report([up(check="instance.backoff", **bot), down(check="instance", **bot)])
    assert Incident.objects.get().status == Incident.Status.OPEN
    for t in (60, 75):
        at(clock, t)
        alerts.report([up(check="instance.backoff", **bot), up(check="instance", **bot)])
    assert Incident.objects.get().status == Incident.Status.RESOLVED
    assert len(messages(cast.owner, "incident_resolved")) == told
