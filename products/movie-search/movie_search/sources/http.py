"""The one place the product talks HTTP: safe, bounded, synchronous fetching.

Every outbound request of the product (site detection, indexing, the install-time check) goes
through :class:`Fetcher`, so the limits below hold everywhere and tests have one thing to fake:

* only ``http`` and ``https`` URLs, also after a redirect (no ``file:``, ``ftp:``, ``data:``);
* at most ``max_redirects`` redirects per request;
* a per-request timeout *and* a total budget for all requests of one fetcher — a slow-drip server
  sending a byte a second cannot hold a worker past the budget, because the body is read in
  chunks and the deadline is checked between them;
* a maximum body size counted while streaming (never trusting ``Content-Length``); no
  ``Accept-Encoding`` is sent, so there is no compressed body to inflate into a bomb;
* no proxies from the environment (the sandbox has none; a test runner might).

It is synchronous (``urllib``) on purpose: the install-time check must be a plain function, and
the bot runs indexing in a worker thread (``asyncio.to_thread``) so one slow site never blocks
the event loop that serves other instances.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import Message

USER_AGENT = "OtomatMovieSearch/1.0 (+https://otomat.local/products/movie-search)"
MAX_BYTES = 5_000_000
REQUEST_TIMEOUT = 10.0
CHUNK = 65536


class FetchError(Exception):
    """A request failed; ``str(error)`` is a short reason fit to show a customer."""


@dataclass(frozen=True)
class Response:
    """A fully read response (any status: callers decide what a 404 means)."""

    url: str  # the final URL after redirects
    status: int
    content_type: str  # lower-case media type without parameters, "" when absent
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    charset: str = "utf-8"

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self) -> str:
        """The body decoded with the declared charset (UTF-8 by default), never raising."""
        try:
            return self.body.decode(self.charset, errors="replace")
        except LookupError:  # an unknown charset name from a hostile server
            return self.body.decode("utf-8", errors="replace")


def check_url(url: str) -> str:
    """Return ``url`` stripped if it is an absolute http(s) URL with a host, else raise
    :class:`FetchError` saying why."""
    if not isinstance(url, str) or not url.strip():
        raise FetchError("the address is empty")
    url = url.strip()
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise FetchError("the address contains spaces or control characters")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise FetchError("only http:// and https:// addresses are supported")
    if not parts.hostname:
        raise FetchError("the address has no host name")
    try:
        parts.port  # noqa: B018 - raises ValueError on a port like :99999 or :abc
    except ValueError:
        raise FetchError("the address has an invalid port") from None
    return url


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follow at most ``limit`` redirects, and only to http(s)."""

    def __init__(self, limit: int) -> None:
        self.max_redirections = limit
        self.max_repeats = limit

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            raise FetchError(f"redirected to an unsupported address ({scheme or 'no'} scheme)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)

    def http_error_302(self, req, fp, code, msg, headers):  # type: ignore[no-untyped-def]
        try:
            return super().http_error_302(req, fp, code, msg, headers)
        except urllib.error.HTTPError as exc:
            if "not allowed" in str(exc.msg).lower():
                raise FetchError("redirected to an unsupported address") from None
            if "redirect" in str(exc.msg).lower() or "loop" in str(exc.msg).lower():
                raise FetchError("too many redirects") from None
            raise

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


class Fetcher:
    """Bounded GET requests sharing one total time budget.

    ``total_timeout`` caps the wall time of all requests made through this fetcher together;
    ``request_timeout`` caps one request. Raises :class:`FetchError` (never anything else) for
    network errors, timeouts, oversized bodies, bad addresses and redirect trouble.
    """

    def __init__(
        self,
        *,
        total_timeout: float = 60.0,
        request_timeout: float = REQUEST_TIMEOUT,
        max_bytes: int = MAX_BYTES,
        max_redirects: int = 5,
    ) -> None:
        self.total_timeout = total_timeout
        self.request_timeout = request_timeout
        self.max_bytes = max_bytes
        self.deadline = time.monotonic() + total_timeout
        self.requests = 0
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), _Redirects(max_redirects)
        )

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def _timed_out(self) -> FetchError:
        budget = min(self.total_timeout, self.request_timeout)
        if self.remaining() <= 0:
            budget = self.total_timeout
        return FetchError(f"timed out after {budget:g} s")

    def get(self, url: str, *, accept: str = "*/*", max_bytes: int | None = None) -> Response:
        """GET ``url`` and read the whole body (up to ``max_bytes``)."""
        url = check_url(url)
        limit = self.max_bytes if max_bytes is None else max_bytes
        if self.remaining() <= 0:
            raise self._timed_out()
        started = time.monotonic()
        stop_at = min(self.deadline, started + self.request_timeout)
        request = urllib.request.Request(  # noqa: S310 - scheme checked by check_url
            url, headers={"User-Agent": USER_AGENT, "Accept": accept}
        )
        self.requests += 1
        try:
            raw = self._opener.open(request, timeout=max(0.05, stop_at - started))
        except urllib.error.HTTPError as exc:
            raw = exc  # an HTTP error status still has a body and headers worth reading
        except FetchError:
            raise
        except TimeoutError:
            raise self._timed_out() from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError | socket.timeout):
                raise self._timed_out() from None
            if isinstance(reason, ConnectionRefusedError):
                raise FetchError("connection refused") from None
            if isinstance(reason, socket.gaierror):
                raise FetchError("the host name does not resolve") from None
            if isinstance(reason, ssl.SSLError):
                raise FetchError("TLS error (bad certificate?)") from None
            raise FetchError(f"cannot connect ({reason})") from None
        except (http.client.HTTPException, OSError, ValueError) as exc:
            raise FetchError(f"cannot connect ({type(exc).__name__})") from None
        try:
            return self._read(raw, limit, stop_at)
        finally:
            raw.close()

    def _read(self, raw: object, limit: int, stop_at: float) -> Response:
        status = int(getattr(raw, "status", None) or getattr(raw, "code", 0) or 0)
        headers: Message = raw.headers  # type: ignore[attr-defined]
        final_url = raw.geturl()  # type: ignore[attr-defined]
        chunks: list[bytes] = []
        size = 0
        reader = getattr(raw, "read1", None) or raw.read  # type: ignore[attr-defined]
        try:
            while True:
                if time.monotonic() > stop_at:
                    raise self._timed_out()
                chunk = reader(CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise FetchError(f"response larger than {limit / 1_000_000:g} MB")
                chunks.append(chunk)
        except TimeoutError:
            raise self._timed_out() from None
        except (http.client.HTTPException, OSError, ValueError) as exc:
            raise FetchError(f"connection broken ({type(exc).__name__})") from None
        content_type = (headers.get_content_type() or "").lower() if headers else ""
        if headers is not None and headers.get("Content-Type") is None:
            content_type = ""
        charset = (headers.get_content_charset() if headers else None) or "utf-8"
        return Response(
            url=final_url,
            status=status,
            content_type=content_type,
            body=b"".join(chunks),
            headers={k.lower(): v for k, v in headers.items()} if headers else {},
            charset=charset,
        )
