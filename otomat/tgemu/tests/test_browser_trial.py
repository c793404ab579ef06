"""A trial's chat page (the platform's "Try it now") greets the visitor with the welcome its bot
was created with (the platform sets it; a link cannot), in the page's language, with the way back
to the product; it follows that way back only to the platform: a relative path or the platform's
own address (OTOMAT_BASE_URL), never another site. The page's own texts are in English,
Indonesian or Polish (?lang= or the browser's language)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from otomat.testing.browser import CHROMIUM, CHROMIUM_ARGS, shot
from otomat.tgemu.testing import EmulatorServer

pytestmark = [pytest.mark.browser]

PLATFORM = "http://otomat.test:8000"
SECRET = "trial-browser-control-token"
WELCOME = {
    "hint": {
        "en": "Say /start to try Greeter Bot.",
        "id": "Ketik /start untuk mencoba Bot Penyambut.",
        "pl": "Napisz /start, aby wypróbować: Bot powitalny.",
    },
    "back": PLATFORM + "/catalog/greeter/",
    "back_label": {
        "en": "Back to Greeter Bot",
        "id": "Kembali ke Bot Penyambut",
        "pl": "Wróć do: Bot powitalny",
    },
}


@pytest.fixture
def emu(monkeypatch):
    monkeypatch.setenv("OTOMAT_BASE_URL", PLATFORM + "/")
    with EmulatorServer(control_token=SECRET) as server:
        server.create_bot("try1234_bot", "Greeter Bot", welcome=WELCOME)
        server.create_bot("plain1234_bot", "Greeter Bot")
        yield server


@pytest.fixture
def browser():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); browser test skipped")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 390, "height": 760})
    page.set_default_timeout(10_000)
    return page


def open_chat(page, emu, bot="try1234_bot", **query) -> None:
    page.goto(f"{emu.url}/chat/{bot}?{urlencode(query)}")
    page.locator("#bot-title", has_text="Greeter Bot").wait_for()
    page.wait_for_function("document.getElementById('chat-hint').dataset.ready === '1'")


def test_the_control_api_names_the_platform(emu):
    status, body = emu.request("GET", "/control/access")
    assert status == 200 and body["platform_url"] == PLATFORM


@pytest.mark.parametrize("lang", ["pl", "id"])
def test_the_welcome_and_the_way_back_to_the_product(emu, page, lang):
    open_chat(page, emu, lang=lang)
    hint = page.locator("#chat-hint")
    back = WELCOME["back"]
    assert WELCOME["hint"][lang] in hint.inner_text()
    assert hint.locator("a.hint-back").get_attribute("href") == back
    assert hint.locator("a.hint-back").inner_text() == "← " + WELCOME["back_label"][lang]
    header_back = page.locator(".chat-header a.back")
    assert header_back.is_visible() and header_back.get_attribute("href") == back
    assert header_back.get_attribute("aria-label") == WELCOME["back_label"][lang]
    assert page.evaluate("document.documentElement.lang") == lang
    shot(page, f"tgemu-trial-{lang}-390")
    # The /start button says it for the visitor.
    hint.get_by_role("button", name="/start").click()
    page.locator("#messages li", has_text="/start").wait_for()


def test_a_crafted_hint_in_the_link_is_not_shown(emu, page):
    crafted = "Your trial expired: pay at https://evil.example/ to continue"
    open_chat(
        page, emu, hint=crafted, back_label="Pay here", back="https://evil.example/", lang="en"
    )
    text = page.locator("#chat-hint").inner_text()
    assert crafted not in text and "Pay here" not in text and "evil" not in text
    assert WELCOME["hint"]["en"] in text  # the platform's words, only
    # A bot created without a welcome shows no hint whatever the link says.
    open_chat(page, emu, bot="plain1234_bot", hint=crafted)
    assert page.locator("#chat-hint").is_hidden()
    assert crafted not in page.inner_text("body")


def test_a_relative_path_leads_to_the_platform(emu, page):
    open_chat(page, emu, bot="plain1234_bot", back="/catalog/greeter/")
    expected = PLATFORM + "/catalog/greeter/"
    assert page.locator("a.hint-back").get_attribute("href") == expected
    assert page.locator(".chat-header a.back").get_attribute("href") == expected


@pytest.mark.parametrize(
    "back",
    [
        "https://evil.example/catalog/greeter/",
        "//evil.example/catalog/greeter/",
        "/\\evil.example/x",
        "javascript:alert(document.domain)",
        "data:text/html,<script>alert(1)</script>",
        "http://otomat.test:8000.evil.example/",
        "http://otomat.test:9999/catalog/",
        "ftp://otomat.test:8000/",
    ],
)
def test_any_other_way_back_is_refused(emu, page, back):
    open_chat(page, emu, bot="plain1234_bot", back=back)
    assert page.locator("#chat-hint").is_hidden()
    assert page.locator(".chat-header a.back").is_hidden()  # a visitor gets no way to the list
    assert "evil" not in (page.locator(".chat-header a.back").get_attribute("href") or "")


def test_without_a_welcome_the_chat_page_is_as_before(emu, page):
    page.goto(f"{emu.url}/chat/plain1234_bot")
    page.locator("#bot-title", has_text="Greeter Bot").wait_for()
    page.wait_for_function("document.querySelector('.chat-header a.back').hidden")
    assert page.locator("#chat-hint").is_hidden()


@pytest.mark.parametrize(
    ("lang", "phrases"),
    [
        ("id", ["Lampirkan", "Kirim", "Anda:", "Tulis pesan…"]),
        ("pl", ["Załącz", "Wyślij", "Ty:", "Napisz wiadomość…"]),
    ],
)
def test_the_chat_page_speaks_the_browsers_language(emu, browser, lang, phrases):
    page = browser.new_page(viewport={"width": 390, "height": 760}, locale=lang)
    page.set_default_timeout(10_000)
    open_chat(page, emu)  # no ?lang=: the browser's Accept-Language decides
    assert page.evaluate("document.documentElement.lang") == lang
    body = page.inner_text("body") + page.get_attribute("#text", "placeholder")
    for phrase in phrases:
        assert phrase in body, phrase
    for english in ("Attach", "Send", "You:", "Write a message"):
        assert english not in body, english
    assert WELCOME["hint"][lang] in page.locator("#chat-hint").inner_text()
    page.locator("details.identity summary").click()
    shot(page, f"tgemu-chat-{lang}-390")
    page.close()
