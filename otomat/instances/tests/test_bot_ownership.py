"""One Telegram bot serves one live instance: Telegram hands a bot's updates to one poller only,
so a second instance on the same bot would break both. A second claim on a bot is refused on
its token field and stores nothing; removing the first instance frees the bot."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.urls import reverse

from otomat.catalog.checks import CHECKS
from otomat.catalog.schema_form import ConfigError
from otomat.instances import services
from otomat.instances.models import Instance
from otomat.testing.forms import greeter_install_form

BOT = "777001"
TOKEN = BOT + ":AAFirst-token-first-token-first-tok"
REGENERATED = BOT + ":AASecond-token-after-revoking-the-1"  # same bot, new secret
OTHER = "777002:AAOther-bot-other-bot-other-bot-xx"


def install(account_user, greeter, token, name="Greeter"):
    return services.install_instance(
        account=account_user.account,
        version=greeter,
        name=name,
        config={"bot_token": token},
        actor=account_user,
    )


@pytest.fixture
def first(cast, greeter):
    return install(cast.alice, greeter, TOKEN, name="Shop greeter")


def test_the_same_bot_is_refused_for_a_second_instance_of_the_same_account(cast, greeter, first):
    for token in (TOKEN, REGENERATED):  # a regenerated token is still the same bot
        with pytest.raises(ConfigError) as refused:
            install(cast.bob, greeter, token, name="Copy")  # bob shares alice's account
        (message,) = refused.value.errors["bot_token"]
        assert "“Shop greeter”" in message and "@BotFather" in message
        assert token not in message
    assert Instance.objects.count() == 1
    assert first.bot_id == BOT


def test_another_account_is_refused_without_learning_whose_bot_it_is(cast, greeter, first):
    with pytest.raises(ConfigError) as refused:
        install(cast.charlie, greeter, TOKEN)
    (message,) = refused.value.errors["bot_token"]
    assert "already in use" in message and "Shop greeter" not in message
    assert Instance.objects.count() == 1


def test_removing_the_instance_frees_its_bot(cast, greeter, first):
    services.remove_instance(first, actor=cast.alice)
    again = install(cast.charlie, greeter, TOKEN)
    assert again.bot_id == BOT and Instance.objects.count() == 2


def test_changing_settings_to_a_taken_bot_is_refused_and_changes_nothing(cast, greeter, first):
    second = install(cast.alice, greeter, OTHER, name="Second")
    config = second.full_config()
    with pytest.raises(ConfigError) as refused:
        services.update_config(second, config={**config, "bot_token": TOKEN}, actor=cast.alice)
    assert "“Shop greeter”" in refused.value.errors["bot_token"][0]
    second.refresh_from_db()
    assert second.bot_id == "777002" and second.full_config()["bot_token"] == OTHER
    # Keeping its own bot (a new token for it) is fine.
    regenerated = "777002:AARegenerated-other-bot-token-xxxx"
    services.update_config(second, config={**config, "bot_token": regenerated}, actor=cast.alice)
    second.refresh_from_db()
    assert second.bot_id == "777002" and second.full_config()["bot_token"] == regenerated


def test_the_install_form_shows_the_refusal_on_the_token_field(
    client, cast, greeter, first, monkeypatch
):
    monkeypatch.setitem(CHECKS, "telegram_token", lambda value: "@shop_bot")
    client.force_login(cast.alice)
    response = client.post(
        reverse("instances:install", args=["greeter"]),
        greeter_install_form(REGENERATED, instance_name="Copy"),
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "This bot already runs in your instance" in page and REGENERATED not in page
    assert Instance.objects.count() == 1


def test_the_migration_fills_in_existing_instances(cast, greeter, first):
    from importlib import import_module

    migration = import_module("otomat.instances.migrations.0004_instance_bot_id")
    Instance.objects.filter(pk=first.pk).update(bot_id="")
    migration.fill_bot_ids(apps, None)
    first.refresh_from_db()
    assert first.bot_id == BOT


def test_the_api_refuses_a_taken_bot_with_a_400(client, cast, greeter, first, monkeypatch):
    from otomat.accounts.models import ApiToken

    monkeypatch.setitem(CHECKS, "telegram_token", lambda value: "@shop_bot")
    _, key = ApiToken.issue(cast.charlie, "tests")
    response = client.post(
        "/api/v1/instances",
        data={"product": "greeter", "name": "Copy", "config": {"bot_token": TOKEN}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.status_code == 400
    assert "already in use" in response.content.decode()
    assert TOKEN not in response.content.decode()
    assert Instance.objects.count() == 1


def test_the_live_check_says_the_bot_is_taken_while_typing(
    client, cast, greeter, first, monkeypatch
):
    monkeypatch.setitem(CHECKS, "telegram_token", lambda value: "@shop_bot")
    check = reverse("catalog:check_field", args=["greeter", "bot_token"])
    client.force_login(cast.bob)
    taken = client.post(check, {"bot_token": REGENERATED}).content.decode()
    assert "check-error" in taken and "“Shop greeter”" in taken
    assert "check-ok" in client.post(check, {"bot_token": OTHER}).content.decode()
    # On the instance's own settings page its bot is its own.
    page = client.get(reverse("instances:edit", args=[first.id])).content.decode()
    assert f'name="_instance" value="{first.id}"' in page
    own = client.post(check, {"bot_token": REGENERATED, "_instance": str(first.id)})
    assert "check-ok" in own.content.decode()
    # Naming someone else's instance does not free their bot.
    client.force_login(cast.charlie)
    other = client.post(check, {"bot_token": REGENERATED, "_instance": str(first.id)})
    assert "already in use" in other.content.decode()
    assert (
        "check-error"
        in client.post(check, {"bot_token": TOKEN, "_instance": "junk"}).content.decode()
    )
