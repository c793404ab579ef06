"""Fetching is bounded: timeouts, size limits, redirect limits, http(s) only."""

from __future__ import annotations

import pytest
from alert_bot.fetch import FetchError, fetch
from fakesite import FakeSite, Page

from otomat.botkit.testing import async_test


@async_test
async def test_it_fetches_a_page_and_follows_a_redirect() -> None:
    async with FakeSite() as site:
        site.pages["/a"] = Page(body="zażółć".encode(), content_type="text/plain")
        site.pages["/r"] = Page(redirect="/a")
        response = await fetch(site.url("/r"))
        assert response.status == 200 and response.url == site.url("/a")
        assert response.text() == "zażółć"
        head = await fetch(site.url("/a"), read_body=False)
        assert head.status == 200 and head.body == b""


@async_test
async def test_the_limits_turn_into_clear_errors() -> None:
    async with FakeSite() as site:
        site.pages["/slow"] = Page(delay=0.6)
        site.pages["/big"] = Page(body=b"x" * 300_000)
        site.pages["/stream"] = Page(chunked_bytes=5_000_000)
        site.pages["/loop"] = Page(redirect="/loop")
        site.pages["/ftp"] = Page(redirect="ftp://example.com/file")
        cases = [
            ("/slow", {"timeout": 0.3}, "no complete answer within 0.3 s"),
            ("/big", {"max_bytes": 100_000}, "larger than 97.6562 KB"),
            ("/stream", {"max_bytes": 1_000_000}, "larger than"),
            ("/loop", {}, "more than 5 redirects"),
            ("/ftp", {}, "Redirect"),
        ]
        for path, kwargs, message in cases:
            with pytest.raises(FetchError, match=message):
                await fetch(site.url(path), **kwargs)
        assert site.pages["/loop"].hits <= 6  # bounded: no endless redirect loop


@async_test
async def test_unreachable_and_non_http_urls_are_refused() -> None:
    async with FakeSite() as site:
        port = site.port
    with pytest.raises(FetchError, match="cannot connect"):
        await fetch(f"http://127.0.0.1:{port}/gone", timeout=2)
    for url in ("file:///etc/passwd", "ftp://x.example/", "gopher://x"):
        with pytest.raises(FetchError, match="only http"):
            await fetch(url)
