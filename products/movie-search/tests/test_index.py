"""The search index: FTS5 trigram, typo tolerance, re-indexing and failures."""

from __future__ import annotations

from pathlib import Path

import pytest
from movie_fakesites import FakeSites
from movie_search.index import Index, has_trigram, index_site, reindex, score
from movie_search.sources import SiteReport
from movie_search.sources.base import Item
from movie_search.sources.parse import normalise


def titles(index: Index, query: str) -> list[str]:
    return [h.title for h in index.search(query)]


def test_sqlite_has_fts5_with_the_trigram_tokenizer() -> None:
    """Python 3.11 on Debian 12 ships SQLite 3.40: the fast path must be the one in use."""
    assert has_trigram()


def test_it_finds_titles_despite_typos_accents_and_case(tmp_path: Path, sites: FakeSites) -> None:
    index = Index(tmp_path / "index.sqlite3")
    assert index.fts
    result = index_site(index, sites.url("wordpress"))
    assert (result.kind, result.items, result.error) == ("wordpress", 7, None)
    assert titles(index, "matrix")[:2] == ["The Matrix (1999)", "The Matrix Reloaded (2003)"]
    assert titles(index, "matirx")[0] == "The Matrix (1999)"
    assert titles(index, "THE MATRIX")[0] == "The Matrix (1999)"
    assert titles(index, "amelie") == ["Amélie (2001)"]
    assert titles(index, "Amélie") == ["Amélie (2001)"]
    assert titles(index, "pan's labyrnth") == ["Pan’s Labyrinth (2006)"]
    assert titles(index, "spirited") == ["Spirited Away (2001)"]
    assert titles(index, "godfather") == []
    assert titles(index, "?!") == []
    hit = index.search("blade runer")[0]
    assert (hit.title, hit.year, hit.site) == ("Blade Runner (1982)", 1982, "127.0.0.1")


def test_short_queries_match_substrings(tmp_path: Path) -> None:
    index = Index(tmp_path / "i.sqlite3")
    report = SiteReport("https://a.example/", "rss", source_url="https://a.example/feed")
    index.replace_site(
        "https://a.example/", report, [Item.make("Up (2009)", "https://a.example/up")]
    )
    assert titles(index, "up") == ["Up (2009)"]


def test_an_overlong_query_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="longer than 200"):
        Index(tmp_path / "i.sqlite3").search("x" * 201)


def test_reindexing_replaces_items_and_keeps_them_when_a_site_fails(
    tmp_path: Path, sites: FakeSites
) -> None:
    index = Index(tmp_path / "index.sqlite3")
    urls = [sites.url("rss"), sites.url("atom"), sites.url("plain")]
    results = reindex(index, urls)
    assert [(r.kind, r.items) for r in results] == [("rss", 4), ("atom", 4), (None, 0)]
    assert results[2].error == "no WordPress API, no feed, no sitemap found"
    statuses = {s.url: s for s in index.sites()}
    assert statuses[sites.url("plain")].error == results[2].error
    assert statuses[sites.url("rss")].indexed_at is not None
    assert index.count() == 8

    sites.films.insert(0, ("Arrival (2016)", "arrival", "2021-01-01T00:00:00"))
    try:
        reindex(index, urls)
        assert titles(index, "arival") == ["Arrival (2016)"]
    finally:
        sites.films.pop(0)

    # The configuration dropped two sites: their items go with them.
    reindex(index, [sites.url("rss")])
    assert [s.url for s in index.sites()] == [sites.url("rss")]
    assert index.count() == 4


def test_a_broken_source_is_detected_again_and_old_items_stay(
    tmp_path: Path, sites: FakeSites
) -> None:
    index = Index(tmp_path / "index.sqlite3")
    index_site(index, sites.url("wordpress"))
    sites.wp_status = 500
    try:
        result = index_site(index, sites.url("wordpress"))
    finally:
        sites.wp_status = 200
    assert result.error == "no WordPress API, no feed, no sitemap found"
    assert titles(index, "matrix")[0] == "The Matrix (1999)"  # last good index still searchable
    [status] = index.sites()
    assert status.error == result.error and status.items == 7


def test_the_score_prefers_exact_words() -> None:
    assert score("matrix", normalise("The Matrix (1999)")) > score(
        "matirx", normalise("The Matrix")
    )
    assert score("matirx", normalise("The Matrix")) >= 0.75
    assert score("batman", normalise("The Matrix")) < 0.75
