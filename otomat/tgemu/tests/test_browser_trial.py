"""A trial's chat page (the platform's "Try it now" opens it) shows the hint it was given and
the way back to the product, and follows that way back only to the platform: a relative path or
the platform's own address (OTOMAT_BASE_URL), never another site."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from otomat.testing.browser import CHROMIUM, CHROMIUM_ARGS, shot
from otomat.tgemu.testing import EmulatorServer

pytestmark = [pytest.mark.browser]

PLATFORM = "http://otomat.test:8000"
SECRET = "trial-browser-control-token"


@pytest.fixture
def emu(monkeypatch):
    monkeypatch.setenv("OTOMAT_BASE_URL", PLATFORM + "/")
    with EmulatorServer(control_token=SECRET) as server:
        server.create_bot("try1234_bot", "Greeter Bot")
        yield server


@pytest.fixture
def page():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); browser test skipped")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 760})
        page.set_default_timeout(10_000)
        yield page
        browser.close()


def open_chat(page, emu, **query) -> None:
    page.goto(f"{emu.url}/chat/try1234_bot?{urlencode(query)}")
    page.locator("#bot-title", has_text="Greeter Bot").wait_for()
    page.locator("#chat-hint").wait_for()  # drawn once the page asked the emulator


def test_the_control_api_names_the_platform(emu):
    status, body = emu.request("GET", "/control/access")
    assert status == 200 and body["platform_url"] == PLATFORM


def test_the_hint_and_the_way_back_to_the_product(emu, page):
    back = PLATFORM + "/catalog/greeter/"
    open_chat(
        page, emu, hint="Napisz /start, aby wypróbować: Bot powitalny.", back=back,
        back_label="Wróć do: Bot powitalny", lang="pl",
    )  # fmt: skip
    hint = page.locator("#chat-hint")
    assert "Napisz /start, aby wypróbować: Bot powitalny." in hint.inner_text()
    assert hint.locator("a.hint-back").get_attribute("href") == back
    assert hint.locator("a.hint-back").inner_text() == "← Wróć do: Bot powitalny"
    header_back = page.locator(".chat-header a.back")
    assert header_back.is_visible() and header_back.get_attribute("href") == back
    assert header_back.get_attribute("aria-label") == "Wróć do: Bot powitalny"
    assert page.evaluate("document.documentElement.lang") == "pl"
    shot(page, "tgemu-trial-390")
    # The /start button says it for the visitor.
    hint.get_by_role("button", name="/start").click()
    page.locator("#messages li", has_text="/start").wait_for()


def test_a_relative_path_leads_to_the_platform(emu, page):
    open_chat(page, emu, hint="Say /start to try Greeter Bot.", back="/catalog/greeter/")
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
    hostile = "<img src=x onerror=\"document.title='pwned'\">"
    open_chat(page, emu, hint=hostile, back=back, back_label="Back to Greeter Bot")
    hint = page.locator("#chat-hint")
    assert hint.inner_text().strip() == hostile  # text, never markup
    assert hint.locator("a").count() == 0
    assert page.locator(".chat-header a.back").is_hidden()  # a visitor gets no way to the list
    assert "evil" not in (page.locator(".chat-header a.back").get_attribute("href") or "")
    assert page.title() != "pwned"


def test_without_a_hint_the_chat_page_is_as_before(emu, page):
    page.goto(f"{emu.url}/chat/try1234_bot")
    page.locator("#bot-title", has_text="Greeter Bot").wait_for()
    page.wait_for_function("document.querySelector('.chat-header a.back').hidden")
    assert page.locator("#chat-hint").is_hidden()
