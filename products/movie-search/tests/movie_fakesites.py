"""Local fake blog sites for the tests: real HTTP servers on 127.0.0.1, one port per site.

    with FakeSites() as sites:
        sites.url("wordpress")   # http://127.0.0.1:<port>/

Sites: ``wordpress`` (REST API, paginated 3 per page, featured images via ``_embed``), ``rss``
(feed announced by ``<link rel="alternate">``), ``atom`` (feed only at the common ``/atom.xml``),
``sitemap`` (robots.txt → sitemap index → urlset → pages with OpenGraph tags), ``plain`` (a blog
with none of these), ``forbidden`` (403 everywhere) and ``hostile`` (huge, slow, dripping,
redirect-looping, malformed, entity-bomb and script-laden responses).

All servers run on one event loop in a daemon thread and stop on exit. ``hits`` counts
requests per (site, path) so tests can check bounded work.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from typing import Any

from aiohttp import web

FILMS = [
    ("The Matrix (1999)", "the-matrix", "2019-03-01T10:00:00"),
    ("The Matrix Reloaded (2003)", "the-matrix-reloaded", "2019-03-02T10:00:00"),
    ("Amélie (2001)", "amelie", "2019-03-03T10:00:00"),
    ("Pan&#8217;s Labyrinth (2006)", "pans-labyrinth", "2019-03-04T10:00:00"),
    ("<em>Spirited Away</em> (2001)", "spirited-away", "2019-03-05T10:00:00"),
    ("Parasite (2019)", "parasite", "2020-01-01T10:00:00"),
    ("Blade Runner (1982)", "blade-runner", "2020-02-01T10:00:00"),
]

HOME = """<!doctype html><html><head><title>{name}</title>{extra}</head>
<body><h1>{name}</h1><p>Film reviews.</p></body></html>"""

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<rss version="2.0"><channel><title>&lol3;</title><item><title>&lol3;</title></item></channel></rss>"""

SCRIPTED = (
    """<!doctype html><html><head><title>Hostile</title>
<script>document.write('<meta property="og:title" content="Injected">');</script>
<link rel="alternate" type="application/rss+xml" href="/bomb.xml">
<meta property="og:title" content="<script>alert(1)</script>Evil">
<style>/* </head> */</style><!-- <link rel="alternate" type="application/rss+xml" href="/x"> -->
<body><div><p><table><td><<<>>>&&&&#xZZZ;<img src=x onerror=alert(1)><svg><script>
"""
    + "<div>" * 20000
)


def _page(site: str, slug: str, title: str, published: str, *, poster: bool = True) -> str:
    image = f'<meta property="og:image" content="/posters/{slug}.jpg">' if poster else ""
    return f"""<!doctype html><html><head><title>{title} – {site}</title>
<meta property="og:type" content="article">
<meta property="og:title" content="{title}">{image}
<meta property="og:url" content="/films/{slug}">
<meta property="article:published_time" content="{published}">
</head><body><article>{title}</article></body></html>"""


class FakeSites:
    """Start all fake sites on enter, stop them on exit."""

    NAMES = ("wordpress", "rss", "atom", "sitemap", "plain", "forbidden", "hostile")

    def __init__(self) -> None:
        self.urls: dict[str, str] = {}
        self.hits: Counter[tuple[str, str]] = Counter()
        self.films = list(FILMS)  # tests may add films, then re-index
        self.wp_status = 200  # tests may break the WordPress API
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runners: list[web.AppRunner] = []
        self._thread: threading.Thread | None = None

    def url(self, name: str) -> str:
        return self.urls[name]

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> FakeSites:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self._start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-sites", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake sites did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._thread is not None

        async def stop() -> None:
            for runner in self._runners:
                await runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        for name in self.NAMES:
            app = web.Application()
            app.router.add_route("GET", "/{tail:.*}", self._handler(name))
            runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            self.urls[name] = f"http://{host}:{port}/"
            self._runners.append(runner)

    def _handler(self, name: str) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            self.hits[(name, request.path)] += 1
            return await getattr(self, f"_{name}")(request)

        return handle

    # ------------------------------------------------------------------ the sites

    def _base(self, request: web.Request) -> str:
        return f"http://{request.host}"

    async def _wordpress(self, request: web.Request) -> web.StreamResponse:
        base = self._base(request)
        if request.path == "/":
            link = f'<link rel="https://api.w.org/" href="{base}/wp-json/">'
            return web.Response(
                text=HOME.format(name="WP Films", extra=link), content_type="text/html"
            )
        if request.path != "/wp-json/wp/v2/posts":
            return web.json_response({"code": "rest_no_route"}, status=404)
        if self.wp_status != 200:
            return web.json_response({"code": "broken"}, status=self.wp_status)
        per_page = min(3, int(request.query.get("per_page", 10)))  # this host caps pages at 3
        page = int(request.query.get("page", 1))
        total = len(self.films)
        pages = max(1, -(-total // per_page))
        if page > pages:
            return web.json_response({"code": "rest_post_invalid_page_number"}, status=400)
        posts = []
        for title, slug, date in self.films[(page - 1) * per_page : page * per_page]:
            post: dict[str, Any] = {
                "id": hash(slug) % 10000,
                "date": date,
                "link": f"{base}/{slug}/",
                "title": {"rendered": title},
            }
            if "_embed" in request.query:
                post["_embedded"] = {
                    "wp:featuredmedia": [{"source_url": f"{base}/uploads/{slug}.jpg"}]
                }
            posts.append(post)
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        return web.Response(
            text=json.dumps(posts), content_type="application/json", headers=headers
        )

    async def _rss(self, request: web.Request) -> web.StreamResponse:
        base = self._base(request)
        if request.path == "/":
            link = '<link rel="alternate" type="application/rss+xml" title="Films" href="/feed/films.xml">'
            return web.Response(
                text=HOME.format(name="RSS Films", extra=link), content_type="text/html"
            )
        if request.path != "/feed/films.xml":
            return web.Response(status=404, text="not found")
        items = "".join(
            f"<item><title>{t.replace('&', '&amp;').replace('<', '&lt;')}</title>"
            f"<link>{base}/{s}.html</link><pubDate>Fri, 01 Mar 2019 10:00:00 GMT</pubDate>"
            f'<enclosure url="{base}/img/{s}.jpg" type="image/jpeg" length="1"/></item>'
            for t, s, _d in self.films[:4]
        )
        body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Films</title>{items}</channel></rss>'
        return web.Response(text=body, content_type="application/rss+xml")

    async def _atom(self, request: web.Request) -> web.StreamResponse:
        base = self._base(request)
        if request.path == "/":
            return web.Response(
                text=HOME.format(name="Atom Films", extra=""), content_type="text/html"
            )
        if request.path != "/atom.xml":
            return web.Response(status=404, text="not found")
        entries = "".join(
            f'<entry><title type="html">{t.replace("&", "&amp;").replace("<", "&lt;")}</title>'
            f'<link rel="alternate" href="{base}/posts/{s}"/><published>{d}Z</published>'
            f'<media:thumbnail url="{base}/thumbs/{s}.jpg"/></entry>'
            for t, s, d in self.films[2:6]
        )
        body = (
            '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
            f'xmlns:media="http://search.yahoo.com/mrss/"><title>Films</title>{entries}</feed>'
        )
        return web.Response(text=body, content_type="application/atom+xml")

    async def _sitemap(self, request: web.Request) -> web.StreamResponse:
        base = self._base(request)
        path = request.path
        if path == "/":
            home = HOME.format(
                name="Sitemap Films", extra='<meta property="og:type" content="website">'
            )
            return web.Response(text=home, content_type="text/html")
        if path == "/robots.txt":
            return web.Response(text=f"User-agent: *\nDisallow:\nSitemap: {base}/maps/index.xml\n")
        if path == "/maps/index.xml":
            body = (
                '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                f"<sitemap><loc>{base}/maps/films.xml</loc></sitemap>"
                f"<sitemap><loc>{base}/maps/broken.xml</loc></sitemap>"
                f"<sitemap><loc>{base}/maps/index.xml</loc></sitemap></sitemapindex>"
            )
            return web.Response(text=body, content_type="application/xml")
        if path == "/maps/broken.xml":
            return web.Response(text="<urlset><url><loc>", content_type="application/xml")
        if path == "/maps/films.xml":
            locs = [f"{base}/"] + [f"{base}/films/{s}" for _t, s, _d in self.films[:3]]
            locs += [f"{base}/poster.png", f"{base}/films/missing"]
            urls = "".join(f"<url><loc>{loc}</loc></url>" for loc in locs)
            body = f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
            return web.Response(text=body, content_type="application/xml")
        if path == "/poster.png":
            return web.Response(body=b"\x89PNG\r\n\x1a\n" + b"\0" * 100, content_type="image/png")
        for title, slug, date in self.films:
            if path == f"/films/{slug}":
                return web.Response(
                    text=_page("Sitemap Films", slug, title, date), content_type="text/html"
                )
        return web.Response(status=404, text="not found")

    async def _plain(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/":
            return web.Response(text=HOME.format(name="Plain", extra=""), content_type="text/html")
        if request.path == "/logo.png":
            return web.Response(body=b"\x89PNG\r\n\x1a\n", content_type="image/png")
        return web.Response(status=404, text="<h1>Not found</h1>", content_type="text/html")

    async def _forbidden(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=403, text="Forbidden by the firewall", content_type="text/html")

    async def _hostile(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/":
            return web.Response(text=SCRIPTED, content_type="text/html")
        if path == "/bomb.xml":
            return web.Response(body=BOMB, content_type="application/rss+xml")
        if path in ("/broken.xml", "/sitemap.xml", "/feed.xml"):
            return web.Response(
                text='<?xml version="1.0"?><rss><channel><item><title>x</ti',
                content_type="application/xml",
            )
        if path == "/wp-json/wp/v2/posts":  # JSON nested deep enough to break a naive parser
            return web.Response(text="[" * 100_000 + "]" * 100_000, content_type="application/json")
        if path == "/huge":
            response = web.StreamResponse(headers={"Content-Type": "text/html"})
            await response.prepare(request)
            chunk = b"<p>" + b"x" * 65533
            try:
                for _ in range(200):  # 13 MB, far past the 5 MB limit; the client hangs up first
                    await response.write(chunk)
            except ConnectionError:
                pass
            return response
        if path == "/slow":
            await asyncio.sleep(5)
            return web.Response(text="late")
        if path == "/drip":
            response = web.StreamResponse(headers={"Content-Type": "text/html"})
            await response.prepare(request)
            try:
                for _ in range(100):
                    await response.write(b"<")
                    await asyncio.sleep(0.1)
            except ConnectionError:
                pass
            return response
        if path == "/loop":
            raise web.HTTPFound("/loop")
        if path == "/to-file":
            raise web.HTTPFound("file:///etc/passwd")
        if path == "/binary":
            return web.Response(
                body=b"\x00\x01\x02" * 1000, content_type="application/octet-stream"
            )
        return web.Response(status=404, text="not found")
