"""otomat.toml and config schema validation: every rule refuses with a message naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otomat.catalog.errors import ManifestError
from otomat.catalog.manifest import parse_manifest, validate_config_schema
from otomat.catalog.tests.conftest import MANIFEST, SCHEMA, write_product

REPO = Path(__file__).resolve().parents[3]


def refused(folder: Path) -> str:
    with pytest.raises(ManifestError) as excinfo:
        parse_manifest(folder)
    return str(excinfo.value)


def test_it_reads_a_valid_manifest(product):
    manifest = parse_manifest(product)
    assert manifest.slug == "echo"
    assert manifest.name == "Echo Bot"
    assert manifest.description == "Repeats what you say."
    assert manifest.version == "1.0.0"
    assert manifest.runtime == "process"
    assert manifest.entry == "echo.bot:build_router"
    assert manifest.command == ()
    assert manifest.memory_mb == 128
    assert manifest.health_check == "updates"
    assert manifest.schema_file == "config.schema.json"
    assert manifest.config_schema["properties"]["bot_token"]["x-otomat-secret"] is True
    assert manifest.data["product"]["slug"] == "echo"


def test_it_reads_the_first_party_greeter():
    manifest = parse_manifest(REPO / "products" / "greeter")
    assert (manifest.slug, manifest.runtime) == ("greeter", "process")


def test_defaults_when_optional_sections_are_left_out(tmp_path):
    text = MANIFEST.split("[config]")[0]
    manifest = parse_manifest(write_product(tmp_path / "p", manifest=text))
    assert manifest.memory_mb == 256
    assert manifest.health_check == "process"
    assert manifest.config_schema == {"type": "object", "properties": {}}
    assert manifest.schema_file == ""


def test_a_command_product(tmp_path):
    text = MANIFEST.replace('entry = "echo.bot:build_router"', 'command = ["python3", "main.py"]')
    manifest = parse_manifest(write_product(tmp_path / "p", manifest=text))
    assert manifest.command == ("python3", "main.py")
    assert manifest.entry == ""


def test_an_entry_module_may_be_a_package(tmp_path):
    text = MANIFEST.replace("echo.bot:build_router", "echo:build_router")
    assert parse_manifest(write_product(tmp_path / "p", manifest=text)).entry == "echo:build_router"


def test_it_refuses_a_folder_without_manifest(tmp_path):
    assert "otomat.toml not found" in refused(tmp_path)


def test_it_refuses_invalid_toml(tmp_path):
    message = refused(write_product(tmp_path / "p", manifest="[product\nslug = 1"))
    assert message.startswith("otomat.toml is not valid TOML")


def edited(old: str, new: str) -> str:
    assert old in MANIFEST, old
    return MANIFEST.replace(old, new)


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (
            MANIFEST.replace("[resources]", "[resource]"),
            "unknown section [resource] (did you mean 'resources'?)",
        ),
        (MANIFEST + "\n[plans]\nx = 1\n", "unknown section [plans]"),
        (
            edited("version =", "verison ="),
            "[product].verison: unknown key (did you mean 'version'?)",
        ),
        (edited("memory_mb = 128", "memory = 128"), "[resources].memory: unknown key"),
        ("[config]\nschema = 'config.schema.json'\n", "[product] section is missing"),
        ('product = "x"\n', "[product] must be a table"),
        (edited('slug = "echo"\n', ""), "[product].slug is required"),
        (edited('name = "Echo Bot"\n', ""), "[product].name is required"),
        (edited('version = "1.0.0"\n', ""), "[product].version is required"),
        (edited('runtime = "process"\n', ""), "[product].runtime is required"),
        (
            edited('slug = "echo"', 'slug = "Echo_Bot"'),
            "[product].slug: 'Echo_Bot' is not a valid slug",
        ),
        (edited('slug = "echo"', 'slug = "echo-"'), "[product].slug: 'echo-' is not a valid slug"),
        (edited('slug = "echo"', "slug = 5"), "[product].slug: expected a string, got int 5"),
        (edited('name = "Echo Bot"', 'name = "  "'), "[product].name must be 1 to 200 characters"),
        (
            edited('version = "1.0.0"', 'version = "1.x"'),
            "[product].version: '1.x' is not a version like 1.2.0",
        ),
        (
            edited('version = "1.0.0"', 'version = "1.0"'),
            "[product].version: '1.0' is not a version like 1.2.0",
        ),
        (edited('version = "1.0.0"', 'version = "1.0.0/../x"'), "is not a version like 1.2.0"),
        (
            edited('runtime = "process"', 'runtime = "docker"'),
            "[product].runtime: 'docker' is not one of 'process', 'shared'",
        ),
        (edited('entry = "echo.bot:build_router"', ""), "give exactly one of entry"),
        (
            edited(
                'entry = "echo.bot:build_router"',
                'entry = "echo.bot:build_router"\ncommand = ["x"]',
            ),
            "give exactly one of entry",
        ),
        (
            edited("echo.bot:build_router", "echo/bot.py"),
            "[product].entry: 'echo/bot.py' is not like \"package.module:callable\"",
        ),
        (
            edited("echo.bot:build_router", "echo.missing:build"),
            "[product].entry: module file echo/missing.py",
        ),
        (
            edited('entry = "echo.bot:build_router"', 'command = "python3 main.py"'),
            "[product].command: expected a non-empty list of strings",
        ),
        (
            edited('entry = "echo.bot:build_router"', "command = []"),
            "[product].command: expected a non-empty list of strings",
        ),
        (
            edited('entry = "echo.bot:build_router"', 'command = ["python3", 1]'),
            "[product].command: expected a non-empty list of strings",
        ),
        (
            edited(
                'runtime = "process"\nentry = "echo.bot:build_router"',
                'runtime = "shared"\ncommand = ["python3", "main.py"]',
            ),
            "[product].command: the shared runtime runs botkit products only",
        ),
        (
            edited('schema = "config.schema.json"', 'schema = "missing.json"'),
            "[config].schema: 'missing.json' not found",
        ),
        (
            edited('schema = "config.schema.json"', 'schema = "../outside.json"'),
            "must be a file inside the product folder",
        ),
        (
            edited('schema = "config.schema.json"', 'schema = "/etc/passwd"'),
            "must be a file inside the product folder",
        ),
        (edited('schema = "config.schema.json"\n', ""), "[config].schema is required"),
        (
            edited("memory_mb = 128", "memory_mb = 8"),
            "[resources].memory_mb: 8 is outside the allowed 16–4096",
        ),
        (
            edited("memory_mb = 128", "memory_mb = 5000"),
            "[resources].memory_mb: 5000 is outside the allowed 16–4096",
        ),
        (
            edited("memory_mb = 128", 'memory_mb = "128"'),
            "[resources].memory_mb: expected a whole number",
        ),
        (
            edited('check = "updates"', 'check = "http"'),
            "[health].check: 'http' is not one of 'updates', 'heartbeat', 'process'",
        ),
    ],
)
def test_it_refuses_a_bad_manifest(tmp_path, manifest, expected):
    (tmp_path / "outside.json").write_text(json.dumps(SCHEMA))
    assert expected in refused(write_product(tmp_path / "p", manifest=manifest))


def test_it_refuses_a_schema_that_is_not_json(tmp_path):
    message = refused(write_product(tmp_path / "p", schema='{"type": "object",}'))
    assert message.startswith("config.schema.json is not valid JSON:")
    assert "line 1" in message


def test_it_refuses_a_schema_that_escapes_through_a_symlink(tmp_path):
    (tmp_path / "secret.json").write_text(json.dumps(SCHEMA))
    folder = write_product(tmp_path / "p")
    (folder / "config.schema.json").unlink()
    (folder / "config.schema.json").symlink_to(tmp_path / "secret.json")
    assert "must be a file inside the product folder" in refused(folder)


def schema_with(name: str, prop: dict, **root) -> dict:
    return {"type": "object", "properties": {name: prop}, **root}


def schema_refused(schema) -> str:
    with pytest.raises(ManifestError) as excinfo:
        validate_config_schema(schema, source="config.schema.json")
    return str(excinfo.value)


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ([], "config.schema.json: the schema must be a JSON object"),
        (
            {"type": 5},
            "config.schema.json is not a valid JSON Schema: 5 is not valid under any of the given schemas (at type)",
        ),
        ({"type": "array"}, 'config.schema.json: the root must have "type": "object"'),
        (
            {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"},
            "$schema 'http://json-schema.org/draft-07/schema#' is not supported",
        ),
        ({"type": "object", "oneOf": [{}]}, "config.schema.json: oneOf is not supported"),
        (
            {"type": "object", "required": ["x"], "properties": {}},
            "required names 'x', which is not in properties",
        ),
        (
            {"type": "object", "additionalProperties": {"type": "string"}},
            "additionalProperties must be true or false",
        ),
        (schema_with("x", {"type": "null"}), "property 'x': type 'null' is not supported"),
        (
            schema_with("x", {"type": ["string", "null"]}),
            "property 'x': a list of types is not supported",
        ),
        (schema_with("x", {"title": "X"}), "property 'x': \"type\" is required"),
        (schema_with("x", {"$ref": "#/$defs/y"}), "property 'x': $ref is not supported"),
        (
            schema_with("x", {"type": "string", "anyOf": [{}]}),
            "property 'x': anyOf is not supported",
        ),
        (
            schema_with("x", {"type": "array", "items": {"type": "integer"}}),
            "property 'x': only arrays of strings are supported",
        ),
        (schema_with("x", {"type": "array"}), "property 'x': only arrays of strings are supported"),
        (
            schema_with(
                "x", {"type": "object", "properties": {"y": {"type": "object", "properties": {}}}}
            ),
            "property 'x.y': objects can be nested one level deep only",
        ),
        (
            schema_with("x", {"type": "object", "properties": {"y": {"type": "null"}}}),
            "property 'x.y': type 'null' is not supported",
        ),
        (
            schema_with("x", {"type": "date"}),
            "is not a valid JSON Schema: 'date' is not valid under any of the given schemas (at properties/x/type)",
        ),
        (
            schema_with("x", {"type": "string", "x-otomat-secrete": True}),
            "property 'x': unknown extension 'x-otomat-secrete' (did you mean 'x-otomat-secret'?)",
        ),
        (
            schema_with("x", {"type": "integer", "x-otomat-secret": True}),
            "property 'x': x-otomat-secret does not apply to this kind of field",
        ),
        (
            schema_with("x", {"type": "string", "x-otomat-secret": "yes"}),
            "x-otomat-secret must be true or false",
        ),
        (
            schema_with("x", {"type": "string", "x-otomat-secret": True, "default": "123:abc"}),
            "property 'x': a secret cannot have a default",
        ),
        (
            schema_with("x", {"type": "string", "x-otomat-check": "site_supported"}),
            "property 'x': x-otomat-check 'site_supported' is not a known check",
        ),
        (
            schema_with("x", {"type": "string", "x-otomat-widget": "wysiwyg"}),
            "x-otomat-widget 'wysiwyg' is not one of 'textarea'",
        ),
        (
            schema_with("x", {"type": "string", "x-otomat-pattern-message": 5}),
            "x-otomat-pattern-message must be a string",
        ),
        (
            schema_with("x", {"type": "string", "format": "date"}),
            "property 'x': format 'date' is not supported",
        ),
        (
            schema_with("x", {"type": "integer", "format": "email"}),
            "property 'x': format applies to strings only",
        ),
        (
            schema_with("x", {"type": "string", "pattern": "(unclosed"}),
            "'(unclosed' is not a 'regex' (at properties/x/pattern)",
        ),
        (
            schema_with("x", {"enum": ["a", 1]}),
            "property 'x': enum values must be all strings or all integers",
        ),
        (
            schema_with("x", {"type": "integer", "enum": ["a"]}),
            "enum values are strings but type is 'integer'",
        ),
        (
            schema_with("x", {"enum": ["a", "b"], "x-otomat-enum-labels": ["A"]}),
            "x-otomat-enum-labels has 1 labels for 2 values",
        ),
        (
            schema_with(
                "x",
                {
                    "type": "object",
                    "required": ["y"],
                    "properties": {"y": {"type": "string"}},
                    "default": {},
                },
            ),
            "property 'x': the default {} is not valid: 'y' is a required property",
        ),
        (
            schema_with("x", {"type": "integer", "minimum": 5, "default": 1}),
            "property 'x': the default 1 is not valid: 1 is less than the minimum of 5",
        ),
        (
            schema_with("bot-token", {"type": "string"}),
            "property 'bot-token': names must start with a letter",
        ),
        (
            schema_with("a__b", {"type": "string"}),
            "property 'a__b': names must start with a letter",
        ),
        (
            schema_with("x", {"type": "string", "const": "a"}),
            "property 'x': const is not supported",
        ),
    ],
)
def test_it_refuses_an_unsupported_schema(schema, expected):
    assert expected in schema_refused(schema)


def test_a_bad_schema_file_is_named_in_the_message(tmp_path):
    folder = write_product(tmp_path / "p", schema=schema_with("x", {"type": "null"}))
    assert refused(folder).startswith("config.schema.json: property 'x'")


def test_it_accepts_every_supported_field_kind():
    validate_config_schema(
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["token"],
            "properties": {
                "token": {
                    "type": "string",
                    "x-otomat-secret": True,
                    "x-otomat-check": "telegram_token",
                },
                "text": {"type": "string", "x-otomat-widget": "textarea", "maxLength": 10},
                "code": {
                    "type": "string",
                    "pattern": "^[A-Z]+$",
                    "x-otomat-pattern-message": "Capitals",
                },
                "email": {"type": "string", "format": "email"},
                "site": {"type": "string", "format": "uri"},
                "count": {"type": "integer", "minimum": 1, "default": 3},
                "ratio": {"type": "number", "exclusiveMaximum": 1},
                "on": {"type": "boolean", "default": True},
                "lang": {"enum": ["en", "pl"], "x-otomat-enum-labels": ["English", "Polski"]},
                "level": {"type": "integer", "enum": [1, 2, 3]},
                "tags": {
                    "type": "array",
                    "items": {"type": "string", "pattern": "^#"},
                    "maxItems": 3,
                },
                "features": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["a", "b"]},
                    "x-otomat-enum-labels": ["A", "B"],
                },
                "admin": {
                    "type": "object",
                    "title": "Admin",
                    "required": ["chat_id"],
                    "properties": {
                        "chat_id": {"type": "integer"},
                        "password": {"type": "string", "writeOnly": True},
                    },
                },
            },
        }
    )
