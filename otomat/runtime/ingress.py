"""The webhook ingress: one HTTP listener for every shared-runtime bot in webhook mode.

Telegram (or the emulator) POSTs each update to ``<public_url>/tg/<path>`` with the header
``X-Telegram-Bot-Api-Secret-Token``. ``path`` is ``secrets.token_urlsafe(32)`` per instance —
never derived from the bot token, so a leaked URL reveals no credential and an unknown URL
reveals nothing. The ingress checks the secret in constant time and hands the raw body to the
route's sink (the shared backend writes it to the right host over a socketpair); it does not
parse the update, so its own cost per update is one hash lookup and one buffered write.

Answers: 200 (accepted; handled in the background, like aiogram's default webhook handler),
404 (unknown path), 401 (wrong or missing secret), 400 (empty or non-JSON body), 413 (over
``max_body``), 503 (the instance's host is restarting or saturated: Telegram retries). Error
bodies are a fixed word, never naming an instance.

It runs inside the runner process (see docs/runtime.md, "The shared backend", for why).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web

log = logging.getLogger("otomat.runtime.ingress")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
PATH_PREFIX = "/tg/"
DEFAULT_MAX_BODY = 1 << 20  # Telegram updates are a few KiB

# A sink takes an update's raw JSON body and returns False when it cannot accept it now.
Sink = Callable[[bytes], bool]


@dataclass(frozen=True)
class Route:
    """One instance's webhook: its path segment, its secret and where its updates go."""

    path: str
    secret: str = field(repr=False)
    sink: Sink = field(repr=False)


@dataclass
class IngressStats:
    accepted: int = 0
    not_found: int = 0
    unauthorized: int = 0
    bad_request: int = 0
    unavailable: int = 0


def _check_public_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"public_url must be an http(s) URL, not {url!r}")
    if parts.query or parts.fragment:
        raise ValueError("public_url must not have a query or fragment")
    return url.rstrip("/")


class WebhookIngress:
    """An aiohttp server routing ``POST /tg/<path>`` to registered sinks.

    ``public_url`` is the base URL Telegram reaches the ingress at (a reverse proxy's HTTPS
    address in production); by default, the address it listens on. ``start()`` binds
    ``host:port`` (port 0: a free one) and raises ``OSError`` when it cannot.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be within 0..65535, not {port}")
        if max_body < 1024:
            raise ValueError("max_body must be at least 1024 bytes")
        self.host = host
        self.port = port
        self.max_body = max_body
        self._public_url = _check_public_url(public_url) if public_url else None
        self._routes: dict[str, Route] = {}
        self._runner: web.AppRunner | None = None
        self.stats = IngressStats()

    @property
    def public_url(self) -> str:
        """The base of every webhook URL (available once started when not given)."""
        if self._public_url is None:
            raise RuntimeError("the ingress is not started and has no public_url")
        return self._public_url

    @property
    def started(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        """Bind and serve. Idempotent."""
        if self._runner is not None:
            return
        app = web.Application(client_max_size=self.max_body)
        app.router.add_post(PATH_PREFIX + "{path}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.port = port
        if self._public_url is None:
            self._public_url = f"http://{host}:{port}"
        log.info("webhook ingress listening on %s:%d (public %s)", host, port, self._public_url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- routes -------------------------------------------------------------------------------

    def add_route(self, sink: Sink) -> Route:
        """Register a new unguessable path with a fresh secret for ``sink``."""
        route = Route(path=secrets.token_urlsafe(32), secret=secrets.token_urlsafe(32), sink=sink)
        self._routes[route.path] = route
        return route

    def remove_route(self, path: str) -> bool:
        """Forget a path (later POSTs get 404); True if it existed."""
        return self._routes.pop(path, None) is not None

    def url_for(self, route: Route) -> str:
        return self.public_url + PATH_PREFIX + route.path

    def __len__(self) -> int:
        return len(self._routes)

    # -- serving ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        route = self._routes.get(request.match_info["path"])
        if route is None:
            self.stats.not_found += 1
            return web.Response(status=404, text="not found")
        given = request.headers.get(SECRET_HEADER, "")
        # compare_digest: the time taken does not depend on how much of the secret matched.
        if not hmac.compare_digest(given.encode(), route.secret.encode()):
            self.stats.unauthorized += 1
            return web.Response(status=401, text="unauthorized")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.stats.bad_request += 1
            return web.Response(status=413, text="too large")
        if body.lstrip()[:1] != b"{":
            self.stats.bad_request += 1
            return web.Response(status=400, text="bad request")
        if not route.sink(body):
            self.stats.unavailable += 1
            return web.Response(status=503, text="unavailable")
        self.stats.accepted += 1
        return web.Response(status=200)
