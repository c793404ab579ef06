"""Reading and validating a product's manifest (``otomat.toml``) and its configuration schema.

The manifest is the contract between a product author and the platform, so every rule here is
checked up front with a message that names the key at fault — an author fixes a typo from the
message alone, and a bad product never reaches the database. The format is documented for
authors in docs/products.md; keep the two in step.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, SchemaError

from otomat.catalog import checks
from otomat.catalog.errors import ManifestError
from otomat.catalog.i18n import parse_translations

MANIFEST_NAME = "otomat.toml"

SLUG_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
SLUG_MAX = 64  # Product.slug's max_length
# Semantic-version-like: three numbers, optional pre-release/build suffix. Versions name
# folders on disk, so the allowed characters are also safe in a path.
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
VERSION_MAX = 64  # ProductVersion.version's max_length
ENTRY_RE = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$", re.ASCII)
# Config keys become form field names (``parent__child``) and Python identifiers in botkit.
PROPERTY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$", re.ASCII)

RUNTIMES = ("process", "shared")
HEALTH_CHECKS = ("updates", "heartbeat", "process")
MEMORY_MB_RANGE = (16, 4096)
DEFAULT_MEMORY_MB = 256
DEFAULT_HEALTH_CHECK = "process"  # the one check every program passes while it runs

# Known keys per section; anything else is a typo we refuse rather than silently ignore.
SECTIONS: dict[str, tuple[str, ...]] = {
    "product": ("slug", "name", "description", "version", "runtime", "entry", "command"),
    "config": ("schema",),
    "resources": ("memory_mb",),
    "health": ("check",),
    # "Try it" in the catalog: settings for a short-lived trial instance on the emulator,
    # merged over the schema's defaults (secrets are generated).
    "try": ("config", "minutes"),
    # Translations per language (otomat.catalog.i18n checks them against the schema).
    "i18n": (),
}
TRY_MINUTES_RANGE = (1, 120)
REQUIRED_PRODUCT_KEYS = ("slug", "name", "version", "runtime")

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCALAR_TYPES = ("string", "integer", "number", "boolean")
STRING_FORMATS = ("email", "uri")
WIDGETS = ("textarea",)
# Keywords that change a schema's shape in ways a form cannot show; refused where they appear.
STRUCTURAL_KEYWORDS = (
    "$ref",
    "$dynamicRef",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "const",
    "dependentSchemas",
    "dependentRequired",
    "patternProperties",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
    "prefixItems",
    "contains",
)
EXTENSIONS = (
    "x-otomat-secret",
    "x-otomat-check",
    "x-otomat-pattern-message",
    "x-otomat-enum-labels",
    "x-otomat-widget",
)


@dataclass(frozen=True)
class Manifest:
    """A validated manifest. ``config_schema`` is the parsed JSON Schema (always an object
    schema with ``properties``); ``data`` is the raw parsed TOML, kept for reference."""

    slug: str
    name: str
    description: str
    version: str
    runtime: str
    entry: str  # "package.module:callable", or "" when ``command`` is given
    command: tuple[str, ...]  # argv, or () when ``entry`` is given
    schema_file: str  # relative to the product folder, "" when there is no [config]
    config_schema: dict[str, Any] = field(hash=False, compare=False)
    memory_mb: int = DEFAULT_MEMORY_MB
    health_check: str = DEFAULT_HEALTH_CHECK
    data: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def parse_manifest(folder: Path) -> Manifest:
    """Read ``folder/otomat.toml`` and the schema it references.

    Returns a :class:`Manifest`; raises :class:`ManifestError` whose message names the key (or
    schema property) at fault, e.g. ``"[product].version: '1.x' is not a version like 1.2.0"``.
    Reads files only inside ``folder``.
    """
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(f"{MANIFEST_NAME} not found: a product folder must contain one.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{MANIFEST_NAME} is not UTF-8 text: {exc.reason}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{MANIFEST_NAME} is not valid TOML: {exc}") from exc

    _refuse_unknown(data, SECTIONS, where=MANIFEST_NAME, what="section")
    for section, known in SECTIONS.items():
        value = data.get(section)
        if value is None or section == "i18n":
            continue
        if not isinstance(value, dict):
            raise ManifestError(f"[{section}] must be a table (a [{section}] section)")
        _refuse_unknown(value, known, where=f"[{section}]", what="key")

    trial = data.get("try", {})
    if not isinstance(trial.get("config", {}), dict):
        raise ManifestError("[try].config must be a table of settings")
    minutes = trial.get("minutes", 15)
    low, high = TRY_MINUTES_RANGE
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not low <= minutes <= high:
        raise ManifestError(f"[try].minutes must be a whole number from {low} to {high}")

    product = data.get("product")
    if product is None:
        raise ManifestError("[product] section is missing")
    for key in REQUIRED_PRODUCT_KEYS:
        if key not in product:
            raise ManifestError(f"[product].{key} is required")

    slug = _string(product, "product", "slug")
    if len(slug) > SLUG_MAX or not SLUG_RE.match(slug):
        raise ManifestError(
            f"[product].slug: {slug!r} is not a valid slug (lowercase letters, digits and "
            f"single hyphens, starting with a letter, at most {SLUG_MAX} characters)"
        )
    name = _string(product, "product", "name").strip()
    if not name or len(name) > 200:
        raise ManifestError("[product].name must be 1 to 200 characters")
    description = _string(product, "product", "description", default="").strip()
    version = _string(product, "product", "version")
    if len(version) > VERSION_MAX or not VERSION_RE.match(version):
        raise ManifestError(f"[product].version: {version!r} is not a version like 1.2.0")
    runtime = _string(product, "product", "runtime")
    if runtime not in RUNTIMES:
        raise ManifestError(f"[product].runtime: {runtime!r} is not one of {_one_of(RUNTIMES)}")
    entry, command = _entry_or_command(product, folder, runtime)

    schema_file, schema = "", {"type": "object", "properties": {}}
    if "config" in data:
        if "schema" not in data["config"]:
            raise ManifestError("[config].schema is required in a [config] section")
        schema_file = _string(data["config"], "config", "schema")
        schema = _read_schema(folder, schema_file)
    if "i18n" in data:
        # Also copies the schema's translations into ``schema`` as x-otomat-i18n.
        parse_translations(data["i18n"], schema, source=schema_file or MANIFEST_NAME)

    memory_mb = DEFAULT_MEMORY_MB
    if "memory_mb" in data.get("resources", {}):
        memory_mb = data["resources"]["memory_mb"]
        low, high = MEMORY_MB_RANGE
        if isinstance(memory_mb, bool) or not isinstance(memory_mb, int):
            raise ManifestError(
                f"[resources].memory_mb: expected a whole number, got {memory_mb!r}"
            )
        if not low <= memory_mb <= high:
            raise ManifestError(
                f"[resources].memory_mb: {memory_mb} is outside the allowed {low}–{high}"
            )

    health_check = DEFAULT_HEALTH_CHECK
    if "check" in data.get("health", {}):
        health_check = _string(data["health"], "health", "check")
        if health_check not in HEALTH_CHECKS:
            raise ManifestError(
                f"[health].check: {health_check!r} is not one of {_one_of(HEALTH_CHECKS)}"
            )

    return Manifest(
        slug=slug,
        name=name,
        description=description,
        version=version,
        runtime=runtime,
        entry=entry,
        command=command,
        schema_file=schema_file,
        config_schema=schema,
        memory_mb=memory_mb,
        health_check=health_check,
        data=data,
    )


def validate_config_schema(schema: Any, *, source: str = "config schema") -> None:
    """Check that ``schema`` is a Draft 2020-12 JSON Schema the install form can render.

    Returns None; raises :class:`ManifestError` naming the property at fault. ``source`` is the
    file name used in messages. Rules (documented in docs/products.md): an object schema whose
    properties are strings, integers, numbers, booleans, enums, arrays of strings, or objects of
    those (one level deep); no composition keywords; only known ``x-otomat-*`` extensions.
    """
    if not isinstance(schema, dict):
        raise ManifestError(f"{source}: the schema must be a JSON object")
    dialect = schema.get("$schema")
    if dialect is not None and dialect.rstrip("#") != JSON_SCHEMA_DIALECT:
        raise ManifestError(
            f"{source}: $schema {dialect!r} is not supported; use {JSON_SCHEMA_DIALECT!r} "
            "(or leave $schema out)"
        )
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path) or "the root"
        raise ManifestError(
            f"{source} is not a valid JSON Schema: {exc.message} (at {where})"
        ) from exc
    if schema.get("type") != "object":
        raise ManifestError(f'{source}: the root must have "type": "object"')
    _check_object(schema, source=source, path="", depth=0)


def _check_object(schema: dict, *, source: str, path: str, depth: int) -> None:
    where = f"{source}: property {path!r}" if path else source
    _refuse_structural(schema, where)
    _refuse_unknown_extensions(schema, where, allowed=())
    extra = schema.get("additionalProperties")
    if extra is not None and not isinstance(extra, bool):
        # Configuration objects are closed (validate_config refuses unknown keys), so a
        # schema for extra keys would never apply.
        raise ManifestError(f"{where}: additionalProperties must be true or false, not a schema")
    properties = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in properties:
            raise ManifestError(f"{where}: required names {name!r}, which is not in properties")
    for name, prop in properties.items():
        prop_path = f"{path}.{name}" if path else name
        if not PROPERTY_RE.match(name) or "__" in name:
            raise ManifestError(
                f"{source}: property {prop_path!r}: names must start with a letter and contain "
                "only letters, digits and single underscores"
            )
        _check_property(prop, source=source, path=prop_path, depth=depth)


def _check_property(prop: Any, *, source: str, path: str, depth: int) -> None:
    where = f"{source}: property {path!r}"
    if not isinstance(prop, dict):
        raise ManifestError(f"{where}: must be a JSON object describing the field")
    _refuse_structural(prop, where)
    kind = prop.get("type")
    if isinstance(kind, list):
        raise ManifestError(f"{where}: a list of types is not supported; give one type")

    if "enum" in prop:
        _check_enum(prop, where)
    elif kind in SCALAR_TYPES:
        pass
    elif kind == "array":
        _check_array(prop, where)
    elif kind == "object":
        if depth >= 1:
            raise ManifestError(f"{where}: objects can be nested one level deep only")
        _check_object(prop, source=source, path=path, depth=depth + 1)
        _check_default(prop, where)
        return
    elif kind is None:
        raise ManifestError(f'{where}: "type" is required (or "enum" for a choice)')
    else:
        raise ManifestError(
            f"{where}: type {kind!r} is not supported; use string, integer, number, boolean, "
            "enum, an array of strings or an object"
        )

    allowed = ["x-otomat-pattern-message"]
    if kind == "string" and "enum" not in prop:
        allowed += ["x-otomat-secret", "x-otomat-check", "x-otomat-widget"]
    if "enum" in prop or kind == "array":
        allowed.append("x-otomat-enum-labels")
    if kind == "array" and "enum" not in prop.get("items", {}):
        allowed.append("x-otomat-check")  # run on each item
    _refuse_unknown_extensions(prop, where, allowed=tuple(allowed))

    if "format" in prop:
        if kind != "string":
            raise ManifestError(f"{where}: format applies to strings only")
        if prop["format"] not in STRING_FORMATS:
            raise ManifestError(
                f"{where}: format {prop['format']!r} is not supported; use {_one_of(STRING_FORMATS)}"
            )
    if "pattern" in prop:
        _check_pattern(prop["pattern"], where)
    if not isinstance(prop.get("x-otomat-pattern-message", ""), str):
        raise ManifestError(f"{where}: x-otomat-pattern-message must be a string")
    secret = prop.get("x-otomat-secret", False)
    if not isinstance(secret, bool):
        raise ManifestError(f"{where}: x-otomat-secret must be true or false")
    if (secret or prop.get("writeOnly")) and "default" in prop:
        raise ManifestError(f"{where}: a secret cannot have a default (it would not be secret)")
    if "x-otomat-check" in prop:
        name = prop["x-otomat-check"]
        if not isinstance(name, str) or not checks.is_known_check(name):
            raise ManifestError(
                f"{where}: x-otomat-check {name!r} is not a known check "
                f"({_one_of(sorted(checks.CHECKS))}, or product:module:function for the "
                "product's own)"
            )
    if "x-otomat-widget" in prop and prop["x-otomat-widget"] not in WIDGETS:
        raise ManifestError(
            f"{where}: x-otomat-widget {prop['x-otomat-widget']!r} is not one of {_one_of(WIDGETS)}"
        )
    _check_default(prop, where)


def _check_enum(prop: dict, where: str) -> None:
    values = prop["enum"]
    kind = prop.get("type")
    if not values:
        raise ManifestError(f"{where}: enum must list at least one value")
    if all(isinstance(v, str) for v in values):
        expected = "string"
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        expected = "integer"
    else:
        raise ManifestError(f"{where}: enum values must be all strings or all integers")
    if kind is not None and kind != expected:
        raise ManifestError(f"{where}: enum values are {expected}s but type is {kind!r}")
    _check_labels(prop, values, where)


def _check_array(prop: dict, where: str) -> None:
    items = prop.get("items")
    if not isinstance(items, dict) or items.get("type") != "string":
        raise ManifestError(
            f'{where}: only arrays of strings are supported ("items": {{"type": "string"}})'
        )
    _refuse_structural(items, f"{where} items")
    _refuse_unknown_extensions(items, f"{where} items", allowed=())
    if "format" in items:
        raise ManifestError(f"{where}: format is not supported on array items")
    if "pattern" in items:
        _check_pattern(items["pattern"], f"{where} items")
    if "enum" in items:
        _check_enum(items, f"{where} items")
        if "x-otomat-enum-labels" in prop:
            _check_labels(prop, items["enum"], where)
    elif "x-otomat-enum-labels" in prop:
        raise ManifestError(f"{where}: x-otomat-enum-labels needs items with an enum")


def _check_labels(prop: dict, values: list, where: str) -> None:
    labels = prop.get("x-otomat-enum-labels")
    if labels is None:
        return
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise ManifestError(f"{where}: x-otomat-enum-labels must be a list of strings")
    if len(labels) != len(values):
        raise ManifestError(
            f"{where}: x-otomat-enum-labels has {len(labels)} labels for {len(values)} values"
        )


def _check_pattern(pattern: Any, where: str) -> None:
    try:
        re.compile(pattern)
    except (re.error, TypeError) as exc:
        raise ManifestError(
            f"{where}: pattern {pattern!r} is not a valid regular expression: {exc}"
        ) from exc


def _check_default(prop: dict, where: str) -> None:
    if "default" not in prop:
        return
    # Validate the default against its own property schema so a product cannot ship a form
    # whose pre-filled value is refused on submit.
    errors = sorted(Draft202012Validator(prop).iter_errors(prop["default"]), key=str)
    if errors:
        raise ManifestError(
            f"{where}: the default {prop['default']!r} is not valid: {errors[0].message}"
        )


def _refuse_structural(schema: dict, where: str) -> None:
    for keyword in STRUCTURAL_KEYWORDS:
        if keyword in schema:
            raise ManifestError(f"{where}: {keyword} is not supported by the configuration form")


def _refuse_unknown_extensions(schema: dict, where: str, *, allowed: tuple[str, ...]) -> None:
    for key in schema:
        if key.startswith("x-otomat-") and key not in allowed:
            if key in EXTENSIONS:
                raise ManifestError(f"{where}: {key} does not apply to this kind of field")
            raise ManifestError(f"{where}: unknown extension {key!r}{_suggest(key, EXTENSIONS)}")


def _entry_or_command(product: dict, folder: Path, runtime: str) -> tuple[str, tuple[str, ...]]:
    has_entry, has_command = "entry" in product, "command" in product
    if has_entry == has_command:
        raise ManifestError(
            '[product]: give exactly one of entry (a botkit product, "package.module:callable") '
            'or command (any program, a list like ["python3", "main.py"])'
        )
    if has_entry:
        entry = _string(product, "product", "entry")
        if not ENTRY_RE.match(entry):
            raise ManifestError(f'[product].entry: {entry!r} is not like "package.module:callable"')
        module = entry.split(":", 1)[0].replace(".", "/")
        if not ((folder / f"{module}.py").is_file() or (folder / module / "__init__.py").is_file()):
            raise ManifestError(
                f"[product].entry: module file {module}.py (or {module}/__init__.py) is not in "
                "the product folder"
            )
        return entry, ()
    command = product["command"]
    if (
        not isinstance(command, list)
        or not command
        or not all(isinstance(arg, str) and arg for arg in command)
    ):
        raise ManifestError(
            '[product].command: expected a non-empty list of strings, like ["python3", "main.py"]'
        )
    if runtime == "shared":
        raise ManifestError(
            "[product].command: the shared runtime runs botkit products only; give entry "
            'instead, or use runtime = "process"'
        )
    return "", tuple(command)


def _read_schema(folder: Path, name: str) -> dict[str, Any]:
    base = folder.resolve()
    path = (folder / name).resolve()
    # resolve() follows symlinks and "..", so this also refuses a symlink pointing outside.
    if not path.is_relative_to(base) or Path(name).is_absolute():
        raise ManifestError(f"[config].schema: {name!r} must be a file inside the product folder")
    if not path.is_file():
        raise ManifestError(f"[config].schema: {name!r} not found in the product folder")
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{name} is not UTF-8 text: {exc.reason}") from exc
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"{name} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    validate_config_schema(schema, source=name)
    schema.setdefault("properties", {})
    return schema


def _string(section: Mapping, section_name: str, key: str, default: str | None = None) -> str:
    if key not in section and default is not None:
        return default
    value = section[key]
    if not isinstance(value, str):
        raise ManifestError(
            f"[{section_name}].{key}: expected a string, got {type(value).__name__} {value!r}"
        )
    return value


def _refuse_unknown(table: Mapping, known: Mapping | tuple, *, where: str, what: str) -> None:
    for key in table:
        if key not in known:
            label = f"[{key}]" if what == "section" else f"{where}.{key}"
            raise ManifestError(
                f"{where}: unknown {what} {label}{_suggest(key, tuple(known))}"
                if what == "section"
                else f"{label}: unknown key{_suggest(key, tuple(known))}"
            )


def _suggest(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _one_of(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(repr(v) for v in values)
