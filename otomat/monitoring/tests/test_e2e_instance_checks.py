"""Instance health end to end, with the real runner and emulator: updates handled are counted
and the bot's log lines reach its page in both runtimes; a revoked token is flagged while the
process looks alive; an install against a Bot API whose getMe answer lacks a field ends failed
with the reason instead of staying provisioning for ever."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse
from django.utils import timezone

from otomat.instances import services
from otomat.instances.models import Instance
from otomat.instances.tests.test_e2e_products import RUNTIMES, import_variant
from otomat.monitoring import alerts
from otomat.monitoring.models import Alert
from otomat.monitoring.models_uptime import TelegramStatus
from otomat.runtime.logs import tail
from otomat.testing.processes import wait_until

pytestmark = pytest.mark.slow


def install(cast, version, token: str, name: str = "Alice's greeter") -> Instance:
    return services.install_instance(
        account=cast.alice.account,
        version=version,
        name=name,
        config={"bot_token": token},
        actor=cast.alice,
    )


def refreshed(instance: Instance) -> Instance:
    instance.refresh_from_db()
    return instance


@pytest.mark.parametrize(
    ("runtime", "store"), [(r, "database") for r in RUNTIMES] + [("shared", "sqlite")]
)
def test_updates_are_counted_and_log_lines_reach_the_page(
    runtime, store, client, cast, emulator, runner_factory, tmp_path, settings
):
    settings.SHARED_STORE = store  # the shared hosts' data store (the default: "database")
    version = import_variant("greeter", runtime, tmp_path)
    token = emulator.create_bot("alice_greeter_bot")
    runner = runner_factory()
    instance = install(cast, version, token)
    wait_until(
        lambda: refreshed(instance).state == Instance.State.RUNNING,
        60,
        message=f"not running; runner said:\n{runner.output()}",
    )
    assert instance.updates_handled == 0 and instance.last_update_at is None
    before = timezone.now()
    assert emulator.ask("alice_greeter_bot", "/start", timeout=30), "the bot did not answer"
    assert emulator.ask("alice_greeter_bot", "/start", timeout=30), "no second answer"
    # The next heartbeats carry the counters and the time of the last update handled.
    wait_until(
        lambda: refreshed(instance).updates_handled >= 2 and instance.last_update_at,
        30,
        message=f"updates handled: {instance.updates_handled}; log:\n"
        + "\n".join(tail(instance.log_path, 30)),
    )
    assert instance.last_update_at >= before - timedelta(seconds=1)
    # The bot's own log lines are in its log, and on the customer's page (the default store).
    client.force_login(cast.alice)
    page = client.get(reverse("instances:logs", args=[instance.id])).content.decode()
    assert "polling as @alice_greeter_bot" in page
    assert token.split(":", 1)[1] not in page


def test_a_revoked_token_is_flagged_although_the_process_looks_alive(
    client, cast, greeter, emulator, runner_factory, settings
):
    settings.TELEGRAM_CHECK_SECONDS = 10
    token = emulator.create_bot("alice_greeter_bot")
    runner = runner_factory()
    instance = install(cast, greeter, token)
    wait_until(
        lambda: refreshed(instance).state == Instance.State.RUNNING,
        60,
        message=f"not running; runner said:\n{runner.output()}",
    )
    alerts.scan()
    assert TelegramStatus.objects.get(instance=instance).ok
    pid = instance.pid

    emulator.client.delete("/control/bots/alice_greeter_bot").raise_for_status()  # revoked
    now = timezone.now()
    alerts.scan(now=now + timedelta(seconds=11))
    alerts.scan(now=now + timedelta(seconds=150))  # the telegram rule: 2 failures, 2 minutes
    alert = Alert.objects.get(check_name="telegram", subject=f"instance:{instance.pk}")
    assert alert.state == Alert.State.FIRING and "revoked" in alert.summary
    assert alert.incident is not None and alert.incident.is_open
    status = TelegramStatus.objects.get(instance=instance)
    assert not status.ok and "401" in status.summary
    # Its process still runs and the instance still says running: only the check knows ...
    assert refreshed(instance).state == Instance.State.RUNNING and instance.pid == pid
    # ... and the customer's health card says the bot is not answering, and why.
    client.force_login(cast.alice)
    card = client.get(reverse("web:instance_health", args=[instance.id])).content.decode()
    assert "Not answering since" in card and "revoked or replaced at @BotFather" in card


class IncompleteBotApi:
    """A Bot API server whose getMe answer lacks ``first_name`` (aiogram refuses it, and the
    bot retries as if the server were unreachable)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self._answer()

            def _answer(self) -> None:
                if self.path.endswith("/getMe"):
                    result = {"id": 123456789, "is_bot": True, "username": "incomplete_bot"}
                else:
                    result = True
                body = json.dumps({"ok": True, "result": result}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_stuck_provisioning_ends_failed_with_the_reason(
    cast, greeter, emulator, runner_factory, settings
):
    fake = IncompleteBotApi()
    try:
        settings.BOT_API_URL = fake.url  # the runner's bots talk to it
        settings.PROVISION_TIMEOUT_SECONDS = 4
        runner = runner_factory()
        instance = install(cast, greeter, "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw")
        # The bot tries, and retries: it never answers.
        wait_until(
            lambda: any("not reachable" in line for line in tail(instance.log_path, 20)),
            60,
            message=f"the bot never tried; runner said:\n{runner.output()}",
        )
        assert refreshed(instance).state == Instance.State.PROVISIONING

        def failed() -> bool:
            alerts.scan()
            return refreshed(instance).state == Instance.State.FAILED

        wait_until(failed, 60, interval=0.5, message="still provisioning")
        assert "did not answer within 4 s" in instance.status_message
        assert "not reachable" in instance.status_message  # its last log lines
        event = instance.events.get(to_state=Instance.State.FAILED)
        assert event.actor_label == "system:monitoring"
        alert = Alert.objects.get(check_name="instance", subject=f"instance:{instance.pk}")
        assert alert.state == Alert.State.FIRING
        # The runner stops what it no longer should run.
        wait_until(lambda: refreshed(instance).pid is None, 30, message="process not stopped")
    finally:
        fake.close()
