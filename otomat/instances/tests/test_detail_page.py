"""The instance page as its customer reads it: the bot's @username under the title, a status in
plain words with the technical details (PID, generation, exit code) folded away, the log box
following the newest lines, and no "Restarting…" left over once the bot runs again."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from otomat.instances import services
from otomat.instances.models import Instance
from otomat.monitoring.models_uptime import TelegramStatus

TOKEN = "123456:" + "A" * 35


@pytest.fixture
def instance(cast, greeter):
    created = services.install_instance(
        account=cast.alice.account,
        version=greeter,
        name="Shop greeter",
        config={"bot_token": TOKEN},
        actor=cast.alice,
    )
    Instance.objects.filter(pk=created.pk).update(
        state=Instance.State.RUNNING, pid=43210, last_exit_code=-9, updates_handled=3
    )
    created.refresh_from_db()
    return created


def outside_details(html: str) -> str:
    return re.sub(r"<details.*?</details>", "", html, flags=re.S)


def test_the_title_names_the_bot_and_links_its_chat(client, cast, instance):
    client.force_login(cast.alice)
    url = reverse("instances:detail", args=[instance.id])
    assert "data-bot-username" not in client.get(url).content.decode()  # not known yet
    TelegramStatus.objects.create(instance=instance, checked_at=timezone.now(), username="shop_bot")
    page = client.get(url).content.decode()
    title = page.split("data-bot-username", 1)[1].split("</p>", 1)[0]
    assert '<a href="https://t.me/shop_bot"' in title and "@shop_bot" in title


def test_the_status_is_plain_and_the_technical_details_are_folded(client, cast, instance):
    client.force_login(cast.alice)
    for name in ("detail", "status"):
        html = client.get(reverse(f"instances:{name}", args=[instance.id])).content.decode()
        status = html.split('id="status"', 1)[1]
        assert "The bot is running and answers messages." in status
        assert 'data-updates="3"' in status
        details = re.search(
            r"<details class=\"technical\"[^>]*>(.*?)</details>", status, re.S
        ).group(1)
        assert "Technical details" in details
        for jargon in ("PID 43210", "Generation", "Last exit code", "-9"):
            assert jargon in details
        assert "PID" not in outside_details(status)


def test_restarting_is_shown_while_it_lasts_and_not_after(client, cast, instance):
    client.force_login(cast.alice)
    response = client.post(reverse("instances:action", args=[instance.id, "restart"]), follow=True)
    instance.refresh_from_db()
    assert instance.state == Instance.State.PROVISIONING
    page = response.content.decode()
    messages = page.split('id="status"', 1)[0]
    assert "Restarting…" not in messages  # no flash that outlives the restart
    status_url = reverse("instances:status", args=[instance.id])
    assert "Restarting…" in client.get(status_url).content.decode()

    Instance.objects.filter(pk=instance.pk).update(state=Instance.State.RUNNING)
    for url in (status_url, reverse("instances:detail", args=[instance.id])):
        html = client.get(url).content.decode()
        assert "Restarting…" not in html
        assert "The bot is running and answers messages." in html


def test_a_first_start_says_starting_not_restarting(client, cast, greeter):
    fresh = services.install_instance(
        account=cast.alice.account,
        version=greeter,
        name="New greeter",
        config={"bot_token": TOKEN},
        actor=cast.alice,
    )
    assert fresh.state == Instance.State.PROVISIONING
    client.force_login(cast.alice)
    html = client.get(reverse("instances:status", args=[fresh.id])).content.decode()
    assert "Starting the bot…" in html and "Restarting…" not in html


def test_stopping_still_confirms_and_a_refused_action_changes_nothing(client, cast, instance):
    client.force_login(cast.alice)
    page = client.post(
        reverse("instances:action", args=[instance.id, "stop"]), follow=True
    ).content.decode()
    assert "Stopped." in page
    instance.refresh_from_db()
    generation = instance.generation
    refused = client.post(
        reverse("instances:action", args=[instance.id, "restart"]), follow=True
    ).content.decode()
    assert "Only a running or failed instance can be restarted" in refused
    instance.refresh_from_db()
    assert instance.state == Instance.State.STOPPED and instance.generation == generation
    assert (
        client.post(reverse("instances:action", args=[instance.id, "explode"])).status_code == 404
    )


def test_the_log_box_lists_newest_last_and_follows(client, cast, instance):
    instance.log_path.parent.mkdir(parents=True, exist_ok=True)
    instance.log_path.write_text("".join(f"line {n}\n" for n in range(1, 6)))
    client.force_login(cast.alice)
    page = client.get(reverse("instances:detail", args=[instance.id])).content.decode()
    logs = page.split('id="logs"', 1)[1]
    assert logs.index("line 1") < logs.index("line 5")
    assert "instances/follow-logs.js" in page
    # The history names states in the reader's words, not their stored codes.
    history = page.split("timeline", 1)[1]
    assert ">Provisioning</span>" in history and ">provisioning</span>" not in history
    fragment = client.get(reverse("instances:logs", args=[instance.id])).content.decode()
    assert fragment.index("line 1") < fragment.index("line 5")


def test_the_history_reads_in_the_customers_language(client, cast, instance):
    from otomat.instances.models import InstanceEvent

    InstanceEvent.objects.create(
        instance=instance,
        from_state=Instance.State.PROVISIONING,
        to_state=Instance.State.RUNNING,
        cause="process 4321 is answering",
        actor_label="system:runner",
    )
    InstanceEvent.objects.create(
        instance=instance, to_state=Instance.State.RUNNING, cause="an unusual cause, kept as is"
    )
    cast.alice.language = "pl"
    cast.alice.save(update_fields=["language"])
    client.force_login(cast.alice)
    page = client.get(reverse("instances:detail", args=[instance.id])).content.decode()
    history = page.split("timeline", 1)[1]
    assert "zainstalowano" in history and "bot odpowiada" in history
    assert ">Działa</span>" in history and ">running</span>" not in history
    assert "installed" not in history and "is answering" not in history
    assert "an unusual cause, kept as is" in history
    assert "Otomat (automatycznie)" in history and "system:runner" not in history
    assert "Alice Anders" in history  # a person is named as such
