"""Headless Chromium (Debian's, driven by Playwright): a visitor signs up, installs the Greeter
Bot through the install form, sees it running, and the bot answers in the emulator."""

from __future__ import annotations

import pytest

from otomat.testing.browser import shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_visitor_signs_up_and_installs_a_running_bot(
    browser_page, live_server, greeter, emulator, runner_factory
):
    from playwright.sync_api import expect

    page = browser_page
    token = emulator.create_bot("browser_greeter_bot")
    runner_factory()

    page.goto(f"{live_server.url}/accounts/signup/")
    page.get_by_label("Your name").fill("Putri Pembeli")
    page.get_by_label("Email").fill("putri@example.com")
    page.get_by_label("Password").fill("a-long-enough-passphrase-7")
    shot(page, "01-signup")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Catalog")).to_be_visible()
    shot(page, "02-catalog")

    page.get_by_role("link", name="Greeter Bot").first.click()
    page.get_by_role("link", name="Install").first.click()
    page.get_by_label("Instance name").fill("Putri's greeter")
    page.get_by_label("Bot token").fill(token)
    # The live token check answers with the bot's username while the person types.
    expect(page.locator("#check-bot_token")).to_contain_text("browser_greeter_bot")
    page.get_by_label("Welcome text").fill("Selamat datang, {name}!")
    shot(page, "03-install-form")
    page.get_by_role("button", name="Install and start").click()

    expect(page.get_by_role("heading", name="Putri's greeter")).to_be_visible()
    expect(page.locator("#status [data-state]")).to_have_attribute(
        "data-state", "running", timeout=30_000
    )
    shot(page, "04-running")
    assert token not in page.content()
    answer = emulator.ask("browser_greeter_bot", "/start", timeout=20)
    assert answer is not None and "Selamat datang" in answer
