"""Alert latency: a bot killed into a crash loop → the owner's Telegram message, median of N.

    .venv/bin/python bench/alert_latency.py [--runs 10] [--backoff 1.0] [--exits 5]

Starts the Telegram emulator, a real ``otomat runner`` and a real ``otomat worker`` on a fresh
SQLite database (a temporary data directory), links the owner's chat to the owner bot in the
emulator, and then, ``--runs`` times: installs a small command product that serves until a file
in its data directory says it is broken, waits until it runs, marks it broken and kills its
process (SIGKILL). Every restart then dies at once. The recorded exit pokes a monitoring scan
in the worker (the ``instance.backoff`` alert goes pending and schedules a follow-up scan just
after its grace); the follow-up sees the bot still restarting, opens the incident and queues
the owner's notice, and the worker delivers it through the owner bot. Later the runner's
crash-loop detection marks it failed (``--backoff`` seconds doubling, ``--exits`` exits — the
platform's defaults unless given): that ``instance`` alert joins the open incident without a
second message. Measured from the kill: the owner's message in the emulator, and, as the
baseline, the failure recorded (before, the first alert came only after it); the messages
naming the bot are counted until a moment after the failure (one expected). Between runs the
incident is resolved, so each run opens its own.

The bench runs no scheduler, so the platform's service and machine rules are turned off (as
the owner could on the rules page): "the scheduler is not running" and its kin would otherwise
open incidents of their own and share the owner chat's send pace with the bots' messages.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import nearest_rank

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
OWNER_BOT = "bench_owner_bot"
OWNER_CHAT = 7001
PRODUCT = """
[product]
slug = "breakable"
name = "Breakable"
description = "Serves until a file named broken is in its data directory."
version = "0.1.0"
runtime = "process"
command = ["python3", "main.py"]
[resources]
memory_mb = 64
[health]
check = "process"
"""
MAIN = """
import os, sys, time
if os.path.exists(os.path.join(os.environ["HOME"], "broken")):
    print("fatal: the film index is corrupt", file=sys.stderr, flush=True)
    sys.exit(1)
print("serving", flush=True)
while True:
    time.sleep(1)
"""


SETTLE_SECONDS = 2.5  # after the failure: its scan and any (unexpected) second message


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--backoff", type=float, default=None, help="first restart delay (s)")
    parser.add_argument("--exits", type=int, default=None, help="exits that make a crash loop")
    parser.add_argument("--timeout", type=float, default=120.0, help="per run, seconds")
    args = parser.parse_args()
    if args.runs < 1 or args.timeout <= 0:
        parser.error("--runs must be at least 1 and --timeout positive")
    if (args.backoff is not None and args.backoff < 0.05) or (
        args.exits is not None and args.exits < 1
    ):
        parser.error("--backoff must be at least 0.05 and --exits at least 1")

    from otomat.testing.processes import Emulator, wait_until

    data_dir = Path(tempfile.mkdtemp(prefix="otomat-bench-alerts-"))
    emulator = Emulator(data_dir / "tgemu.json")
    owner_token = emulator.create_bot(OWNER_BOT)
    for key in [k for k in os.environ if k.startswith("OTOMAT_")]:
        del os.environ[key]
    os.environ.update(
        DJANGO_SETTINGS_MODULE="otomat.settings",
        OTOMAT_DATA_DIR=str(data_dir),
        OTOMAT_BOT_API_URL=emulator.url,
        OTOMAT_EMULATOR_URL=emulator.url,
        OTOMAT_OWNER_BOT_TOKEN=owner_token,
        OTOMAT_OWNER_BOT_USERNAME=OWNER_BOT,
        OTOMAT_TASK_BACKEND="django_tasks_db.DatabaseBackend",
        OTOMAT_MONITORING_NOTICES_PER_HOUR="1000",
    )
    if args.backoff is not None:
        os.environ["OTOMAT_RUNTIME_BACKOFF_SECONDS"] = str(args.backoff)
    if args.exits is not None:
        os.environ["OTOMAT_RUNTIME_CRASH_LOOP_EXITS"] = str(args.exits)
    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from otomat.monitoring import alerts
    from otomat.monitoring.models import AlertRule

    for check in alerts.DEFAULT_RULES:
        if not check.startswith("instance"):
            AlertRule.objects.create(check_name=check, enabled=False)
    from otomat.accounts.services import create_owner, sign_up
    from otomat.catalog.services import import_product
    from otomat.instances import services
    from otomat.instances.models import Instance
    from otomat.monitoring import incidents
    from otomat.monitoring.models import Incident
    from otomat.notify.models import TelegramLink
    from otomat.testing.processes import RunnerProcess, WorkerProcess

    folder = data_dir / "src" / "breakable"
    folder.mkdir(parents=True)
    (folder / "otomat.toml").write_text(textwrap.dedent(PRODUCT))
    (folder / "main.py").write_text(textwrap.dedent(MAIN))
    version = import_product(folder, actor=None)
    owner = create_owner(email="owner@bench.local", password="bench-password-1")
    emulator.say(OWNER_BOT, "/start", user_id=OWNER_CHAT, first_name="Owner")  # the chat exists
    TelegramLink.objects.create(user=owner, chat_id=OWNER_CHAT)
    customer = sign_up(
        email="customer@bench.local",
        password="bench-password-1",
        full_name="Bench Customer",
        account_name="Bench Customer",
    )
    runner = RunnerProcess(data_dir).start()
    worker = WorkerProcess(
        data_dir,
        OTOMAT_OWNER_BOT_TOKEN=owner_token,
        OTOMAT_OWNER_BOT_USERNAME=OWNER_BOT,
        OTOMAT_BOT_API_URL=emulator.url,
        OTOMAT_EMULATOR_URL=emulator.url,
        OTOMAT_MONITORING_NOTICES_PER_HOUR="1000",
        OTOMAT_RUNTIME_BACKOFF_SECONDS=str(settings.RUNTIME_BACKOFF_SECONDS),
    ).start()
    failed_after: list[float] = []
    told_after: list[float] = []
    messages: list[int] = []
    last_seen = max(
        (m["message_id"] for m in emulator.bot_replies(OWNER_BOT, OWNER_CHAT, 0)), default=0
    )
    try:
        for run in range(args.runs):
            name = f"Bench bot {run + 1}"
            instance = services.install_instance(
                account=customer.account, version=version, name=name, config={}, actor=customer
            )

            def running(instance=instance) -> bool:
                instance.refresh_from_db()
                return instance.state == Instance.State.RUNNING and instance.pid is not None

            wait_until(running, 60, message=f"not running:\n{runner.output()}")
            time.sleep(0.5)  # a bot that has been up a moment
            (instance.data_dir / "broken").write_text("yes")
            killed = time.monotonic()
            os.kill(instance.pid, signal.SIGKILL)
            failed_at = told_at = None
            told = 0
            # Until told and failed, and a moment more (the failure's own scan and delivery).
            while time.monotonic() - killed < args.timeout and not (
                told_at is not None
                and failed_at is not None
                and time.monotonic() - failed_at > SETTLE_SECONDS
            ):
                if failed_at is None:
                    instance.refresh_from_db()
                    if instance.state == Instance.State.FAILED:
                        failed_at = time.monotonic()
                for message in emulator.bot_replies(OWNER_BOT, OWNER_CHAT, last_seen):
                    last_seen = max(last_seen, message["message_id"])
                    if name in message.get("text", ""):
                        told += 1
                        told_at = told_at or time.monotonic()
                time.sleep(0.05)
            if told_at is None or failed_at is None:
                raise SystemExit(
                    f"run {run + 1}: no owner message or no failure:\n{worker.output()}"
                )
            failed_after.append(failed_at - killed)
            told_after.append(told_at - killed)
            messages.append(told)
            print(
                f"  run {run + 1}: owner told after {told_after[-1]:.2f} s, "
                f"failed after {failed_after[-1]:.2f} s, {told} message(s)",
                file=sys.stderr,
                flush=True,
            )
            services.remove_instance(instance, actor=None, actor_label="bench")
            for incident in Incident.objects.exclude(status=Incident.Status.RESOLVED):
                incidents.resolve(incident, actor=None, note="bench run over")
            time.sleep(1.0)  # the "resolved" notices go out before the next run
            for message in emulator.bot_replies(OWNER_BOT, OWNER_CHAT, last_seen):
                last_seen = max(last_seen, message["message_id"])
    finally:
        worker.stop()
        runner.stop()
        emulator.close()
    grace = alerts.rules()["instance.backoff"].grace_seconds
    print(
        f"crash loop: first restart after {settings.RUNTIME_BACKOFF_SECONDS:g} s, "
        f"{settings.RUNTIME_CRASH_LOOP_EXITS} exits; instance.backoff grace {grace} s; "
        f"{args.runs} runs"
    )
    print(f"{'':<44}{'median s':>10}{'p95 s':>8}{'min s':>8}{'max s':>8}")
    for label, values in (
        ("kill → owner message (backoff alert)", told_after),
        ("kill → failed (baseline: alerted after it)", failed_after),
    ):
        print(
            f"{label:<44}{statistics.median(values):>10.2f}{nearest_rank(values, 95):>8.2f}"
            f"{min(values):>8.2f}{max(values):>8.2f}"
        )
    print(f"owner messages per crash loop: {sorted(set(messages))} (one expected)")
    verdict = statistics.median(told_after) < 10
    print(f"target: total median under 10 s: {'met' if verdict else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
