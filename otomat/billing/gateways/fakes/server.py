"""A small threaded HTTP server for fake providers: routes, a request log, a hosted payment page.

Subclasses register routes with ``route(method, path_regex)`` and build responses with
``Reply``. The server binds to 127.0.0.1 on a free port and stops on ``close()`` (or at the end
of a ``with`` block); its thread is a daemon, so a forgotten server never keeps a test run alive.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, urlsplit

import httpx


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case keys
    body: bytes
    match: re.Match | None = None

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict | list = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, dict | list):
            return json.dumps(self.body).encode(), "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), "text/html; charset=utf-8"
        return self.body, "application/octet-stream"


Handler = Callable[[Request], Reply]


class FakeServer:
    """Base class: subclasses call ``self.route(...)`` in ``__init__`` before ``start()``."""

    # How the provider calls the URL it notifies, for the error when there is none.
    notify_url_name: ClassVar[str] = "notification URL"

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern, Handler]] = []
        self.requests: list[Request] = []  # every request received, in order
        self.callbacks: list[httpx.Response] = []  # replies to callbacks this fake sent
        self._httpd: ThreadingHTTPServer | None = None
        self._declared_url = ""
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()  # open client connections
        self._connections_lock = threading.Lock()

    # -- routing ---------------------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))

    def _dispatch(self, request: Request) -> Reply:
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                request.match = match
                try:
                    return handler(request)
                except Exception as exc:  # a fake's bug must show up, not hang the client
                    return Reply(500, {"error": f"fake server error: {exc!r}"})
        return Reply(404, {"error": f"no route {request.method} {request.path}"})

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._httpd is None and self._declared_url:
            return self._declared_url
        assert self._httpd is not None, "start() the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def declared_at(self, url: str) -> Self:
        """Answer ``url`` for ``.url`` without running (to configure a client for a fake that
        another process runs, e.g. ``otomat fakepay``)."""
        self._declared_url = url.rstrip("/")
        return self

    def start(self, port: int = 0) -> Self:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without this, Nagle's algorithm and
                # the client's delayed ACK hold the body back ~40 ms on a kept-alive connection.
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with fake._connections_lock:
                    fake._connections.add(self.request)

            def finish(self) -> None:
                with fake._connections_lock:
                    fake._connections.discard(self.request)
                super().finish()

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                fake.requests.append(request)
                reply = fake._dispatch(request)
                payload, content_type = reply.encoded()
                self.send_response(reply.status)
                headers = {"Content-Type": content_type, **reply.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop listening and drop the connections clients keep alive, as a provider that
        went away would."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        with self._connections_lock:
            connections, self._connections = set(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):  # already gone
                connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Self:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- callbacks -------------------------------------------------------------------------------

    def notification(self, reference: str, kind: str = "paid") -> tuple[dict[str, str], bytes]:
        """The signed callback the provider would send (each fake implements it)."""
        raise NotImplementedError

    def checkout_notify_url(self, reference: str) -> str:
        """The URL the checkout ``reference`` named for its callbacks, if the provider lets a
        checkout name one; raises KeyError for an unknown reference."""
        return ""

    def deliver(
        self, reference: str, kind: str = "paid", *, url: str | None = None
    ) -> httpx.Response:
        """POST ``notification(reference, kind)`` to ``url``, else the checkout's own callback
        URL, else the dashboard's ``notify_url``; returns the reply (also in ``callbacks``)."""
        # ``notify_url``: the URL "set in the provider's dashboard", when the fake has one.
        target = url or self.checkout_notify_url(reference) or getattr(self, "notify_url", "")
        if not target:
            raise ValueError(
                f"no {self.notify_url_name} for {reference!r}: pass url= or give the fake a "
                f"notify_url"
            )
        headers, body = self.notification(reference, kind)
        return self.post_callback(target, body, headers)

    def post_callback(
        self, url: str, body: bytes, headers: dict[str, str], *, method: str = "POST"
    ) -> httpx.Response:
        """Deliver one callback to ``url`` as the provider would, recording the reply."""
        response = httpx.request(method, url, content=body, headers=headers, timeout=30)
        self.callbacks.append(response)
        return response


def payment_page(title: str, amount: str, pay_action: str, cancel_action: str) -> str:
    """The fake hosted payment page: the amount and two buttons (pay / cancel), each a form
    POST back to the fake, which then sends the signed callback and redirects the customer."""
    from html import escape

    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:28rem;margin:3rem auto;padding:1rem}}
.amount{{font-size:2rem;margin:1rem 0}}button{{font-size:1rem;padding:.6rem 1.2rem;margin-right:.5rem}}
.note{{color:#666;font-size:.85rem}}</style></head><body>
<h1>{escape(title)}</h1>
<p class="note">A local test payment page: no real money moves.</p>
<p class="amount">{escape(amount)}</p>
<form method="post" action="{escape(pay_action)}" style="display:inline"><button id="pay">Pay</button></form>
<form method="post" action="{escape(cancel_action)}" style="display:inline"><button id="cancel">Cancel</button></form>
</body></html>"""
