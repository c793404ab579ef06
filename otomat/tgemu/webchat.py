"""The web chat: static pages where a person creates bots and talks to them.

The pages are plain HTML with vanilla JavaScript in ``static/`` (no build step, no CDN). They use
only the control API, and render every bot- or user-provided string through DOM text nodes, so no
message can inject HTML; the Content-Security-Policy forbids inline scripts as a second line.
"""

from __future__ import annotations

import html
from pathlib import Path

from aiohttp import web

from . import i18n
from .control import STATE_KEY

STATIC_DIR = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _page(name: str, status: int = 200, *, lang: str | None = None) -> web.Response:
    body = (STATIC_DIR / name).read_text(encoding="utf-8")
    if lang is not None:
        body = i18n.localise(body, lang)
    return web.Response(
        text=body,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers=SECURITY_HEADERS,
    )


async def index(request: web.Request) -> web.Response:
    """``GET /``: the bot list and the "create a bot" form."""
    return _page("index.html")


def page_language(request: web.Request) -> str:
    """The chat page's language: ``?lang=``, else the browser's ``Accept-Language``."""
    return i18n.choose_language(request.query, request.headers.get("Accept-Language", ""))


async def chat(request: web.Request) -> web.Response:
    """``GET /chat/<username>``: the chat page in the reader's language, or a 404 page for an
    unknown bot."""
    username = request.match_info["username"]
    lang = page_language(request)
    if request.app[STATE_KEY].bot_by_username(username) is None:
        texts = i18n.texts(lang)
        name = f"<strong>@{html.escape(username)}</strong>"
        body = (
            f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(texts['not_found_title'])}</title>"
            '<link rel="stylesheet" href="/static/style.css"></head>'
            f'<body><main class="page"><h1>{html.escape(texts["not_found_title"])}</h1>'
            f"<p>{html.escape(texts['not_found_text']).replace('{name}', name)}</p>"
            f'<p><a href="/">{html.escape(texts["back_to_list"])}</a></p></main></body></html>'
        )
        return web.Response(
            text=body,
            status=404,
            content_type="text/html",
            charset="utf-8",
            headers=SECURITY_HEADERS,
        )
    return _page("chat.html", lang=lang)


async def static_file(request: web.Request) -> web.StreamResponse:
    """``GET /static/<name>``: the pages' CSS and JavaScript (flat directory, no traversal)."""
    name = request.match_info["name"]
    path = STATIC_DIR / name
    if "/" in name or name.startswith(".") or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(
        path, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    )


def setup(app: web.Application) -> None:
    """Add the web chat routes to ``app``."""
    app.router.add_get("/", index)
    app.router.add_get("/chat/{username}", chat)
    app.router.add_get("/static/{name}", static_file)
