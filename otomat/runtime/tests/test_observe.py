"""What the runner writes from a backend's observations: counters and the last update handled."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from otomat.instances import services
from otomat.instances.models import Instance
from otomat.runtime.backends.base import ActualState, Phase, reported_time
from otomat.runtime.observe import record_observation

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.fixture
def instance(cast, greeter):
    return services.install_instance(
        account=cast.alice.account,
        version=greeter,
        name="Alice's bot",
        config={"bot_token": TOKEN},
        actor=cast.alice,
    )


def observed(instance, **fields) -> ActualState:
    instance.refresh_from_db()
    return ActualState(
        instance_id=str(instance.pk), phase=Phase.RUNNING, generation=instance.generation, **fields
    )


def test_counters_and_the_last_update_are_written_and_survive_a_restart(instance):
    handled = datetime(2026, 3, 2, 10, 0, 5, tzinfo=UTC)
    record_observation(observed(instance, pid=42, updates_handled=3, last_update=handled))
    instance.refresh_from_db()
    assert (instance.state, instance.updates_handled, instance.last_update_at) == (
        Instance.State.RUNNING,
        3,
        handled,
    )
    # The process restarted: its counters begin at 0 and it has handled nothing yet.
    record_observation(observed(instance, pid=43, updates_handled=0, last_update=None))
    instance.refresh_from_db()
    assert instance.updates_handled == 0 and instance.last_update_at == handled
    later = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    record_observation(observed(instance, pid=43, updates_handled=1, last_update=later))
    instance.refresh_from_db()
    assert instance.last_update_at == later


@pytest.mark.parametrize("value", [None, "1767225600", True, -5, 1e12, float("nan"), [1]])
def test_a_programs_implausible_time_is_ignored(value):
    assert reported_time(value) is None


def test_a_programs_epoch_seconds_become_an_aware_time():
    assert reported_time(1767225600.5) == datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
