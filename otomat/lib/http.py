"""The project's one outbound HTTP helper: every request Otomat makes to an address a person
typed (an external calendar's iCal URL, later an outgoing webhook) goes through :func:`fetch`.

Contract::

    fetch(url, *, max_bytes, timeout, allow_private=None, max_redirects=5,
          method="GET", headers=None, content=None) -> Response

- Only ``http`` and ``https`` URLs with a host name are fetched; anything else (``file:``,
  ``ftp:``, ``gopher:``, user:password@ in the URL) raises :class:`Refused`.
- The host is resolved once per connection and *every* address it resolves to must be public:
  private (10/8, 172.16/12, 192.168/16, fc00::/7), loopback, link-local (169.254/16 — the
  cloud metadata address — and fe80::/10), multicast, reserved, unspecified, shared
  (100.64/10) and IPv4-mapped forms of those are refused (:class:`Refused`). The socket then
  connects to the very address that was checked, so a DNS answer that changes between the
  check and the connection (DNS rebinding) cannot reach an inner address. ``allow_private``
  (default: the ``HTTP_ALLOW_PRIVATE`` setting, ``OTOMAT_HTTP_ALLOW_PRIVATE``; tests and the
  demo use it to reach a local server) turns this check off.
- Redirects (301, 302, 303, 307, 308) are followed by hand, at most ``max_redirects`` hops;
  every hop is checked again as above (a public URL redirecting to 127.0.0.1 is refused).
  A 303 (and a 301/302 answering a POST) continues as a GET without a body.
- The body is streamed and refused as soon as it passes ``max_bytes`` (:class:`TooLarge`), a
  declared ``Content-Length`` above it before anything is read. ``timeout`` (seconds) bounds
  connecting and each read, and the whole exchange too, so a server that trickles a byte at a
  time cannot hold the caller for longer than about twice ``timeout``.
- Proxy variables of the environment are ignored (a proxy would bypass the address check).
- Any status is returned (a 404 or 500 is a :class:`Response`, not an exception; check
  ``response.status``); transport failures raise :class:`FetchError` whose message says what
  happened in a sentence, without credentials or the body.

``FetchError`` is the base of ``Refused`` and ``TooLarge``; catching it catches all three.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

REDIRECTS = {301, 302, 303, 307, 308}
USER_AGENT = "Otomat/1 (+https://otomat.example/)"


class FetchError(Exception):
    """The request failed; the message says why, as a sentence for a person."""


class Refused(FetchError):
    """The URL or the address it resolves to is not allowed."""


class TooLarge(FetchError):
    """The response is larger than the caller's ``max_bytes``."""


@dataclass
class Response:
    url: str  # the final URL, after redirects
    status: int
    headers: httpx.Headers
    content: bytes = b""
    redirects: list[str] = field(default_factory=list)  # the URLs passed through

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self, default_encoding: str = "utf-8") -> str:
        charset = httpx.Response(200, headers=self.headers).charset_encoding
        return self.content.decode(charset or default_encoding, errors="replace")


_SHARED = ipaddress.ip_network("100.64.0.0/10")


def address_problem(address: str) -> str:
    """Why ``address`` (an IP literal) may not be contacted, or "" when it is public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for flag, what in (
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_unspecified", "an unspecified address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(ip, flag):
            return what
    if ip.version == 4 and ip in _SHARED:
        return "a private address"
    return ""


def _check_url(url: str) -> httpx.URL:
    try:
        parts = urlsplit(url)
        parsed = httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        raise Refused("The address is not a valid URL.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise Refused("Only http:// and https:// addresses can be fetched.")
    if not parsed.host:
        raise Refused("The address has no host name.")
    if parts.username or parts.password:
        raise Refused("Addresses with a user name or password in them are not fetched.")
    return parsed


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves the host itself, refuses non-public addresses, and connects to the address it
    checked (never resolving the name a second time)."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise Refused(f"The host name {host!r} could not be resolved.") from None
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        if not addresses:
            raise Refused(f"The host name {host!r} could not be resolved.")
        if not self.allow_private:
            for address in addresses:
                problem = address_problem(address)
                if problem:
                    raise Refused(
                        f"{host} resolves to {problem} ({address}); such addresses are not fetched."
                    )
        last: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(
                    address, port, timeout, local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                last = exc
        raise httpcore.ConnectError(str(last) if last else "could not connect")


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, *, allow_private: bool) -> None:
        super().__init__(trust_env=False, retries=0)
        # httpx has no parameter for the network backend; keep its TLS context and swap the
        # pool for one whose every connection goes through the guarded resolver.
        ssl_context = self._pool._ssl_context
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=4,
            network_backend=_GuardedBackend(allow_private),
        )


def _allow_private_default() -> bool:
    try:
        from django.conf import settings

        return bool(getattr(settings, "HTTP_ALLOW_PRIVATE", False))
    except Exception:  # used outside Django
        return False


def fetch(
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    allow_private: bool | None = None,
    max_redirects: int = 5,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> Response:
    """Request ``url`` and return its :class:`Response` (any status); raises :class:`Refused`,
    :class:`TooLarge` or :class:`FetchError` as the module docstring describes."""
    if max_bytes < 0 or timeout <= 0:
        raise ValueError("max_bytes must be >= 0 and timeout > 0")
    if allow_private is None:
        allow_private = _allow_private_default()
    deadline = time.monotonic() + timeout
    sent_headers = {"User-Agent": USER_AGENT, **(headers or {})}
    passed: list[str] = []
    current = url
    with httpx.Client(
        transport=_GuardedTransport(allow_private=allow_private),
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
    ) as client:
        for _hop in range(max_redirects + 1):
            target = _check_url(current)
            try:
                with client.stream(
                    method, target, headers=sent_headers, content=content
                ) as response:
                    if response.status_code in REDIRECTS and "location" in response.headers:
                        passed.append(current)
                        current = urljoin(str(target), response.headers["location"])
                        if response.status_code == 303 or (
                            response.status_code in (301, 302) and method == "POST"
                        ):
                            method, content = "GET", None
                        continue
                    body = _read_capped(response, max_bytes=max_bytes, deadline=deadline)
                    return Response(
                        url=str(target),
                        status=response.status_code,
                        headers=response.headers,
                        content=body,
                        redirects=passed,
                    )
            except FetchError:
                raise
            except httpx.TimeoutException:
                raise FetchError(f"The server did not answer within {timeout:g} s.") from None
            except httpx.HTTPError as exc:
                raise FetchError(f"The request failed: {_describe(exc)}.") from None
        raise FetchError(f"More than {max_redirects} redirects; the address was not fetched.")


def _read_capped(response: httpx.Response, *, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise TooLarge(
            f"The response is {int(declared):,} bytes, more than the {max_bytes:,} allowed."
        )
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"The response is larger than the {max_bytes:,} bytes allowed.")
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise FetchError("The server sent its answer too slowly; it was abandoned.")
    return b"".join(chunks)


def _describe(exc: httpx.HTTPError) -> str:
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, httpx.ConnectError):
        return "could not connect to the server"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server broke the HTTP protocol"
    if isinstance(exc, httpx.DecodingError):
        return "the response could not be decoded"
    return type(cause or exc).__name__
