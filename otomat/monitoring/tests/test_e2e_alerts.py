"""End to end with the real runner, a real task worker and the Telegram emulator: a crash loop
reaches the owner's Telegram as one message with Acknowledge and Open, and resolves when the
bot runs again; ten bots of one shared host killed together make one grouped alert; a flapping
bot yields a digest, not a storm; a maintenance window silences; a billing suspension is no
downtime."""

from __future__ import annotations

import contextlib
import os
import signal
import textwrap
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from otomat.catalog.services import import_product
from otomat.instances import services as instance_services
from otomat.instances.models import Instance
from otomat.instances.tests.test_e2e_products import import_variant
from otomat.monitoring import alerts, notices
from otomat.monitoring.models import Alert, AlertRule, Incident, Maintenance
from otomat.notify import services as notify
from otomat.notify.models import Notification
from otomat.notify.tests.test_notify import OWNER_BOT, owner_bot  # noqa: F401
from otomat.testing.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.slow
OWNER_CHAT = 7001
S = Instance.State


@pytest.fixture
def crasher(tmp_path):
    """Crashes at start unless a file "healthy" is in its data directory (its HOME)."""
    folder = tmp_path / "src" / "crasher"
    folder.mkdir(parents=True)
    (folder / "otomat.toml").write_text(
        textwrap.dedent("""
        [product]
        slug = "crasher"
        name = "Crasher"
        description = "Dies at start unless told it is healthy."
        version = "0.1.0"
        runtime = "process"
        command = ["python3", "main.py"]
        [resources]
        memory_mb = 64
        [health]
        check = "process"
    """)
    )
    (folder / "main.py").write_text(
        textwrap.dedent("""
        import os, sys, time
        if not os.path.exists(os.path.join(os.environ["HOME"], "healthy")):
            print("loading the film index", flush=True)
            print("fatal: index at /data/films.idx is corrupt", file=sys.stderr, flush=True)
            sys.exit(1)
        print("serving", flush=True)
        while True:
            time.sleep(1)
    """)
    )
    return import_product(folder, actor=None)


@pytest.fixture(autouse=True)
def only_bots_watched(db):
    """These tests run no scheduler (and not always a worker): the owner turned off the
    platform's service and machine alerts, so what is seen is the bots' alone."""
    for check in alerts.DEFAULT_RULES:
        if not check.startswith("instance"):
            AlertRule.objects.create(check_name=check, enabled=False)


@pytest.fixture
def fast_crash_loop(settings):
    settings.RUNTIME_BACKOFF_SECONDS = 0.1
    settings.RUNTIME_CRASH_LOOP_EXITS = 2


@pytest.fixture
def owner_chat(client, cast, owner_bot):  # noqa: F811
    """The owner linked the owner bot to their Telegram chat."""
    client.force_login(cast.owner)
    page = client.post(reverse("notify:telegram"), {"action": "link"}).content.decode()
    code = page.split("<code>/start ")[1].split("</code>")[0]
    owner_bot.say(OWNER_BOT, f"/start {code}", user_id=OWNER_CHAT, first_name="Owner")
    assert notify.poll_owner_bot() == 1
    return OWNER_CHAT


@pytest.fixture
def worker(tmp_path, settings, owner_bot):  # noqa: F811
    """``otomat worker``: runs the scans the runner's failures poke and delivers notices."""
    process = WorkerProcess(
        tmp_path,
        OTOMAT_OWNER_BOT_TOKEN=settings.OWNER_BOT_TOKEN,
        OTOMAT_OWNER_BOT_USERNAME=OWNER_BOT,
        OTOMAT_BOT_API_URL=settings.BOT_API_URL,
        OTOMAT_MONITORING_SCAN_SECONDS="3600",
    ).start()
    yield process
    process.stop()


def owner_messages(emulator) -> list[dict]:
    """The owner bot's monitoring messages in the owner's chat (not the "Connected" one)."""
    return [
        m
        for m in emulator.bot_replies(OWNER_BOT, OWNER_CHAT, 0)
        if not m.get("text", "").startswith("Connected")
    ]


def install(cast, version, name, **config) -> Instance:
    return instance_services.install_instance(
        account=cast.alice.account, version=version, name=name, config=config, actor=cast.alice
    )


def state_is(instance: Instance, *states):
    def check() -> bool:
        instance.refresh_from_db()
        return instance.state in states

    return check


def deliver() -> None:
    """What the worker does after each notice is queued (here, for scans run in the test)."""
    notify.deliver_pending()


def test_a_crash_loop_gives_one_incident_and_one_owner_message_resolved_when_it_runs_again(
    cast, crasher, fast_crash_loop, runner_factory, owner_chat, worker, emulator
):
    runner = runner_factory()
    instance = install(cast, crasher, "Movie Search Bot")
    wait_until(state_is(instance, S.FAILED), 60, message=runner.output())

    # The runner's failure poked a scan in the worker, which opened the incident and sent
    # the owner one Telegram message: which bot, which customer, the last log lines, buttons.
    wait_until(
        lambda: owner_messages(emulator), 60, message=f"no message; worker:\n{worker.output()}"
    )
    alerts.scan()  # the periodic scan sees the same: nothing new
    deliver()
    [message] = owner_messages(emulator)
    incident = Incident.objects.get()
    assert incident.status == Incident.Status.OPEN
    assert list(incident.instances.all()) == [instance]
    assert "Movie Search Bot" in message["text"] and "Alice's Bots" in message["text"]
    assert "index at /data/films.idx is corrupt" in message["text"]
    [buttons] = message["reply_markup"]["inline_keyboard"]
    assert [b["text"] for b in buttons] == ["Acknowledge", "Open"]
    assert buttons[1]["url"] == notices.incident_url(incident)

    # Acknowledge from Telegram: the owner-bot poller acknowledges, answers and edits.
    pressed = emulator.client.post(
        f"/control/bots/{OWNER_BOT}/callbacks",
        json={
            "user_id": OWNER_CHAT,
            "message_id": message["message_id"],
            "data": buttons[0]["callback_data"],
        },
    )
    assert pressed.status_code == 201, pressed.text
    assert notify.poll_owner_bot() == 1
    incident.refresh_from_db()
    assert incident.status == Incident.Status.ACKNOWLEDGED
    assert incident.acknowledged_by == cast.owner
    answer = emulator.client.get(
        f"/control/bots/{OWNER_BOT}/callbacks/{pressed.json()['id']}"
    ).json()
    assert answer["answer"]["text"] == "Acknowledged."
    [edited] = owner_messages(emulator)
    assert edited["text"].startswith("Acknowledged by")
    assert [b["text"] for b in edited["reply_markup"]["inline_keyboard"][0]] == ["Open"]

    # The bot is fixed and started again: the incident resolves, the owner is told once.
    (instance.data_dir / "healthy").write_text("yes")
    instance_services.start_instance(instance, actor=cast.alice)
    wait_until(state_is(instance, S.RUNNING), 60, message=runner.output())
    alerts.scan()
    alerts.scan()  # the recovery threshold: two healthy observations
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED
    assert list(incident.updates.values_list("kind", flat=True)) == [
        "opened",
        "acknowledged",
        "resolved",
    ]
    deliver()
    texts = [m["text"] for m in owner_messages(emulator)]
    assert len(texts) == 2 and texts[1].startswith("Resolved:"), texts
    assert Incident.objects.count() == 1


@pytest.fixture
def default_crash_loop(settings):
    """The platform's crash-loop detection: restarts after 1, 2, 4, 8 s; failed at the 5th."""
    settings.RUNTIME_BACKOFF_SECONDS = 1.0
    settings.RUNTIME_CRASH_LOOP_EXITS = 5


def test_a_crash_loop_reaches_the_owner_while_restarting_and_its_failure_adds_no_message(
    cast, crasher, default_crash_loop, runner_factory, owner_chat, worker, emulator
):
    runner = runner_factory()
    instance = install(cast, crasher, "Movie Search Bot")
    instance.data_dir.mkdir(parents=True, exist_ok=True)  # before the runner starts it
    healthy = instance.data_dir / "healthy"
    healthy.write_text("yes")
    wait_until(state_is(instance, S.RUNNING), 60, message=runner.output())
    assert instance.pid is not None
    healthy.unlink()
    os.kill(instance.pid, signal.SIGKILL)  # every restart dies now

    # The recorded exit poked a scan (the backoff alert pending), which scheduled one just
    # after the grace: that one opened the incident while the runner was still restarting.
    wait_until(
        lambda: owner_messages(emulator), 60, message=f"no message; worker:\n{worker.output()}"
    )
    instance.refresh_from_db()
    assert instance.state == S.PROVISIONING, "told only after the runner gave up"
    incident = Incident.objects.get()
    assert incident.check_name == "instance.backoff"
    [message] = owner_messages(emulator)
    assert "Movie Search Bot" in message["text"] and "Alice's Bots" in message["text"]

    # The runner gives up: that alert joins the incident, on its timeline, with no message.
    wait_until(state_is(instance, S.FAILED), 60, message=runner.output())
    wait_until(
        lambda: Alert.objects.filter(check_name="instance", state=Alert.State.FIRING).exists(),
        60,
        message=f"the failure was not seen; worker:\n{worker.output()}",
    )
    alerts.scan()
    deliver()
    assert Incident.objects.count() == 1
    incident.refresh_from_db()
    assert incident.alerts.count() == 2 and incident.severity == "critical"
    assert list(incident.updates.values_list("kind", flat=True)) == ["opened", "alert"]
    assert len(owner_messages(emulator)) == 1

    # Fixed and started again: resolved, and the owner is told once.
    healthy.write_text("yes")
    instance_services.start_instance(instance, actor=cast.alice)
    wait_until(state_is(instance, S.RUNNING), 60, message=runner.output())
    alerts.scan()
    alerts.scan()
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED
    deliver()
    texts = [m["text"] for m in owner_messages(emulator)]
    assert len(texts) == 2 and texts[1].startswith("Resolved:"), texts


def test_ten_bots_of_one_shared_host_killed_together_give_one_grouped_alert(
    cast, fast_crash_loop, runner_factory, owner_chat, emulator, tmp_path
):
    version = import_variant("greeter", "shared", tmp_path)
    runner = runner_factory()
    bots = [
        install(
            cast,
            version,
            f"Greeter {i}",
            bot_token=emulator.create_bot(f"greeter{i}_bot"),
            welcome_text="Hello {name}",
            language="en",
            max_daily_greetings=50,
            reply_delay_seconds=0,
        )
        for i in range(10)
    ]
    for bot in bots:
        wait_until(state_is(bot, S.RUNNING), 90, message=runner.output())
    pids = {bot.pid for bot in bots}
    assert len(pids) == 1 and None not in pids  # one host serves them all

    # The host process is killed, and again each time it is back, until the shared runtime
    # gives up (a crash loop: 5 deaths in 2 minutes): all ten end failed together.
    def host_pid() -> int | None:
        for bot in bots:
            bot.refresh_from_db()
        alive = {bot.pid for bot in bots}
        return alive.pop() if len(alive) == 1 and None not in alive else None

    def killed_for_good() -> bool:
        if all(state_is(bot, S.FAILED)() for bot in bots):
            return True
        pid = host_pid()
        if pid is not None and all(bot.state == S.RUNNING for bot in bots):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return False

    wait_until(killed_for_good, 120, interval=0.2, message=runner.output())
    assert "shared host pid" in bots[0].status_message

    alerts.scan()
    alerts.scan()
    deliver()
    incident = Incident.objects.get()
    assert incident.instances.count() == 10
    assert incident.group_key == f"instance|host:shared:greeter@{version.version}"
    [message] = owner_messages(emulator)
    assert message["text"].startswith(
        f"Down: 10 × instance down on host:shared:greeter@{version.version}"
    )
    assert "10 affected: Greeter 0, Greeter 1" in message["text"]
    assert "Alice's Bots" in message["text"]


def test_a_flapping_bot_yields_a_digest_not_a_storm(
    cast, crasher, fast_crash_loop, runner_factory, owner_chat, emulator
):
    runner = runner_factory()
    instance = install(cast, crasher, "Flappy")
    healthy = instance.data_dir / "healthy"
    for _ in range(4):
        wait_until(state_is(instance, S.FAILED), 60, message=runner.output())
        alerts.scan()
        healthy.write_text("yes")
        instance_services.start_instance(instance, actor=cast.alice)
        wait_until(state_is(instance, S.RUNNING), 60, message=runner.output())
        alerts.scan()
        alerts.scan()
        healthy.unlink()
        os.kill(instance.pid, signal.SIGKILL)  # it crashes again: restarts fail, crash loop
    wait_until(state_is(instance, S.FAILED), 60, message=runner.output())
    alerts.scan()
    deliver()
    texts = [m["text"] for m in owner_messages(emulator)]
    # Opened, resolved once, then one digest for the flapping, and silence for the rest.
    assert [t.split(":")[0] for t in texts] == ["Down", "Resolved", "Flapping"], texts
    assert Incident.objects.count() == 1
    assert Incident.objects.get().status == Incident.Status.OPEN


def test_a_maintenance_window_silences_a_crash_loop(
    cast, crasher, fast_crash_loop, runner_factory, owner_chat, emulator
):
    Maintenance.objects.create(
        title="Moving the films index",
        starts_at=timezone.now() - timedelta(minutes=1),
        ends_at=timezone.now() + timedelta(hours=1),
        scope=Maintenance.Scope.GROUP,
        scope_value=f"version:crasher@{crasher.version}",
    )
    runner = runner_factory()
    instance = install(cast, crasher, "Under maintenance")
    wait_until(state_is(instance, S.FAILED), 60, message=runner.output())
    alerts.scan()
    alerts.scan()
    deliver()
    assert not Incident.objects.exists()
    assert owner_messages(emulator) == []
    assert not Notification.objects.filter(kind__startswith="monitoring/").exists()


def test_a_billing_suspension_is_not_downtime(
    cast, crasher, fast_crash_loop, runner_factory, owner_chat, emulator
):
    runner = runner_factory()
    instance = install(cast, crasher, "Unpaid")
    wait_until(state_is(instance, S.FAILED), 60, message=runner.output())
    alerts.scan()  # it was down: an incident
    (instance.data_dir / "healthy").write_text("yes")
    instance_services.start_instance(instance, actor=cast.alice)
    wait_until(state_is(instance, S.RUNNING), 60, message=runner.output())
    alerts.scan()
    alerts.scan()
    assert Incident.objects.get().status == Incident.Status.RESOLVED
    deliver()
    told = len(owner_messages(emulator))
    alerts.scan()
    instance_services.suspend_instance(instance, reason="invoice overdue", source="billing")
    wait_until(lambda: state_is(instance, S.SUSPENDED)() and instance.pid is None, 60)
    for _ in range(3):
        alerts.scan()
    deliver()
    assert Incident.objects.count() == 1  # the suspension opened none
    assert len(owner_messages(emulator)) == told
