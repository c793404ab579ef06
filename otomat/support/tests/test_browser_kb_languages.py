"""Headless Chromium: an Indonesian customer in Jakarta reads the knowledge base in
Indonesian, gets the Indonesian article suggested while typing a ticket, and reads the
ticket's deadlines in WIB."""

from __future__ import annotations

import pytest

from otomat.support.models import Article, KbCategory
from otomat.testing.browser import log_in, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_an_indonesian_customer_reads_the_kb_and_deadlines_in_their_language(
    browser_page, live_server, cast, department, sla_policy, installed
):
    from playwright.sync_api import expect

    installed()
    category = KbCategory.objects.create(name="Mulai", slug="start")
    for language, title in (
        ("en", "Where do I get a bot token?"),
        ("id", "Dari mana saya mendapatkan token bot?"),
        ("pl", "Skąd wziąć token bota?"),
    ):
        Article.objects.create(
            category=category,
            title=title,
            slug=f"token-{language}",
            body="BotFather /newbot",
            language=language,
            translation_key="bot-token",
            status=Article.Status.PUBLISHED,
        )
    alice = cast.alice
    alice.language, alice.timezone = "id", "Asia/Jakarta"
    alice.save(update_fields=["language", "timezone"])

    page = browser_page
    log_in(page, live_server.url, alice.email, cast.password)
    page.goto(f"{live_server.url}/support/kb/")
    expect(page.get_by_text("Dari mana saya mendapatkan token bot?")).to_be_visible()
    expect(page.get_by_text("Where do I get a bot token?")).to_have_count(0)
    shot(page, "support-kb-id")

    page.goto(f"{live_server.url}/support/new/")
    page.locator("#id_subject").press_sequentially("token botfather", delay=20)
    suggestions = page.locator("#suggestions")
    expect(suggestions.get_by_text("Dari mana saya mendapatkan token bot?")).to_be_visible()
    expect(suggestions.get_by_text("Skąd wziąć token bota?")).to_have_count(0)
    page.locator("#id_body").fill("Token saya hilang.")
    shot(page, "support-kb-id-suggestion")
    page.locator("form button[type=submit], form button:not([type])").last.click()
    expect(page.get_by_text("WIB").first).to_be_visible()
    shot(page, "support-ticket-id-wib")
