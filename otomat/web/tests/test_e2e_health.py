"""With the real emulator as the Bot API: monitoring's Telegram check stores the bot's
@username from getMe, and the instance page's health card then names the bot and links its chat
in the emulator (a revoked token on the card: monitoring/tests/test_e2e_instance_checks.py)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from otomat.instances.models import Instance
from otomat.monitoring import alerts, checks

pytestmark = pytest.mark.slow


def test_the_health_card_names_the_bot_from_getme_and_links_the_emulator_chat(
    client, cast, greeter, emulator, settings
):
    token = emulator.create_bot("health_card_bot")
    instance = Instance.objects.create(
        account=cast.alice.account,
        version=greeter,
        name="Alice's greeter",
        state=Instance.State.RUNNING,
        desired=Instance.Desired.RUNNING,
        secrets={"bot_token": token},
        bot_id=token.split(":")[0],
    )
    client.force_login(cast.alice)
    url = reverse("web:instance_health", args=[instance.pk])
    assert "@health_card_bot" not in client.get(url).content.decode()  # not checked yet

    alerts.report(checks.telegram_signals(timezone.now()))
    html = client.get(url).content.decode()
    assert "@health_card_bot" in html
    assert f'href="{settings.EMULATOR_PUBLIC_URL}/chat/health_card_bot"' in html
    assert 'data-health="ok"' in html
    assert token not in html
