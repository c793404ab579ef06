"""The runner's reconcile reads and decrypts only what changed.

A backend double (``Recorder``) runs nothing but reports every start and stop back through the
runner's ``observe`` as a real backend's ``on_change`` does. The reconcile runs through
``async_to_sync``, so its database work runs on the test's own connection and is counted there.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from otomat.instances import crypto, services
from otomat.instances.models import Instance
from otomat.runtime import runner as runner_module
from otomat.runtime.backends.base import ActualState, Phase
from otomat.runtime.observe import record_observations
from otomat.runtime.runner import Runner

S = Instance.State
D = Instance.Desired


class Recorder:
    """A backend that remembers what it was asked and reports it like a real one."""

    name = "recorder"

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.states: dict[str, ActualState] = {}
        self.started: list[str] = []
        self.stopped: list[str] = []

    def report(self, state: ActualState) -> None:
        self.states[state.instance_id] = state
        self.runner.observe(state)

    def actual(self) -> dict[str, ActualState]:
        return dict(self.states)

    async def ensure_running(self, spec) -> None:
        self.started.append(spec.instance_id)
        assert spec.config["bot_token"].endswith("A" * 35)  # decrypted for the start
        self.report(ActualState(spec.instance_id, Phase.RUNNING, generation=spec.generation))

    async def ensure_stopped(self, instance_id: str) -> None:
        self.stopped.append(instance_id)
        generation = self.states[instance_id].generation
        self.report(ActualState(instance_id, Phase.STOPPED, generation=generation))

    async def prepare(self, specs) -> None:
        pass


@pytest.fixture
def decryptions(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = crypto.decrypt_json

    def counting(token: str):
        calls.append(1)
        return real(token)

    monkeypatch.setattr(crypto, "decrypt_json", counting)
    return calls


def fleet(account, version, running: int, stopped: int) -> list[Instance]:
    """``running`` live instances and ``stopped`` stopped ones, last changed an hour ago."""
    long_ago = timezone.now() - timedelta(hours=1)
    rows = [
        Instance(
            account=account,
            version=version,
            name=f"bot {n}",
            secrets={"bot_token": f"{100000 + n}:" + "A" * 35},
            state=S.RUNNING if n < running else S.STOPPED,
            desired=D.RUNNING if n < running else D.STOPPED,
            changed_at=long_ago,
        )
        for n in range(running + stopped)
    ]
    return Instance.objects.bulk_create(rows, batch_size=1000)


def reconcile(runner: Runner, **kw) -> tuple[int, int]:
    """(instances looked at, queries) of one reconcile."""
    with CaptureQueriesContext(connection) as queries:
        looked_at = async_to_sync(runner.reconcile)(**kw)
    return looked_at, len(queries)


@pytest.mark.parametrize("size", [100, 10_000])
def test_a_reconcile_costs_the_same_whatever_the_number_of_unchanged_instances(
    db, cast, greeter, decryptions, size
):
    """At 100 and at 10,000 instances: a poke with nothing changed reads one index range (one
    query) and decrypts nothing; a change costs a few queries and one decryption for the one
    instance to start; only the full resync (at start and every RUNNER_RESYNC_SECONDS) grows
    with the fleet."""
    instances = fleet(cast.alice.account, greeter, running=size, stopped=size // 10)
    runner = Runner()
    backend = runner.backend = Recorder(runner)

    looked_at, _ = reconcile(runner)  # the runner starts: a full resync starts everything
    assert looked_at == size + size // 10
    assert len(backend.started) == size and len(decryptions) == size
    backend.started.clear()
    decryptions.clear()

    looked_at, queries = reconcile(runner, poked=True)  # a poke, nothing changed
    assert (looked_at, queries, len(decryptions), backend.started) == (0, 1, 0, [])
    looked_at, queries = reconcile(runner)  # the timed reconcile: the warm list as well
    assert (looked_at, queries, len(decryptions), backend.started) == (0, 2, 0, [])

    # One configuration changes (a new generation): its row is read, its spec built.
    changed = instances[size // 2]
    services.restart_instance(changed, actor=cast.alice)
    looked_at, queries = reconcile(runner, poked=True)
    assert backend.started == [str(changed.id)] and len(decryptions) == 1
    assert (looked_at, queries) == (1, 3)  # changed rows; that instance; its version
    # Read again while within the margin for late commits, but not started again.
    assert reconcile(runner, poked=True)[0] == 1
    assert backend.started == [str(changed.id)] and len(decryptions) == 1

    # A stop: no spec, no decryption.
    stopped = instances[1]
    services.stop_instance(stopped, actor=cast.alice)
    reconcile(runner, poked=True)
    assert backend.stopped == [str(stopped.id)] and len(decryptions) == 1

    # An observation that disagrees with its row is due: a wanted instance the backend lost.
    lost = instances[2]
    backend.report(ActualState(str(lost.id), Phase.STOPPED, generation=lost.generation))
    looked_at, _ = reconcile(runner, poked=True)
    assert backend.started[-1] == str(lost.id) and len(decryptions) == 2


def test_an_instance_that_could_not_start_is_tried_again(db, cast, greeter, decryptions):
    """A start that raised is due at the next reconcile, without any change to its row."""
    (broken,) = fleet(cast.alice.account, greeter, running=1, stopped=0)
    runner = Runner()
    backend = runner.backend = Recorder(runner)
    attempts: list[str] = []

    async def failing(spec) -> None:
        attempts.append(spec.instance_id)
        raise RuntimeError("the backend is not ready")

    backend.ensure_running = failing
    reconcile(runner)
    reconcile(runner, poked=True)
    assert attempts == [str(broken.id)] * 2


def test_a_new_instance_and_a_terminated_one_are_seen_by_a_poke(db, cast, greeter):
    runner = Runner()
    backend = runner.backend = Recorder(runner)
    reconcile(runner)
    installed = services.install_instance(
        account=cast.alice.account,
        version=greeter,
        name="new",
        config={"bot_token": "1234577:" + "A" * 35},
        actor=cast.alice,
    )
    reconcile(runner, poked=True)
    assert backend.started == [str(installed.id)]
    services.remove_instance(installed, actor=cast.alice)
    reconcile(runner, poked=True)
    assert backend.stopped == [str(installed.id)]


def test_observations_are_written_in_one_transaction(db, cast, greeter):
    """A batch of heartbeats: one query reads (and locks) every row, one UPDATE per row, one
    transaction; the transition an observation implies is still recorded with its event."""
    instances = fleet(cast.alice.account, greeter, running=50, stopped=0)
    Instance.objects.filter(pk=instances[0].pk).update(state=S.PROVISIONING)
    beats = [
        ActualState(str(i.id), Phase.RUNNING, generation=i.generation, pid=1000 + n)
        for n, i in enumerate(instances)
    ]
    beats.append(ActualState("not-a-uuid", Phase.RUNNING))  # skipped, not an error
    with CaptureQueriesContext(connection) as queries:
        record_observations(beats[1:])
    sql = [q["sql"] for q in queries.captured_queries]
    assert sum(s.startswith("SELECT") for s in sql) == 1
    assert sum(s.startswith("UPDATE") for s in sql) == 49
    assert sum("SAVEPOINT" in s and "RELEASE" not in s for s in sql) <= 1
    record_observations(beats[:1])
    first = Instance.objects.get(pk=instances[0].pk)
    assert (first.state, first.pid) == (S.RUNNING, 1000)
    assert first.events.filter(to_state=S.RUNNING).exists()
    assert Instance.objects.get(pk=instances[7].pk).pid == 1007


def test_only_runner_fields_mark_an_instance_changed(db, cast, greeter):
    """What the runner's observations write (pid, counters) does not make a row look changed;
    what the runner acts on (desired, state, generation, version, configuration) does."""
    (instance,) = fleet(cast.alice.account, greeter, running=1, stopped=0)
    before = Instance.objects.get(pk=instance.pk).changed_at
    Instance.objects.filter(pk=instance.pk).update(pid=5, updates_handled=3)
    instance.restarts = 2
    instance.save(update_fields=["restarts"])
    assert Instance.objects.get(pk=instance.pk).changed_at == before
    Instance.objects.filter(pk=instance.pk).update(desired=D.STOPPED)
    after = Instance.objects.get(pk=instance.pk).changed_at
    assert after > before
    instance.generation = 7
    instance.save(update_fields=["generation"])
    assert Instance.objects.get(pk=instance.pk).changed_at > after


def test_the_full_scan_plan_is_still_available(db, cast, greeter):
    """``load_plan`` (every spec at once) stays callable for tools and the bench's baseline."""
    fleet(cast.alice.account, greeter, running=3, stopped=2)
    to_run, to_stop, _warm = runner_module.load_plan()
    assert len(to_run) == 3 and len(to_stop) == 2
