"""Makes the product package importable in tests (pytest puts this folder on sys.path) and
serves the local fake blog sites once per test session."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "tests"))

from movie_fakesites import FakeSites


@pytest.fixture(scope="session")
def sites() -> Iterator[FakeSites]:
    with FakeSites() as running:
        yield running
