"""Settings changes end to end, with the real emulator and runner processes: of two overlapping
changes the bot ends up answering with the one stored last, and a bot stopped while its
settings change leaves no pid behind once its process is gone."""

from __future__ import annotations

import itertools

import pytest

from otomat.instances import services
from otomat.instances.models import Instance
from otomat.testing.processes import processes_in, wait_until

pytestmark = [pytest.mark.slow]
BOT = "e2e_settings_bot"


def welcome(emulator, *, timeout: float = 5) -> str | None:
    """The bot's answer to a newcomer's /start (its welcome text; someone it has met before
    is welcomed back instead), from a user it has not seen yet."""
    return emulator.ask(BOT, "/start", timeout=timeout, user_id=next(_NEWCOMERS))


_NEWCOMERS = itertools.count(5000)


def settings_with(token: str, text: str) -> dict:
    return {"bot_token": token, "welcome_text": text, "reply_delay_seconds": 0}


def test_the_bot_answers_with_the_settings_stored_last(cast, greeter, emulator, runner_factory):
    token = emulator.create_bot(BOT)
    runner = runner_factory()
    instance = services.install_instance(
        account=cast.alice.account,
        version=greeter,
        name="Greeter",
        config=settings_with(token, "first"),
        actor=cast.alice,
    )
    wait_until(
        lambda: welcome(emulator) == "first",
        40,
        interval=0.5,
        message=f"the bot never answered; runner said:\n{runner.output()}",
    )
    # Alice and Bob both open the settings page; Alice saves, the bot restarts with her text;
    # then Bob saves from the copy he opened before. The old code gave Bob's change the
    # generation the runner already ran, so the bot kept Alice's text while the database and
    # the settings page showed Bob's.
    alices = Instance.objects.get(pk=instance.pk)
    bobs = Instance.objects.get(pk=instance.pk)
    services.update_config(alices, config=settings_with(token, "from alice"), actor=cast.alice)
    wait_until(
        lambda: welcome(emulator) == "from alice",
        40,
        interval=0.5,
        message=f"Alice's change never answered; runner said:\n{runner.output()}",
    )
    services.update_config(bobs, config=settings_with(token, "from bob"), actor=cast.bob)
    stored = Instance.objects.get(pk=instance.pk)
    assert stored.config["welcome_text"] == "from bob"
    wait_until(
        lambda: welcome(emulator) == "from bob",
        40,
        interval=0.5,
        message=f"the bot kept older settings; runner said:\n{runner.output()}",
    )
    wait_until(
        lambda: Instance.objects.get(pk=instance.pk).state == Instance.State.RUNNING,
        30,
        message=f"never running again; runner said:\n{runner.output()}",
    )
    assert len(processes_in(instance.data_dir)) == 1

    # Stop, and change the settings while the bot shuts down: once its process is gone, the
    # stopped instance shows no pid.
    services.stop_instance(instance, actor=cast.alice)
    services.update_config(instance, config=settings_with(token, "later"), actor=cast.alice)
    services.update_config(instance, config=settings_with(token, "later 2"), actor=cast.alice)
    wait_until(lambda: processes_in(instance.data_dir) == [], 20, message="the bot kept running")
    wait_until(
        lambda: Instance.objects.get(pk=instance.pk).pid is None,
        10,
        message=f"a dead pid stayed; runner said:\n{runner.output()}",
    )
    stopped = Instance.objects.get(pk=instance.pk)
    assert stopped.state == Instance.State.STOPPED
    assert welcome(emulator, timeout=3) is None
