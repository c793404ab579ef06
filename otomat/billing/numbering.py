"""Gap-free document numbers."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from otomat.billing.models import InvoiceSeries


class NumberingError(Exception):
    """The series cannot produce a number; the message says why."""


def take_number(series_code: str, *, at: datetime | None = None) -> str:
    """Take the next number of ``series_code`` and return it formatted.

    Must run inside the transaction that stores the numbered document (raises NumberingError
    otherwise): the row lock serialises concurrent issuers and a rollback returns the number,
    so numbers are unique, increasing and gap-free per series (and per year when ``yearly``).
    """
    if not transaction.get_connection().in_atomic_block:
        raise NumberingError("Take a number inside the transaction that stores the document.")
    at = at or timezone.now()
    if timezone.is_naive(at):
        raise NumberingError("The issue time must be timezone-aware.")
    try:
        series = InvoiceSeries.objects.select_for_update().get(code=series_code)
    except InvoiceSeries.DoesNotExist:
        raise NumberingError(f"There is no invoice series {series_code!r}.") from None
    year = at.year
    if series.yearly and series.year != year:
        if series.year is not None and year < series.year:
            raise NumberingError(
                f"Series {series_code!r} already numbers {series.year}; cannot issue in {year}."
            )
        series.year, series.next_number = year, 1
    number = series.next_number
    series.next_number = number + 1
    series.save(update_fields=["year", "next_number"])
    try:
        return series.format.format(prefix=series.prefix, year=year, number=number)
    except (KeyError, ValueError, IndexError) as exc:
        raise NumberingError(f"The format of series {series_code!r} is invalid: {exc}") from None


def take_numbers(series_code: str, count: int, *, at: datetime | None = None) -> list[str]:
    """Take ``count`` consecutive numbers at once (one row lock, one update) for documents
    stored in the same transaction — the dunning run's bulk path. Same guarantees as
    ``take_number``: a rollback returns them all."""
    if count <= 0:
        return []
    first = take_number(series_code, at=at)
    if count == 1:
        return [first]
    at = at or timezone.now()
    series = InvoiceSeries.objects.select_for_update().get(code=series_code)
    start = series.next_number
    series.next_number = start + count - 1
    series.save(update_fields=["next_number"])
    year = series.year if series.yearly else at.year
    rest = [
        series.format.format(prefix=series.prefix, year=year, number=n)
        for n in range(start, start + count - 1)
    ]
    return [first, *rest]
