"""The instance state machine: allowed transitions are recorded with their cause; others are
refused and change nothing."""

from __future__ import annotations

import pytest

from otomat.accounts.models import AuditEvent
from otomat.instances import services
from otomat.instances.models import TRANSITIONS, Instance
from otomat.runtime.backends.base import ActualState, Phase
from otomat.runtime.observe import record_observation

S = Instance.State
TOKEN = "123456:" + "B" * 35


@pytest.fixture
def instance(cast, greeter):
    return services.create_instance(
        account=cast.alice.account,
        version=greeter,
        name="g",
        config={"bot_token": TOKEN},
        actor=cast.alice,
    )


def test_it_records_every_transition_with_its_cause(instance, cast):
    services.provision_instance(instance, actor=cast.alice, cause="installed")
    services.stop_instance(instance, actor=cast.alice)
    services.start_instance(instance, actor=cast.alice)
    services.remove_instance(instance, actor=cast.alice)
    trail = [(e.from_state, e.to_state, e.cause) for e in instance.events.order_by("at", "id")]
    assert trail == [
        ("", S.PENDING, "created"),
        (S.PENDING, S.PROVISIONING, "installed"),
        (S.PROVISIONING, S.STOPPED, "stopped"),
        (S.STOPPED, S.PROVISIONING, "started"),
        (S.PROVISIONING, S.TERMINATED, "removed"),
    ]
    assert instance.desired == Instance.Desired.STOPPED


def test_a_terminated_instance_cannot_come_back(instance, cast):
    services.remove_instance(instance, actor=cast.alice)
    for action in (services.start_instance, services.stop_instance, services.restart_instance):
        with pytest.raises(services.InstanceError):
            action(instance, actor=cast.alice)
    instance.refresh_from_db()
    assert instance.state == S.TERMINATED
    assert instance.events.count() == 2


def test_transitions_table_has_no_way_out_of_terminated():
    assert TRANSITIONS[S.TERMINATED] == set()
    assert all(
        S.TERMINATED in targets for state, targets in TRANSITIONS.items() if state != S.TERMINATED
    )


def test_a_suspended_instance_cannot_be_started_by_its_customer(instance, cast):
    services.provision_instance(instance, actor=cast.alice)
    services.transition(
        instance,
        S.SUSPENDED,
        cause="unpaid",
        actor_label="system:billing",
        desired=Instance.Desired.STOPPED,
    )
    with pytest.raises(services.InstanceError):
        services.start_instance(instance, actor=cast.alice)
    services.start_instance(instance, actor=cast.staff)
    assert instance.state == S.PROVISIONING
    lifted = AuditEvent.objects.get(action="instance.unsuspended")
    assert lifted.actor == cast.staff and lifted.data["reason"] == "started by staff"


def test_staff_starting_a_suspension_of_a_stopped_instance_runs_it(instance, cast):
    """The customer had stopped the bot before billing suspended it: lifting the suspension
    alone leaves it stopped, but staff pressing Start means run it."""
    services.provision_instance(instance, actor=cast.alice)
    services.stop_instance(instance, actor=cast.alice)
    services.suspend_instance(instance, source="billing", reason="unpaid", actor_label="billing")
    services.start_instance(instance, actor=cast.staff)
    instance.refresh_from_db()
    assert instance.state == S.PROVISIONING and instance.suspension_source == ""
    assert AuditEvent.objects.filter(action="instance.unsuspended").count() == 1


def test_runner_observations_drive_running_backoff_and_failed(instance, cast):
    services.provision_instance(instance, actor=cast.alice)
    gen = instance.generation
    record_observation(ActualState(str(instance.id), Phase.RUNNING, generation=gen, pid=4242))
    instance.refresh_from_db()
    assert (instance.state, instance.pid) == (S.RUNNING, 4242)
    record_observation(
        ActualState(str(instance.id), Phase.BACKOFF, generation=gen, restarts=1, last_exit_code=-9)
    )
    instance.refresh_from_db()
    assert instance.state == S.PROVISIONING and instance.restarts == 1
    record_observation(
        ActualState(
            str(instance.id), Phase.FAILED, generation=gen, restarts=5, message="Traceback: boom"
        )
    )
    instance.refresh_from_db()
    assert instance.state == S.FAILED
    assert "boom" in instance.status_message
    causes = list(instance.events.values_list("cause", flat=True))
    assert any("gave up" in c for c in causes)


def test_an_old_generation_cannot_move_the_state(instance, cast):
    services.provision_instance(instance, actor=cast.alice)
    old = instance.generation
    services.restart_instance(instance, actor=cast.alice)
    record_observation(ActualState(str(instance.id), Phase.RUNNING, generation=old, pid=1))
    instance.refresh_from_db()
    assert instance.state == S.PROVISIONING


def test_the_same_observation_twice_records_one_transition(instance, cast):
    services.provision_instance(instance, actor=cast.alice)
    seen = ActualState(str(instance.id), Phase.RUNNING, generation=instance.generation, pid=7)
    record_observation(seen)
    record_observation(seen)
    assert instance.events.filter(to_state=S.RUNNING).count() == 1


def test_creating_is_all_or_nothing(cast, greeter, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(services, "record_audit", broken)
    with pytest.raises(RuntimeError):
        services.create_instance(
            account=cast.alice.account,
            version=greeter,
            name="half",
            config={"bot_token": TOKEN},
            actor=cast.alice,
        )
    assert not Instance.objects.exists()
