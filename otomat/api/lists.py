"""What every list endpoint of the REST API does with its query parameters: an optional filter
on a field with fixed choices, and a limit/offset window. Bad values are a 400 that says what
is allowed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from django.db.models import QuerySet
from ninja import Query
from ninja.errors import HttpError
from pydantic import WithJsonSchema

# Past any real list, and inside every database's integer (SQLite's OFFSET is 64-bit signed).
MAX_OFFSET = 1_000_000_000


def narrowed(qs: QuerySet, field: str, value: str | None, choices: Sequence[str]) -> QuerySet:
    """``qs`` where ``field`` equals ``value``; all of ``qs`` when no value is given."""
    if not value:
        return qs
    if value not in choices:
        raise HttpError(400, f"Unknown {field} {value!r}; one of {', '.join(choices)}")
    return qs.filter(**{field: value})


def window(limit: int, offset: int, *, most: int) -> slice:
    """The rows ``limit``/``offset`` ask for, as a slice of a queryset (at most ``most``)."""
    if not 1 <= limit <= most or not 0 <= offset <= MAX_OFFSET:
        raise HttpError(400, f"limit must be 1–{most} and offset 0–{MAX_OFFSET}")
    return slice(offset, offset + limit)


def ranged(low: int, high: int, default: int, description: str) -> Any:
    """An optional ``int`` query parameter whose range the OpenAPI document publishes while the
    endpoint checks it itself (a value outside is the 400 of :func:`window`, not a 422)."""
    return Annotated[
        int,
        WithJsonSchema({"type": "integer", "minimum": low, "maximum": high}),
        Query(default, description=f"{description}, {low}–{high} (400 outside)."),
    ]


def rows_limit(default: int, *, most: int) -> Any:
    """The type of a list's ``limit`` parameter (declare it with ``= default`` too)."""
    return ranged(1, most, default, "How many rows")


Offset = ranged(0, MAX_OFFSET, 0, "How many rows to skip")
