"""The web chat pages: served without external resources, escaped, and locked down by CSP."""

from __future__ import annotations

import re
import urllib.request

from otomat.tgemu.webchat import STATIC_DIR


def fetch(emu, path):
    try:
        with urllib.request.urlopen(emu.url + path, timeout=10) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read().decode()


def test_index_and_chat_pages_are_served_with_a_strict_csp(emu, bot):
    for path in ("/", "/chat/greeter_bot"):
        status, headers, body = fetch(emu, path)
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "<label" in body


def test_pages_load_nothing_from_other_hosts():
    for page in STATIC_DIR.iterdir():
        content = page.read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", content), page.name
        if page.suffix == ".html":
            # No inline scripts: the CSP would block them, and the JS lives in static files.
            assert re.findall(r"<script(?![^>]*\bsrc=)", content) == [], page.name


def test_the_scripts_never_assign_html():
    html_sinks = re.compile(r"\.(inner|outer)HTML\s*=|insertAdjacentHTML|document\.write")
    for script in STATIC_DIR.glob("*.js"):
        assert not html_sinks.search(script.read_text()), script.name


def test_an_unknown_bot_gets_an_escaped_404_page(emu):
    status, _, body = fetch(emu, "/chat/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert status == 404
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;" in body


def test_static_files_cannot_escape_their_folder(emu):
    assert fetch(emu, "/static/chat.js")[0] == 200
    assert fetch(emu, "/static/..%2Fstate.py")[0] == 404
    assert fetch(emu, "/static/missing.js")[0] == 404
