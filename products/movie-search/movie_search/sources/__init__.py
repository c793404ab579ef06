"""Source adapters and the "is this site supported?" detector.

``detect(url)`` tries, in order: the WordPress REST API, a feed (the URL itself, the home page's
``<link rel="alternate">``, then common feed paths), a sitemap (the URL itself, robots.txt
``Sitemap:`` lines, ``/sitemap.xml``...). ``fetch_items(kind, source_url)`` then reads a detected
source. Nothing here raises for a bad site: detection answers with a :class:`SiteReport` whose
``reason`` says why not, reading raises :class:`FetchError` with a short reason.
"""

from __future__ import annotations

import urllib.parse

from movie_search.sources import feeds, sitemap, wordpress
from movie_search.sources.base import KIND_LABELS, KINDS, Item, SiteReport
from movie_search.sources.http import Fetcher, FetchError, Response, check_url
from movie_search.sources.parse import ParseError, looks_like_html, looks_like_xml, parse_xml

__all__ = [
    "KINDS",
    "KIND_LABELS",
    "FetchError",
    "Fetcher",
    "Item",
    "SiteReport",
    "detect",
    "fetch_items",
]

DETECT_TIMEOUT = 10.0
SITEMAP_PATHS = ("/sitemap.xml", "/sitemap_index.xml", "/wp-sitemap.xml")
NOT_FOUND = "no WordPress API, no feed, no sitemap found"


def _fatal(exc: FetchError) -> bool:
    """Errors after which probing the same host further is pointless."""
    text = str(exc)
    return any(
        s in text
        for s in ("timed out", "connection refused", "does not resolve", "TLS", "cannot connect")
    )


def _from_document(url: str, response: Response) -> SiteReport | None:
    """The URL given is itself a feed or a sitemap."""
    if not response.ok or not looks_like_xml(response.content_type, response.body):
        return None
    try:
        root = parse_xml(response.body)
    except ParseError:
        return None
    kind = feeds.feed_kind(root)
    if kind:
        items = feeds.items_of(root)
        return SiteReport(url, kind, "", response.url, [i.title for i in items[:3]], len(items))
    return None


def _try_feeds(
    fetcher: Fetcher, url: str, home: Response | None, problems: list[str]
) -> SiteReport | None:
    """A readable feed; a failing feed the home page announces is noted in ``problems``."""
    candidates: list[str] = []
    if home is not None and home.ok and looks_like_html(home.content_type, home.body):
        candidates += feeds.feed_links(home.url, home.text())
    announced = set(candidates)
    base = home.url if home is not None else url
    for path in feeds.COMMON_PATHS:
        candidate = urllib.parse.urljoin(base if base.endswith("/") else base + "/", path)
        if candidate not in candidates:
            candidates.append(candidate)
    for candidate in candidates:
        try:
            kind, items = feeds.read_feed(fetcher, candidate)
        except FetchError as exc:
            if _fatal(exc):
                raise
            if candidate in announced:
                problems.append(f"the announced feed {candidate} failed: {exc}")
            continue
        return SiteReport(url, kind, "", candidate, [i.title for i in items[:3]], len(items))
    return None


def _try_sitemaps(fetcher: Fetcher, url: str) -> SiteReport | None:
    candidates = [url] if url.lower().endswith(".xml") else []
    candidates += sitemap.robots_sitemaps(fetcher, url)
    candidates += [urllib.parse.urljoin(url, p) for p in SITEMAP_PATHS]
    for candidate in dict.fromkeys(candidates):
        try:
            pages = sitemap.page_urls(fetcher, candidate, limit=sitemap.MAX_LOCS)
        except FetchError as exc:
            if _fatal(exc):
                raise
            continue
        samples = []
        for page in pages[:3]:
            item = sitemap.read_page(fetcher, page)
            if item:
                samples.append(item.title)
        return SiteReport(url, "sitemap", "", candidate, samples, len(pages))
    return None


def _api_root_link(home: Response | None) -> str:
    if home is None or not home.ok or not looks_like_html(home.content_type, home.body):
        return ""
    from movie_search.sources.parse import parse_html_head

    for link in parse_html_head(home.text()).links:
        if link.get("rel", "").strip() == "https://api.w.org/" and link.get("href"):
            return urllib.parse.urljoin(home.url, link["href"].strip())
    return ""


def _detect(fetcher: Fetcher, url: str) -> SiteReport:
    home: Response | None = None
    try:
        home = fetcher.get(url, accept="text/html, application/xml;q=0.9, */*;q=0.5")
    except FetchError as exc:
        if _fatal(exc):
            return SiteReport(url, None, str(exc))
        home_error = str(exc)  # e.g. too large: other probes may still work
    else:
        home_error = ""
        direct = _from_document(url, home)
        if direct:
            return direct
    for root in wordpress.api_roots(url, _api_root_link(home)):
        found = wordpress.probe(fetcher, root)
        if found:
            endpoint, total, titles = found
            return SiteReport(url, "wordpress", "", endpoint, titles, total)
    problems: list[str] = []
    report = _try_feeds(fetcher, url, home, problems) or _try_sitemaps(fetcher, url)
    if report:
        return report
    detail = f" ({problems[0]})" if problems else ""
    if home_error:
        return SiteReport(url, None, home_error)
    assert home is not None
    if not home.ok:
        return SiteReport(url, None, f"HTTP {home.status}")
    if not looks_like_html(home.content_type, home.body):
        shown = home.content_type or "unknown content type"
        return SiteReport(url, None, f"not HTML ({shown}); {NOT_FOUND}")
    return SiteReport(url, None, NOT_FOUND + detail)


def detect(
    url: str, *, fetcher: Fetcher | None = None, timeout: float = DETECT_TIMEOUT
) -> SiteReport:
    """Find out whether and how the site at ``url`` can be read. Never raises.

    Bounded: all requests together take at most ``timeout`` seconds (or the budget of the
    ``fetcher`` given), each response at most 5 MB.
    """
    try:
        url = check_url(url)
    except FetchError as exc:
        return SiteReport(str(url), None, str(exc))
    if fetcher is None:
        fetcher = Fetcher(total_timeout=timeout, request_timeout=timeout)
    try:
        return _detect(fetcher, url)
    except FetchError as exc:
        return SiteReport(url, None, str(exc))


def fetch_items(
    kind: str, source_url: str, *, fetcher: Fetcher | None = None, max_pages: int = 200
) -> list[Item]:
    """Read all items of a detected source; raises :class:`FetchError` with a reason, or
    ``ValueError`` for an unknown ``kind``."""
    if fetcher is None:
        fetcher = Fetcher()
    if kind == "wordpress":
        return wordpress.fetch_items(fetcher, source_url, max_pages=min(max_pages, 50))
    if kind in ("rss", "atom"):
        return feeds.fetch_items(fetcher, source_url)
    if kind == "sitemap":
        return sitemap.fetch_items(fetcher, source_url, max_pages=max_pages)
    raise ValueError(f"unknown source kind {kind!r}")
