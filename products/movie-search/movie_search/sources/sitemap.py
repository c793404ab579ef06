"""Sitemap adapter: sitemap index → urlsets → pages read for their OpenGraph tags."""

from __future__ import annotations

import urllib.parse

from movie_search.sources.base import Item
from movie_search.sources.http import Fetcher, FetchError
from movie_search.sources.parse import (
    ParseError,
    child,
    children,
    local,
    looks_like_html,
    parse_html_head,
    parse_xml,
    text_of,
)

MAX_SITEMAPS = 20  # sitemap files read per run (an index may list thousands)
MAX_LOCS = 50_000  # Google's own per-file limit
DEFAULT_MAX_PAGES = 200  # pages fetched per index run: bounded work per site


def robots_sitemaps(fetcher: Fetcher, base: str) -> list[str]:
    """``Sitemap:`` lines of the site's robots.txt (empty when there is none)."""
    url = urllib.parse.urljoin(base, "/robots.txt")
    try:
        response = fetcher.get(url, accept="text/plain", max_bytes=500_000)
    except FetchError as exc:
        if "timed out" in str(exc):
            raise
        return []
    if not response.ok:
        return []
    found = []
    for line in response.text().splitlines()[:2000]:
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == "sitemap" and value.strip():
            found.append(urllib.parse.urljoin(url, value.strip()))
    return found[:5]


def read_sitemap(fetcher: Fetcher, url: str) -> tuple[list[str], list[str]]:
    """``(child sitemaps, page URLs)`` of one sitemap file.

    Raises :class:`FetchError` when it cannot be fetched or is not a sitemap.
    """
    response = fetcher.get(url, accept="application/xml, text/xml;q=0.9, */*;q=0.1")
    if not response.ok:
        raise FetchError(f"HTTP {response.status}")
    try:
        root = parse_xml(response.body)
    except ParseError as exc:
        raise FetchError(f"the sitemap is {exc}") from None
    name = local(root.tag)
    if name not in ("sitemapindex", "urlset"):
        raise FetchError("not a sitemap")
    entries = children(root, "sitemap" if name == "sitemapindex" else "url")[:MAX_LOCS]
    locs = [text_of(child(e, "loc")) for e in entries]
    locs = [loc for loc in locs if loc.startswith(("http://", "https://"))]
    return (locs, []) if name == "sitemapindex" else ([], locs)


def page_urls(fetcher: Fetcher, url: str, *, limit: int) -> list[str]:
    """Page URLs reachable from the sitemap at ``url``, breadth first, at most ``limit``.

    Raises :class:`FetchError` only when the first sitemap itself fails; a broken child
    sitemap is skipped (the rest of the site stays searchable).
    """
    queue, seen, pages = [url], set(), []
    while queue and len(seen) < MAX_SITEMAPS and len(pages) < limit:
        current = queue.pop(0)
        if current in seen:
            continue
        seen.add(current)
        try:
            sitemaps, locs = read_sitemap(fetcher, current)
        except FetchError:
            if current == url:
                raise
            continue
        queue.extend(s for s in sitemaps if s not in seen)
        pages.extend(loc for loc in locs if loc not in pages)
    return pages[:limit]


def read_page(fetcher: Fetcher, url: str) -> Item | None:
    """An item from one page's ``og:title``/``og:image``/``og:url``; ``None`` when the page is
    not HTML, fails, or has no title."""
    try:
        response = fetcher.get(url, accept="text/html", max_bytes=2_000_000)
    except FetchError as exc:
        if "timed out" in str(exc):
            raise
        return None
    if not response.ok or not looks_like_html(response.content_type, response.body):
        return None
    head = parse_html_head(response.text())
    meta = head.meta
    if meta.get("og:type", "").lower() == "website":  # the home page or a listing, not a post
        return None
    og_url = meta.get("og:url", "").strip()
    link = urllib.parse.urljoin(response.url, og_url) if og_url else response.url
    poster = meta.get("og:image", "").strip()
    return Item.make(
        meta.get("og:title") or head.title,
        link,
        poster=urllib.parse.urljoin(response.url, poster) if poster else "",
        published=meta.get("article:published_time", ""),
    )


def fetch_items(fetcher: Fetcher, url: str, *, max_pages: int = DEFAULT_MAX_PAGES) -> list[Item]:
    """Items of the pages listed by the sitemap, at most ``max_pages`` pages fetched.

    A timeout of the overall budget ends the walk with what was read so far.
    """
    items: list[Item] = []
    for page in page_urls(fetcher, url, limit=max_pages):
        try:
            item = read_page(fetcher, page)
        except FetchError:
            break  # the budget is spent; keep what we have
        if item and all(i.url != item.url for i in items):
            items.append(item)
    return items
