"""Invoice numbers are unique, increasing and gap-free per series, also under concurrent issuing
(on PostgreSQL and MariaDB, where issuers really run in parallel)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from otomat.billing.models import InvoiceSeries
from otomat.billing.numbering import NumberingError, take_number

pytestmark = pytest.mark.smoke


@pytest.fixture
def series(db):
    return InvoiceSeries.objects.create(code="inv", prefix="INV")


def issue(code="inv", at=None) -> str:
    with transaction.atomic():
        return take_number(code, at=at)


def test_numbers_increase_and_restart_each_year(series):
    at = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
    assert [issue(at=at), issue(at=at)] == ["INV/2026/000001", "INV/2026/000002"]
    assert issue(at=datetime(2027, 1, 1, tzinfo=UTC)) == "INV/2027/000001"
    with pytest.raises(NumberingError, match="cannot issue in 2026"):
        issue(at=at)


def test_a_rolled_back_issue_leaves_no_gap(series):
    at = datetime(2026, 5, 1, tzinfo=UTC)
    assert issue(at=at) == "INV/2026/000001"
    with pytest.raises(RuntimeError), transaction.atomic():
        take_number("inv", at=at)
        raise RuntimeError("the invoice could not be stored")
    assert issue(at=at) == "INV/2026/000002"


@pytest.mark.django_db(transaction=True)  # so that "outside a transaction" is real
def test_bad_use_is_refused_clearly(series):
    with pytest.raises(NumberingError, match="inside the transaction"):
        take_number("inv")
    with pytest.raises(NumberingError, match="no invoice series"):
        issue("nope")
    with pytest.raises(NumberingError, match="timezone-aware"):
        issue(at=datetime(2026, 1, 1))
    InvoiceSeries.objects.filter(pk=series.pk).update(format="{prefix}/{nope}")
    with pytest.raises(NumberingError, match="format"):
        issue()
    assert InvoiceSeries.objects.get(pk=series.pk).next_number == 1  # nothing consumed


@pytest.mark.django_db(transaction=True)
def test_concurrent_issuers_get_unique_gap_free_numbers():
    InvoiceSeries.objects.create(code="par", prefix="P", format="{number}")
    taken: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            for _ in range(10):
                number = int(issue("par"))
                with lock:
                    taken.append(number)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sorted(taken) == list(range(1, 81))
