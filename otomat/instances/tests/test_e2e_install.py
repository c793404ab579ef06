"""The main job, end to end, with the real emulator and runner processes: a customer installs
the Greeter Bot through the web UI and it answers; stop, start, a settings change, kill -9 of the
bot process and a runner restart all behave; there is never more than one process per instance;
the bot token never shows up in the database, pages, logs or API."""

from __future__ import annotations

import os
import signal

import pytest
from django.db import connection
from django.urls import reverse

from otomat.accounts.models import ApiToken, AuditEvent
from otomat.instances.models import Instance
from otomat.testing.processes import processes_in, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.smoke]
BOT = "e2e_greeter_bot"


def state_of(instance: Instance) -> str:
    instance.refresh_from_db()
    return instance.state


def wait_state(instance: Instance, state: str, runner, timeout: float = 30) -> None:
    wait_until(
        lambda: state_of(instance) == state,
        timeout,
        message=f"instance stayed {instance.state}, wanted {state}; runner said:\n{runner.output()}",
    )


def test_a_customer_installs_a_bot_that_keeps_answering(
    client, cast, greeter, emulator, runner_factory
):
    token = emulator.create_bot(BOT)
    runner = runner_factory()
    client.force_login(cast.alice)

    # The catalog shows the product; the install form validates and starts it.
    assert "Greeter Bot" in client.get(reverse("catalog:list")).content.decode()
    form = client.get(reverse("instances:install", args=["greeter"]))
    assert form.status_code == 200 and 'name="bot_token"' in form.content.decode()
    response = client.post(
        reverse("instances:install", args=["greeter"]),
        {
            "instance_name": "Alice's greeter",
            "bot_token": token,
            "welcome_text": "Hello {name}, v1",
            "language": "en",
            "show_buttons": "on",
            "max_daily_greetings": "50",
            "reply_delay_seconds": "0",
            "admins": "alice_admin",
            "help__text": "Ask me",
            "help__contact": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    instance = Instance.objects.get()
    wait_state(instance, "running", runner)
    assert emulator.ask(BOT, "/start") == "Hello Alice, v1"
    # One bot process (inside its sandbox; instance.pid is the sandbox's outer process).
    assert len(processes_in(instance.data_dir)) == 1

    # Live pages show it running, with its logs.
    status = client.get(reverse("instances:status", args=[instance.id])).content.decode()
    assert 'data-state="running"' in status

    # Stop: no answer. Start: answers again.
    client.post(reverse("instances:action", args=[instance.id, "stop"]))
    wait_state(instance, "stopped", runner)
    wait_until(
        lambda: processes_in(instance.data_dir) == [], 15, message="bot process kept running"
    )
    assert emulator.ask(BOT, "/start", timeout=3) is None
    client.post(reverse("instances:action", args=[instance.id, "start"]))
    wait_state(instance, "running", runner)
    assert emulator.ask(BOT, "/start", timeout=20) is not None

    # A settings change is applied with a restart and visible in the answer.
    response = client.post(
        reverse("instances:edit", args=[instance.id]),
        {
            "bot_token": "",
            "welcome_text": "Hi {name}, v2",
            "language": "en",
            "show_buttons": "on",
            "max_daily_greetings": "50",
            "reply_delay_seconds": "0",
            "admins": "",
            "help__text": "Ask me",
            "help__contact": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    wait_until(
        lambda: emulator.ask(BOT, "/start", timeout=5) == "Hi Alice, v2",
        40,
        message=f"new welcome text never answered; runner said:\n{runner.output()}",
    )
    assert instance.full_config()["bot_token"] == token  # blank secret kept

    # kill -9 of the bot: the runner brings it back by itself.
    wait_state(instance, "running", runner)
    [victim] = processes_in(instance.data_dir)
    os.kill(victim, signal.SIGKILL)
    wait_until(
        lambda: (
            processes_in(instance.data_dir) not in ([], [victim])
            and state_of(instance) == "running"
            and instance.restarts >= 1
        ),
        40,
        message=f"bot did not come back; runner said:\n{runner.output()}",
    )
    assert instance.restarts >= 1
    assert emulator.ask(BOT, "/start", timeout=20) is not None
    assert instance.events.filter(cause__startswith="process exited").exists()

    # Runner killed and started again: still exactly one bot process, and it answers.
    runner.kill()
    runner = runner_factory()
    wait_until(
        lambda: len(processes_in(instance.data_dir)) == 1 and state_of(instance) == "running",
        40,
        message=f"not exactly one process after runner restart; runner said:\n{runner.output()}",
    )
    assert emulator.ask(BOT, "/start", timeout=20) is not None
    assert len(processes_in(instance.data_dir)) == 1

    # The token is nowhere a person or another program could read it.
    _, api_token = ApiToken.issue(cast.alice, "e2e")
    seen = [
        client.get(reverse("instances:detail", args=[instance.id])).content.decode(),
        client.get(reverse("instances:edit", args=[instance.id])).content.decode(),
        client.get(reverse("instances:list")).content.decode(),
        client.get(reverse("instances:logs", args=[instance.id])).content.decode(),
        client.get(
            f"/api/v1/instances/{instance.id}", HTTP_AUTHORIZATION=f"Bearer {api_token}"
        ).content.decode(),
        client.get(
            f"/api/v1/instances/{instance.id}/logs", HTTP_AUTHORIZATION=f"Bearer {api_token}"
        ).content.decode(),
        runner.output(),
        "".join(p.read_text(errors="replace") for p in instance.log_path.parent.glob("*.log*")),
        str(list(AuditEvent.objects.values_list("data", flat=True))),
        str(list(instance.events.values_list("cause", flat=True))),
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT config, secrets FROM instances_instance")
        seen.append(str(cursor.fetchall()))
    secret_part = token.split(":", 1)[1]
    for text in seen:
        assert secret_part not in text
    assert "Hi {name}, v2" in seen[-1]  # the public part of the config is stored in clear

    # Remove: the process goes away and the instance is terminated.
    client.post(
        reverse("instances:remove", args=[instance.id]), {"confirm_name": "Alice's greeter"}
    )
    wait_until(
        lambda: processes_in(instance.data_dir) == [], 20, message="process survived removal"
    )
    assert state_of(instance) == "terminated"
    assert emulator.ask(BOT, "/start", timeout=3) is None
