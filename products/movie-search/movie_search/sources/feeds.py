"""RSS 2.0 and Atom feed adapter."""

from __future__ import annotations

import urllib.parse
import xml.etree.ElementTree as ET

from movie_search.sources.base import Item
from movie_search.sources.http import Fetcher, FetchError
from movie_search.sources.parse import (
    ParseError,
    child,
    children,
    local,
    parse_html_head,
    parse_xml,
    text_of,
)

MAX_ITEMS = 5000
FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+xml")
COMMON_PATHS = ("feed/", "rss.xml", "atom.xml", "feed.xml", "index.xml")


def feed_kind(root: ET.Element) -> str | None:
    """``"rss"``, ``"atom"`` or ``None`` for the root element of a parsed document."""
    name = local(root.tag)
    if name == "rss" and child(root, "channel") is not None:
        return "rss"
    if name == "feed":
        return "atom"
    if name == "rdf":  # RSS 1.0 reads like RSS 2.0 for our purposes
        return "rss"
    return None


def _image_of(el: ET.Element) -> str:
    """A poster from enclosures, media:content / media:thumbnail, or an <img> in the text."""
    for c in el:
        name = local(c.tag)
        if name == "enclosure" and c.get("type", "").startswith("image/"):
            return c.get("url", "")
        if (
            name in ("thumbnail", "content")
            and c.get("url")
            and c.get("medium", "image") == "image"
        ):
            return c.get("url", "")
        if name == "link" and c.get("rel") == "enclosure" and c.get("type", "").startswith("image"):
            return c.get("href", "")
    for name in ("description", "encoded", "content", "summary"):
        body = text_of(child(el, name))
        if "<img" in body:
            start = body.find("src=", body.find("<img"))
            if start >= 0 and start + 5 < len(body):
                quote = body[start + 4]
                if quote in "\"'":
                    end = body.find(quote, start + 5)
                    if end > 0:
                        return body[start + 5 : end]
    return ""


def _rss_items(root: ET.Element) -> list[Item]:
    channel = child(root, "channel")
    entries = children(channel, "item") if channel is not None else []
    if local(root.tag) == "rdf":
        entries = children(root, "item")
    out = []
    for entry in entries[:MAX_ITEMS]:
        published = text_of(child(entry, "pubdate")) or text_of(child(entry, "date"))
        item = Item.make(
            text_of(child(entry, "title")),
            text_of(child(entry, "link")) or text_of(child(entry, "guid")),
            poster=_image_of(entry),
            published=published,
        )
        if item:
            out.append(item)
    return out


def _atom_items(root: ET.Element) -> list[Item]:
    out = []
    for entry in children(root, "entry")[:MAX_ITEMS]:
        link = ""
        for candidate in children(entry, "link"):
            if candidate.get("rel", "alternate") == "alternate":
                link = candidate.get("href", "")
                break
        published = text_of(child(entry, "published")) or text_of(child(entry, "updated"))
        item = Item.make(
            text_of(child(entry, "title")), link, poster=_image_of(entry), published=published
        )
        if item:
            out.append(item)
    return out


def items_of(root: ET.Element) -> list[Item]:
    """The items of a parsed feed (empty for anything that is not a feed)."""
    kind = feed_kind(root)
    if kind == "rss":
        return _rss_items(root)
    if kind == "atom":
        return _atom_items(root)
    return []


def feed_links(page_url: str, html_text: str) -> list[str]:
    """Feed URLs announced by ``<link rel="alternate" type="application/rss+xml">``."""
    out = []
    for link in parse_html_head(html_text).links:
        rels = link.get("rel", "").lower().split()
        if "alternate" in rels and link.get("type", "").lower() in FEED_TYPES and link.get("href"):
            url = urllib.parse.urljoin(page_url, link["href"].strip())
            if url not in out:
                out.append(url)
    return out[:5]


def read_feed(fetcher: Fetcher, url: str) -> tuple[str, list[Item]]:
    """Fetch and parse a feed: ``(kind, items)``.

    Raises :class:`FetchError` when it cannot be fetched, or when it is not a feed, with the
    reason ("HTTP 404", "not valid XML (...)", "not an RSS or Atom feed").
    """
    response = fetcher.get(
        url, accept="application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.1"
    )
    if not response.ok:
        raise FetchError(f"HTTP {response.status}")
    try:
        root = parse_xml(response.body)
    except ParseError as exc:
        raise FetchError(f"the feed is {exc}") from None
    kind = feed_kind(root)
    if kind is None:
        raise FetchError("not an RSS or Atom feed")
    return kind, items_of(root)


def fetch_items(fetcher: Fetcher, url: str, *, max_pages: int = 1) -> list[Item]:
    """The feed's items (feeds are not paginated here; ``max_pages`` is for a uniform API)."""
    return read_feed(fetcher, url)[1]
