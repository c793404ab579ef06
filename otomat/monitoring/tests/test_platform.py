"""Platform health: the services' heartbeats, /healthz and /readyz, a full disk and a dead
worker turned into incidents, the queue's lag, and the settings that steer them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
import time_machine
from django.utils import timezone

from otomat.lib import host
from otomat.monitoring import alerts, platform
from otomat.monitoring.models import Alert, Incident
from otomat.ops import heartbeats
from otomat.ops.models import ServiceHeartbeat
from otomat.ops.stale import HOSTNAME
from otomat.ops.tests.slow_tasks import slow_task
from otomat.testing.processes import (
    WorkerProcess,
    flush_test_redis,
    tasks_setting_for_tests,
    wait_until,
)

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def calm_host(settings):
    """Only what a test simulates may alert: this shared machine's real load and memory not."""
    settings.LOAD_ALERT_PER_CPU = 10_000.0
    settings.MEMORY_ALERT_PERCENT = 100.1
    settings.DISK_ALERT_PERCENT = 100.1


@pytest.fixture
def prompt_rules(db):
    """The owner's rules for these checks, saved: alert at the first failing observation, so
    the tests do not depend on the shipped defaults' grace (alerts.DEFAULT_RULES)."""
    from otomat.monitoring.models import AlertRule

    for check in ("service.worker", "service.scheduler", "host.disk"):
        AlertRule.objects.create(
            check_name=check,
            severity="critical",
            failure_threshold=1,
            grace_seconds=0,
            recovery_threshold=2,
        )


@pytest.fixture
def database_queue(settings):
    """The test's real task queue: the database's, or RQ's in scripts/test's RQ pass."""
    settings.TASKS = tasks_setting_for_tests()
    flush_test_redis()
    yield
    flush_test_redis()


def beat_all(*services: str) -> None:
    """Heartbeats of this (live) test process for ``services``."""
    for service in services or ("runner", "worker", "scheduler"):
        heartbeats.beat(service)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def remote_beat(service: str, *, ago: timedelta, host_name: str = "runner-2:0badc0de"):
    now = timezone.now()
    return ServiceHeartbeat.objects.create(
        service=service, host=host_name, pid=1, started_at=now - ago, seen_at=now - ago
    )


# -- heartbeats ---------------------------------------------------------------------------------


def test_a_heartbeat_is_one_row_per_process_with_its_machines_health(db, settings, tmp_path):
    settings.DISK_PATHS = [str(tmp_path)]
    heartbeats.beat("runner")
    first = ServiceHeartbeat.objects.get()
    heartbeats.beat("runner")
    row = ServiceHeartbeat.objects.get()
    assert (row.service, row.host, row.pid) == ("runner", HOSTNAME, os.getpid())
    assert row.started_at == first.started_at and row.seen_at >= first.seen_at
    roles = {d["role"]: d for d in row.info["disks"]}
    assert roles["data"]["path"] == str(settings.DATA_DIR)
    assert roles["extra"]["path"] == str(tmp_path)
    assert 0 <= roles["data"]["used_percent"] <= 100
    assert row.info["load"]["cpus"] >= 1 and row.info["memory"]["total_bytes"] > 0
    heartbeats.mark_stopped("runner")
    row = ServiceHeartbeat.objects.get()
    assert row.info["stopped_at"] and row.info["disks"]  # kept, marked stopped
    state = platform.services()["runner"]
    assert not state.alive and state.stopped and state.reason.startswith("stopped")


def test_a_scan_told_a_later_time_judges_heartbeats_by_the_clock(db, calm_host):
    beat_all()  # live processes; a test of the alert rules then scans "ten minutes later"
    later = timezone.now() + timedelta(minutes=10)
    signals = [s for s in platform.platform_signals(later) if s.check.startswith("service.")]
    assert {s.check for s in signals} == {"service.runner", "service.worker", "service.scheduler"}
    assert all(s.ok and s.at == later for s in signals)


def test_a_restart_alerts_no_one_but_a_stop_that_lasts_does(cast, settings, prompt_rules):
    beat_all("runner", "worker")
    heartbeats.mark_stopped("worker")  # e.g. systemctl restart: the new one comes in seconds
    heartbeats.beat("scheduler")  # the scheduler's watch sees it stopped a moment ago
    assert not Incident.objects.exists()
    rows = platform.heartbeat_rows()
    later = timezone.now() + timedelta(seconds=settings.HEARTBEAT_STALE_SECONDS + 1)
    signals = platform.service_signals(platform.services(now=later, rows=rows), rows, later)
    worker = next(s for s in signals if s.check == "service.worker")
    stopped = settings.HEARTBEAT_STALE_SECONDS + 1
    assert not worker.ok and f"worker is not running: stopped {stopped} s ago" in worker.summary


@time_machine.travel(datetime(2026, 12, 4, 12, 0, tzinfo=UTC), tick=False)  # ages exact
def test_a_service_is_dead_when_silent_or_when_its_local_process_is_gone(db, settings):
    settings.HEARTBEAT_STALE_SECONDS = 60
    remote_beat("runner", ago=timedelta(seconds=30))  # another machine, recent: alive
    remote_beat("worker", ago=timedelta(seconds=90))  # another machine, silent: dead
    now = timezone.now()
    ServiceHeartbeat.objects.create(  # this machine, fresh, but its process is gone: dead
        service="scheduler", host=HOSTNAME, pid=dead_pid(), started_at=now, seen_at=now
    )
    states = platform.services()
    assert states["runner"].alive and states["runner"].hosts == ("runner-2",)
    assert not states["worker"].alive and states["worker"].reason == "no heartbeat for 90 s"
    assert not states["scheduler"].alive and states["scheduler"].reason == "its process is gone"
    assert not states["web"].alive and states["web"].reason == "no heartbeat"


def test_the_scheduler_beats_as_one_of_its_jobs(transactional_db, settings):
    from otomat.ops.scheduler import build_scheduler

    settings.READY_SERVICES = []  # nothing to watch: only the beat is under test
    scheduler = build_scheduler("test-holder", [])
    scheduler.start()
    try:
        wait_until(
            lambda: (
                ServiceHeartbeat.objects.filter(service="scheduler").exists()
                and scheduler.get_job("heartbeat-now") is None
            ),
            15,
            message="the scheduler wrote no heartbeat",
        )
    finally:
        scheduler.shutdown(wait=False)
    assert ServiceHeartbeat.objects.get().pid == os.getpid()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_runner_beats_and_a_clean_stop_removes_its_heartbeat(tmp_path, settings):
    from otomat.testing.processes import RunnerProcess

    settings.READY_SERVICES = []
    runner = RunnerProcess(tmp_path).start()
    try:
        wait_until(
            lambda: ServiceHeartbeat.objects.filter(service="runner", pid=runner.proc.pid).exists(),
            60,
            message=f"the runner wrote no heartbeat: {runner.output()}",
        )
        assert platform.services()["runner"].alive
    finally:
        runner.stop()
    assert ServiceHeartbeat.objects.get(service="runner").info["stopped_at"]  # a clean stop
    assert platform.services()["runner"].stopped


@pytest.mark.slow
@pytest.mark.tasks
@pytest.mark.django_db(transaction=True)
def test_otomat_worker_beats_before_its_first_task(tmp_path, database_queue, settings):
    settings.READY_SERVICES = []
    worker = WorkerProcess(tmp_path).start()
    try:
        wait_until(
            lambda: ServiceHeartbeat.objects.filter(service="worker", pid=worker.pid).exists(),
            60,
            message=f"the idle worker wrote no heartbeat: {worker.output()}",
        )
    finally:
        worker.stop()
    assert ServiceHeartbeat.objects.get(service="worker").info["stopped_at"]  # a clean stop


@pytest.mark.django_db(transaction=True)  # the heartbeat thread has its own connection
def test_the_web_server_beats_from_a_thread(settings):
    import importlib

    import otomat.asgi

    settings.HEARTBEAT_SECONDS = 0.2
    settings.READY_SERVICES = []
    try:
        importlib.reload(otomat.asgi)
        wait_until(
            lambda: ServiceHeartbeat.objects.filter(service="web", pid=os.getpid()).exists(),
            15,
            message="the web server wrote no heartbeat",
        )
    finally:
        heartbeats.stop("web")
    assert ServiceHeartbeat.objects.get(service="web").info["stopped_at"]


# -- /healthz and /readyz ---------------------------------------------------------------------


def test_healthz_says_the_process_answers(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert "no-cache" in response["Cache-Control"]
    assert client.post("/healthz").status_code == 405


def test_readyz_is_ready_when_the_database_answers_and_every_service_beats(client, db):
    beat_all()
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True and body["stale"] == [] and body["database"] == {"ok": True}
    assert set(body["services"]) == {"runner", "worker", "scheduler"}
    assert all(entry["ok"] for entry in body["services"].values())


@time_machine.travel(datetime(2026, 12, 4, 12, 0, tzinfo=UTC), tick=False)  # ages exact
def test_readyz_names_what_is_stale(client, db, settings, caplog):
    beat_all("runner")
    remote_beat("scheduler", ago=timedelta(minutes=5))
    with caplog.at_level("WARNING", logger="django.request"):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert not caplog.records  # a probe's answer, not a server error in the log
    body = response.json()
    assert body["ready"] is False and body["stale"] == ["worker", "scheduler"]
    assert body["services"]["worker"] == {
        "ok": False,
        "age_seconds": None,
        "reason": "no heartbeat",
    }
    assert body["services"]["scheduler"]["reason"] == "no heartbeat for 300 s"
    assert "runner-2" not in response.content.decode()  # no host names for strangers
    settings.READY_SERVICES = ["runner"]  # a web-only deployment asks for less
    assert client.get("/readyz").status_code == 200


def test_readyz_is_not_ready_when_the_database_does_not_answer(client, db, monkeypatch):
    from django.db import OperationalError

    def unreachable(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(platform, "services", unreachable)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == {"ok": False, "error": "OperationalError"}
    assert body["stale"] == ["database"] and "refused" not in response.content.decode()


# -- a dead worker ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.tasks
@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_makes_readyz_not_ready_and_opens_an_incident(
    client, cast, tmp_path, database_queue, calm_host, prompt_rules
):
    beat_all("runner", "scheduler")  # this test process stands in for the runner and scheduler
    folder = tmp_path / "task"
    folder.mkdir()
    (folder / "release").touch()  # the task finishes at once: it only wakes the worker
    slow_task.enqueue(str(folder))
    worker = WorkerProcess(tmp_path, OTOMAT_HEARTBEAT_SECONDS="0.5").start()
    try:
        wait_until(
            lambda: ServiceHeartbeat.objects.filter(service="worker", pid=worker.pid).exists(),
            60,
            message=f"the worker wrote no heartbeat: {worker.output()}",
        )
        assert client.get("/readyz").status_code == 200
        alerts.scan()
        assert not Incident.objects.exists()  # all well: nothing opened

        worker.kill()  # kill -9
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["stale"] == ["worker"]
        assert response.json()["services"]["worker"]["reason"] == "its process is gone"

        # The scan runs on the task queue, whose worker is gone: the scheduler's own beat
        # reports it (otomat.monitoring.platform.watch_peers).
        # (A beat may find the monitoring lease taken by a report elsewhere; the next one goes.)
        wait_until(
            lambda: heartbeats.beat("scheduler") or Incident.objects.exists(),
            40,
            message="the scheduler's beat opened no incident",
        )
        incident = Incident.objects.get()
        assert incident.check_name == "service.worker" and incident.is_open
        assert "worker is not running" in incident.title
        alert = Alert.objects.get(check_name="service.worker")
        assert alert.state == Alert.State.FIRING and alert.subject == "service:worker"
        alerts.scan()  # a scan that does run (a worker on another machine) adds nothing
        assert Incident.objects.count() == 1

        # A new worker: ready again, and the incident resolves after the recovery threshold.
        slow_task.enqueue(str(folder))
        second = WorkerProcess(tmp_path, OTOMAT_HEARTBEAT_SECONDS="0.5").start()
        try:
            wait_until(
                lambda: ServiceHeartbeat.objects.filter(service="worker", pid=second.pid).exists(),
                60,
                message=f"the second worker wrote no heartbeat: {second.output()}",
            )
            assert client.get("/readyz").status_code == 200

            def resolved() -> bool:
                heartbeats.beat("scheduler")
                incident.refresh_from_db()
                return not incident.is_open

            wait_until(resolved, 40, interval=0.3, message="the incident stayed open")
            assert Incident.objects.count() == 1
        finally:
            second.stop()
    finally:
        worker.kill()


@time_machine.travel(datetime(2026, 12, 4, 12, 0, tzinfo=UTC), tick=False)  # ages exact
def test_a_silent_scheduler_is_reported_by_a_workers_beat(cast, calm_host, prompt_rules):
    beat_all("runner")
    remote_beat("scheduler", ago=timedelta(minutes=5))  # it enqueues the scan: none runs
    heartbeats.beat("worker")
    incident = Incident.objects.get()
    assert incident.check_name == "service.scheduler" and incident.is_open
    assert "no heartbeat for 300 s" in incident.title


def test_a_service_that_never_beat_is_not_reported_while_the_platform_starts(
    cast, calm_host, prompt_rules
):
    heartbeats.beat("scheduler")  # the first process up; no worker has had a task yet
    assert not Alert.objects.exists() and not Incident.objects.exists()


# -- a full disk -----------------------------------------------------------------------------------


def test_a_full_disk_opens_an_incident(cast, settings, tmp_path, calm_host, prompt_rules):
    settings.DISK_PATHS = [str(tmp_path)]
    beat_all()
    used = host.disk(tmp_path)["used_percent"]
    start = timezone.now()
    alerts.scan(now=start)
    assert not Incident.objects.exists()

    settings.DISK_ALERT_PERCENT = max(used - 1, 0)  # the disk is now "fuller" than allowed
    alerts.scan(now=start + timedelta(seconds=15))
    incident = Incident.objects.get()
    assert incident.check_name == "host.disk" and incident.severity == "critical"
    subjects = set(Alert.objects.filter(check_name="host.disk").values_list("subject", flat=True))
    name = platform.host_name(HOSTNAME)
    assert f"disk:{name}:{tmp_path}" in subjects
    assert f"disk:{name}:{settings.DATA_DIR}" in subjects
    assert f"threshold {settings.DISK_ALERT_PERCENT:g} %" in incident.summary
    assert not incident.accounts.exists()  # platform-wide, and no customer has an SLA contract

    settings.DISK_ALERT_PERCENT = 100.1
    alerts.scan(now=start + timedelta(seconds=30))
    alerts.scan(now=start + timedelta(seconds=45))
    incident.refresh_from_db()
    assert not incident.is_open


def test_a_full_disk_starts_the_sla_clock_of_the_customers_under_contract(
    cast, greeter, plan, settings, tmp_path, calm_host, prompt_rules
):
    """The disk names no customer, but it affects every bot: a customer whose plan has an SLA
    gets a ticket whose clock runs; a customer without one, or whose bot is suspended, none."""
    from otomat.billing.models import Subscription
    from otomat.instances.models import Instance
    from otomat.support.models import SlaPolicy

    SlaPolicy.objects.create(
        name="Business",
        plan=plan,
        priority="high",
        first_response_minutes=60,
        next_response_minutes=60,
        resolution_minutes=240,
    )

    def bot(account, name, state=Instance.State.RUNNING, bot_id=""):
        return Instance.objects.create(
            account=account,
            version=greeter,
            name=name,
            state=state,
            desired=Instance.Desired.RUNNING,
            bot_id=bot_id,
        )

    covered = bot(cast.alice.account, "Covered")
    Subscription.objects.create(account=cast.alice.account, instance=covered, plan=plan)
    bot(cast.charlie.account, "No contract")
    suspended = bot(cast.charlie.account, "Suspended", state=Instance.State.SUSPENDED)
    Subscription.objects.create(account=cast.charlie.account, instance=suspended, plan=plan)

    settings.DISK_PATHS = [str(tmp_path)]
    beat_all()
    settings.DISK_ALERT_PERCENT = max(host.disk(tmp_path)["used_percent"] - 1, 0)
    alerts.scan(now=timezone.now())
    incident = Incident.objects.get(check_name="host.disk")
    [ticket] = incident.tickets.all()
    assert ticket.account == cast.alice.account and ticket.instance == covered
    assert ticket.response_due is not None  # the SLA clock runs
    assert set(incident.accounts.all()) == {cast.alice.account}


def test_disk_memory_and_load_signals_are_per_host(db, settings, calm_host):
    beat_all("runner")
    ServiceHeartbeat.objects.create(
        service="runner",
        host="runner-2:0badc0de",
        pid=1,
        started_at=timezone.now(),
        seen_at=timezone.now(),
        info={
            "disks": [{"path": "/srv", "role": "data", "free_bytes": 10, "used_percent": 97.0}],
            "memory": {"total_bytes": 100, "available_bytes": 1, "used_percent": 99.0},
            "load": {"load1": 9, "load5": 9, "load15": 9, "cpus": 1, "per_cpu": 9.0},
        },
    )
    settings.DISK_ALERT_PERCENT = 90
    settings.MEMORY_ALERT_PERCENT = 95
    settings.LOAD_ALERT_PER_CPU = 4
    signals = platform.platform_signals(timezone.now())
    remote = {s.subject: s for s in signals if s.group == "host:runner-2"}
    assert set(remote) == {"disk:runner-2:/srv", "memory:runner-2", "load:runner-2"}
    assert not any(s.ok for s in remote.values())
    assert remote["disk:runner-2:/srv"].value == 97.0
    assert all(s.account_id is None and s.instance_id is None for s in signals)
    assert {s.check for s in signals} <= platform.PLATFORM_WIDE_CHECKS


# -- the queue --------------------------------------------------------------------------------------


def test_queue_lag_is_the_age_of_the_oldest_due_task(db, database_queue, settings, calm_host):
    settings.QUEUE_LAG_ALERT_SECONDS = 300
    assert platform.queue() == platform.QueueState(ready=0, lag_seconds=0.0)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        slow_task.enqueue("/nonexistent")
        slow_task.using(run_after=timezone.now() + timedelta(hours=1)).enqueue("/later")
        clock.shift(timedelta(minutes=10))
        state = platform.queue()
        assert state.ready == 1 and state.lag_seconds == pytest.approx(600)
        signal = next(
            s for s in platform.platform_signals(timezone.now()) if s.check == "queue.lag"
        )
        assert not signal.ok and signal.value == pytest.approx(600)


def test_without_the_database_queue_there_is_no_lag_to_measure(db, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    assert platform.queue() is None


def test_the_database_size_is_measured(db):
    assert platform.database_size() > 0


# -- settings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("OTOMAT_DISK_ALERT_PERCENT", "ninety", "is not a number"),
        ("OTOMAT_READY_SERVICES", "runner,cron", "use web, worker, scheduler, runner"),
        ("OTOMAT_LOG_FORMAT", "xml", "is not plain or json"),
        ("OTOMAT_HEARTBEAT_STALE_SECONDS", "0", "must be at least 1"),
    ],
)
def test_a_bad_setting_stops_the_start_with_its_name(tmp_path, name, value, message):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTOMAT_")}
    env.update(
        OTOMAT_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="otomat.settings", **{name: value}
    )
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and name in done.stderr and message in done.stderr


def test_with_log_format_json_a_service_logs_json_lines(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTOMAT_")}
    env.update(
        OTOMAT_DATA_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="otomat.settings",
        OTOMAT_LOG_FORMAT="json",
    )
    code = (
        "import django, logging; django.setup(); logging.getLogger('otomat.x').warning('hi %s', 1)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    entry = json.loads(done.stderr.strip().splitlines()[-1])
    assert entry["message"] == "hi 1" and entry["logger"] == "otomat.x"


def test_json_logs_are_one_object_per_line():
    import logging

    from otomat.lib.jsonlog import JsonFormatter

    record = logging.LogRecord(
        "otomat.runner", logging.WARNING, __file__, 1, "bot %s stopped", ("x",), None
    )
    record.instance = "abc"
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["level"] == "WARNING" and entry["logger"] == "otomat.runner"
    assert entry["message"] == "bot x stopped" and entry["instance"] == "abc"
    assert entry["ts"].endswith("+00:00") and "\n" not in line
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in entry["exc"]


@pytest.mark.django_db(transaction=True)  # the heartbeat thread has its own connection
def test_a_beat_still_being_written_at_the_stop_does_not_erase_the_stop_mark(settings):
    """The heartbeat thread is still writing a beat (a busy database) when the process stops:
    the beat lands first and the clean stop's mark after it, never the other way round (a
    stop read as a crash). The beat is held until the stop has returned, or for 6 s: longer
    than the stop used to wait for the thread before writing its mark anyway."""
    settings.HEARTBEAT_SECONDS = 0.1
    settings.READY_SERVICES = []
    held, stopped = threading.Event(), threading.Event()
    real = heartbeats.measure
    calls = []

    def busy_database():
        calls.append(1)
        if len(calls) == 2:  # the thread's second beat waits, as on a locked database
            held.set()
            stopped.wait(6)
        return real()

    with mock.patch.object(heartbeats, "measure", busy_database):
        heartbeats.start("web")
        assert held.wait(15), "the heartbeat thread did not beat twice"
        heartbeats.stop("web")
        stopped.set()
        time.sleep(0.3)  # what the beat would still write, it writes now
    row = ServiceHeartbeat.objects.get(service="web", pid=os.getpid())
    assert row.info["stopped_at"]
    assert len(calls) == 2  # and no beat after the stop
