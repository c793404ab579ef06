"""A local web site for tests: aiohttp on 127.0.0.1, a free port, pages changed on the fly."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Page:
    body: bytes = b"ok"
    status: int = 200
    content_type: str = "text/html"
    delay: float = 0.0
    redirect: str | None = None
    chunked_bytes: int = 0  # stream this many bytes without a Content-Length
    hits: int = 0


@dataclass
class FakeSite:
    """``async with FakeSite() as site: site.pages["/x"] = Page(...); site.url("/x")``."""

    pages: dict[str, Page] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        page = self.pages.get(request.path)
        if page is None:
            return web.Response(status=404, text="not found")
        page.hits += 1
        if page.delay:
            await asyncio.sleep(page.delay)
        if page.redirect is not None:
            raise web.HTTPFound(page.redirect)
        if page.chunked_bytes:
            resp = web.StreamResponse(status=page.status)
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            sent = 0
            while sent < page.chunked_bytes:
                await resp.write(b"x" * 65536)
                sent += 65536
            await resp.write_eof()
            return resp
        return web.Response(status=page.status, body=page.body, content_type=page.content_type)

    async def __aenter__(self) -> FakeSite:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
