"""The per-instance data store: both implementations behave the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from otomat.botkit.store import MemoryStore, SQLiteStore, Store


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        s: Store = SQLiteStore(tmp_path / "store.sqlite3")
    else:
        s = MemoryStore()
    yield s
    s.close()


def test_it_round_trips_json_values(store: Store) -> None:
    value = {"a": [1, 2.5, "ż", None, True], "b": {"c": "d"}}
    store.set("k", value)
    assert store.get("k") == value
    assert store.get("missing") is None
    assert store.get("missing", 7) == 7
    store.set("k", "replaced")
    assert store.get("k") == "replaced"


def test_it_refuses_what_json_cannot_hold(store: Store) -> None:
    with pytest.raises(TypeError):
        store.set("k", {1, 2})
    with pytest.raises(ValueError):
        store.set("k", float("nan"))
    with pytest.raises(TypeError):
        store.get("")
    assert store.get("k") is None


def test_incr_counts_from_zero_and_refuses_non_integers(store: Store) -> None:
    assert store.incr("n") == 1
    assert store.incr("n", 5) == 6
    assert store.incr("n", -2) == 4
    store.set("s", "text")
    with pytest.raises(TypeError):
        store.incr("s")
    assert store.get("s") == "text"


def test_delete_and_keys_by_prefix(store: Store) -> None:
    for key in ("user:2", "user:1", "users", "user%x", "other"):
        store.set(key, 1)
    assert store.keys("user:") == ["user:1", "user:2"]
    assert store.keys("user%") == ["user%x"]  # no LIKE wildcards
    assert dict(store.items("oth")) == {"other": 1}
    assert store.delete("users") is True
    assert store.delete("users") is False
    assert len(store.keys()) == 4


def test_sqlite_store_persists_across_reopen(tmp_path: Path) -> None:
    first = SQLiteStore(tmp_path / "data" / "store.sqlite3")
    first.set("greeted", 3)
    first.incr("greeted")
    first.close()
    second = SQLiteStore(tmp_path / "data" / "store.sqlite3")
    assert second.get("greeted") == 4
    second.close()


def test_sqlite_store_creates_nothing_until_used(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "lazy" / "store.sqlite3")
    assert not (tmp_path / "lazy").exists()
    store.close()
