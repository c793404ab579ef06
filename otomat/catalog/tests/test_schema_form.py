"""The configuration form built from a JSON Schema, its validation, secrets and live checks."""

from __future__ import annotations

import logging
import socket
import string
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from otomat.catalog.checks import check_telegram_token, get_bot_username
from otomat.catalog.errors import CheckError, ConfigError
from otomat.catalog.schema_form import (
    apply_defaults,
    build_form_class,
    checked_paths,
    config_to_initial,
    form_to_config,
    keep_blank_secrets,
    merge_secrets,
    secret_paths,
    split_secrets,
    validate_config,
)

SCHEMA = {
    "type": "object",
    "required": ["bot_token", "name", "count", "mode", "owner"],
    "properties": {
        "bot_token": {
            "type": "string",
            "title": "Bot token",
            "x-otomat-secret": True,
            "x-otomat-check": "telegram_token",
        },
        "name": {
            "type": "string",
            "title": "Name",
            "description": "Shown to users.",
            "minLength": 2,
            "maxLength": 20,
            "default": "Bot",
        },
        "code": {
            "type": "string",
            "pattern": "^[A-Z]{3}$",
            "x-otomat-pattern-message": "Three capital letters.",
        },
        "email": {"type": "string", "format": "email"},
        "site": {"type": "string", "format": "uri"},
        "welcome": {"type": "string", "x-otomat-widget": "textarea"},
        "count": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
        "step": {"type": "integer", "multipleOf": 5},
        "ratio": {"type": "number", "minimum": 0, "maximum": 1},
        "enabled": {"type": "boolean", "default": True},
        "mode": {
            "enum": ["fast", "slow"],
            "x-otomat-enum-labels": ["Fast", "Slow"],
            "default": "fast",
        },
        "level": {"type": "integer", "enum": [1, 2, 3]},
        "tags": {
            "type": "array",
            "items": {"type": "string", "pattern": "^#[a-z0-9_]+$"},
            "maxItems": 3,
            "uniqueItems": True,
            "x-otomat-pattern-message": "Start with #.",
        },
        "features": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
        "owner": {
            "type": "object",
            "title": "Owner",
            "required": ["chat_id"],
            "properties": {
                "chat_id": {"type": "integer", "title": "Chat"},
                "password": {"type": "string", "x-otomat-secret": True},
                "notify": {"type": "boolean"},
            },
        },
    },
}

VALID = {
    "bot_token": "123:AAsecret",
    "name": "Echo",
    "code": "ABC",
    "email": "a@example.com",
    "site": "https://example.com/bot",
    "welcome": "Hello\nthere",
    "count": "5",
    "step": "15",
    "ratio": "0.25",
    "enabled": "on",
    "mode": "slow",
    "level": "2",
    "tags": "#a\n\n  #b  \n",
    "features": ["a"],
    "owner__chat_id": "42",
    "owner__password": "pw-secret",
}

CONFIG = {
    "bot_token": "123:AAsecret",
    "name": "Echo",
    "code": "ABC",
    "email": "a@example.com",
    "site": "https://example.com/bot",
    "welcome": "Hello\nthere",
    "count": 5,
    "step": 15,
    "ratio": 0.25,
    "enabled": True,
    "mode": "slow",
    "level": 2,
    "tags": ["#a", "#b"],
    "features": ["a"],
    "owner": {"chat_id": 42, "password": "pw-secret", "notify": False},
}

Form = build_form_class(SCHEMA)


def test_every_field_kind_cleans_to_a_config():
    form = Form(VALID, run_checks=False)
    assert form.is_valid(), form.errors
    assert form.config == CONFIG
    assert form_to_config(form.cleaned_data, SCHEMA) == CONFIG
    validate_config(SCHEMA, form.config)


def test_it_builds_the_right_fields():
    form = Form()
    fields = form.fields
    assert list(fields)[:3] == ["bot_token", "name", "code"]
    assert fields["name"].label == "Name"
    assert fields["name"].help_text == "Shown to users."
    assert fields["name"].initial == "Bot"
    assert fields["code"].label == "Code"  # no title: the humanised key
    assert fields["count"].initial == 3
    assert (fields["count"].min_value, fields["count"].max_value) == (1, 10)
    assert fields["enabled"].required is False
    assert list(fields["mode"].choices) == [("fast", "Fast"), ("slow", "Slow")]
    assert next(iter(fields["level"].choices)) == ("", "—")  # optional: a blank choice
    assert fields["tags"].help_text == "One per line."
    assert fields["owner__chat_id"].required is True
    assert fields["owner__password"].required is False
    assert fields["owner__chat_id"].group == "Owner"
    assert fields["name"].group is None
    assert fields["bot_token"].otomat_check == "telegram_token"
    assert fields["bot_token"].otomat_secret is True
    html = str(form)
    assert '<textarea name="welcome"' in html
    assert 'type="email" name="email"' in html
    assert 'type="url" name="site"' in html


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("bot_token", "", "This field is required."),
        ("name", "A", "Ensure this value has at least 2 characters (it has 1)."),
        ("name", "A" * 21, "Ensure this value has at most 20 characters (it has 21)."),
        ("code", "abc", "Three capital letters."),
        ("email", "nope", "Enter a valid email address."),
        ("site", "not a url", "Enter a valid URL."),
        ("count", "11", "Ensure this value is less than or equal to 10."),
        ("count", "0", "Ensure this value is greater than or equal to 1."),
        ("count", "many", "Enter a whole number."),
        ("step", "7", "Ensure this value is a multiple of 5."),  # only the schema knows this
        ("ratio", "1.5", "Ensure this value is less than or equal to 1."),
        ("ratio", "abc", "Enter a number."),
        ("mode", "medium", "Select a valid choice. medium is not one of the available choices."),
        ("level", "7", "Select a valid choice. 7 is not one of the available choices."),
        ("tags", "#a\n#b\n#c\n#d", "Enter at most 3 lines."),
        ("tags", "#a\n#a", "“#a” appears more than once."),
        ("tags", "#a\nnohash", "“nohash”: Start with #."),
        ("features", ["c"], "Select a valid choice. c is not one of the available choices."),
        ("owner__chat_id", "", "This field is required."),
        ("owner__chat_id", "x", "Enter a whole number."),
    ],
)
def test_an_invalid_value_is_reported_next_to_its_field(field, value, message):
    form = Form({**VALID, field: value}, run_checks=False)
    assert not form.is_valid()
    assert form.errors == {field: [message]}
    assert form.config is None
    assert str(form[field].errors).startswith('<ul class="errorlist')  # rendered by the field


def test_an_unticked_box_is_false():
    form = Form({k: v for k, v in VALID.items() if k != "enabled"}, run_checks=False)
    assert form.is_valid(), form.errors
    assert form.config["enabled"] is False


def test_blank_optional_fields_are_left_out():
    required_only = {k: VALID[k] for k in ("bot_token", "name", "count", "mode", "owner__chat_id")}
    form = Form(required_only, run_checks=False)
    assert form.is_valid(), form.errors
    assert form.config == {
        "bot_token": "123:AAsecret",
        "name": "Echo",
        "count": 5,
        "enabled": False,
        "mode": "slow",
        "owner": {"chat_id": 42, "notify": False},
    }


def test_an_optional_object_left_blank_is_left_out():
    schema = {
        "type": "object",
        "properties": {
            "help": {
                "type": "object",
                "required": ["text"],
                "properties": {"text": {"type": "string"}, "links": {"type": "boolean"}},
            }
        },
    }
    form = build_form_class(schema)({}, run_checks=False)
    assert form.is_valid(), form.errors
    assert form.config == {}
    # A ticked box alone does not fill in the group (booleans always have a value).
    form = build_form_class(schema)({"help__links": "on"}, run_checks=False)
    assert form.is_valid(), form.errors
    assert form.config == {}
    form = build_form_class(schema)({"help__text": "Hi"}, run_checks=False)
    assert form.is_valid()
    assert form.config == {"help": {"text": "Hi", "links": False}}


def test_a_nested_object_round_trips():
    initial = config_to_initial(CONFIG, SCHEMA)
    assert initial["owner__chat_id"] == 42
    assert initial["owner__notify"] is False
    assert "owner__password" not in initial
    assert form_to_config(initial, SCHEMA, current=CONFIG) == CONFIG


def test_defaults_fill_in_what_the_config_leaves_out():
    schema = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "default": "Hi"},
            "count": {"type": "integer"},
            "help": {
                "type": "object",
                "properties": {
                    "text": {"type": "string", "default": "Help"},
                    "url": {"type": "string"},
                },
            },
            "empty": {"type": "object", "properties": {"x": {"type": "string"}}},
        },
    }
    assert apply_defaults(schema, {}) == {"text": "Hi", "help": {"text": "Help"}}
    config = {"text": "", "help": {"url": "u"}, "empty": {}}
    assert apply_defaults(schema, config) == {
        "text": "",
        "help": {"url": "u", "text": "Help"},
        "empty": {},
    }
    assert config == {"text": "", "help": {"url": "u"}, "empty": {}}  # not modified


# --- secrets ---------------------------------------------------------------------------------


def test_a_secret_is_a_password_input_that_never_renders_its_value():
    form = Form({**VALID, "name": "A"}, run_checks=False)  # invalid: the page is shown again
    assert not form.is_valid()
    html = str(form)
    assert 'type="password" name="bot_token"' in html
    assert "123:AAsecret" not in html
    assert "pw-secret" not in html
    assert 'value="Echo"' not in html  # name was "A" here
    assert 'value="A"' in html  # non-secret fields keep what was typed


def test_an_edit_form_never_shows_the_stored_secret():
    form = Form(current=CONFIG, run_checks=False)
    html = str(form)
    assert "123:AAsecret" not in html
    assert "pw-secret" not in html
    assert 'value="Echo"' in html
    assert "Leave blank to keep the current value." in form.fields["bot_token"].help_text
    assert form.fields["bot_token"].required is False


def test_a_blank_secret_on_edit_keeps_the_current_value():
    data = {**VALID, "bot_token": "", "owner__password": "", "name": "Renamed"}
    form = Form(data, current=CONFIG, run_checks=False)
    assert form.is_valid(), form.errors
    assert form.config == {**CONFIG, "name": "Renamed"}


def test_a_new_secret_on_edit_replaces_the_current_value():
    form = Form({**VALID, "bot_token": "456:new"}, current=CONFIG, run_checks=False)
    assert form.is_valid(), form.errors
    assert form.config["bot_token"] == "456:new"


def test_an_edit_form_class_leaves_keeping_secrets_to_the_caller():
    """The instances views build the form with editing=True and call keep_blank_secrets."""
    EditForm = build_form_class(SCHEMA, editing=True)
    form = EditForm({**VALID, "bot_token": "", "owner__password": ""}, run_checks=False)
    assert form.is_valid(), form.errors
    config = form_to_config(form.cleaned_data, SCHEMA)
    assert "bot_token" not in config
    assert keep_blank_secrets(config, CONFIG, SCHEMA) == CONFIG


def test_keep_blank_secrets_treats_empty_as_blank_and_keeps_absent_secrets_absent():
    current = {**CONFIG, "owner": {"chat_id": 42}}  # no password stored
    config = {**CONFIG, "bot_token": "", "owner": {"chat_id": 42, "password": ""}}
    assert keep_blank_secrets(config, current, SCHEMA) == current


def test_secrets_split_and_merge_with_dotted_paths():
    public, secret = split_secrets(SCHEMA, CONFIG)
    assert secret == {"bot_token": "123:AAsecret", "owner.password": "pw-secret"}
    assert "bot_token" not in public
    assert public["owner"] == {"chat_id": 42, "notify": False}
    assert merge_secrets(public, secret) == CONFIG
    assert CONFIG["owner"]["password"] == "pw-secret"  # the input was not modified
    assert secret_paths(SCHEMA) == ["bot_token", "owner.password"]
    assert checked_paths(SCHEMA, "telegram_token") == ["bot_token"]


# --- validate_config (shared with the API) -----------------------------------------------------


def test_validate_config_maps_errors_to_form_fields():
    config = {**CONFIG, "count": "5", "owner": {"notify": True}, "tags": ["#a", "bad"]}
    del config["name"]
    with pytest.raises(ConfigError) as excinfo:
        validate_config(SCHEMA, config)
    assert excinfo.value.errors == {
        "name": ["This field is required."],
        "count": ["Enter a whole number."],
        "owner__chat_id": ["This field is required."],
        "tags": ["Item 2: Start with #."],
    }
    assert excinfo.value.as_paths()["owner.chat_id"] == ["This field is required."]


def test_validate_config_refuses_unknown_settings():
    with pytest.raises(ConfigError) as excinfo:
        validate_config(SCHEMA, {**CONFIG, "welcom": "typo", "owner": {"chat_id": 1, "x": 2}})
    assert excinfo.value.errors == {
        "__all__": ["Unknown setting owner.x.", "Unknown setting welcom."]
    }


def test_validate_config_never_repeats_a_secret():
    schema = {
        "type": "object",
        "properties": {"token": {"type": "string", "pattern": "^\\d+:", "x-otomat-secret": True}},
    }
    with pytest.raises(ConfigError) as excinfo:
        validate_config(schema, {"token": "leaked-secret-value"})
    assert excinfo.value.errors == {"token": ["Enter a value in the expected format."]}
    assert "leaked-secret-value" not in str(excinfo.value)


def test_validate_config_refuses_a_non_object():
    with pytest.raises(ConfigError, match="must be an object"):
        validate_config(SCHEMA, ["not", "a", "dict"])


# --- property: edit form round trip ------------------------------------------------------------

words = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=8)


@st.composite
def configs(draw) -> dict:
    config = {
        "bot_token": draw(st.from_regex(r"\d{3,9}:[A-Za-z0-9_-]{5,20}", fullmatch=True)),
        "name": draw(
            st.text(alphabet=string.ascii_letters + " ", min_size=2, max_size=20)
            .map(str.strip)
            .filter(lambda s: len(s) >= 2)
        ),
        "count": draw(st.integers(1, 10)),
        "enabled": draw(st.booleans()),
        "mode": draw(st.sampled_from(["fast", "slow"])),
        "owner": {"chat_id": draw(st.integers(-(10**12), 10**12)), "notify": draw(st.booleans())},
    }
    optional = {
        "code": st.from_regex(r"[A-Z]{3}", fullmatch=True),
        "email": st.builds("{}@{}.com".format, words, words).map(str.lower),
        "site": st.builds("https://{}.org/{}".format, words, words).map(str.lower),
        "welcome": st.lists(words, min_size=1, max_size=3).map("\n".join),
        "step": st.integers(-100, 100).map(lambda n: n * 5),
        "ratio": st.floats(0, 1, allow_subnormal=False),
        "level": st.sampled_from([1, 2, 3]),
        "tags": st.lists(words.map(lambda w: "#" + w.lower()), min_size=1, max_size=3, unique=True),
        "features": st.lists(st.sampled_from(["a", "b"]), min_size=1, unique=True),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            config[key] = draw(strategy)
    if draw(st.booleans()):
        config["owner"]["password"] = draw(words)
    return config


def as_post_data(form) -> dict:
    """What a browser would submit for an untouched edit form (secrets blank)."""
    data = {}
    for name in form.fields:
        value = form.initial.get(name)
        if value is None:
            continue
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list) and name != "features":
            data[name] = "\n".join(value)
        elif isinstance(value, list):
            data[name] = value
        else:
            data[name] = str(value)
    return data


@hypothesis_settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(configs())
def test_an_untouched_edit_form_saves_the_same_config(config):
    validate_config(SCHEMA, config)
    assert form_to_config(config_to_initial(config, SCHEMA), SCHEMA, current=config) == config
    unbound = Form(current=config)
    form = Form(as_post_data(unbound), current=config, run_checks=False)
    assert form.is_valid(), form.errors
    assert form.config == config


# --- live checks ---------------------------------------------------------------------------------


def test_the_token_check_names_the_bot(bot_api):
    token = bot_api.add_bot("echo_bot")
    assert get_bot_username(token) == "echo_bot"
    assert check_telegram_token(token) == "@echo_bot"


def test_the_token_check_reports_a_rejected_token(bot_api):
    with pytest.raises(CheckError) as excinfo:
        get_bot_username("999:AAunknownunknown")
    assert str(excinfo.value) == "Telegram rejected this token (401 Unauthorized)"
    assert "AAunknown" not in str(excinfo.value)


def test_the_token_check_reports_an_unreachable_api(settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    settings.BOT_API_URL = f"http://127.0.0.1:{port}"
    with pytest.raises(CheckError) as excinfo:
        get_bot_username("123:AAsecretsecret", timeout=2)
    message = str(excinfo.value)
    assert message.startswith(f"Cannot reach the Bot API at http://127.0.0.1:{port}: ")
    assert "AAsecretsecret" not in message


def test_a_malformed_token_is_refused_without_a_request(bot_api):
    with pytest.raises(CheckError, match="does not look like a bot token"):
        get_bot_username("123:abc/../../admin")
    assert bot_api.requests == []


def test_tokens_never_reach_the_logs(bot_api, caplog):
    token = bot_api.add_bot("echo_bot")
    # Settings quieten httpx to WARNING; turn it up to prove the redaction, not the quiet.
    with caplog.at_level(logging.DEBUG, logger="httpx"):
        get_bot_username(token)
        with pytest.raises(CheckError):
            get_bot_username("999:AAunknownunknown")
    assert "HTTP Request: GET" in caplog.text  # httpx did log the requests...
    assert token.split(":")[1] not in caplog.text  # ...without the secret part
    assert "AAunknownunknown" not in caplog.text


def test_the_form_runs_the_check(bot_api):
    token = bot_api.add_bot("echo_bot")
    form = Form({**VALID, "bot_token": token})
    assert form.is_valid(), form.errors
    assert form.check_results == {"bot_token": "@echo_bot"}

    form = Form({**VALID, "bot_token": "999:AAunknownunknown"})
    assert not form.is_valid()
    assert form.errors == {"bot_token": ["Telegram rejected this token (401 Unauthorized)"]}
    assert "AAunknownunknown" not in str(form)


def test_an_unchanged_secret_is_not_checked_again_on_edit(bot_api):
    form = Form({**VALID, "bot_token": ""}, current=CONFIG)
    assert form.is_valid(), form.errors
    assert bot_api.requests == []


def test_checked_fields_get_htmx_attributes():
    form = build_form_class(SCHEMA, product_slug="echo")()
    attrs = form.fields["bot_token"].widget.attrs
    assert str(attrs["hx-post"]) == "/catalog/echo/check/bot_token/"
    assert attrs["hx-trigger"] == "input changed delay:500ms"
    assert attrs["hx-target"] == "next .check-result"
    assert 'hx-post="/catalog/echo/check/bot_token/"' in str(form["bot_token"])
    assert "hx-post" not in str(form["name"])


def test_numbers_are_floats_and_initials_are_decimals():
    initial = config_to_initial({**CONFIG, "ratio": 0.1}, SCHEMA)
    assert initial["ratio"] == Decimal("0.1")
    assert form_to_config(initial, SCHEMA, current=CONFIG)["ratio"] == 0.1


@pytest.mark.slow
def test_the_token_check_against_the_emulator(emulator):
    token = emulator.create_bot("greeter_bot")
    assert check_telegram_token(token) == "@greeter_bot"
    bot_id = token.split(":")[0]
    with pytest.raises(CheckError, match=r"Telegram rejected this token \(401"):
        check_telegram_token(f"{bot_id}:AAwrongwrongwrongwrong")
