"""The customer's instance page shows the bot's health in plain words, its 30-day uptime with a
bar per day, recent errors, its @username and a link to open the chat; the health fragment is
scoped like the instance page (charlie gets 404 on alice's bot)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from otomat.instances.models import Instance
from otomat.monitoring.models import Alert
from otomat.monitoring.models_uptime import TelegramStatus, UptimeDay
from otomat.web.health import chat_link

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
S = Instance.State


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def alice_bot(cast, greeter):
    return Instance.objects.create(
        account=cast.alice.account,
        version=greeter,
        name="Movie Search Bot",
        state=S.RUNNING,
        desired=Instance.Desired.RUNNING,
        state_changed_at=T0 - timedelta(days=40),
        created_at=T0 - timedelta(days=40),
    )


def health(client, instance) -> str:
    response = client.get(reverse("web:instance_health", args=[instance.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_running_bot_is_answering_with_its_uptime_username_and_chat_link(
    client, cast, alice_bot, clock, settings
):
    settings.BOT_API_URL = "https://api.telegram.org"
    TelegramStatus.objects.create(
        instance=alice_bot, checked_at=T0, ok=True, username="movie_search_bot"
    )
    UptimeDay.objects.create(instance=alice_bot, day=date(2026, 3, 8), up_seconds=86400)
    UptimeDay.objects.create(
        instance=alice_bot, day=date(2026, 3, 9), up_seconds=43200, down_seconds=43200, errors=3
    )
    alice_bot.log_path.parent.mkdir(parents=True, exist_ok=True)
    alice_bot.log_path.write_text(
        "INFO bot: started\nERROR movie_bot: the search API timed out\nINFO bot: fine\n"
    )
    client.force_login(cast.alice)
    page = client.get(reverse("instances:detail", args=[alice_bot.pk])).content.decode()
    card = page.split('id="health"')[1].split("</section>")[0]
    assert 'data-health="ok"' in card and "Answering" in card
    assert "@movie_search_bot" in card
    assert 'href="https://t.me/movie_search_bot"' in card
    assert "<svg" in card and 'class="chart chart-days-chart"' in card
    # 3 days counted (40 days old, no rows before): 86400 + 43200 + today's time since 00:00.
    assert "Uptime, last 30 days" in card
    assert "3 errors in 30 days" in card
    assert "the search API timed out" in card and "INFO bot: fine" not in card
    assert card.count("<rect") == 30
    # The fragment polls itself.
    assert f'hx-get="{reverse("web:instance_health", args=[alice_bot.pk])}"' in card


def test_a_bot_down_says_since_when_and_why(client, cast, alice_bot, clock):
    Alert.objects.create(
        check_name="telegram",
        subject=f"instance:{alice_bot.pk}",
        state=Alert.State.FIRING,
        instance=alice_bot,
        failing_since=T0 - timedelta(hours=2),
        summary="Telegram refuses the token (revoked at @BotFather?)",
    )
    client.force_login(cast.alice)
    html = health(client, alice_bot)
    assert 'data-health="down"' in html
    assert "Not answering since" in html and "revoked at @BotFather" in html
    Alert.objects.all().delete()
    Instance.objects.filter(pk=alice_bot.pk).update(state=S.FAILED, state_changed_at=T0)
    assert "Not answering since" in health(client, alice_bot)
    Instance.objects.filter(pk=alice_bot.pk).update(
        state=S.STOPPED, desired=Instance.Desired.STOPPED
    )
    html = health(client, alice_bot)
    assert 'data-health="off"' in html and "stopped on purpose" in html


def test_the_chat_link_goes_to_the_emulator_when_the_bot_api_is_the_emulator(
    cast, alice_bot, settings
):
    settings.EMULATOR_URL = "http://127.0.0.1:8081"
    settings.EMULATOR_PUBLIC_URL = "http://emu.example"
    settings.BOT_API_URL = "http://127.0.0.1:8081"
    assert chat_link(alice_bot, "movie_search_bot") == "http://emu.example/chat/movie_search_bot"
    settings.BOT_API_URL = "https://api.telegram.org"
    assert chat_link(alice_bot, "movie_search_bot") == "https://t.me/movie_search_bot"
    alice_bot.kind = Instance.Kind.SANDBOX
    assert chat_link(alice_bot, "sbx_bot") == "http://emu.example/chat/sbx_bot"
    assert chat_link(alice_bot, "") == ""


def test_a_customer_sees_only_their_own_instances_health(client, cast, alice_bot, clock):
    url = reverse("web:instance_health", args=[alice_bot.pk])
    client.force_login(cast.charlie)
    assert client.get(url).status_code == 404
    assert client.get(reverse("instances:detail", args=[alice_bot.pk])).status_code == 404
    # Not an oracle: an unknown id answers the same; a malformed one matches no page.
    assert client.get(reverse("web:instance_health", args=[Instance().pk])).status_code == 404
    assert client.get("/instances/not-a-uuid/health/").status_code == 404
    client.force_login(cast.bob)  # alice's teammate
    assert client.get(url).status_code == 200
    client.logout()
    assert client.get(url).status_code == 302


def test_the_uptime_is_reused_for_a_moment_and_computed_again_when_the_state_changes(
    client, cast, alice_bot, clock, django_assert_max_num_queries
):
    """The page and its refresh reuse the 30-day uptime for UPTIME_REUSE_SECONDS (seven queries
    fewer); a change of state computes it again, so the card never mixes old and new."""
    from otomat.web import health as web_health

    UptimeDay.objects.create(instance=alice_bot, day=date(2026, 3, 9), up_seconds=86400)
    client.force_login(cast.alice)
    first = health(client, alice_bot)
    with django_assert_max_num_queries(8):  # session, user, 2FA, membership, instance, ...
        again = health(client, alice_bot)
    assert again == first and "Uptime, last 30 days" in again
    computed = []
    real = web_health.uptime_for
    web_health.uptime_for = lambda *a, **kw: computed.append(1) or real(*a, **kw)
    try:
        alice_bot.state, alice_bot.state_changed_at = S.STOPPED, T0
        alice_bot.save(update_fields=["state", "state_changed_at"])
        health(client, alice_bot)
    finally:
        web_health.uptime_for = real
    assert computed == [1]
