"""From a product's configuration JSON Schema to a Django form, and back to a configuration.

One schema drives the install form, the edit form, the API and the runtime, so the rules are in
one place: the form's ``clean`` ends with :func:`validate_config`, the same function the API
calls, and its errors are mapped back to form fields. The supported schema subset is checked at
import by :func:`otomat.catalog.manifest.validate_config_schema`, so this module can assume it.

Naming: a top-level property ``bot_token`` is the form field ``bot_token``; a property ``chat_id``
inside the object ``admin`` is the field ``admin__chat_id`` and the dotted path ``admin.chat_id``
(used by :func:`split_secrets`).

Secrets (``"x-otomat-secret": true`` or ``"writeOnly": true``) render as password inputs that
never show a value. On an edit form (built with ``current=``) a blank secret keeps the stored
value. Validation messages never repeat the submitted value.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator, URLValidator, validate_email
from django.urls import reverse_lazy
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from jsonschema import Draft202012Validator, FormatChecker

from otomat.catalog.checks import run_check
from otomat.catalog.errors import CheckError, ConfigError
from otomat.catalog.i18n import schema_text
from otomat.catalog.values import config_value_problems, text_problem

SEP = "__"  # form field name separator for nested properties
KEEP_SECRET_HELP = gettext_lazy("Leave blank to keep the current value.")
GENERIC_PATTERN_MESSAGE = gettext_lazy("Enter a value in the expected format.")
NON_FIELD = "__all__"

# Formats checked the same way by the form and by validate_config (jsonschema alone would
# skip "uri" without an optional dependency, and the API would accept what the form refuses).
FORMAT_CHECKER = FormatChecker(formats=())


@FORMAT_CHECKER.checks("email", raises=ValidationError)
def _is_email(value: object) -> bool:
    if isinstance(value, str):
        validate_email(value)
    return True


@FORMAT_CHECKER.checks("uri", raises=ValidationError)
def _is_uri(value: object) -> bool:
    if isinstance(value, str):
        URLValidator()(value)
    return True


# --- the schema, flattened -------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """One form field derived from a schema property."""

    name: str  # form field name ("admin__chat_id")
    path: tuple[str, ...]  # ("admin", "chat_id")
    schema: dict[str, Any] = field(hash=False, compare=False)
    kind: str  # string | integer | number | boolean | enum | lines | choices
    required: bool  # required on the install form
    secret: bool
    check: str | None  # x-otomat-check name

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class Group:
    """Consecutive top-level fields (``title`` None) or the fields of one nested object."""

    title: str | None
    description: str
    names: tuple[str, ...]


def is_secret(prop: Mapping[str, Any]) -> bool:
    return bool(prop.get("x-otomat-secret") or prop.get("writeOnly"))


def _kind(prop: Mapping[str, Any]) -> str:
    if "enum" in prop:
        return "enum"
    if prop.get("type") == "array":
        return "choices" if "enum" in prop.get("items", {}) else "lines"
    return prop["type"]


def field_specs(schema: Mapping[str, Any]) -> list[FieldSpec]:
    """Every leaf field of ``schema`` in schema order (nested objects flattened)."""
    specs: list[FieldSpec] = []
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        if prop.get("type") == "object":
            child_required = set(prop.get("required", []))
            for child, child_prop in prop.get("properties", {}).items():
                specs.append(
                    _spec((name, child), child_prop, name in required and child in child_required)
                )
        else:
            specs.append(_spec((name,), prop, name in required))
    return specs


def _spec(path: tuple[str, ...], prop: dict[str, Any], required: bool) -> FieldSpec:
    kind = _kind(prop)
    if kind == "boolean":
        required = False  # an unticked box is a value (false), not a missing one
    elif kind in ("lines", "choices"):
        # An empty list satisfies "required"; what makes a list non-empty is minItems.
        required = prop.get("minItems", 0) > 0
    return FieldSpec(
        name=SEP.join(path),
        path=path,
        schema=prop,
        kind=kind,
        required=required,
        secret=is_secret(prop),
        check=prop.get("x-otomat-check"),
    )


def field_groups(schema: Mapping[str, Any]) -> list[Group]:
    """Fields grouped for display: runs of top-level fields, and one group per nested object."""
    groups: list[Group] = []
    loose: list[str] = []
    for name, prop in schema.get("properties", {}).items():
        if prop.get("type") != "object":
            loose.append(name)
            continue
        if loose:
            groups.append(Group(None, "", tuple(loose)))
            loose = []
        children = tuple(f"{name}{SEP}{child}" for child in prop.get("properties", {}))
        groups.append(
            Group(
                schema_text(prop, "title") or capfirst(name.replace("_", " ")),
                schema_text(prop, "description") or "",
                children,
            )
        )
    if loose:
        groups.append(Group(None, "", tuple(loose)))
    return groups


def secret_paths(schema: Mapping[str, Any]) -> list[str]:
    """Dotted paths of the secret fields."""
    return [spec.dotted for spec in field_specs(schema) if spec.secret]


def checked_paths(schema: Mapping[str, Any], check: str) -> list[str]:
    """Dotted paths of the fields with ``x-otomat-check: check`` (e.g. the bot token field)."""
    return [spec.dotted for spec in field_specs(schema) if spec.check == check]


# --- form fields -----------------------------------------------------------------------------


class LinesField(forms.CharField):
    """An array of strings edited as a textarea, one item per line; cleans to ``list[str]``."""

    widget = forms.Textarea

    def __init__(
        self, *, item_schema: Mapping[str, Any], array_schema: Mapping[str, Any], **kwargs: Any
    ) -> None:
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 4}))
        super().__init__(**kwargs)
        self.item_schema = item_schema
        self.array_schema = array_schema

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, list | tuple):
            return [str(item).strip() for item in value if str(item).strip()]
        text = super().to_python(value) or ""
        return [line.strip() for line in text.splitlines() if line.strip()]

    def validate(self, value: list[str]) -> None:
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")

    def run_validators(self, value: list[str]) -> None:
        errors = [
            ValidationError(message)
            for message in _list_messages(value, self.array_schema, self.item_schema)
        ]
        if errors:
            raise ValidationError(errors)


def _list_messages(
    items: list[str], array: Mapping[str, Any], item: Mapping[str, Any]
) -> list[str]:
    messages: list[str] = []
    low, high = array.get("minItems"), array.get("maxItems")
    if low is not None and len(items) < low:
        messages.append(
            ngettext("Enter at least %(n)d line.", "Enter at least %(n)d lines.", low) % {"n": low}
        )
    if high is not None and len(items) > high:
        messages.append(
            ngettext("Enter at most %(n)d line.", "Enter at most %(n)d lines.", high) % {"n": high}
        )
    if array.get("uniqueItems"):
        seen: set[str] = set()
        for value in items:
            if value in seen:
                messages.append(_("%(item)s appears more than once.") % {"item": _quote(value)})
            seen.add(value)
    validator = Draft202012Validator(dict(item))
    for value in items:
        for error in validator.iter_errors(value):
            reason = _message(error, prop=array)
            messages.append(f"{_quote(value)}: {reason}")
    return messages


def _quote(value: str) -> str:
    return f"“{value[:40]}…”" if len(value) > 40 else f"“{value}”"


def _make_field(spec: FieldSpec, *, product_slug: str | None) -> forms.Field:
    prop = spec.schema
    common: dict[str, Any] = {
        "label": schema_text(prop, "title") or capfirst(spec.path[-1].replace("_", " ")),
        "help_text": schema_text(prop, "description") or "",
        "required": spec.required,
    }
    if "default" in prop:
        common["initial"] = prop["default"]

    if spec.kind == "boolean":
        result: forms.Field = forms.BooleanField(**common)
    elif spec.kind == "integer":
        low, high = prop.get("minimum"), prop.get("maximum")
        if "exclusiveMinimum" in prop:
            low = max(v for v in (low, math.floor(prop["exclusiveMinimum"]) + 1) if v is not None)
        if "exclusiveMaximum" in prop:
            high = min(v for v in (high, math.ceil(prop["exclusiveMaximum"]) - 1) if v is not None)
        result = forms.IntegerField(min_value=low, max_value=high, **common)
    elif spec.kind == "number":
        result = forms.DecimalField(
            min_value=_decimal(prop.get("minimum")),
            max_value=_decimal(prop.get("maximum")),
            **common,
        )
    elif spec.kind == "enum":
        values = prop["enum"]
        labels = schema_text(prop, "x-otomat-enum-labels") or [str(v) for v in values]
        choices = list(zip(values, labels, strict=True))
        if not spec.required:
            choices.insert(0, ("", "—"))
        coerce = int if isinstance(values[0], int) else str
        result = forms.TypedChoiceField(choices=choices, coerce=coerce, empty_value=None, **common)
    elif spec.kind == "choices":
        values = prop["items"]["enum"]
        labels = schema_text(prop, "x-otomat-enum-labels") or values
        result = forms.MultipleChoiceField(
            choices=list(zip(values, labels, strict=True)),
            widget=forms.CheckboxSelectMultiple,
            **common,
        )
    elif spec.kind == "lines":
        help_text = common.pop("help_text")
        one_per_line = _("One per line.")
        common["help_text"] = f"{help_text} {one_per_line}".strip()
        result = LinesField(item_schema=prop["items"], array_schema=prop, **common)
    else:
        result = _string_field(spec, common)

    result.otomat_check = spec.check  # type: ignore[attr-defined]  # read by the templates
    result.otomat_secret = spec.secret  # type: ignore[attr-defined]
    if spec.check and product_slug:
        result.widget.attrs.update(check_attrs(product_slug, spec.name))
    return result


def _string_field(spec: FieldSpec, common: dict[str, Any]) -> forms.Field:
    prop = spec.schema
    kwargs: dict[str, Any] = {
        "min_length": prop.get("minLength"),
        "max_length": prop.get("maxLength"),
        **common,
    }
    if "pattern" in prop:
        message = schema_text(prop, "x-otomat-pattern-message") or GENERIC_PATTERN_MESSAGE
        kwargs["validators"] = [RegexValidator(prop["pattern"], message=message)]
    if spec.secret:
        return forms.CharField(
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}), **kwargs
        )
    if prop.get("format") == "email":
        return forms.EmailField(**kwargs)
    if prop.get("format") == "uri":
        return forms.URLField(assume_scheme="https", **kwargs)
    if prop.get("x-otomat-widget") == "textarea":
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), **kwargs)
    return forms.CharField(**kwargs)


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def check_attrs(product_slug: str, field_name: str) -> dict[str, Any]:
    """HTMX attributes for a checked field: re-run the live check as the customer types.

    The result replaces the next ``.check-result`` element after the input (rendered by
    ``catalog/_config_field.html``). The enclosing form supplies the CSRF token.
    """
    return {
        "hx-post": reverse_lazy("catalog:check_field", args=[product_slug, field_name]),
        "hx-trigger": "input changed delay:500ms",
        "hx-target": "next .check-result",
        "hx-swap": "innerHTML",
        "hx-sync": "this:replace",
    }


# --- the form --------------------------------------------------------------------------------


class ConfigForm(forms.Form):
    """Base class of the forms built by :func:`build_form_class`.

    An edit form is built with ``build_form_class(..., editing=True)`` or instantiated with
    ``current=config`` (the stored configuration, secrets included). On an edit form secrets are
    optional and a blank one keeps its value: with ``current`` the form fills it in itself;
    without, the caller does with :func:`keep_blank_secrets`. With ``current``, initial values
    come from it (secrets excluded) and live checks skip values that did not change.

    ``clean`` runs :func:`validate_config` (the API's validation) and the live checks. After
    ``is_valid()``, ``form.config`` is the configuration (:func:`form_to_config` of the cleaned
    data, with kept secrets when ``current`` was given) and ``form.check_results`` maps field
    names to confirmations such as ``"@greeter_bot"``.
    """

    schema: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}
    specs: ClassVar[dict[str, FieldSpec]] = {}
    groups: ClassVar[list[Group]] = []
    edit_form: ClassVar[bool] = False
    source_dir: ClassVar[Path | None] = None  # the product version's files, for product checks

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
        *,
        current: Mapping[str, Any] | None = None,
        run_checks: bool = True,
        **kwargs: Any,
    ) -> None:
        self.current = copy.deepcopy(dict(current)) if current is not None else None
        if self.current is not None and kwargs.get("initial") is None:
            kwargs["initial"] = config_to_initial(self.current, self.schema)
        super().__init__(data, files, **kwargs)
        self.editing = self.edit_form or self.current is not None
        self.run_checks = run_checks
        self.config: dict[str, Any] | None = None
        self.check_results: dict[str, str] = {}
        if self.editing:
            for name, spec in self.specs.items():
                if spec.secret:
                    form_field = self.fields[name]
                    form_field.required = False
                    form_field.help_text = " ".join(
                        str(part) for part in (form_field.help_text, KEEP_SECRET_HELP) if part
                    )
                    if self.current is None or _get_path(self.current, spec.path) is not None:
                        form_field.widget.attrs["placeholder"] = "••••••••"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            # Field errors first: schema errors would only repeat them ("is required").
            return cleaned
        config = form_to_config(cleaned, self.schema, current=self.current)
        # Without ``current`` the caller puts blank secrets back (keep_blank_secrets) before
        # saving, so a blank required secret is not "missing" here.
        kept_by_caller = {
            name
            for name, spec in self.specs.items()
            if self.editing and self.current is None and spec.secret and not cleaned.get(name)
        }
        try:
            validate_config(self.schema, config)
        except ConfigError as exc:
            errors = {k: v for k, v in exc.errors.items() if k not in kept_by_caller}
            add_config_errors(self, ConfigError(errors))
        if self.run_checks and not self.errors:
            self._run_checks(config)
        if not self.errors:
            self.config = config
        return cleaned

    def _run_checks(self, config: Mapping[str, Any]) -> None:
        for name, spec in self.specs.items():
            if not spec.check:
                continue
            value = _get_path(config, spec.path)
            if not value or not isinstance(value, str | list):
                continue
            if self.current is not None and _get_path(self.current, spec.path) == value:
                continue  # unchanged on edit: no need to bother the remote side again
            try:
                self.check_results[name] = check_value(
                    spec.check, value, source_dir=self.source_dir
                )
            except CheckError as exc:
                self.add_error(name, str(exc))


def build_form_class(
    schema: Mapping[str, Any],
    *,
    product_slug: str | None = None,
    editing: bool = False,
    source_dir: Path | None = None,
) -> type[ConfigForm]:
    """A :class:`ConfigForm` subclass with one field per leaf of ``schema``.

    ``editing=True`` makes an edit form (see :class:`ConfigForm`). With ``product_slug``,
    checked fields carry HTMX attributes that call ``catalog:check_field`` while the customer
    types. Each field has ``.group`` (its object's title, or None) for ``{% regroup %}``,
    ``.otomat_check`` and ``.otomat_secret``. The schema must have passed
    ``validate_config_schema`` (every imported ProductVersion's has).
    """
    schema = copy.deepcopy(dict(schema))
    specs = {spec.name: spec for spec in field_specs(schema)}
    groups = field_groups(schema)
    attrs: dict[str, Any] = {
        name: _make_field(spec, product_slug=product_slug) for name, spec in specs.items()
    }
    for group in groups:
        for name in group.names:
            attrs[name].group = group.title
    attrs.update(
        schema=schema, specs=specs, groups=groups, edit_form=editing, source_dir=source_dir
    )
    return type("ConfigForm", (ConfigForm,), attrs)


def add_config_errors(form: forms.Form, error: ConfigError) -> None:
    """Show a :class:`ConfigError`'s messages next to the form's fields (others at the top)."""
    for name, messages in error.errors.items():
        form.add_error(name if name in form.fields else None, messages)


# --- conversions -----------------------------------------------------------------------------


def form_to_config(
    cleaned_data: Mapping[str, Any],
    schema: Mapping[str, Any],
    *,
    current: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Reassemble a configuration from a form's ``cleaned_data``.

    Blank optional fields are left out (botkit then applies the schema's default); booleans are
    always stored; numbers become floats, integers ints. With ``current`` (an edit), a blank
    secret takes its value from ``current``. An optional nested object is stored only when one
    of its non-boolean fields is filled in.
    """
    config: dict[str, Any] = {}
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        if prop.get("type") != "object":
            _put(config, (name,), prop, cleaned_data, current)
            continue
        child: dict[str, Any] = {}
        for child_name, child_prop in prop.get("properties", {}).items():
            _put(child, (name, child_name), child_prop, cleaned_data, current)
        filled = any(prop["properties"][key].get("type") != "boolean" for key in child) or all(
            p.get("type") == "boolean" for p in prop.get("properties", {}).values()
        )
        if name in required or filled:
            config[name] = child
    return config


def _put(
    target: dict[str, Any],
    path: tuple[str, ...],
    prop: Mapping[str, Any],
    cleaned_data: Mapping[str, Any],
    current: Mapping[str, Any] | None,
) -> None:
    key = path[-1]
    value = cleaned_data.get(SEP.join(path))
    kind = _kind(prop)
    if kind == "boolean":
        target[key] = bool(value)
        return
    if value in (None, "", [], ()):
        if is_secret(prop) and current is not None:
            kept = _get_path(current, path)
            if kept is not None:
                target[key] = kept
        return
    if kind == "number":
        value = float(value)
    elif kind == "integer":
        value = int(value)
    elif kind in ("lines", "choices"):
        value = list(value)
    target[key] = value


def config_to_initial(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Initial values for an edit form showing ``config`` (secrets are never included).

    Every non-secret field gets an entry, ``None`` for a value the configuration leaves out, so
    the form shows what is stored rather than the schema's default — except booleans, which
    show their default when absent.
    """
    initial: dict[str, Any] = {}
    for spec in field_specs(schema):
        if spec.secret:
            continue
        value = _get_path(config, spec.path)
        if value is None and spec.kind == "boolean":
            value = spec.schema.get("default", False)
        if isinstance(value, float) and spec.kind == "number":
            value = Decimal(repr(value))
        initial[spec.name] = value
    return initial


def apply_defaults(schema: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with the schema's ``default`` filled in for every absent key.

    For the runtime: a blank optional field is not stored (see :func:`form_to_config`), and a
    configuration saved under an older version lacks the fields added since. Nested objects
    get their children's defaults; an absent object is created only if some child has one.
    """
    result = copy.deepcopy(dict(config))
    for name, prop in schema.get("properties", {}).items():
        if prop.get("type") == "object":
            child = result.get(name)
            if child is None:
                child = copy.deepcopy(prop.get("default", {}))
            if isinstance(child, dict):
                for child_name, child_prop in prop.get("properties", {}).items():
                    if child_name not in child and "default" in child_prop:
                        child[child_name] = copy.deepcopy(child_prop["default"])
                if child or name in result or "default" in prop:
                    result[name] = child
        elif name not in result and "default" in prop:
            result[name] = copy.deepcopy(prop["default"])
    return result


def _get_path(config: Mapping[str, Any] | None, path: Iterable[str]) -> Any:
    value: Any = config
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


# --- validation ------------------------------------------------------------------------------


def validate_config(schema: Mapping[str, Any], config: Any) -> None:
    """Check ``config`` against ``schema``; returns None, raises :class:`ConfigError`.

    The error mapping is keyed by form field name (``admin__chat_id``; ``__all__`` for the
    configuration as a whole). Objects are closed: keys the schema does not define are refused,
    so a typo in an API call is an error rather than a silently ignored setting. Formats
    ``email`` and ``uri`` are checked as the form checks them. Lone surrogates, control
    characters (line breaks outside a textarea's text), NaN and Infinity are refused anywhere
    in the configuration (:mod:`otomat.catalog.values`).
    """
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        if message not in errors.setdefault(name, []):
            errors[name].append(message)

    if not isinstance(config, Mapping):
        raise ConfigError({NON_FIELD: [_("The configuration must be an object.")]})
    _refuse_unknown_keys(schema, config, (), add)
    for path, message in config_value_problems(schema, config):
        add(SEP.join(path) if path else NON_FIELD, message)
    if errors:
        # Text that is not text (a lone surrogate) or a number that is not one (NaN): say so
        # alone, before the schema's rules look at values no setting may hold.
        raise ConfigError(errors)
    validator = Draft202012Validator(dict(schema), format_checker=FORMAT_CHECKER)
    for error in validator.iter_errors(dict(config)):
        if error.validator == "additionalProperties":
            continue  # reported by _refuse_unknown_keys with a clearer message
        keys = [part for part in error.absolute_path if isinstance(part, str)]
        if error.validator == "required" and isinstance(error.instance, Mapping):
            for missing in error.validator_value:
                if missing not in error.instance:
                    add(SEP.join([*keys, missing]), _("This field is required."))
            continue
        prop = _property(schema, keys)
        name = SEP.join(keys) if keys else NON_FIELD
        message = _message(error, prop=prop)
        indexes = [part for part in error.absolute_path if isinstance(part, int)]
        if indexes:
            message = _("Item %(n)d: %(message)s") % {"n": indexes[0] + 1, "message": message}
        add(name, message)
    if errors:
        raise ConfigError(errors)


def _refuse_unknown_keys(
    schema: Mapping[str, Any], config: Mapping[str, Any], prefix: tuple[str, ...], add: Any
) -> None:
    properties = schema.get("properties", {})
    for key, value in config.items():
        if isinstance(key, str) and text_problem(key):
            continue  # reported by config_value_problems, without repeating the name
        if key not in properties:
            add(NON_FIELD, _("Unknown setting %(name)s.") % {"name": ".".join([*prefix, str(key)])})
        elif properties[key].get("type") == "object" and isinstance(value, Mapping):
            _refuse_unknown_keys(properties[key], value, (*prefix, key), add)


def _property(schema: Mapping[str, Any], keys: list[str]) -> Mapping[str, Any]:
    prop: Mapping[str, Any] = schema
    for key in keys:
        prop = prop.get("properties", {}).get(key, {})
    return prop


def _message(error: Any, *, prop: Mapping[str, Any]) -> str:
    """A translated message for a jsonschema error that never repeats the value."""
    rule, limit = error.validator, error.validator_value
    if rule == "type":
        return {
            "string": _("Enter text."),
            "integer": _("Enter a whole number."),
            "number": _("Enter a number."),
            "boolean": _("Enter true or false."),
            "array": _("Enter a list."),
            "object": _("Enter a group of settings."),
        }.get(limit, _("This value has the wrong type."))
    if rule == "minLength":
        return ngettext(
            "Ensure this value has at least %(n)d character.",
            "Ensure this value has at least %(n)d characters.",
            limit,
        ) % {"n": limit}
    if rule == "maxLength":
        return ngettext(
            "Ensure this value has at most %(n)d character.",
            "Ensure this value has at most %(n)d characters.",
            limit,
        ) % {"n": limit}
    if rule == "pattern":
        return str(
            schema_text(error.schema, "x-otomat-pattern-message")
            or schema_text(prop, "x-otomat-pattern-message")
            or GENERIC_PATTERN_MESSAGE
        )
    if rule == "format":
        return _("Enter a valid email address.") if limit == "email" else _("Enter a valid URL.")
    if rule == "minimum":
        return _("Ensure this value is greater than or equal to %(n)s.") % {"n": limit}
    if rule == "maximum":
        return _("Ensure this value is less than or equal to %(n)s.") % {"n": limit}
    if rule == "exclusiveMinimum":
        return _("Ensure this value is greater than %(n)s.") % {"n": limit}
    if rule == "exclusiveMaximum":
        return _("Ensure this value is less than %(n)s.") % {"n": limit}
    if rule == "multipleOf":
        return _("Ensure this value is a multiple of %(n)s.") % {"n": limit}
    if rule == "enum":
        return _("Select a valid choice.")
    if rule == "minItems":
        return ngettext("Enter at least %(n)d item.", "Enter at least %(n)d items.", limit) % {
            "n": limit
        }
    if rule == "maxItems":
        return ngettext("Enter at most %(n)d item.", "Enter at most %(n)d items.", limit) % {
            "n": limit
        }
    if rule == "uniqueItems":
        return _("Each item must be different.")
    return _("This value is not valid.")


# --- secrets ---------------------------------------------------------------------------------


def split_secrets(
    schema: Mapping[str, Any], config: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate a configuration into ``(public, secret)``.

    ``public`` is a deep copy without the secret values; ``secret`` maps dotted paths
    (``bot_token``, ``admin.password``) to the values, for encryption at rest. Secrets absent
    from ``config`` are absent from both.
    """
    public = copy.deepcopy(dict(config))
    secret: dict[str, Any] = {}
    for spec in field_specs(schema):
        if not spec.secret:
            continue
        parent = _get_path(public, spec.path[:-1]) if len(spec.path) > 1 else public
        if isinstance(parent, dict) and spec.path[-1] in parent:
            secret[spec.dotted] = parent.pop(spec.path[-1])
    return public, secret


def bot_id_of(token: Any) -> str:
    """The bot id of a Telegram token (the digits before ":"), or "" when it has none."""
    bot_id = token.split(":", 1)[0].strip() if isinstance(token, str) else ""
    return bot_id if bot_id.isdigit() else ""


def telegram_bot_id(schema: Mapping[str, Any], config: Mapping[str, Any]) -> tuple[str, str]:
    """``(form field name, bot id)`` of the first ``telegram_token`` field of ``config`` that
    holds a token, or ``("", "")``. The bot id is the part of the token before ":" (public:
    it names the bot and stays the same when the token is regenerated)."""
    for spec in field_specs(schema):
        if spec.check != "telegram_token":
            continue
        value: Any = config
        for key in spec.path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if bot_id := bot_id_of(value):
            return spec.name, bot_id
    return "", ""


def merge_secrets(public: Mapping[str, Any], secret: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`split_secrets`: a deep copy of ``public`` with the secrets put back."""
    config = copy.deepcopy(dict(public))
    for dotted, value in secret.items():
        *parents, key = dotted.split(".")
        target = config
        for parent in parents:
            target = target.setdefault(parent, {})
        target[key] = value
    return config


def keep_blank_secrets(
    config: Mapping[str, Any], current: Mapping[str, Any], schema: Mapping[str, Any]
) -> dict[str, Any]:
    """A copy of ``config`` where each secret that is absent or blank takes its value from
    ``current`` (the stored configuration, secrets included) — "leave blank to keep"."""
    result = copy.deepcopy(dict(config))
    for spec in field_specs(schema):
        if not spec.secret or _get_path(result, spec.path) not in (None, ""):
            continue
        kept = _get_path(current, spec.path)
        if kept is None:
            parent = _get_path(result, spec.path[:-1]) if len(spec.path) > 1 else result
            if isinstance(parent, dict):
                parent.pop(spec.path[-1], None)
            continue
        parent = result
        for key in spec.path[:-1]:
            if not isinstance(parent.get(key), dict):
                parent[key] = {}
            parent = parent[key]
        parent[spec.path[-1]] = kept
    return result


def run_live_checks(
    schema: Mapping[str, Any],
    config: Mapping[str, Any],
    *,
    current: Mapping[str, Any] | None = None,
    source_dir: Path | None = None,
) -> None:
    """Run every ``x-otomat-check`` of ``schema`` on ``config`` (the API's counterpart of the
    form's checks); values unchanged from ``current`` are not checked again.

    Raises :class:`ConfigError` naming each refused field."""
    errors: dict[str, list[str]] = {}
    for spec in field_specs(schema):
        if not spec.check:
            continue
        value = _get_path(config, spec.path)
        if not value or not isinstance(value, str | list):
            continue
        if current is not None and _get_path(current, spec.path) == value:
            continue
        try:
            check_value(spec.check, value, source_dir=source_dir)
        except CheckError as exc:
            errors[spec.name] = [str(exc)]
    if errors:
        raise ConfigError(errors)


def check_value(check: str, value: str | list, *, source_dir: Path | None = None) -> str:
    """Run ``check`` on a string, or on every item of a list of strings.

    For a list, the confirmation (or the error) names each item, so a customer who entered two
    sites learns at once which one is readable, how, and why the other is not. Raises
    CheckError when any item is refused."""
    if isinstance(value, str):
        return run_check(check, value, source_dir=source_dir)
    accepted: list[str] = []
    refused: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item:
            continue
        try:
            accepted.append(f"✓ {item}: {run_check(check, item, source_dir=source_dir)}")
        except CheckError as exc:
            refused.append(f"✗ {item}: {exc}")
    if refused:
        raise CheckError(" · ".join(refused + accepted))
    return " · ".join(accepted)
