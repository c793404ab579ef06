"""Detection and reading of the fake blog sites: every adapter, every refusal, bounded work."""

from __future__ import annotations

import socket
import time

import pytest
from movie_fakesites import FakeSites
from movie_search.checks import check_site
from movie_search.sources import Fetcher, FetchError, detect, fetch_items
from movie_search.sources.parse import ParseError, normalise, parse_html_head, parse_xml, year_of


def test_it_detects_the_wordpress_api_with_its_post_count(sites: FakeSites) -> None:
    report = detect(sites.url("wordpress"))
    assert report.kind == "wordpress"
    assert report.total == 7
    assert report.summary() == "WordPress API · 7 posts"
    assert report.sample_titles == [
        "The Matrix (1999)",
        "The Matrix Reloaded (2003)",
        "Amélie (2001)",
    ]


def test_it_reads_every_wordpress_page_with_featured_images(sites: FakeSites) -> None:
    report = detect(sites.url("wordpress"))
    before = sum(n for (site, path), n in sites.hits.items() if path == "/wp-json/wp/v2/posts")
    items = fetch_items("wordpress", report.source_url)
    after = sum(n for (site, path), n in sites.hits.items() if path == "/wp-json/wp/v2/posts")
    assert after - before == 3  # 7 posts, 3 per page: stops at X-WP-TotalPages
    titles = [i.title for i in items]
    assert "Pan’s Labyrinth (2006)" in titles and "Spirited Away (2001)" in titles
    matrix = items[0]
    assert (matrix.year, matrix.url) == (1999, sites.url("wordpress") + "the-matrix/")
    assert matrix.poster == sites.url("wordpress") + "uploads/the-matrix.jpg"


def test_it_finds_an_rss_feed_through_the_home_page_link(sites: FakeSites) -> None:
    report = detect(sites.url("rss"))
    assert (report.kind, report.total) == ("rss", 4)
    assert report.source_url == sites.url("rss") + "feed/films.xml"
    items = fetch_items("rss", report.source_url)
    assert items[0].poster.endswith("/img/the-matrix.jpg")
    assert items[3].title == "Pan’s Labyrinth (2006)"


def test_it_finds_an_atom_feed_at_a_common_path(sites: FakeSites) -> None:
    report = detect(sites.url("atom"))
    assert report.summary() == "Atom feed · 4 items"
    items = fetch_items("atom", report.source_url)
    assert [i.year for i in items] == [2001, 2006, 2001, 2019]
    assert items[1].url == sites.url("atom") + "posts/pans-labyrinth"
    assert items[1].poster.endswith("/thumbs/pans-labyrinth.jpg")


def test_it_reads_a_sitemap_from_robots_txt_and_opengraph_tags(sites: FakeSites) -> None:
    report = detect(sites.url("sitemap"))
    assert report.kind == "sitemap"
    assert report.source_url == sites.url("sitemap") + "maps/index.xml"
    items = fetch_items("sitemap", report.source_url)
    # The home page (og:type website), the PNG and the 404 are skipped; the broken child
    # sitemap and the index listing itself do not stop the walk.
    assert [(i.title, i.year) for i in items] == [
        ("The Matrix (1999)", 1999),
        ("The Matrix Reloaded (2003)", 2003),
        ("Amélie (2001)", 2001),
    ]
    assert items[0].url == sites.url("sitemap") + "films/the-matrix"
    assert items[0].poster == sites.url("sitemap") + "posters/the-matrix.jpg"


def test_a_feed_url_given_directly_is_used_as_is(sites: FakeSites) -> None:
    report = detect(sites.url("rss") + "feed/films.xml")
    assert report.kind == "rss" and report.total == 4


@pytest.mark.parametrize(
    ("site", "reason"),
    [
        ("plain", "no WordPress API, no feed, no sitemap found"),
        ("forbidden", "HTTP 403"),
        (
            "hostile",
            "no WordPress API, no feed, no sitemap found (the announced feed "
            "{url}bomb.xml failed: the feed is XML with a DTD or entity declarations is refused)",
        ),
    ],
)
def test_unsupported_sites_get_a_reason(sites: FakeSites, site: str, reason: str) -> None:
    started = time.monotonic()
    report = detect(sites.url(site))
    assert (report.kind, report.reason) == (None, reason.format(url=sites.url(site)))
    assert time.monotonic() - started < 5


def test_a_binary_home_page_is_not_html(sites: FakeSites) -> None:
    report = detect(sites.url("hostile") + "binary")
    assert report.reason.startswith("not HTML (application/octet-stream)")


def test_the_check_function_confirms_or_refuses(sites: FakeSites) -> None:
    assert check_site(sites.url("wordpress")) == "WordPress API · 7 posts"
    assert check_site(sites.url("sitemap")) == "Sitemap · 6 pages"
    with pytest.raises(ValueError, match=r"^HTTP 403$"):
        check_site(sites.url("forbidden"))
    with pytest.raises(ValueError, match="only http:// and https://"):
        check_site("ftp://example.com/")
    with pytest.raises(ValueError, match="empty"):
        check_site("   ")
    with pytest.raises(ValueError, match="spaces"):
        check_site("http://exa mple.com/")
    with pytest.raises(ValueError, match="must be text"):
        check_site(None)  # type: ignore[arg-type]


def test_an_unreachable_site_is_reported(sites: FakeSites) -> None:
    # A port the kernel just handed out and nobody listens on any more.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    with pytest.raises(ValueError, match="connection refused"):
        check_site(url)


def test_a_slow_site_times_out_with_the_budget(sites: FakeSites) -> None:
    started = time.monotonic()
    report = detect(sites.url("hostile") + "slow", timeout=1)
    assert report.reason == "timed out after 1 s"
    assert time.monotonic() - started < 2.5


def test_the_fetcher_refuses_hostile_responses(sites: FakeSites) -> None:
    base = sites.url("hostile")
    fetcher = Fetcher(total_timeout=10, request_timeout=3)
    with pytest.raises(FetchError, match="larger than 5 MB"):
        fetcher.get(base + "huge")
    with pytest.raises(FetchError, match="too many redirects"):
        fetcher.get(base + "loop")
    with pytest.raises(FetchError, match="unsupported address"):
        fetcher.get(base + "to-file")
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"timed out after 0\.5 s"):
        Fetcher(request_timeout=0.5).get(base + "drip")
    assert time.monotonic() - started < 1.5


def test_hostile_documents_are_refused_or_read_safely(sites: FakeSites) -> None:
    base = sites.url("hostile")
    with pytest.raises(FetchError, match="DTD"):
        fetch_items("rss", base + "bomb.xml")
    with pytest.raises(FetchError, match="not valid XML"):
        fetch_items("rss", base + "broken.xml")
    with pytest.raises(FetchError, match="did not answer with posts"):
        fetch_items("wordpress", base + "wp-json/wp/v2/posts?page=1")
    with pytest.raises(ValueError, match="unknown source kind"):
        fetch_items("gopher", base)


def test_the_html_parser_survives_script_laden_markup() -> None:
    from movie_fakesites import SCRIPTED

    head = parse_html_head(SCRIPTED)
    assert head.title == "Hostile"
    assert head.meta["og:title"] == "<script>alert(1)</script>Evil"  # kept as text, never run
    assert [link["href"] for link in head.links] == ["/bomb.xml"]


def test_xml_parsing_refuses_dtds_and_reports_garbage() -> None:
    with pytest.raises(ParseError, match="DTD"):
        parse_xml(b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd"><x/>')
    with pytest.raises(ParseError, match="not valid XML"):
        parse_xml(b"\x00\xff garbage")


def test_titles_are_normalised_and_years_found() -> None:
    assert normalise("Amélie (2001)!") == "amelie 2001"
    assert normalise("  THE   Matrix—Reloaded ") == "the matrix reloaded"
    assert normalise("Łódź") == "lodz"
    assert year_of("Blade Runner 2049") == 2049
    assert year_of("The Matrix (1999) – 4K remaster 2021") == 1999
    assert year_of("Untitled", "2020-05-01T00:00:00Z") == 2020
    assert year_of("Untitled", "not a date") is None


def test_a_sitemap_run_fetches_at_most_max_pages(sites: FakeSites) -> None:
    base = sites.url("sitemap")
    before = sum(
        n
        for (site, path), n in sites.hits.items()
        if site == "sitemap" and path.startswith("/films/")
    )
    items = fetch_items("sitemap", base + "maps/index.xml", max_pages=2)
    after = sum(
        n
        for (site, path), n in sites.hits.items()
        if site == "sitemap" and path.startswith("/films/")
    )
    assert after - before == 1  # the home page and one film page: two pages in all
    assert [i.title for i in items] == ["The Matrix (1999)"]


def test_a_huge_or_dripping_home_page_is_reported_within_the_budget(sites: FakeSites) -> None:
    assert detect(sites.url("hostile") + "huge").reason == "response larger than 5 MB"
    started = time.monotonic()
    assert detect(sites.url("hostile") + "drip", timeout=1).reason == "timed out after 1 s"
    assert time.monotonic() - started < 2
    assert detect(sites.url("hostile") + "loop").reason == "too many redirects"
