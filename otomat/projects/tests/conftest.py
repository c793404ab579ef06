"""The demo option set (a shop, payments that need it, languages as a quantity…) in PLN."""

from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture
def options(db):
    from otomat.projects.demo import seed_demo

    return {o.key: o for o in seed_demo()}


@pytest.fixture(autouse=True)
def _fresh_throttle():
    """Each test starts with no public submissions counted for its address."""
    cache.clear()
    yield
    cache.clear()
