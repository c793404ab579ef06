"""Instance checks against the real emulator: a revoked token (getMe 401) and a failing webhook
(getWebhookInfo) are flagged, at a bounded rate and without a token in any log or message; an
install that never answers ends failed with its reason and last log lines."""

from __future__ import annotations

import logging
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from otomat.instances import services
from otomat.instances.models import Instance
from otomat.monitoring import alerts, checks
from otomat.monitoring.models import Alert
from otomat.monitoring.models_uptime import TelegramStatus
from otomat.ops.models import ServiceHeartbeat
from otomat.testing.processes import wait_until

RUNNER = "system:runner"


def running_bot(cast, greeter, token: str, name: str = "Alice's bot") -> Instance:
    instance = services.create_instance(
        account=cast.alice.account,
        version=greeter,
        name=name,
        config={"bot_token": token},
        actor=cast.alice,
    )
    services.provision_instance(instance, actor=cast.alice, cause="installed")
    services.transition(instance, Instance.State.RUNNING, cause="answering", actor_label=RUNNER)
    return instance


@pytest.fixture
def quick(settings):
    settings.TELEGRAM_CHECK_SECONDS = 60
    return settings


def test_a_healthy_bot_is_ok_and_its_username_is_kept(cast, greeter, emulator, quick):
    bot = running_bot(cast, greeter, emulator.create_bot("alice_shop_bot"))
    signals = checks.telegram_signals(timezone.now())
    assert [(s.check, s.subject, s.ok) for s in signals] == [
        ("telegram", f"instance:{bot.pk}", True)
    ]
    status = TelegramStatus.objects.get(instance=bot)
    assert status.ok and status.username == "alice_shop_bot"


def test_a_revoked_token_is_flagged_although_the_process_looks_alive(
    cast, greeter, emulator, quick, caplog
):
    token = emulator.create_bot("alice_shop_bot")
    bot = running_bot(cast, greeter, token)
    emulator.client.delete("/control/bots/alice_shop_bot").raise_for_status()  # revoked
    caplog.set_level(logging.DEBUG)
    now = timezone.now()
    alerts.scan(now=now)
    status = TelegramStatus.objects.get(instance=bot)
    assert not status.ok and "revoked" in status.summary and "401" in status.summary
    alert = Alert.objects.get(check_name="telegram", subject=f"instance:{bot.pk}")
    assert alert.state == Alert.State.PENDING  # the rule wants two failures over two minutes
    alerts.scan(now=now + timedelta(seconds=150))  # due again; past the two minutes of grace
    alert.refresh_from_db()
    assert alert.state == Alert.State.FIRING and "revoked" in alert.summary
    assert alert.incident is not None
    bot.refresh_from_db()
    assert bot.state == Instance.State.RUNNING  # the check says so; it does not stop the bot
    secret = token.split(":", 1)[1]
    assert secret not in caplog.text
    assert secret not in alert.summary + alert.details + alert.incident.summary


def test_bots_are_checked_at_a_bounded_rate_oldest_first(cast, greeter, emulator, quick):
    quick.TELEGRAM_CHECK_BATCH = 1
    first = running_bot(cast, greeter, emulator.create_bot("one_bot"), name="one")
    second = running_bot(cast, greeter, emulator.create_bot("two_bot"), name="two")
    now = timezone.now()
    assert len(checks.telegram_signals(now)) == 1
    assert len(checks.telegram_signals(now + timedelta(seconds=1))) == 1
    assert set(TelegramStatus.objects.values_list("instance_id", flat=True)) == {
        first.pk,
        second.pk,
    }
    # Both checked within the interval: nobody is asked again.
    assert checks.telegram_signals(now + timedelta(seconds=30)) == []
    assert len(checks.telegram_signals(now + timedelta(seconds=62))) == 1


def test_bots_not_asked_within_the_scans_time_budget_stay_due(
    cast, greeter, emulator, quick, monkeypatch
):
    running_bot(cast, greeter, emulator.create_bot("alice_shop_bot"))
    monkeypatch.setattr(checks, "TELEGRAM_BUDGET_SECONDS", -1.0)  # spent before the first call
    now = timezone.now()
    assert checks.telegram_signals(now) == []
    assert not TelegramStatus.objects.exists()  # not marked as checked: first in line next time
    monkeypatch.setattr(checks, "TELEGRAM_BUDGET_SECONDS", 30.0)
    assert [s.ok for s in checks.telegram_signals(now + timedelta(seconds=1))] == [True]


def test_a_stopped_bot_and_a_sandbox_are_not_asked(cast, greeter, emulator, quick):
    bot = running_bot(cast, greeter, emulator.create_bot("alice_shop_bot"))
    services.stop_instance(bot, actor=cast.alice)
    assert checks.telegram_signals(timezone.now()) == []
    assert not TelegramStatus.objects.exists()


def test_an_unreachable_bot_api_says_nothing_about_the_bot(cast, greeter, emulator, quick):
    bot = running_bot(cast, greeter, emulator.create_bot("alice_shop_bot"))
    now = timezone.now()
    checks.telegram_signals(now)
    quick.BOT_API_URL = "http://127.0.0.1:9"  # nothing listens there
    assert checks.telegram_signals(now + timedelta(seconds=61)) == []
    status = TelegramStatus.objects.get(instance=bot)
    assert status.ok and status.username == "alice_shop_bot"  # what was known stays
    assert status.checked_at == now + timedelta(seconds=61)  # but it is not asked at once again


def test_a_failing_webhook_is_flagged_with_telegrams_last_error(cast, greeter, emulator, quick):
    quick.INGRESS_PUBLIC_URL = "https://ingress.example.com"
    greeter.runtime = "shared"  # shared hosts take updates by webhook when the ingress is public
    greeter.save(update_fields=["runtime"])
    token = emulator.create_bot("alice_shop_bot")
    bot = running_bot(cast, greeter, token)
    # Telegram delivers to a webhook that does not answer.
    httpx.post(
        f"{emulator.url}/bot{token}/setWebhook", json={"url": "http://127.0.0.1:9/hook"}
    ).raise_for_status()
    emulator.say("alice_shop_bot", "/start")

    def info():
        result = httpx.get(f"{emulator.url}/bot{token}/getWebhookInfo").json()["result"]
        return result if result.get("last_error_date") else None

    wait_until(info, 20, message="the emulator never tried the webhook")
    [signal] = checks.telegram_signals(timezone.now())
    assert not signal.ok and "webhook" in signal.summary and signal.value >= 1
    status = TelegramStatus.objects.get(instance=bot)
    assert not status.ok and status.pending_updates >= 1 and status.last_error
    assert status.last_error_at is not None
    assert token not in status.summary + status.last_error


def test_a_bot_api_answer_without_json_is_not_a_verdict(cast, greeter, quick, live_server):
    quick.BOT_API_URL = f"{live_server.url}/no-such-page"  # Django's 404 page, HTML
    running_bot(cast, greeter, "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw")
    assert checks.telegram_signals(timezone.now()) == []


# -- stuck provisioning ------------------------------------------------------------------------


def runner_alive(since):
    now = timezone.now()
    ServiceHeartbeat.objects.create(
        service=ServiceHeartbeat.Service.RUNNER, host="h", pid=1, started_at=since, seen_at=now
    )


def provisioning(cast, greeter, seconds_ago: float, bot: str = "123456789") -> Instance:
    instance = services.create_instance(
        account=cast.alice.account,
        version=greeter,
        name="stuck",
        config={"bot_token": f"{bot}:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"},
        actor=cast.alice,
    )
    services.provision_instance(instance, actor=cast.alice, cause="installed")
    Instance.objects.filter(pk=instance.pk).update(
        state_changed_at=timezone.now() - timedelta(seconds=seconds_ago)
    )
    return instance


def test_a_stuck_provisioning_ends_failed_with_its_reason_and_log(cast, greeter, settings):
    settings.PROVISION_TIMEOUT_SECONDS = 120
    runner_alive(timezone.now() - timedelta(hours=1))
    instance = provisioning(cast, greeter, 121)
    instance.log_path.parent.mkdir(parents=True, exist_ok=True)
    instance.log_path.write_text(
        "bot starting\nBot API not reachable (ValidationError: first_name missing)\n"
    )
    young = provisioning(cast, greeter, 60, bot="987654321")
    alerts.scan()
    instance.refresh_from_db()
    assert instance.state == Instance.State.FAILED
    assert "did not answer within 120 s" in instance.status_message
    assert "first_name missing" in instance.status_message
    event = instance.events.get(to_state="failed")
    assert event.actor_label == "system:monitoring" and "120 s" in event.cause
    alert = Alert.objects.get(check_name="instance", subject=f"instance:{instance.pk}")
    assert alert.state == Alert.State.FIRING and "first_name missing" in alert.details
    young.refresh_from_db()
    assert young.state == Instance.State.PROVISIONING


def test_without_a_live_runner_nothing_is_failed(cast, greeter, settings):
    settings.PROVISION_TIMEOUT_SECONDS = 120
    instance = provisioning(cast, greeter, 600)
    assert checks.provisioning_timeouts(timezone.now()) == []
    runner_alive(timezone.now() - timedelta(seconds=30))  # a runner, but only just started
    assert checks.provisioning_timeouts(timezone.now()) == []
    instance.refresh_from_db()
    assert instance.state == Instance.State.PROVISIONING


def test_a_bad_timeout_setting_is_refused(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from otomat.lib.env import env_int

    monkeypatch.setenv("OTOMAT_PROVISION_TIMEOUT_SECONDS", "soon")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env_int("OTOMAT_PROVISION_TIMEOUT_SECONDS", 120, minimum=10)
    monkeypatch.setenv("OTOMAT_PROVISION_TIMEOUT_SECONDS", "3")
    with pytest.raises(ImproperlyConfigured, match="at least 10"):
        env_int("OTOMAT_PROVISION_TIMEOUT_SECONDS", 120, minimum=10)
