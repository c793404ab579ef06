"""otomat.lib.http: only http(s), only public addresses unless allowed, every redirect hop
checked again, bodies capped, slow servers abandoned."""

from __future__ import annotations

import pytest

from otomat.lib import http


def test_it_fetches_from_a_local_server_when_allowed(calendar_server):
    url = calendar_server.serve("/a.ics", b"BEGIN:VCALENDAR", headers={"ETag": '"v1"'})
    response = http.fetch(url, max_bytes=1000, timeout=5, allow_private=True)
    assert response.ok and response.content == b"BEGIN:VCALENDAR"
    assert response.headers["etag"] == '"v1"'
    assert (
        http.fetch(
            calendar_server.url("/missing"), max_bytes=100, timeout=5, allow_private=True
        ).status
        == 404
    )


def test_private_addresses_are_refused_by_default(calendar_server, settings):
    settings.HTTP_ALLOW_PRIVATE = False
    url = calendar_server.serve("/a.ics", b"x")
    with pytest.raises(http.Refused, match="loopback"):
        http.fetch(url, max_bytes=100, timeout=5)
    with pytest.raises(http.Refused, match="loopback"):
        http.fetch(url.replace("127.0.0.1", "localhost"), max_bytes=100, timeout=5)
    assert calendar_server.requests == []  # nothing reached the server
    settings.HTTP_ALLOW_PRIVATE = True
    assert http.fetch(url, max_bytes=100, timeout=5).ok


@pytest.mark.parametrize(
    "address, problem",
    [
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("172.16.5.5", "private"),
        ("100.64.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
    ],
)
def test_inner_addresses_are_named(address, problem):
    assert problem in http.address_problem(address)


def test_public_addresses_pass():
    assert http.address_problem("93.184.216.34") == ""
    assert http.address_problem("2606:4700::1111") == ""


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/a",
        "gopher://x",
        "javascript:alert(1)",
        "http://",
        "http://user:pw@example.com/",
        "not a url",
    ],
)
def test_other_schemes_and_shapes_are_refused(url):
    with pytest.raises(http.Refused):
        http.fetch(url, max_bytes=100, timeout=5, allow_private=True)


def test_a_redirect_to_an_inner_address_is_refused(calendar_server, monkeypatch):
    """A public URL that redirects to 127.0.0.1: each hop is checked, so the second refuses."""
    target = calendar_server.serve("/secret", b"inner")
    calendar_server.serve("/hop", b"", status=302, headers={"Location": target})
    real = http.address_problem
    # The first hop passes as if public; the check runs again for the second.
    calls = []

    def fake(address):
        calls.append(address)
        return "" if len(calls) == 1 else real(address)

    monkeypatch.setattr(http, "address_problem", fake)
    with pytest.raises(http.Refused, match="loopback"):
        http.fetch(calendar_server.url("/hop"), max_bytes=100, timeout=5, allow_private=False)
    assert [r["path"] for r in calendar_server.requests] == ["/hop"]


def test_redirects_are_followed_and_bounded(calendar_server):
    final = calendar_server.serve("/final", b"done")
    calendar_server.serve("/r1", b"", status=301, headers={"Location": "/final"})
    response = http.fetch(calendar_server.url("/r1"), max_bytes=100, timeout=5, allow_private=True)
    assert response.content == b"done" and response.url == final
    calendar_server.serve("/loop", b"", status=302, headers={"Location": "/loop"})
    with pytest.raises(http.FetchError, match="redirects"):
        http.fetch(
            calendar_server.url("/loop"),
            max_bytes=100,
            timeout=5,
            allow_private=True,
            max_redirects=3,
        )
    assert len([r for r in calendar_server.requests if r["path"] == "/loop"]) == 4


def test_a_body_over_the_cap_is_refused(calendar_server):
    url = calendar_server.serve("/big", b"x" * 5000)
    with pytest.raises(http.TooLarge, match="5,000 bytes"):
        http.fetch(url, max_bytes=1000, timeout=5, allow_private=True)
    # A server that lies about (or omits) its length is cut off while streaming.
    url = calendar_server.serve("/liar", b"x" * 50_000, headers={"Content-Length": "10"})
    response_or_error = None
    try:
        response_or_error = http.fetch(url, max_bytes=1000, timeout=5, allow_private=True)
    except http.FetchError as exc:
        response_or_error = exc
    assert not (
        isinstance(response_or_error, http.Response) and len(response_or_error.content) > 1000
    )


def test_a_streamed_body_over_the_cap_is_refused():
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve():
        conn, _ = server.accept()
        conn.recv(1000)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(100):
                conn.sendall(b"400\r\n" + b"x" * 1024 + b"\r\n")
        except OSError:
            pass
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    with pytest.raises(http.TooLarge):
        http.fetch(
            f"http://127.0.0.1:{server.getsockname()[1]}/",
            max_bytes=10_000,
            timeout=5,
            allow_private=True,
        )
    server.close()


def test_a_silent_server_times_out():
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)  # accepts the connection, never answers
    with pytest.raises(http.FetchError, match="did not answer"):
        http.fetch(
            f"http://127.0.0.1:{server.getsockname()[1]}/",
            max_bytes=100,
            timeout=0.5,
            allow_private=True,
        )
    server.close()


def test_an_unresolvable_host_is_a_clear_error():
    with pytest.raises(http.FetchError, match="resolved"):
        http.fetch("http://no-such-host.invalid/", max_bytes=100, timeout=5)
