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


# -- the rule held by the database ------------------------------------------------------------


def test_the_database_refuses_a_second_live_holder_of_a_bot(cast, greeter, first):
    """Whatever the code checks, the database keeps one live instance per bot."""
    from django.db import IntegrityError, transaction

    second = install(cast.alice, greeter, OTHER, name="Second")
    with pytest.raises(IntegrityError), transaction.atomic():
        Instance.objects.filter(pk=second.pk).update(live_bot_id=BOT)
    # A terminated instance holds no bot, so any number of them may share one.
    services.remove_instance(first, actor=cast.alice)
    first.refresh_from_db()
    assert first.live_bot_id is None and first.bot_id == BOT  # the record of which bot it was
    again = install(cast.charlie, greeter, TOKEN)
    services.remove_instance(again, actor=cast.charlie)
    assert Instance.objects.filter(bot_id=BOT, live_bot_id=None).count() == 2


def test_a_claim_that_slips_past_the_check_gets_the_same_clear_refusal(
    cast, greeter, first, monkeypatch
):
    """Two installs that both pass the check (each ran it before the other committed): the
    unique constraint refuses the second with the message of the check, and nothing is stored.
    The check is skipped here to stand for the other transaction's timing."""
    from otomat.accounts.models import AuditEvent

    monkeypatch.setattr(services, "bot_in_use", lambda *a, **k: "")
    audits = AuditEvent.objects.count()
    with pytest.raises(ConfigError) as refused:
        install(cast.charlie, greeter, REGENERATED, name="Copy")
    (message,) = refused.value.errors["bot_token"]
    assert "already in use" in message and "@BotFather" in message
    assert Instance.objects.count() == 1 and AuditEvent.objects.count() == audits
    # The same for a settings change onto the bot.
    second = install(cast.alice, greeter, OTHER, name="Second")
    with pytest.raises(ConfigError) as refused:
        services.update_config(second, config={"bot_token": TOKEN}, actor=cast.alice)
    assert "already in use" in refused.value.errors["bot_token"][0]
    second.refresh_from_db()
    assert second.live_bot_id == "777002" and second.full_config()["bot_token"] == OTHER


def test_a_settings_change_moves_the_claim_to_the_new_bot(cast, greeter, first):
    services.update_config(first, config={"bot_token": OTHER}, actor=cast.alice)
    first.refresh_from_db()
    assert first.live_bot_id == "777002"
    # The old bot is free at once.
    assert install(cast.charlie, greeter, TOKEN).live_bot_id == BOT


def test_the_migration_claims_bots_of_live_instances_oldest_first(cast, greeter, first):
    from datetime import timedelta
    from importlib import import_module

    migration = import_module("otomat.instances.migrations.0005_live_bot_id")
    older = install(cast.charlie, greeter, OTHER, name="Older twin")
    twin = install(cast.alice, greeter, "777003:AATwin-bot-twin-bot-twin-bot-twin-x", name="Twin")
    gone = install(cast.alice, greeter, "777004:AAGone-bot-gone-bot-gone-bot-gone-x", name="Gone")
    services.remove_instance(gone, actor=cast.alice)
    # As rows were before the column existed: no claims, and two live instances sharing one
    # bot (possible before the check), the older of them created first.
    Instance.objects.update(live_bot_id=None)
    Instance.objects.filter(pk=older.pk).update(created_at=first.created_at - timedelta(days=1))
    Instance.objects.filter(pk=twin.pk).update(bot_id="777002")
    migration.claim_live_bots(apps, None)
    claims = dict(Instance.objects.values_list("name", "live_bot_id"))
    assert claims == {
        "Shop greeter": BOT,
        "Older twin": "777002",
        "Twin": None,  # its twin is older; it keeps running, its next change needs its own bot
        "Gone": None,
    }
    migration.release_live_bots(apps, None)
    assert not Instance.objects.exclude(live_bot_id=None).exists()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_installs_of_one_bot_one_wins(cast, greeter, monkeypatch):
    """Two customers install the same bot at the same moment, on separate connections, and both
    pass the check before either has stored anything (a barrier holds them there): exactly
    one instance is stored, the other install gets the clear refusal."""
    import threading

    from django.db import connection

    if connection.vendor == "sqlite":
        pytest.skip(
            "SQLite serialises writers (BEGIN IMMEDIATE), so two installs cannot overlap; "
            "run with OTOMAT_DATABASE_URL=postgres://… (or mysql://…) for this test"
        )
    barrier = threading.Barrier(2, timeout=30)
    real_claim = services._claim_bot

    def claim_then_wait(*args, **kwargs):
        claimed = real_claim(*args, **kwargs)  # both see the bot free
        barrier.wait()
        return claimed

    monkeypatch.setattr(services, "_claim_bot", claim_then_wait)
    outcomes: dict[str, object] = {}

    def order(person):
        try:
            outcomes[person.email] = install(person, greeter, TOKEN, name=person.first_name)
        except Exception as exc:  # the assertions below say which
            outcomes[person.email] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=order, args=(p,)) for p in (cast.alice, cast.charlie)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [o for o in outcomes.values() if isinstance(o, Instance)]
    lost = [o for o in outcomes.values() if not isinstance(o, Instance)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    (refusal,) = lost
    assert isinstance(refusal, ConfigError), refusal
    (message,) = refusal.errors["bot_token"]
    assert "@BotFather" in message and TOKEN not in message
    (stored,) = Instance.objects.all()
    assert stored.pk == won[0].pk and stored.live_bot_id == BOT
    assert stored.events.count() == 2  # created, provisioned: nothing of the loser
