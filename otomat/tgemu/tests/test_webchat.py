"""The web chat pages: served without external resources, escaped, and locked down by CSP."""

from __future__ import annotations

import html
import json
import re
import urllib.request

import pytest

from otomat.tgemu import i18n
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


def fetch_in(emu, path, accept_language):
    request = urllib.request.Request(emu.url + path, headers={"Accept-Language": accept_language})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.mark.parametrize(
    ("path", "accept", "lang", "phrase"),
    [
        ("/chat/greeter_bot?lang=id", "pl", "id", "Tulis pesan…"),
        ("/chat/greeter_bot?lang=pl", "", "pl", "Napisz wiadomość…"),
        ("/chat/greeter_bot", "pl-PL,pl;q=0.9,en;q=0.8", "pl", "Załącz"),
        ("/chat/greeter_bot", "de;q=1, id-ID;q=0.7, en;q=0.5", "id", "Lampirkan"),
        ("/chat/greeter_bot?lang=xx", "fr", "en", "Write a message…"),
        ("/chat/greeter_bot?lang=<script>", "", "en", "Attach"),
    ],
)
def test_the_chat_page_is_in_the_readers_language(emu, bot, path, accept, lang, phrase):
    status, body = fetch_in(emu, path, accept)
    assert status == 200
    assert f'<html lang="{lang}">' in body and phrase in body
    assert "{{" not in body  # every placeholder filled
    texts = re.search(r'<meta name="tgemu-texts" content="([^"]*)">', body)
    assert texts and json.loads(html.unescape(texts.group(1)))["send"] == i18n.texts(lang)["send"]


def test_the_404_page_is_in_the_readers_language_and_escaped(emu):
    status, body = fetch_in(emu, "/chat/%3Cb%3Ex_bot?lang=pl", "")
    assert status == 404 and "Nie znaleziono bota" in body
    assert "<b>x_bot" not in body and "&lt;b&gt;x_bot" in body


def test_every_text_exists_in_every_language():
    for lang in i18n.LANGUAGES:
        table = i18n.texts(lang)
        assert all(value.strip() for value in table.values()), lang
        for key, english in i18n.texts("en").items():
            names = set(re.findall(r"\{(\w+)\}", english))
            assert set(re.findall(r"\{(\w+)\}", table[key])) == names, (lang, key)


def test_the_scripts_ask_only_for_texts_the_table_has():
    keys = set(i18n.texts("en"))
    for script in STATIC_DIR.glob("*.js"):
        used = set(re.findall(r"\bt\(\"(\w+)\"", script.read_text()))
        assert used <= keys, (script.name, used - keys)
    used = set(re.findall(r"\{\{ (\w+) \}\}", (STATIC_DIR / "chat.html").read_text()))
    assert used <= keys | {"lang", "texts_json"}


WELCOME = {
    "hint": {"en": "Say /start", "pl": "Napisz /start"},
    "back": "/catalog/greeter/",
    "back_label": {"en": "Back"},
}


def test_a_bot_keeps_the_welcome_it_was_created_with(emu):
    created = emu.create_bot("try1_bot", "Greeter", welcome=WELCOME)
    assert created["welcome"] == WELCOME
    assert emu.control("GET", "/bots/try1_bot")["welcome"] == WELCOME
    assert emu.create_bot("plain_bot", "Greeter")["welcome"] == {}


@pytest.mark.parametrize(
    ("welcome", "error"),
    [
        ("hello", 'field "welcome" must be a JSON object'),
        ({"greeting": {"en": "x"}}, 'welcome: unknown field "greeting"'),
        ({"hint": "Say /start"}, "welcome.hint must be an object"),
        ({"hint": {"English": "x"}}, '"English" is not a language code'),
        ({"hint": {"en": ""}}, "welcome.hint.en must be a text of 1-200 characters"),
        ({"hint": {"en": "x" * 201}}, "welcome.hint.en must be a text of 1-200 characters"),
        ({"back_label": {"en": 3}}, "welcome.back_label.en must be a text of 1-120"),
        ({"back": ["/"]}, "welcome.back must be an address"),
    ],
)
def test_a_bad_welcome_is_refused_and_creates_no_bot(emu, welcome, error):
    status, body = emu.request(
        "POST", "/control/bots", {"username": "try2_bot", "first_name": "G", "welcome": welcome}
    )
    assert status == 400 and error in body["description"]
    assert emu.request("GET", "/control/bots/try2_bot")[0] == 404


def test_the_welcome_survives_a_restart(tmp_path):
    from otomat.tgemu.testing import EmulatorServer

    state = tmp_path / "state.db"
    with EmulatorServer(state_path=state) as server:
        server.create_bot("try3_bot", "Greeter", welcome=WELCOME)
    with EmulatorServer(state_path=state) as server:
        assert server.control("GET", "/bots/try3_bot")["welcome"] == WELCOME
