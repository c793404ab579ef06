"""What a text or a number may hold, for every entry point: the configuration form, the API's
configurations and the API's other free text (names, ticket text, references).

A lone UTF-16 surrogate (``"\\ud800"`` in JSON) is a Python string but not text: it cannot be
encoded as UTF-8, so storing it fails, or a bot that reads it fails on every message while it
looks healthy. NUL cannot be stored in PostgreSQL, and other control characters are invisible
in every page and log. ``NaN`` and ``Infinity`` (which Python's JSON parser accepts, and
``1e400`` becomes) are not JSON and fail the database's ``JSON_VALID`` check. So they are
refused here, once, with a message that names the character (never the value: it may be a
secret). Tab, line feed and carriage return are allowed where a text may span lines.

:func:`config_value_problems` walks a whole configuration; ``schema_form.validate_config`` (the
form's and the API's validation) calls it. :func:`text_problem` is the same rule for one string
(the API's ``Line``/``Text`` types, ``otomat.api.schemas``).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any

from django.utils.translation import gettext as _

LINE_BREAKS = frozenset("\t\n\r")  # allowed in a multi-line text only


def is_multiline(prop: Mapping[str, Any]) -> bool:
    """A schema property whose text may span lines (rendered as a textarea)."""
    return prop.get("x-otomat-widget") == "textarea"


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` cannot be accepted as text, or None when it can.

    Refused: lone surrogates, and control characters (Unicode category Cc: NUL, C0, DEL, C1)
    except tab, line feed and carriage return when ``multiline``. The message names the first
    offending character by its code point, never the value itself."""
    for char in value:
        if "\ud800" <= char <= "\udfff":
            return _(
                "This text contains an invalid character (a lone surrogate, U+%(code)04X); "
                "send it as UTF-8."
            ) % {"code": ord(char)}
        if unicodedata.category(char) != "Cc":
            continue
        if char in LINE_BREAKS:
            if multiline:
                continue
            return _("This text must be on one line (it contains U+%(code)04X).") % {
                "code": ord(char)
            }
        return _("This text contains a control character (U+%(code)04X), which is not allowed.") % {
            "code": ord(char)
        }
    return None


def number_problem(value: float) -> str | None:
    """Why ``value`` cannot be accepted as a number (NaN, Infinity), or None when it can."""
    if math.isfinite(value):
        return None
    return _("Enter a finite number (NaN and Infinity are not numbers).")


def config_value_problems(
    schema: Mapping[str, Any], config: Mapping[str, Any]
) -> Iterator[tuple[tuple[str, ...], str]]:
    """``(path, message)`` for every text or number in ``config`` that cannot be accepted.

    ``path`` is the keys leading to the setting (``("admin", "chat_id")``), empty for a key of
    the configuration itself that is not text. Every string is checked, secrets and list items
    included; a string may span lines only where its property :func:`is_multiline`; every
    float must be finite, wherever it is."""
    yield from _walk(config, schema, ())


def _walk(value: Any, prop: Mapping[str, Any], path: tuple[str, ...]) -> Iterator:
    if isinstance(value, str):
        problem = text_problem(value, multiline=is_multiline(prop))
        if problem:
            yield path, problem
    elif isinstance(value, bool | int):
        return
    elif isinstance(value, float):
        problem = number_problem(value)
        if problem:
            yield path, problem
    elif isinstance(value, Mapping):
        properties = prop.get("properties", {})
        for key, child in value.items():
            if not isinstance(key, str):
                continue
            problem = text_problem(key)
            if problem:
                # The key is not a setting of the schema; report it on the object holding it.
                yield path, _("A setting's name is not valid: %(reason)s") % {"reason": problem}
                continue
            yield from _walk(child, properties.get(key, {}), (*path, key))
    elif isinstance(value, list | tuple):
        items = prop.get("items", {})
        for index, item in enumerate(value):
            for where, problem in _walk(item, items, path):
                yield where, _("Item %(n)d: %(message)s") % {"n": index + 1, "message": problem}
