"""Staff reproduce a customer's problem in a sandbox (same version and settings, secrets
replaced, on the emulator); visitors try a product before buying. Both expire by themselves."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from otomat.instances import services
from otomat.instances.models import Instance
from otomat.instances.sandboxes import expire_sandboxes
from otomat.testing.processes import processes_in, wait_until

pytestmark = pytest.mark.slow


def running(instance: Instance) -> bool:
    instance.refresh_from_db()
    return instance.state == Instance.State.RUNNING


def test_staff_reproduce_a_customers_bot_in_a_sandbox(
    client, cast, greeter, emulator, runner_factory
):
    token = emulator.create_bot("alice_shop_bot")
    original = services.install_instance(
        account=cast.alice.account,
        version=greeter,
        name="Shop greeter",
        config={"bot_token": token, "welcome_text": "Hi {name}, from the shop"},
        actor=cast.alice,
    )
    runner = runner_factory()

    # Customers cannot open sandboxes, not even of their own instance.
    client.force_login(cast.alice)
    assert client.post(reverse("instances:sandbox", args=[original.id])).status_code == 404

    client.force_login(cast.staff)
    response = client.post(reverse("instances:sandbox", args=[original.id]))
    sandbox = Instance.objects.get(kind=Instance.Kind.SANDBOX)
    assert response.url == reverse("instances:detail", args=[sandbox.id])
    assert sandbox.sandbox_of == original and sandbox.account.is_internal
    assert sandbox.version == original.version
    assert sandbox.config["welcome_text"] == "Hi {name}, from the shop"
    assert sandbox.full_config()["bot_token"] != token  # the customer's secret is not copied
    page = client.get(reverse("instances:detail", args=[sandbox.id])).content.decode()
    assert f"/chat/{sandbox.emulator_bot}" in page

    wait_until(
        lambda: running(sandbox) and running(original),
        40,
        message=f"not both running; runner said:\n{runner.output()}",
    )
    assert emulator.ask(sandbox.emulator_bot, "/start", user_id=77) == "Hi Alice, from the shop"

    # Nobody but staff sees it.
    for person in (cast.alice, cast.charlie):
        client.force_login(person)
        assert client.get(reverse("instances:detail", args=[sandbox.id])).status_code == 404

    # It expires by itself, data and process included; the customer's bot is untouched.
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        assert expire_sandboxes() == 1
        assert expire_sandboxes() == 0
    sandbox.refresh_from_db()
    assert sandbox.state == Instance.State.TERMINATED and not sandbox.data_dir.exists()
    wait_until(lambda: processes_in(sandbox.data_dir) == [], 20)
    assert emulator.ask("alice_shop_bot", "/start", user_id=78) is not None
    assert running(original)


def test_a_visitor_tries_a_product_before_buying(
    client, greeter, emulator, runner_factory, settings
):
    runner = runner_factory()
    response = client.post(reverse("catalog:try", args=["greeter"]))
    trial = Instance.objects.get(kind=Instance.Kind.TRIAL)
    assert response.status_code == 302
    assert response.url.startswith(f"{emulator.url}/chat/{trial.emulator_bot}?")
    assert trial.expires_at <= timezone.now() + timedelta(minutes=16)

    # One trial per browser session.
    again = client.post(reverse("catalog:try", args=["greeter"]))
    assert again.url == response.url and Instance.objects.filter(kind="trial").count() == 1

    wait_until(lambda: running(trial), 40, message=f"trial not running:\n{runner.output()}")
    assert emulator.ask(trial.emulator_bot, "/start", user_id=90) == "Hello, Alice! Welcome."

    # A global cap protects the machine.
    settings.TRY_MAX_ACTIVE = 1
    other = client.__class__()
    refused = other.post(reverse("catalog:try", args=["greeter"]), follow=True)
    assert "Too many people" in refused.content.decode()
    assert Instance.objects.filter(kind="trial").count() == 1


def test_trying_without_an_emulator_says_so(client, greeter, settings, db):
    settings.EMULATOR_URL = ""
    page = client.get(reverse("catalog:detail", args=["greeter"])).content.decode()
    assert "Try it now" not in page
    response = client.post(reverse("catalog:try", args=["greeter"]), follow=True)
    assert "not available" in response.content.decode()
    assert not Instance.objects.exists()
