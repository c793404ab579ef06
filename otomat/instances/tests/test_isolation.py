"""Tenant isolation: charlie (another account) gets 404 on every URL and API endpoint of alice's
instance and changes nothing; bob (alice's teammate) sees it."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from otomat.accounts.models import ApiToken
from otomat.instances import services
from otomat.instances.models import Instance

TOKEN = "123456:" + "A" * 35


@pytest.fixture
def alices_instance(cast, greeter):
    return services.install_instance(
        account=cast.alice.account,
        version=greeter,
        name="Alice greeter",
        config={"bot_token": TOKEN},
        actor=cast.alice,
    )


def snapshot(instance: Instance) -> tuple:
    instance.refresh_from_db()
    return (
        instance.state,
        instance.desired,
        instance.generation,
        instance.config,
        instance.name,
        instance.events.count(),
    )


PAGE_URLS = ["detail", "status", "logs", "edit", "remove"]
ACTIONS = ["start", "stop", "restart"]


def test_it_hides_every_instance_page_from_another_account(client, cast, alices_instance):
    before = snapshot(alices_instance)
    client.force_login(cast.charlie)
    for name in PAGE_URLS:
        url = reverse(f"instances:{name}", args=[alices_instance.id])
        assert client.get(url).status_code == 404, url
        assert (
            client.post(url, {"confirm_name": "Alice greeter", "bot_token": TOKEN}).status_code
            == 404
        ), url
    for action in ACTIONS:
        url = reverse("instances:action", args=[alices_instance.id, action])
        assert client.post(url).status_code == 404, url
    assert "Alice greeter" not in client.get(reverse("instances:list")).content.decode()
    assert client.get(reverse("instances:manage")).status_code == 404
    assert snapshot(alices_instance) == before


def test_it_shows_the_instance_to_a_teammate(client, cast, alices_instance):
    client.force_login(cast.bob)
    assert client.get(reverse("instances:detail", args=[alices_instance.id])).status_code == 200
    assert "Alice greeter" in client.get(reverse("instances:list")).content.decode()


def test_staff_see_every_instance(client, cast, alices_instance):
    client.force_login(cast.staff)
    page = client.get(reverse("instances:manage")).content.decode()
    assert "Alice greeter" in page
    assert client.get(reverse("instances:detail", args=[alices_instance.id])).status_code == 200


def test_it_hides_every_api_endpoint_from_another_account(client, cast, alices_instance):
    before = snapshot(alices_instance)
    _, token = ApiToken.issue(cast.charlie, "charlie")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    base = f"/api/v1/instances/{alices_instance.id}"
    assert client.get(base, **auth).status_code == 404
    assert client.get(f"{base}/logs", **auth).status_code == 404
    for action in ACTIONS:
        assert client.post(f"{base}/actions/{action}", **auth).status_code == 404
    assert (
        client.patch(
            f"{base}/config",
            json.dumps({"config": {"welcome_text": "pwned"}}),
            content_type="application/json",
            **auth,
        ).status_code
        == 404
    )
    assert client.delete(base, **auth).status_code == 404
    listing = client.get("/api/v1/instances", **auth).json()
    assert listing == []
    assert snapshot(alices_instance) == before


def test_api_without_a_valid_token_is_refused(client, alices_instance):
    assert client.get("/api/v1/instances").status_code == 401
    assert client.get("/api/v1/instances", HTTP_AUTHORIZATION="Bearer otm_nope").status_code == 401


def test_a_revoked_token_is_refused(client, cast, alices_instance):
    from django.utils import timezone

    row, token = ApiToken.issue(cast.alice, "old")
    row.revoked_at = timezone.now()
    row.save()
    assert client.get("/api/v1/instances", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401
