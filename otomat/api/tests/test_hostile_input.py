"""Hostile input through the REST API: NaN and Infinity, lone surrogates, NUL and other control
characters, and bodies over the size limit get a clear 4xx (never a 500) and change nothing;
the OpenAPI document says so."""

from __future__ import annotations

import json

import pytest

from otomat.accounts.models import ApiToken
from otomat.catalog.checks import CHECKS
from otomat.instances import services
from otomat.instances.models import Instance
from otomat.support.models import Ticket

pytestmark = pytest.mark.smoke

TOKEN = "123456:" + "A" * 35


@pytest.fixture
def alice_api(client, cast, monkeypatch):
    monkeypatch.setitem(CHECKS, "telegram_token", lambda value: "@greeter_bot")
    _, token = ApiToken.issue(cast.alice, "tests")

    def call(method: str, path: str, raw: str | None = None, **headers):
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {token}", **headers}
        if raw is not None:
            kwargs |= {"data": raw, "content_type": "application/json"}
        return getattr(client, method)(f"/api/v1{path}", **kwargs)

    return call


@pytest.fixture
def instance(greeter, cast):
    return services.create_instance(
        account=cast.alice.account,
        version=greeter,
        name="mine",
        config={"bot_token": TOKEN, "welcome_text": "Hello"},
        actor=cast.alice,
    )


def _install(**config) -> str:
    # Built by hand: json.dumps would refuse nothing, but we want NaN and "\ud800" verbatim.
    settings = ", ".join(f'"{key}": {value}' for key, value in config.items())
    return f'{{"product": "greeter", "config": {{"bot_token": "{TOKEN}", {settings}}}}}'


NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400"]
TEXTS = [
    (r'"Hi\u0000"', "U+0000"),
    (r'"Hi\u0007"', "U+0007"),
    (r'"Hi\u001b[2J"', "U+001B"),
    (r'"Hi\u009b"', "U+009B"),
    (r'"Hi\ud800"', "U+D800"),
    (r'"Hi\udc00 there"', "U+DC00"),
]


@pytest.mark.parametrize("number", NUMBERS)
def test_install_refuses_nan_and_infinity(alice_api, greeter, number):
    response = alice_api("post", "/instances", raw=_install(reply_delay_seconds=number))
    assert response.status_code == 400, response.content
    assert response.json() == {
        "detail": {
            "reply_delay_seconds": ["Enter a finite number (NaN and Infinity are not numbers)."]
        }
    }
    assert Instance.objects.count() == 0


@pytest.mark.parametrize(("text", "code"), TEXTS)
def test_install_refuses_control_characters_and_lone_surrogates(alice_api, greeter, text, code):
    response = alice_api("post", "/instances", raw=_install(welcome_text=text))
    assert response.status_code == 400, response.content
    [message] = response.json()["detail"]["welcome_text"]
    assert code in message
    assert Instance.objects.count() == 0


@pytest.mark.parametrize(
    ("value", "code"), [*((n, "finite") for n in NUMBERS), *((t, c) for t, c in TEXTS)]
)
def test_a_config_patch_refuses_them_and_keeps_the_stored_config(alice_api, instance, value, code):
    field = "reply_delay_seconds" if code == "finite" else "welcome_text"
    before = instance.full_config()
    response = alice_api(
        "patch", f"/instances/{instance.id}/config", raw=f'{{"config": {{"{field}": {value}}}}}'
    )
    assert response.status_code == 400, response.content
    assert code in response.json()["detail"][field][0]
    instance.refresh_from_db()
    assert instance.full_config() == before


def test_line_breaks_and_tabs_are_kept_in_a_multi_line_text(alice_api, instance):
    response = alice_api(
        "patch",
        f"/instances/{instance.id}/config",
        raw=json.dumps({"config": {"welcome_text": "Hello,\r\n\tdear {name}"}}),
    )
    assert response.status_code == 200, response.content
    instance.refresh_from_db()
    assert instance.config["welcome_text"] == "Hello,\r\n\tdear {name}"


@pytest.mark.parametrize(
    "body",
    [
        r'{"product": "greeter\ud800", "config": {}}',
        r'{"product": "gree\u0000ter", "config": {}}',
        '{"product": "greeter", "name": "my\\nbot", "config": {}}',
        r'{"product": "greeter", "name": "\udfff", "config": {}}',
        r'{"product": "greeter", "coupon": "\u0000", "config": {}}',
        '{"product": "greeter", "name": "%s", "config": {}}' % ("n" * 101),
    ],
)
def test_install_refuses_names_and_codes_that_are_not_one_line_of_text(alice_api, greeter, body):
    response = alice_api("post", "/instances", raw=body)
    assert response.status_code == 422, response.content
    [issue] = response.json()["detail"]
    assert issue["loc"][0] == "body"
    assert issue["msg"]
    assert Instance.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        r'{"subject": "Help\ud800", "body": "Please"}',
        r'{"subject": "Help", "body": "Please\udbff"}',
        r'{"subject": "Help\u0000", "body": "Please"}',
        r'{"subject": "Help", "body": "Please\u0000"}',
        r'{"subject": "Help", "body": "Please\u001b[31m"}',
        r'{"subject": "Help\nme", "body": "Please"}',
        r'{"subject": "Help", "body": "Please", "kind": "\ud800"}',
    ],
)
def test_a_ticket_refuses_text_that_is_not_text(alice_api, cast, body):
    response = alice_api("post", "/support/tickets", raw=body)
    assert response.status_code == 422, response.content
    [issue] = response.json()["detail"]
    # pydantic itself refuses a lone surrogate in a string field ("string_unicode").
    assert issue["type"] in ("text", "string_unicode")
    assert "U+" in issue["msg"] or "unicode" in issue["msg"]
    assert Ticket.objects.count() == 0


def test_a_ticket_keeps_line_breaks_and_tabs_in_its_message(alice_api, cast):
    response = alice_api(
        "post",
        "/support/tickets",
        raw=json.dumps({"subject": "Help", "body": "Line one\n\tLine two"}),
    )
    assert response.status_code == 201, response.content
    number = response.json()["number"]
    reply = alice_api("post", f"/support/tickets/{number}/messages", raw=r'{"body": "more\u0000"}')
    assert reply.status_code == 422
    ticket = Ticket.objects.get()
    assert [m.body for m in ticket.messages.all()] == ["Line one\n\tLine two"]


def test_a_nul_in_a_path_or_query_is_refused(alice_api, cast):
    assert alice_api("get", "/support/tickets/T-1%00").status_code == 422
    assert alice_api("get", "/products/greeter%00").status_code == 422
    assert alice_api("get", "/support/articles?q=a%00b").status_code == 422
    assert alice_api("get", "/billing/plans?product=%00").status_code == 422


def test_a_huge_offset_is_a_400(alice_api, cast):
    response = alice_api("get", "/support/tickets?offset=99999999999999999999")
    assert response.status_code == 400
    assert "offset 0–1000000000" in response.json()["detail"]


def test_a_body_over_the_limit_is_a_json_413_that_changes_nothing(alice_api, instance, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    big = json.dumps({"config": {"welcome_text": "x" * 2000}})
    response = alice_api("patch", f"/instances/{instance.id}/config", raw=big)
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {
        "detail": "The request body is larger than 1 KB, the most the API accepts."
    }
    instance.refresh_from_db()
    assert instance.config["welcome_text"] == "Hello"
    ticket = alice_api("post", "/support/tickets", raw=json.dumps({"subject": "s", "body": big}))
    assert ticket.status_code == 413
    assert Ticket.objects.count() == 0


def test_a_query_with_too_many_fields_is_a_json_413(alice_api, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 5
    query = "&".join(f"f{n}=1" for n in range(10))
    response = alice_api("get", f"/support/tickets?{query}")
    assert response.status_code == 413
    assert response.json() == {"detail": "The request has more fields than the 5 accepted."}


def test_without_a_token_it_is_a_json_401(client, greeter):
    response = client.get("/api/v1/products")
    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}


# -- the document says what happens ---------------------------------------------------------


@pytest.fixture
def document(client):
    return client.get("/api/v1/openapi.json").json()


def test_each_error_body_has_its_own_name_and_its_true_shape(document):
    schemas = document["components"]["schemas"]
    assert schemas["Error"]["properties"]["detail"]["type"] == "string"
    config_detail = schemas["ConfigErrors"]["properties"]["detail"]["anyOf"]
    assert {"type": "string"} in config_detail
    assert {
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
    } in [{k: v for k, v in alternative.items() if k != "title"} for alternative in config_detail]
    assert schemas["ValidationErrors"]["properties"]["detail"]["type"] == "array"
    configured = document["paths"]["/api/v1/instances"]["post"]["responses"]
    assert configured["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ConfigErrors"
    }


def test_every_operation_documents_its_errors(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "401" in responses, (method, path)
            in_path = any(p["in"] == "path" for p in operation.get("parameters", []))
            if in_path or "requestBody" in operation:
                assert "422" in responses, (method, path)
            in_query = any(p["in"] == "query" for p in operation.get("parameters", []))
            if in_query or "requestBody" in operation:
                assert "413" in responses, (method, path)


def test_the_limits_are_in_the_document(document):
    def parameter(path, name):
        [found] = [p for p in document["paths"][path]["get"]["parameters"] if p["name"] == name]
        return found["schema"]

    assert parameter("/api/v1/billing/invoices", "limit")["maximum"] == 500
    assert parameter("/api/v1/support/tickets", "limit")["maximum"] == 200
    assert parameter("/api/v1/support/tickets", "offset")["maximum"] == 1_000_000_000
    assert parameter("/api/v1/instances/{instance_id}/logs", "lines")["maximum"] == 1000
    ticket = document["components"]["schemas"]["TicketIn"]["properties"]
    assert ticket["subject"]["maxLength"] == 200
    assert ticket["body"]["maxLength"] == 50_000
    assert "2 MB" in document["info"]["description"]


# -- the settings form refuses the same, with the same message ------------------------------


@pytest.mark.parametrize(
    ("text", "code"), [("Hi\x07", "U+0007"), ("Hi\x1b[2J", "U+001B"), ("Hi\x9b", "U+009B")]
)
def test_the_settings_form_refuses_what_the_api_refuses(
    client, cast, alice_api, instance, text, code
):
    from django.urls import reverse

    client.force_login(cast.alice)
    form = {"bot_token": "", "welcome_text": text, "language": "en", "max_daily_greetings": "3"}
    page = client.post(reverse("instances:edit", args=[instance.id]), form)
    assert page.status_code == 400
    api = alice_api(
        "patch",
        f"/instances/{instance.id}/config",
        raw=json.dumps({"config": {"welcome_text": text}}),
    )
    [message] = api.json()["detail"]["welcome_text"]
    assert code in message
    assert message.replace("'", "&#x27;") in page.content.decode()
    instance.refresh_from_db()
    assert instance.config["welcome_text"] == "Hello"
