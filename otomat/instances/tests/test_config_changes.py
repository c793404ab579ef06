"""Settings changes against concurrency: the generation that tells the runner to replace what
runs is computed by the database under the row lock, never from a caller's copy, so of two
overlapping changes the runner always ends up running the one stored last; and a stopped
instance never keeps the pid of a process that is gone."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from otomat.accounts.models import AuditEvent
from otomat.instances import services
from otomat.instances.models import Instance
from otomat.runtime.backends.base import ActualState, Phase
from otomat.runtime.observe import record_observation
from otomat.runtime.runner import load_plan

S = Instance.State
TOKEN = "123456:" + "B" * 35


@pytest.fixture
def running(cast, greeter):
    instance = services.install_instance(
        account=cast.alice.account,
        version=greeter,
        name="g",
        config={"bot_token": TOKEN, "welcome_text": "v1"},
        actor=cast.alice,
    )
    record_observation(
        ActualState(str(instance.id), Phase.RUNNING, generation=instance.generation, pid=4242)
    )
    instance.refresh_from_db()
    assert instance.state == S.RUNNING and instance.pid == 4242
    return instance


def welcome(text: str) -> dict:
    return {"bot_token": TOKEN, "welcome_text": text}


class FakeRunner:
    """What the runner does with a poke, reduced to its rule: read the plan and replace the
    running process when the stored generation differs from the one it runs (the process
    backend's ``ensure_running``). Reads and applies one poke at a time, in order."""

    def __init__(self) -> None:
        self.generation: int | None = None
        self.config: dict | None = None
        self.started: list[tuple[int, str]] = []
        self._lock = threading.Lock()

    def poke(self) -> None:
        with self._lock:
            to_run, _stop, _warm = load_plan()
            for spec in to_run:
                if spec.generation != self.generation:
                    self.generation, self.config = spec.generation, spec.config
                    self.started.append((spec.generation, spec.config["welcome_text"]))


def test_a_stale_copy_cannot_reuse_a_generation(running, cast):
    """A caller holding an old copy (a page opened before another change) still gets a new
    generation: the runner replaces what runs every time the settings change."""
    stale = Instance.objects.get(pk=running.pk)
    services.update_config(running, config=welcome("v2"), actor=cast.alice)
    after_first = Instance.objects.get(pk=running.pk).generation
    services.update_config(stale, config=welcome("v3"), actor=cast.alice)
    stored = Instance.objects.get(pk=running.pk)
    assert stored.generation == after_first + 1
    assert stale.generation == stored.generation  # the caller's object shows what is stored
    assert stored.config["welcome_text"] == "v3"


def test_a_stale_copy_of_a_stopped_instance_also_gets_a_new_generation(running, cast):
    services.stop_instance(running, actor=cast.alice)
    stale = Instance.objects.get(pk=running.pk)
    services.update_config(running, config=welcome("v2"), actor=cast.alice)
    services.update_config(stale, config=welcome("v3"), actor=cast.alice)
    stored = Instance.objects.get(pk=running.pk)
    assert stored.generation == running.generation + 1
    assert stored.state == S.STOPPED and stored.config["welcome_text"] == "v3"


def test_provisioning_from_a_stale_copy_bumps_the_stored_generation(running, cast):
    stale = Instance.objects.get(pk=running.pk)
    services.restart_instance(running, actor=cast.alice)
    services.restart_instance(stale, actor=cast.alice)
    stored = Instance.objects.get(pk=running.pk)
    assert stored.generation == running.generation + 1 == stale.generation


def _two_callers(instance, runner, *, overlap: str) -> list[BaseException]:
    """Alice and Bob each load the instance (their copies) before either saves, then save on
    their own connections: at once (``overlap="free"``, however the database orders them), or
    Bob after Alice's save reached the runner (``"alice first"``, the order that lost Bob's
    change on the old code)."""
    loaded = threading.Barrier(2, timeout=30)
    alice_saved = threading.Event()
    errors: list[BaseException] = []

    def change(person, text: str) -> None:
        try:
            copy = Instance.objects.get(pk=instance.pk)
            loaded.wait()
            if overlap == "alice first" and text == "from bob":
                assert alice_saved.wait(30)
            services.update_config(copy, config=welcome(text), actor=person)
        except BaseException as exc:  # shown by the caller's assertion
            errors.append(exc)
        finally:
            if text == "from alice":
                alice_saved.set()
            connection.close()

    cast = instance.account.memberships.select_related("user").order_by("id")
    alice, bob = (m.user for m in cast)
    threads = [
        threading.Thread(target=change, args=(alice, "from alice")),
        threading.Thread(target=change, args=(bob, "from bob")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_settings_from_before_an_upgrade_are_refused_and_change_nothing(
    running, cast, greeter, tmp_path
):
    """Settings checked against the old version's schema are not stored under a version the
    instance was upgraded to meanwhile."""
    import re
    import shutil

    from otomat.catalog.services import import_product
    from otomat.conftest import REPO

    source = tmp_path / "greeter-1.0.1"
    shutil.copytree(REPO / "products" / "greeter", source)
    manifest = source / "otomat.toml"
    manifest.write_text(re.sub(r'(?m)^version = ".*"$', 'version = "1.0.1"', manifest.read_text()))
    fixed = import_product(source, actor=None)
    stale = Instance.objects.get(pk=running.pk)
    services.upgrade_instance(running, fixed, actor=cast.alice)
    before = Instance.objects.filter(pk=running.pk).values("generation", "config").get()
    with pytest.raises(services.InstanceError, match="upgraded meanwhile"):
        services.update_config(stale, config=welcome("v2"), actor=cast.alice)
    assert Instance.objects.filter(pk=running.pk).values("generation", "config").get() == before


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("overlap", ["alice first", "free"])
def test_two_overlapping_config_changes_end_with_the_runner_running_the_stored_settings(
    cast, greeter, monkeypatch, overlap
):
    """Two people save settings from copies they loaded before either saved, on separate
    connections (SQLite serialises the saves with BEGIN IMMEDIATE; PostgreSQL and MariaDB with
    the row lock). Every commit pokes the runner; once both are done the runner runs exactly
    the stored settings and has nothing left to do. On the old code both saves asked for the
    same generation, so the runner kept Alice's change while the database held Bob's."""
    instance = services.install_instance(
        account=cast.alice.account,
        version=greeter,
        name="g",
        config=welcome("v1"),
        actor=cast.alice,
    )
    runner = FakeRunner()
    runner.poke()
    start = instance.generation
    assert runner.started == [(start, "v1")]
    monkeypatch.setattr(services, "poke_runner", runner.poke)
    assert _two_callers(instance, runner, overlap=overlap) == []
    stored = Instance.objects.get(pk=instance.pk)
    assert stored.generation == start + 2  # each change its own generation
    assert stored.state == S.PROVISIONING and stored.desired == Instance.Desired.RUNNING
    assert runner.generation == stored.generation
    assert runner.config == spec_config(stored)
    if overlap == "alice first":
        assert runner.started[1:] == [(start + 1, "from alice"), (start + 2, "from bob")]
    else:  # a poke may have read both changes at once: one replacement or two, in order
        gens = [gen for gen, _text in runner.started]
        assert gens == sorted(set(gens)) and gens[-1] == start + 2
    # Nothing pending: another look changes nothing.
    started = len(runner.started)
    runner.poke()
    assert len(runner.started) == started
    changes = AuditEvent.objects.filter(action="instance.config_changed", target_id=instance.pk)
    assert sorted(a.actor.email for a in changes) == ["alice@example.com", "bob@example.com"]


def spec_config(instance: Instance) -> dict:
    from otomat.catalog.schema_form import apply_defaults

    return apply_defaults(instance.version.config_schema, instance.full_config())


def test_a_stopped_instance_keeps_no_dead_pid_after_settings_changes(running, cast):
    """install → stop → settings changes: the bot's last heartbeat, sent before it received
    the stop, is recorded after it (the process is still alive while it shuts down); the
    settings change while it stops; then its stop is reported for what is now an old
    generation. It used to leave the dead process's pid on the stopped instance for ever."""
    gen = running.generation
    services.stop_instance(running, actor=cast.alice)
    assert Instance.objects.get(pk=running.pk).pid is None
    record_observation(ActualState(str(running.id), Phase.RUNNING, generation=gen, pid=4242))
    assert Instance.objects.get(pk=running.pk).pid == 4242  # still alive, shutting down
    services.update_config(running, config=welcome("v2"), actor=cast.alice)
    record_observation(ActualState(str(running.id), Phase.STOPPED, generation=gen, pid=None))
    stopped = Instance.objects.get(pk=running.pk)
    assert stopped.state == S.STOPPED and stopped.pid is None
    # A later change and a late report of the old process change nothing more.
    services.update_config(running, config=welcome("v3"), actor=cast.alice)
    record_observation(ActualState(str(running.id), Phase.STOPPED, generation=gen, pid=None))
    assert Instance.objects.get(pk=running.pk).pid is None


def test_an_instance_being_replaced_keeps_its_pid_until_the_new_process_reports(running, cast):
    """While a settings change replaces the process, the old process's stop does not blank
    the pid the new generation is about to report (the backends report the old stop first)."""
    gen = running.generation
    services.update_config(running, config=welcome("v2"), actor=cast.alice)
    new = Instance.objects.get(pk=running.pk).generation
    record_observation(ActualState(str(running.id), Phase.STOPPED, generation=gen, pid=None))
    record_observation(ActualState(str(running.id), Phase.STARTING, generation=new, pid=5151))
    assert Instance.objects.get(pk=running.pk).pid == 5151


class IdleBackend:
    """A backend that runs nothing (a runner that has just started: its backend killed every
    leftover process when it opened)."""

    def __init__(self) -> None:
        self.stopped: list[str] = []

    def actual(self) -> dict:
        return {}

    async def ensure_running(self, spec) -> None:
        pass

    async def ensure_stopped(self, instance_id: str) -> None:
        self.stopped.append(instance_id)

    async def prepare(self, specs) -> None:
        pass


@pytest.mark.django_db(transaction=True)
def test_a_new_runner_clears_a_pid_whose_process_is_gone(cast, greeter):
    """A stopped instance whose process ended while no runner was there to report it (the
    runner was killed) keeps its pid until the next runner looks: that one clears it. An
    instance that should run keeps its pid for the backend to replace."""
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connections

    from otomat.runtime.runner import Runner

    def install(name: str, n: int) -> Instance:
        return services.install_instance(
            account=cast.alice.account,
            version=greeter,
            name=name,
            config={"bot_token": f"12345{n}:" + "D" * 35},
            actor=cast.alice,
        )

    stopped, wanted = install("stopped", 1), install("wanted", 2)
    services.stop_instance(stopped, actor=cast.alice)
    Instance.objects.filter(pk=stopped.pk).update(pid=4242)  # recorded before the runner died
    Instance.objects.filter(pk=wanted.pk).update(pid=5151)
    runner = Runner()
    runner.backend = IdleBackend()

    async def reconcile() -> None:
        await runner.reconcile()
        # The runner's database work runs in asgiref's worker thread: close its connection.
        await sync_to_async(connections.close_all, thread_sensitive=True)()

    asyncio.run(reconcile())
    assert Instance.objects.get(pk=stopped.pk).pid is None
    assert Instance.objects.get(pk=wanted.pk).pid == 5151
    asyncio.run(reconcile())  # nothing more to clear
    assert Instance.objects.get(pk=stopped.pk).pid is None
