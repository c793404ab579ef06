"""What every list endpoint of the REST API does with its query parameters: an optional filter
on a field with fixed choices, and a limit/offset window. Bad values are a 400 that says what
is allowed."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import QuerySet
from ninja.errors import HttpError


def narrowed(qs: QuerySet, field: str, value: str | None, choices: Sequence[str]) -> QuerySet:
    """``qs`` where ``field`` equals ``value``; all of ``qs`` when no value is given."""
    if not value:
        return qs
    if value not in choices:
        raise HttpError(400, f"Unknown {field} {value!r}; one of {', '.join(choices)}")
    return qs.filter(**{field: value})


def window(limit: int, offset: int, *, most: int) -> slice:
    """The rows ``limit``/``offset`` ask for, as a slice of a queryset (at most ``most``)."""
    if not 1 <= limit <= most or offset < 0:
        raise HttpError(400, f"limit must be 1–{most} and offset at least 0")
    return slice(offset, offset + limit)
