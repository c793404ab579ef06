""" "Try it now" opens the emulator's chat with that trial's own bot, a hint in the visitor's
language of what to say first, and the way back to the product page."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.urls import reverse

from otomat.instances.models import Instance


def opened(response) -> tuple[str, dict[str, str]]:
    parts = urlsplit(response.url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    return f"{parts.scheme}://{parts.netloc}{parts.path}", query


@pytest.mark.slow
def test_a_trial_opens_its_own_bots_chat_with_a_hint_and_a_way_back(
    client, greeter, emulator, settings
):
    settings.BASE_URL = "https://otomat.example"
    response = client.post(reverse("catalog:try", args=["greeter"]))
    trial = Instance.objects.get(kind=Instance.Kind.TRIAL)
    chat, query = opened(response)
    assert chat == f"{emulator.url}/chat/{trial.emulator_bot}"  # scoped to this trial's bot
    assert trial.emulator_bot.startswith("try") and trial.account.is_internal
    assert query == {"lang": "en"}  # the hint and the way back are the bot's, never the link's

    # Another visitor gets another bot, never this one's chat.
    other = client.__class__()
    second_chat, _ = opened(other.post(reverse("catalog:try", args=["greeter"])))
    second = Instance.objects.filter(kind=Instance.Kind.TRIAL).exclude(pk=trial.pk).get()
    assert second_chat == f"{emulator.url}/chat/{second.emulator_bot}" != chat


@pytest.mark.slow
def test_the_hint_and_the_way_back_are_in_the_visitors_language(
    client, greeter, emulator, settings
):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "pl"
    _, query = opened(client.post(reverse("catalog:try", args=["greeter"])))
    assert query == {"lang": "pl"}
    trial = Instance.objects.get(kind=Instance.Kind.TRIAL)
    bot = httpx.get(f"{emulator.url}/control/bots/{trial.emulator_bot}").json()
    assert bot["welcome"]["hint"]["pl"] == "Napisz /start, aby wypróbować: Bot powitalny."
    assert bot["welcome"]["back_label"]["pl"] == "Wróć do: Bot powitalny"
    assert bot["first_name"] == "Bot powitalny"  # the chat's title, in Polish too


def test_a_product_that_does_not_exist_is_not_tried(client, greeter, emulator, db):
    assert client.post(reverse("catalog:try", args=["no-such-product"])).status_code == 404
    assert client.get(reverse("catalog:try", args=["greeter"])).status_code == 405
    assert not Instance.objects.exists()


@pytest.mark.slow
def test_the_trials_bot_carries_the_platforms_welcome_in_every_language(
    client, greeter, emulator, settings
):
    """The chat page shows only what the platform gave the trial's bot (never a link's
    ``?hint=``): what to say first and the way back, in English, Indonesian and Polish."""
    settings.BASE_URL = "https://otomat.example"
    client.post(reverse("catalog:try", args=["greeter"]))
    trial = Instance.objects.get(kind=Instance.Kind.TRIAL)
    bot = httpx.get(f"{emulator.url}/control/bots/{trial.emulator_bot}").json()
    welcome = bot["welcome"]
    assert welcome["back"] == "https://otomat.example" + reverse("catalog:detail", args=["greeter"])
    assert welcome["hint"]["en"] == "Say /start to try Greeter Bot."
    assert welcome["hint"]["pl"] == "Napisz /start, aby wypróbować: Bot powitalny."
    assert "Bot Penyambut" in welcome["hint"]["id"] and "/start" in welcome["hint"]["id"]
    assert welcome["back_label"] == {
        "en": "Back to Greeter Bot",
        "id": welcome["back_label"]["id"],
        "pl": "Wróć do: Bot powitalny",
    }
    assert "Bot Penyambut" in welcome["back_label"]["id"]
