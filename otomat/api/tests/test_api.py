"""The REST API: the happy path, bad bodies (clear 4xx errors, nothing stored), and the OpenAPI
document."""

from __future__ import annotations

import json

import pytest

from otomat.accounts.models import ApiToken
from otomat.instances.models import Instance

pytestmark = pytest.mark.smoke


@pytest.fixture
def alice_api(client, cast):
    _, token = ApiToken.issue(cast.alice, "tests")

    def call(method: str, path: str, body=None, raw: str | None = None):
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        if body is not None or raw is not None:
            kwargs["data"] = raw if raw is not None else json.dumps(body)
            kwargs["content_type"] = "application/json"
        return getattr(client, method)(f"/api/v1{path}", **kwargs)

    return call


def test_it_lists_products_and_creates_an_instance(alice_api, greeter, emulator):
    token = emulator.create_bot("api_greeter_bot")
    products = alice_api("get", "/products").json()
    assert [p["slug"] for p in products] == ["greeter"]
    assert products[0]["latest_version"]["version"] == greeter.version
    response = alice_api(
        "post",
        "/instances",
        {"product": "greeter", "name": "via api", "config": {"bot_token": token}},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "provisioning"
    assert token not in response.content.decode()
    assert "bot_token" not in body["config"]
    got = alice_api("get", f"/instances/{body['id']}").json()
    assert got["name"] == "via api"
    assert alice_api("get", f"/instances/{body['id']}/logs").json() == {"lines": []}
    stopped = alice_api("post", f"/instances/{body['id']}/actions/stop")
    assert stopped.json()["state"] == "stopped"
    assert alice_api("post", f"/instances/{body['id']}/actions/stop").status_code == 400
    removed = alice_api("delete", f"/instances/{body['id']}")
    assert removed.json()["state"] == "terminated"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("{not json", ""),
        (json.dumps({"name": "x", "config": {}}), "product"),
        (json.dumps({"product": "greeter", "config": "nope"}), "config"),
        (json.dumps({"product": "greeter", "config": {}}), "bot_token"),
        (json.dumps({"product": "greeter", "config": {"bot_token": "not-a-token"}}), "bot_token"),
        (
            json.dumps(
                {
                    "product": "greeter",
                    "config": {"bot_token": "123456:" + "A" * 35, "max_daily_greetings": 0},
                }
            ),
            "max_daily_greetings",
        ),
        (
            json.dumps(
                {
                    "product": "greeter",
                    "config": {"bot_token": "123456:" + "A" * 35, "language": "xx"},
                }
            ),
            "language",
        ),
        (
            json.dumps(
                {"product": "greeter", "config": {"bot_token": "123456:" + "A" * 35, "surprise": 1}}
            ),
            "surprise",
        ),
    ],
)
def test_bad_bodies_get_a_clear_error_and_store_nothing(alice_api, greeter, raw, fragment):
    response = alice_api("post", "/instances", raw=raw)
    assert response.status_code in (400, 422), response.content
    assert fragment in response.content.decode()
    assert Instance.objects.count() == 0


def test_an_unknown_product_is_a_404(alice_api, greeter):
    response = alice_api("post", "/instances", {"product": "nope", "config": {}})
    assert response.status_code == 404
    assert Instance.objects.count() == 0


def test_unknown_action_and_bad_state_filter_are_refused(alice_api, greeter, cast):
    from otomat.instances import services

    instance = services.create_instance(
        account=cast.alice.account,
        version=greeter,
        name="x",
        config={"bot_token": "123456:" + "A" * 35},
        actor=cast.alice,
    )
    assert alice_api("post", f"/instances/{instance.id}/actions/explode").status_code == 400
    assert alice_api("get", "/instances?state=bogus").status_code == 400
    assert alice_api("get", f"/instances/{instance.id}/logs?lines=0").status_code == 400
    instance.refresh_from_db()
    assert instance.state == "pending"


def test_a_config_patch_keeps_the_secret_and_validates(alice_api, greeter, cast):
    from otomat.instances import services

    token = "123456:" + "C" * 35
    instance = services.create_instance(
        account=cast.alice.account,
        version=greeter,
        name="x",
        config={"bot_token": token},
        actor=cast.alice,
    )
    bad = alice_api("patch", f"/instances/{instance.id}/config", {"config": {"welcome_text": ""}})
    assert bad.status_code == 400
    ok = alice_api(
        "patch", f"/instances/{instance.id}/config", {"config": {"welcome_text": "Hi {name}"}}
    )
    assert ok.status_code == 200, ok.content
    instance.refresh_from_db()
    assert instance.config["welcome_text"] == "Hi {name}"
    assert instance.full_config()["bot_token"] == token


def test_the_openapi_document_describes_the_endpoints(client):
    doc = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/instances" in doc["paths"]
    assert "/api/v1/instances/{instance_id}/logs" in doc["paths"]
