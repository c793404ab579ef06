"""Safe, bounded HTTP fetching for checks.

Every fetch has a total timeout, follows at most ``MAX_REDIRECTS`` redirects (only to http(s)),
reads the body in chunks and stops at ``max_bytes`` (decompressed, so a gzip bomb is cut off
too), and turns every failure into :class:`FetchError` with a message fit for the customer.
Nothing here keeps state between calls.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

from alert_bot.sources import SourceError, check_url

USER_AGENT = "OtomatAlertBot/1.0 (+https://otomat.local/products/alert-bot)"
MAX_REDIRECTS = 5
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
CHUNK = 64 * 1024


class FetchError(Exception):
    """The page could not be fetched; ``str()`` says why in plain words."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    url: str  # after redirects
    body: bytes  # empty when the body was not requested
    charset: str | None

    def text(self) -> str:
        """The body decoded with the declared charset (UTF-8 if none or unknown), never raising."""
        try:
            return self.body.decode(self.charset or "utf-8", errors="replace")
        except LookupError:  # an unknown charset name
            return self.body.decode("utf-8", errors="replace")


async def fetch(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    read_body: bool = True,
) -> Response:
    """GET ``url``; see the module docstring for the bounds. Raises :class:`FetchError`."""
    try:
        check_url(url)
    except SourceError as exc:
        raise FetchError(str(exc)) from None
    client_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=timeout)
    try:
        async with (
            aiohttp.ClientSession(
                timeout=client_timeout,
                headers={"User-Agent": USER_AGENT, "Accept": "*/*"},
                trust_env=False,
            ) as session,
            session.get(url, max_redirects=MAX_REDIRECTS, allow_redirects=True) as resp,
        ):
            body = b""
            if read_body:
                declared = resp.content_length
                if declared is not None and declared > max_bytes:
                    raise FetchError(f"the page is larger than {_size(max_bytes)}")
                parts: list[bytes] = []
                size = 0
                async for chunk in resp.content.iter_chunked(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(f"the page is larger than {_size(max_bytes)}")
                    parts.append(chunk)
                body = b"".join(parts)
            return Response(resp.status, str(resp.url), body, resp.charset)
    except FetchError:
        raise
    except TimeoutError:
        raise FetchError(f"no complete answer within {timeout:g} s") from None
    except aiohttp.TooManyRedirects:
        raise FetchError(f"more than {MAX_REDIRECTS} redirects") from None
    except aiohttp.InvalidURL as exc:
        raise FetchError(f"invalid URL ({exc})") from None
    except aiohttp.ClientConnectorError as exc:
        raise FetchError(f"cannot connect to {exc.host}:{exc.port} ({exc.os_error})") from None
    except aiohttp.ClientError as exc:
        raise FetchError(f"{type(exc).__name__}: {exc}"[:300]) from None
    except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
        raise FetchError(f"{type(exc).__name__}: {exc}"[:300]) from None


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB" if n >= 1024 * 1024 else f"{n / 1024:g} KB"
