"""WordPress REST API adapter: ``/wp-json/wp/v2/posts`` with ``_embed`` for featured images."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from movie_search.sources.base import Item
from movie_search.sources.http import Fetcher, FetchError
from movie_search.sources.parse import clean_title

PER_PAGE = 100
POSTS_PATH = "wp/v2/posts"


def posts_url(api_root: str, *, page: int = 1, per_page: int = PER_PAGE) -> str:
    """The posts endpoint under an API root (``https://site/wp-json/`` or a ``?rest_route=``
    root, which WordPress uses when pretty permalinks are off)."""
    query = urllib.parse.urlencode({"per_page": per_page, "page": page, "_embed": 1})
    if "rest_route=" in api_root:
        return f"{api_root.rstrip('/')}/{POSTS_PATH}&{query}"
    return f"{api_root.rstrip('/')}/{POSTS_PATH}?{query}"


def api_roots(base: str, discovered: str = "") -> list[str]:
    """Where to look for the API: the root the home page announced, then ``/wp-json/``."""
    roots = [discovered] if discovered else []
    default = urllib.parse.urljoin(base if base.endswith("/") else base + "/", "wp-json/")
    if default not in roots:
        roots.append(default)
    return roots


def _posts(body: bytes) -> list[dict[str, Any]] | None:
    """The decoded posts list, or ``None`` when the body is not a WordPress posts answer."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(data, list) or not all(isinstance(p, dict) for p in data):
        return None
    if data and not any(isinstance(p.get("title"), dict) and "link" in p for p in data):
        return None
    return data


def _item(post: dict[str, Any]) -> Item | None:
    title = post.get("title")
    rendered = title.get("rendered", "") if isinstance(title, dict) else ""
    poster = ""
    embedded = post.get("_embedded")
    if isinstance(embedded, dict):
        media = embedded.get("wp:featuredmedia")
        if isinstance(media, list) and media and isinstance(media[0], dict):
            poster = str(media[0].get("source_url") or "")
    return Item.make(
        clean_title(str(rendered)),
        str(post.get("link") or ""),
        poster=poster,
        published=str(post.get("date_gmt") or post.get("date") or ""),
    )


def probe(fetcher: Fetcher, api_root: str) -> tuple[str, int | None, list[str]] | None:
    """``(posts endpoint, total posts, sample titles)`` if ``api_root`` serves the posts API.

    Raises :class:`FetchError` only for a timeout (there is no point in probing further then);
    any other failure means "not here" and returns ``None``.
    """
    url = posts_url(api_root, per_page=5)
    try:
        response = fetcher.get(url, accept="application/json")
    except FetchError as exc:
        if "timed out" in str(exc):
            raise
        return None
    if not response.ok:
        return None
    posts = _posts(response.body)
    if posts is None:
        return None
    total = response.headers.get("x-wp-total", "")
    titles = [i.title for i in map(_item, posts[:3]) if i]
    return posts_url(api_root, page=1), int(total) if total.isdigit() else len(posts), titles


def fetch_items(fetcher: Fetcher, endpoint: str, *, max_pages: int = 20) -> list[Item]:
    """All posts, page by page, up to ``max_pages`` pages of :data:`PER_PAGE`.

    Raises :class:`FetchError` when the first page cannot be read; a later page failing ends
    the walk with what was read (WordPress answers 400 past the last page).
    """
    items: list[Item] = []
    parts = urllib.parse.urlsplit(endpoint)
    query = dict(urllib.parse.parse_qsl(parts.query))
    for page in range(1, max_pages + 1):
        query["page"] = str(page)
        url = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
        try:
            response = fetcher.get(url, accept="application/json")
        except FetchError:
            if page == 1:
                raise
            break
        if not response.ok:
            if page == 1:
                raise FetchError(f"HTTP {response.status} from the WordPress API")
            break
        posts = _posts(response.body)
        if posts is None:
            if page == 1:
                raise FetchError("the WordPress API did not answer with posts")
            break
        items.extend(i for i in map(_item, posts) if i)
        pages = response.headers.get("x-wp-totalpages", "")
        if not posts or (pages.isdigit() and page >= int(pages)):
            break
    return items
