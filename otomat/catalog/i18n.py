"""A product's texts in the reader's language.

A manifest may carry ``[i18n.<language>]`` tables (documented in docs/products.md) with the
product's name and description, the configuration schema's titles, descriptions, enum labels
and pattern messages, and plan names by plan code. :func:`parse_translations` validates them
strictly at import; the schema's share is copied into the stored schema as ``x-otomat-i18n`` on
each property, so every form built from a schema speaks the reader's language without knowing
the product version, and the rest stays in ``ProductVersion.manifest["i18n"]``.

Every lookup falls back, text by text, to the manifest's own (default) text.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.translation import get_language, npgettext, pgettext

from otomat.catalog.errors import ManifestError

if TYPE_CHECKING:
    from otomat.catalog.models import ProductVersion

I18N_KEY = "x-otomat-i18n"  # per schema property: {language: {text key: translation}}
PRODUCT_KEYS = ("name", "description", "plans", "schema")
PRODUCT_FIELDS = ("name", "description")
PLAN_KEYS = ("name",)
# Text keys of one schema field, and the schema key each one translates.
FIELD_KEYS = {
    "title": "title",
    "description": "description",
    "enum_labels": "x-otomat-enum-labels",
    "pattern_message": "x-otomat-pattern-message",
}
PLAN_CODE_RE = re.compile(r"^[-a-zA-Z0-9_]{1,50}$")  # billing Plan.code is a 50-char slug


def languages() -> tuple[str, ...]:
    return tuple(code for code, _name in settings.LANGUAGES)


def parse_translations(table: Any, schema: dict[str, Any], *, source: str) -> dict[str, Any]:
    """Validate the manifest's ``[i18n]`` table against ``schema`` (``source`` names the schema
    file in messages) and copy the schema texts into ``schema`` as ``x-otomat-i18n``.

    Returns the table (unchanged); raises :class:`ManifestError` naming the key at fault: an
    unknown language, key, field or plan code, a wrong type, or an enum label count that does
    not match the field's values.
    """
    if not isinstance(table, dict):
        raise ManifestError("[i18n] must be a table of languages, like [i18n.id]")
    known = languages()
    for lang, texts in table.items():
        where = f"[i18n.{lang}]"
        if lang not in known:
            raise ManifestError(
                f"{where}: unknown language {lang!r}; use one of "
                f"{', '.join(repr(c) for c in known)}{_suggest(lang, known)}"
            )
        if not isinstance(texts, dict):
            raise ManifestError(f"{where} must be a table")
        for key, value in texts.items():
            if key not in PRODUCT_KEYS:
                raise ManifestError(f"{where}.{key}: unknown key{_suggest(key, PRODUCT_KEYS)}")
            if key in PRODUCT_FIELDS:
                _text(value, f"{where}.{key}", limit=200 if key == "name" else None)
        plans = texts.get("plans", {})
        if not isinstance(plans, dict):
            raise ManifestError(f"{where}.plans must be a table of plan codes")
        for code, plan in plans.items():
            pwhere = f"[i18n.{lang}.plans.{code}]"
            if not PLAN_CODE_RE.match(code):
                raise ManifestError(f"{pwhere}: {code!r} is not a plan code")
            if not isinstance(plan, dict):
                raise ManifestError(f'{pwhere} must be a table, like name = "…"')
            for key, value in plan.items():
                if key not in PLAN_KEYS:
                    raise ManifestError(f"{pwhere}.{key}: unknown key{_suggest(key, PLAN_KEYS)}")
                _text(value, f"{pwhere}.{key}", limit=100)
        fields = texts.get("schema", {})
        if not isinstance(fields, dict):
            raise ManifestError(f"{where}.schema must be a table of fields")
        _fields(fields, schema, lang=lang, path=(), source=source)
    return table


def _fields(
    fields: dict[str, Any], schema: dict[str, Any], *, lang: str, path: tuple[str, ...], source: str
) -> None:
    properties = schema.get("properties", {})
    for name, texts in fields.items():
        dotted = ".".join((*path, name))
        where = f"[i18n.{lang}.schema.{dotted}]"
        if name not in properties:
            raise ManifestError(
                f"{where}: {source} has no field {dotted!r}{_suggest(name, tuple(properties))}"
            )
        if not isinstance(texts, dict):
            raise ManifestError(f'{where} must be a table, like title = "…"')
        prop = properties[name]
        own: dict[str, Any] = {}
        for key, value in texts.items():
            if isinstance(value, dict) and prop.get("type") == "object":
                continue  # a nested field's table, checked below
            if key not in FIELD_KEYS:
                raise ManifestError(f"{where}.{key}: unknown key{_suggest(key, tuple(FIELD_KEYS))}")
            if key == "enum_labels":
                values = prop.get("enum") or prop.get("items", {}).get("enum")
                if not values:
                    raise ManifestError(f"{where}.enum_labels: {dotted!r} has no enum values")
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ManifestError(f"{where}.enum_labels must be a list of strings")
                if len(value) != len(values):
                    raise ManifestError(
                        f"{where}.enum_labels has {len(value)} labels for {len(values)} values"
                    )
            else:
                if key == "pattern_message" and not (
                    "pattern" in prop or "pattern" in prop.get("items", {})
                ):
                    raise ManifestError(f"{where}.pattern_message: {dotted!r} has no pattern")
                _text(value, f"{where}.{key}")
            own[FIELD_KEYS[key]] = value
        if own:
            prop.setdefault(I18N_KEY, {})[lang] = own
        children = {k: v for k, v in texts.items() if isinstance(v, dict)}
        if children:
            _fields(children, prop, lang=lang, path=(*path, name), source=source)


def _text(value: Any, where: str, *, limit: int | None = None) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ManifestError(f"{where}: expected a non-empty string")
    if limit and len(value) > limit:
        raise ManifestError(f"{where}: at most {limit} characters")


def _suggest(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- lookups -------------------------------------------------------------------------------


def _lang(lang: str | None) -> str:
    return (lang or get_language() or settings.LANGUAGE_CODE).split("-")[0]


def schema_text(prop: Mapping[str, Any], key: str, lang: str | None = None) -> Any:
    """``prop[key]`` (``title``, ``description``, ``x-otomat-enum-labels``,
    ``x-otomat-pattern-message``) in ``lang`` (default: the active language), falling back to
    the schema's own text; None when neither exists."""
    translated = prop.get(I18N_KEY, {}).get(_lang(lang), {}).get(key)
    return translated if translated is not None else prop.get(key)


def product_text(version: ProductVersion | None, field: str, lang: str | None = None) -> str:
    """The product's ``name`` or ``description`` as ``version``'s manifest gives it in ``lang``
    (default: the active language), else the manifest's default text. For invoices, notices
    and pages alike; raises ValueError for another field."""
    if field not in PRODUCT_FIELDS:
        raise ValueError(f"unknown product text {field!r}")
    if version is None:
        return ""
    manifest = version.manifest or {}
    translated = manifest.get("i18n", {}).get(_lang(lang), {}).get(field)
    if translated:
        return translated
    default = manifest.get("product", {}).get(field)
    return default if default is not None else getattr(version.product, field)


def plan_name(plan: Any, lang: str | None = None, *, version: ProductVersion | None = None) -> str:
    """The plan's name in ``lang``: the manifest's ``[i18n.<lang>.plans.<code>].name`` of the
    product's latest version (or ``version``) when it has one, else the owner's ``plan.name``.
    Costs one query per plan object (remembered on it) unless ``version`` is given."""
    translations = (version.manifest or {}).get("i18n", {}) if version else _plan_i18n(plan)
    return translations.get(_lang(lang), {}).get("plans", {}).get(plan.code, {}).get("name") or str(
        plan.name
    )


def remember_plan_texts(plans: Any, latest: ProductVersion | None) -> None:
    """Have :func:`plan_name` take each of ``plans``' translations from ``latest``, the latest
    version of their product that the caller has read already, instead of one query per plan."""
    translations = (latest.manifest or {}).get("i18n", {}) if latest else {}
    for plan in plans:
        if plan is not None and latest is not None and plan.product_id == latest.product_id:
            plan._otomat_i18n = translations


def _plan_i18n(plan: Any) -> dict[str, Any]:
    if not hasattr(plan, "_otomat_i18n"):
        from otomat.catalog.models import ProductVersion

        manifest = (
            ProductVersion.objects.filter(product_id=plan.product_id)
            .order_by("-created_at", "-id")
            .values_list("manifest", flat=True)
            .first()
        )
        plan._otomat_i18n = (manifest or {}).get("i18n", {})
    return plan._otomat_i18n


def per_period(months: int) -> str:
    """What follows "price /" for a plan billed every ``months`` months: "month", "3 months",
    "year" ("bulan", "3 bulan", "tahun"; "miesiąc", "3 miesiące", "rok")."""
    if months == 1:
        return pgettext("price per", "month")
    if months == 12:
        return pgettext("price per", "year")
    return npgettext("price per", "%(n)d month", "%(n)d months", months) % {"n": months}
