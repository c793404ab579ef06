"""The web chat: static pages where a person creates bots and talks to them.

The pages are plain HTML with vanilla JavaScript in ``static/`` (no build step, no CDN). They use
only the control API, and render every bot- or user-provided string through DOM text nodes, so no
message can inject HTML; the Content-Security-Policy forbids inline scripts as a second line.
"""

from __future__ import annotations

import html
from pathlib import Path

from aiohttp import web

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


def _page(name: str, status: int = 200) -> web.Response:
    body = (STATIC_DIR / name).read_text(encoding="utf-8")
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


async def chat(request: web.Request) -> web.Response:
    """``GET /chat/<username>``: the chat page, or a 404 page for an unknown bot."""
    username = request.match_info["username"]
    if request.app[STATE_KEY].bot_by_username(username) is None:
        body = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<title>Bot not found</title><link rel="stylesheet" href="/static/style.css"></head>'
            '<body><main class="page"><h1>Bot not found</h1>'
            f"<p>There is no bot <strong>@{html.escape(username)}</strong> in this emulator.</p>"
            '<p><a href="/">Back to the bot list</a></p></main></body></html>'
        )
        return web.Response(
            text=body,
            status=404,
            content_type="text/html",
            charset="utf-8",
            headers=SECURITY_HEADERS,
        )
    return _page("chat.html")


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
