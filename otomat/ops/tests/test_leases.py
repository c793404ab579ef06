from datetime import timedelta

import time_machine
from django.utils import timezone

from otomat.ops import leases


def test_only_one_holder_at_a_time_until_the_lease_expires(db):
    assert leases.acquire("scheduler", "a", 60)
    assert not leases.acquire("scheduler", "b", 60)
    assert leases.acquire("scheduler", "a", 60)  # renewal
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        assert leases.acquire("scheduler", "b", 60)
        assert not leases.acquire("scheduler", "a", 60)


def test_a_released_lease_is_free(db):
    assert leases.acquire("scheduler", "a", 60)
    leases.release("scheduler", "a")
    assert leases.acquire("scheduler", "b", 60)
