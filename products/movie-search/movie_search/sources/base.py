"""Shared types of the source adapters."""

from __future__ import annotations

from dataclasses import dataclass, field

from movie_search.sources.parse import clean_title, year_of

KINDS = ("wordpress", "rss", "atom", "sitemap")
KIND_LABELS = {
    "wordpress": "WordPress API",
    "rss": "RSS feed",
    "atom": "Atom feed",
    "sitemap": "Sitemap",
}
MAX_URL = 2000


@dataclass(frozen=True)
class Item:
    """One film post found on a site."""

    title: str
    url: str
    year: int | None = None
    poster: str = ""
    published: str = ""  # ISO 8601 or the site's own date text

    @classmethod
    def make(cls, title: str, url: str, *, poster: str = "", published: str = "") -> Item | None:
        """A cleaned item, or ``None`` when it has no usable title or http(s) link."""
        title = clean_title(title)
        url = (url or "").strip()
        if not title or not url.startswith(("http://", "https://")) or len(url) > MAX_URL:
            return None
        poster = (poster or "").strip()
        if not poster.startswith(("http://", "https://")) or len(poster) > MAX_URL:
            poster = ""
        return cls(title, url, year_of(title, published), poster, (published or "")[:40])


@dataclass(frozen=True)
class SiteReport:
    """What :func:`movie_search.sources.detect` found out about a site.

    ``kind`` is one of :data:`KINDS`, or ``None`` when the site is not supported — then
    ``reason`` says why ("HTTP 403", "no WordPress API, no feed, no sitemap found", ...).
    ``source_url`` is what the adapter reads (the API's posts endpoint, the feed, the sitemap);
    ``total`` the number of posts/items/pages the source announced, when known.
    """

    url: str
    kind: str | None
    reason: str = ""
    source_url: str = ""
    sample_titles: list[str] = field(default_factory=list)
    total: int | None = None

    @property
    def supported(self) -> bool:
        return self.kind is not None

    def summary(self) -> str:
        """ "WordPress API · 128 posts", or the reason when unsupported."""
        if self.kind is None:
            return self.reason
        noun = {"wordpress": "posts", "sitemap": "pages"}.get(self.kind, "items")
        count = f" · {self.total} {noun}" if self.total is not None else ""
        return f"{KIND_LABELS[self.kind]}{count}"
