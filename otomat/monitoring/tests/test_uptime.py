"""Uptime history with time moved: hours from the recorded transitions, days rolled up, old rows
pruned, billing suspensions, customer stops and maintenance not counted as downtime."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from otomat.instances import services
from otomat.instances.models import Instance
from otomat.monitoring import uptime
from otomat.monitoring.models import Maintenance
from otomat.monitoring.models_uptime import UptimeDay, UptimeHour

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 10:00 UTC
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
RUNNER = "system:runner"


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def at(clock, minutes: float) -> datetime:
    moment = T0 + timedelta(minutes=minutes)
    clock.move_to(moment)
    return moment


@pytest.fixture
def bot(cast, greeter, clock):
    """Alice's bot, installed at 10:00 and answering at 10:00."""
    instance = services.create_instance(
        account=cast.alice.account,
        version=greeter,
        name="Alice's bot",
        config={"bot_token": TOKEN},
        actor=cast.alice,
    )
    services.provision_instance(instance, actor=cast.alice, cause="installed")
    services.transition(instance, Instance.State.RUNNING, cause="answering", actor_label=RUNNER)
    return instance


def crash(instance) -> None:
    services.transition(instance, Instance.State.FAILED, cause="crash loop", actor_label=RUNNER)


def recover(instance) -> None:
    services.provision_instance(instance, cause="started again")
    services.transition(instance, Instance.State.RUNNING, cause="answering", actor_label=RUNNER)


def hour_row(instance, hour: datetime) -> UptimeHour:
    return UptimeHour.objects.get(instance=instance, hour=hour)


def test_an_hour_counts_up_and_down_time_from_the_transitions(bot, clock):
    at(clock, 20)
    crash(bot)
    at(clock, 35)
    recover(bot)
    at(clock, 61)
    uptime.record_hours(uptime.floor_hour(T0) + timedelta(minutes=61))
    row = hour_row(bot, T0)
    assert (row.up_seconds, row.down_seconds, row.excluded_seconds) == (45 * 60, 15 * 60, 0)
    assert row.end == "up"
    # Run again (a second scan in the same hour): the same row, nothing doubled.
    uptime.record_hours(T0 + timedelta(minutes=62))
    assert UptimeHour.objects.count() == 1
    assert hour_row(bot, T0).down_seconds == 15 * 60


def test_a_failure_spanning_hours_carries_over_without_new_transitions(bot, clock):
    at(clock, 50)
    crash(bot)
    at(clock, 60 * 3 + 1)  # 13:01: three hours aggregated at once
    uptime.record_hours(T0 + timedelta(minutes=60 * 3 + 1))
    rows = {r.hour: r for r in UptimeHour.objects.filter(instance=bot)}
    assert sorted(rows) == [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    assert rows[T0].down_seconds == 10 * 60
    assert rows[T0 + timedelta(hours=1)].down_seconds == 3600
    assert rows[T0 + timedelta(hours=2)].down_seconds == 3600
    result = uptime.uptime_for(bot, days=1)
    # 50 min up, 2 h 10 min down aggregated + the live minute of 13:00 (still failed).
    assert result.up_seconds == 50 * 60
    assert result.down_seconds == (10 + 120 + 1) * 60


def test_billing_suspension_and_customer_stop_are_not_downtime(bot, cast, clock):
    at(clock, 10)
    services.stop_instance(bot, actor=cast.alice)
    at(clock, 20)
    services.start_instance(bot, actor=cast.alice)  # provisioning from stopped: not down
    at(clock, 21)
    services.transition(bot, Instance.State.RUNNING, cause="answering", actor_label=RUNNER)
    at(clock, 30)
    services.suspend_instance(bot, source="billing", reason="invoice INV-1 unpaid")
    at(clock, 61)
    uptime.record_hours(T0 + timedelta(minutes=61))
    row = hour_row(bot, T0)
    assert (row.up_seconds, row.down_seconds, row.excluded_seconds) == (19 * 60, 0, 41 * 60)
    assert uptime.uptime_for(bot, days=1).percent == 100.0


def test_downtime_inside_a_maintenance_window_is_not_counted(bot, cast, clock):
    Maintenance.objects.create(
        title="Database upgrade",
        starts_at=T0 + timedelta(minutes=15),
        ends_at=T0 + timedelta(minutes=45),
        scope=Maintenance.Scope.ACCOUNT,
        scope_value=str(cast.alice.account.pk),
    )
    at(clock, 10)
    crash(bot)
    at(clock, 50)
    recover(bot)
    at(clock, 61)
    uptime.record_hours(T0 + timedelta(minutes=61))
    row = hour_row(bot, T0)
    # Down 10:10-10:50 = 40 min, of which 30 inside the window.
    assert (row.up_seconds, row.down_seconds, row.excluded_seconds) == (20 * 60, 10 * 60, 30 * 60)


def test_a_window_for_someone_else_does_not_hide_downtime(bot, cast, clock):
    Maintenance.objects.create(
        title="Charlie's move",
        starts_at=T0,
        ends_at=T0 + timedelta(hours=1),
        scope=Maintenance.Scope.ACCOUNT,
        scope_value=str(cast.charlie.account.pk),
    )
    at(clock, 30)
    crash(bot)
    at(clock, 61)
    uptime.record_hours(T0 + timedelta(minutes=61))
    assert hour_row(bot, T0).down_seconds == 30 * 60


def test_days_roll_up_and_old_hours_are_pruned(bot, clock, settings):
    settings.UPTIME_HOURLY_DAYS = 2
    at(clock, 60 * 14)  # 00:00 next day is 14 hours after 10:00
    crash(bot)  # down from 00:00 of 3 March
    at(clock, 60 * 15)
    recover(bot)  # up again at 01:00
    # The scan runs every hour for four days.
    for h in range(1, 24 * 4 + 1):
        moment = at(clock, 60 * h + 1)
        uptime.record_hours(moment)
    days = {d.day: d for d in UptimeDay.objects.filter(instance=bot)}
    assert days[date(2026, 3, 2)].up_seconds == 14 * 3600  # from 10:00
    assert days[date(2026, 3, 2)].down_seconds == 0
    assert days[date(2026, 3, 3)].down_seconds == 3600
    assert days[date(2026, 3, 3)].up_seconds == 23 * 3600
    # Hourly rows older than two days (at the last day's roll-up, 6 March 00:01) are gone; the
    # days keep the history.
    oldest = UptimeHour.objects.order_by("hour").first().hour
    assert oldest == datetime(2026, 3, 4, 0, 0, tzinfo=UTC)
    result = uptime.uptime_for(bot, days=7)
    assert len(result.days) == 7 and result.days[-1].day == date(2026, 3, 6)
    assert result.down_seconds == 3600
    expected = 100 * result.up_seconds / (result.up_seconds + 3600)
    assert result.percent == pytest.approx(expected, abs=0.001)
    # 28 Feb and 1 March: before the install; 2 March all up; 3 March one hour down.
    assert [d.percent for d in result.days[:3]] == [None, None, 100.0]
    assert result.days[3].percent == pytest.approx(100 * 23 / 24, abs=0.001)
    assert uptime.month_uptime(bot, year=2026, month=3) == pytest.approx(result.percent, abs=0.01)
    assert uptime.uptime_percent_many([bot.pk], days=7)[str(bot.pk)] == pytest.approx(
        result.percent, abs=0.05
    )


def test_a_long_gap_is_filled_from_the_transitions_up_to_the_backfill(bot, clock):
    at(clock, 5)
    uptime.record_hours(T0 + timedelta(minutes=5))  # nothing complete yet
    assert not UptimeHour.objects.exists()
    moment = at(clock, 60 * 100)  # 100 hours later
    uptime.record_hours(moment)
    assert UptimeHour.objects.count() == uptime.BACKFILL_HOURS
    assert set(UptimeHour.objects.values_list("end", flat=True)) == {"up"}


def test_updates_per_hour_follow_the_runtime_counters_across_a_restart(bot, clock):
    Instance.objects.filter(pk=bot.pk).update(updates_handled=7, errors=1)
    uptime.record_hours(at(clock, 61))
    Instance.objects.filter(pk=bot.pk).update(updates_handled=10, errors=1)
    uptime.record_hours(at(clock, 121))
    Instance.objects.filter(pk=bot.pk).update(updates_handled=4, errors=0)  # restarted
    uptime.record_hours(at(clock, 181))
    rows = UptimeHour.objects.filter(instance=bot).order_by("hour")
    assert [(r.updates, r.errors) for r in rows] == [(7, 1), (3, 0), (4, 0)]


def test_a_sandbox_has_no_uptime_rows(bot, clock):
    Instance.objects.filter(pk=bot.pk).update(kind=Instance.Kind.SANDBOX)
    uptime.record_hours(at(clock, 61))
    assert not UptimeHour.objects.exists()


@pytest.mark.parametrize("days", [0, -1, 10_000, 1.5, "30", True, None])
def test_bad_days_are_refused_clearly(bot, days):
    with pytest.raises(ValueError, match="days must be"):
        uptime.uptime_for(bot, days=days)
    with pytest.raises(ValueError, match="days must be"):
        uptime.uptime_percent_many([bot.pk], days=days)


@pytest.mark.parametrize("instance", ["not-a-uuid", "", 42])
def test_a_bad_instance_is_refused_clearly(db, instance):
    with pytest.raises(ValueError, match="is not an instance"):
        uptime.uptime_for(instance)


def test_bad_months_and_hours_are_refused(bot):
    with pytest.raises(ValueError, match="not a month"):
        uptime.month_uptime(bot, year=2026, month=13)
    with pytest.raises(ValueError, match="not the start of an hour"):
        uptime.aggregate_hour(T0 + timedelta(minutes=5))
    assert not UptimeHour.objects.exists()


def test_an_unknown_instance_has_empty_days(db):
    result = uptime.uptime_for("00000000-0000-0000-0000-000000000000", days=3)
    assert result.percent is None and len(result.days) == 3
