"""Headless Chromium: a customer's instance page and a visitor's "Try it now" chat, at desktop
and phone widths, in English, Indonesian and Polish (screenshots under $OTOMAT_SCREENSHOTS).

The page names the bot, counts the update the bot answered, keeps PID and friends folded, opens
the log box at its newest line, and fits a 390 px screen; the trial chat greets with a hint in
the visitor's language and leads back to the product page."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from otomat.instances import services
from otomat.instances.models import Instance
from otomat.monitoring.models_uptime import TelegramStatus
from otomat.testing.browser import log_in, shot
from otomat.testing.processes import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TEXTS = {
    "en": {"running": "The bot is running and answers messages.", "details": "Technical details",
           "hint": "Say /start to try Greeter Bot.", "back": "← Back to Greeter Bot"},
    "id": {"running": "Bot berjalan dan menjawab pesan.", "details": "Detail teknis",
           "hint": "Kirim /start untuk mencoba Bot Penyambut.", "back": "← Kembali ke Bot Penyambut"},
    "pl": {"running": "Bot działa i odpowiada na wiadomości.", "details": "Szczegóły techniczne",
           "hint": "Napisz /start, aby wypróbować: Bot powitalny.",
           "back": "← Wróć do: Bot powitalny"},
}  # fmt: skip
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


def fits(page, name: str) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, f"{name}: {overflow}px wider than the screen"


def test_the_instance_page_and_the_trial_chat_in_three_languages(
    live_server, browser_page, cast, greeter, settings, monkeypatch, request
):
    from playwright.sync_api import expect

    # The emulator must know the platform's address to follow the trial's way back.
    settings.BASE_URL = live_server.url
    monkeypatch.setenv("OTOMAT_BASE_URL", live_server.url)
    emulator = request.getfixturevalue("emulator")
    runner = request.getfixturevalue("runner_factory")()
    token = emulator.create_bot("demo_greeter_bot")
    instance = services.install_instance(
        account=cast.alice.account,
        version=greeter,
        name="Alice's greeter",
        config={"bot_token": token, "welcome_text": "Hi {name}!"},
        actor=cast.alice,
    )
    TelegramStatus.objects.create(
        instance=instance, checked_at=timezone.now(), username="demo_greeter_bot"
    )
    wait_until(
        lambda: Instance.objects.get(pk=instance.pk).state == Instance.State.RUNNING,
        40,
        message=f"not running:\n{runner.output()}",
    )
    assert emulator.ask("demo_greeter_bot", "/start", timeout=20) == "Hi Alice!"
    wait_until(lambda: Instance.objects.get(pk=instance.pk).updates_handled >= 1, 20)
    with instance.log_path.open("a") as log:  # enough lines for the box to scroll
        log.writelines(f"INFO filler line {n}\n" for n in range(150))

    page = browser_page
    log_in(page, live_server.url, cast.alice.email, cast.password)
    url = f"{live_server.url}{reverse('instances:detail', args=[instance.id])}"
    for lang, texts in TEXTS.items():
        cast.alice.language = lang
        cast.alice.save(update_fields=["language"])
        for width_name, (width, height) in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": height})
            page.goto(url)
            expect(page.locator("html")).to_have_attribute("lang", lang)
            title = page.locator("[data-bot-username] a")
            expect(title).to_have_text("@demo_greeter_bot")
            assert title.get_attribute("href").endswith("/chat/demo_greeter_bot")
            expect(page.locator("#status [data-status-text]")).to_have_text(texts["running"])
            expect(page.locator("#status [data-updates]")).not_to_have_attribute(
                "data-updates", "0"
            )
            details = page.locator("#status details.technical")
            expect(details.locator("summary")).to_have_text(texts["details"])
            assert not details.locator("dd").first.is_visible()  # PID folded away
            # The log box opens at its newest line.
            page.wait_for_function(
                "(() => { const p = document.querySelector('#logs pre.logs');"
                " return p && p.scrollHeight > p.clientHeight"
                " && p.scrollTop + p.clientHeight >= p.scrollHeight - 2; })()"
            )
            shot(page, f"instance-{lang}-{width_name}")
            fits(page, f"instance {lang} {width_name}")

    # It keeps following after a refresh swap, and keeps the reader's place once they scroll up.
    page.evaluate("document.querySelector('#logs pre.logs').scrollTop = 0")
    with instance.log_path.open("a") as log:
        log.write("INFO the newest line\n")
    expect(page.locator("#logs pre.logs")).to_contain_text("the newest line", timeout=10_000)
    assert page.evaluate("document.querySelector('#logs pre.logs').scrollTop") < 50

    # Restart: the status says so while it lasts, and no message says "Restarting…" after.
    page.reload()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#status form[action$='/restart/'] button").click()
    expect(page.locator("#status [data-state]")).to_have_attribute(
        "data-state", "running", timeout=30_000
    )
    expect(page.locator("#status [data-status-text]")).to_have_text(TEXTS["pl"]["running"])
    assert "Ponowne uruchamianie…" not in page.locator("body").inner_text()
    assert Instance.objects.get(pk=instance.pk).events.filter(cause="restarted").exists()

    # A visitor tries the product, in each language, at each width.
    for lang, texts in TEXTS.items():
        for width_name, (width, height) in WIDTHS.items():
            visitor = page.context.browser.new_page(viewport={"width": width, "height": height})
            visitor.context.add_cookies(
                [{"name": settings.LANGUAGE_COOKIE_NAME, "value": lang, "url": live_server.url}]
            )
            visitor.goto(f"{live_server.url}{reverse('catalog:detail', args=['greeter'])}")
            visitor.locator("form[action$='/try/'] button").click()
            visitor.wait_for_url(f"{emulator.url}/chat/try*")
            hint = visitor.locator("#chat-hint")
            expect(hint).to_contain_text(texts["hint"])
            back = hint.locator("a.hint-back")
            expect(back).to_have_text(texts["back"])
            assert back.get_attribute("href") == f"{live_server.url}/catalog/greeter/"
            shot(visitor, f"trial-chat-{lang}-{width_name}")
            fits(visitor, f"trial {lang} {width_name}")
            back.click()
            visitor.wait_for_url(f"{live_server.url}/catalog/greeter/")
            visitor.close()
