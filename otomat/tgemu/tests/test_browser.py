"""Headless Chromium (Debian's, driven by Playwright) uses the web chat against a live bot.

A person creates a bot on the index page, opens the chat, sends /start, sees the answer (with
HTML-looking text shown as text, never as markup), presses inline buttons, gets the callback
answer as a toast, and sees an edit and a deletion happen live.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from otomat.testing.browser import CHROMIUM, CHROMIUM_ARGS
from otomat.tgemu.testing import EmulatorServer

pytestmark = [pytest.mark.browser]

SCREENSHOTS = (
    Path(os.environ["OTOMAT_SCREENSHOTS"]) if os.environ.get("OTOMAT_SCREENSHOTS") else None
)
HOSTILE = "<img src=x onerror=\"document.title='pwned'\"> & <b>not bold</b>"


@pytest.fixture
def page():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); browser test skipped")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )
        page = browser.new_page(viewport={"width": 900, "height": 800})
        page.set_default_timeout(10_000)
        yield page
        browser.close()


def shot(page, name: str) -> None:
    if SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"tgemu-{name}.png"), full_page=True)


def run_scripted_bot(emu: EmulatorServer, token: str, stop: threading.Event) -> None:
    """A minimal long-polling bot speaking the raw Bot API."""
    offset = None
    keyboard = {
        "inline_keyboard": [
            [
                {"text": "Ping", "callback_data": "ping"},
                {"text": "Delete me", "callback_data": "delete"},
            ]
        ]
    }
    while not stop.is_set():
        params = {"timeout": 1, **({"offset": offset} if offset else {})}
        status, body = emu.bot_api(token, "getUpdates", **params)
        if status != 200:
            continue
        for update in body["result"]:
            offset = update["update_id"] + 1
            if "message" in update and update["message"]["text"] == "/start":
                chat = update["message"]["chat"]["id"]
                emu.bot_api(token, "sendMessage", chat_id=chat, text=HOSTILE, reply_markup=keyboard)
            elif "callback_query" in update:
                query = update["callback_query"]
                chat, message_id = query["message"]["chat"]["id"], query["message"]["message_id"]
                if query["data"] == "ping":
                    emu.bot_api(
                        token, "answerCallbackQuery", callback_query_id=query["id"], text="Pong!"
                    )
                    emu.bot_api(
                        token, "editMessageText", chat_id=chat, message_id=message_id,
                        text="Pinged <i>fine</i>", parse_mode="HTML", reply_markup=keyboard,
                    )  # fmt: skip
                else:
                    emu.bot_api(token, "answerCallbackQuery", callback_query_id=query["id"])
                    emu.bot_api(token, "deleteMessage", chat_id=chat, message_id=message_id)


def test_a_person_chats_with_a_bot_in_the_browser(emu, page):
    from playwright.sync_api import expect

    page.goto(emu.url + "/")
    page.get_by_label("Username").fill("web_bot")
    page.get_by_label("Name", exact=True).fill("Web Bot")
    page.get_by_role("button", name="Create bot").click()
    bot = emu.control("GET", "/bots/web_bot")
    expect(page.locator("#result-token")).to_have_text(bot["token"])
    expect(page.get_by_role("link", name="Web Bot")).to_be_visible()
    shot(page, "01-index")

    stop = threading.Event()
    worker = threading.Thread(target=run_scripted_bot, args=(emu, bot["token"], stop), daemon=True)
    worker.start()
    try:
        page.get_by_role("link", name="Open a chat with the bot").click()
        expect(page.get_by_role("heading", name="Web Bot")).to_be_visible()
        page.get_by_role("textbox", name="Message").fill("/start")
        page.get_by_role("textbox", name="Message").press("Enter")
        answer = page.locator("li.from-bot").first
        expect(answer).to_contain_text(HOSTILE)  # shown as text...
        assert page.locator("li.from-bot img, li.from-bot b").count() == 0  # ...not as markup
        shot(page, "02-answer")

        answer.get_by_role("button", name="Ping").click()
        expect(page.locator("#toast")).to_have_text("Pong!")
        expect(answer).to_contain_text("Pinged fine")
        expect(answer.locator("em")).to_have_text("fine")
        expect(answer).to_contain_text("edited")
        shot(page, "03-edited")

        page.locator("li.from-bot").first.get_by_role("button", name="Delete me").click()
        expect(page.locator("li.from-bot")).to_have_count(0)
        assert page.title() != "pwned"
    finally:
        stop.set()
        worker.join(timeout=5)


def test_the_bot_list_is_for_staff_only(page):
    """With a control token, the list page shows a staff notice and no token until it is typed;
    a chat page works without it and offers no link to the list."""
    secret = "browser-control-token-1234"
    with EmulatorServer(control_token=secret) as emu:
        token = emu.create_bot("greeter_bot", "Greeter")["token"]
        page.goto(emu.url + "/")
        page.get_by_role("heading", name="For staff only").wait_for()
        assert page.locator("#bots-section").is_hidden()
        assert page.locator("#create-section").is_hidden()
        assert token not in page.content()
        shot(page, "staff-only")
        page.fill("#control-token", "not-the-token-at-all")
        page.click("text=Show the bots")
        page.get_by_text("This is not the emulator's control token.").wait_for()
        page.fill("#control-token", secret)
        page.click("text=Show the bots")
        page.locator(".bot-item", has_text="@greeter_bot").wait_for()
        assert page.locator("#staff-only").is_hidden()
        # A visitor's chat page (fresh context: no token typed) works, without the way to the list.
        visitor = page.context.browser.new_page()
        visitor.goto(emu.url + "/chat/greeter_bot")
        visitor.locator("#bot-title", has_text="Greeter").wait_for()
        visitor.wait_for_function("document.querySelector('.chat-header a.back').hidden")
        visitor.close()
