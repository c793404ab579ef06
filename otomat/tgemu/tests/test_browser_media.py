"""Headless Chromium: groups created from the page, inline queries, photos and documents.

Screenshots go to ``$OTOMAT_SCREENSHOTS`` when it is set (e.g. /tmp/tgemu-shots).
"""

from __future__ import annotations

import threading

import pytest

from otomat.tgemu.testing import EmulatorServer, png

from .test_browser import page, shot  # noqa: F401 - the fixture and the screenshot helper

pytestmark = [pytest.mark.browser]


def run_media_bot(emu: EmulatorServer, token: str, stop: threading.Event) -> None:
    """A raw Bot API bot: answers /start, echoes photos, sends a document, answers inline."""
    offset = None
    photo_ids: list[str] = []
    while not stop.is_set():
        params = {"timeout": 1, **({"offset": offset} if offset else {})}
        status, body = emu.bot_api(token, "getUpdates", **params)
        if status != 200:
            continue
        for update in body["result"]:
            offset = update["update_id"] + 1
            message = update.get("message")
            if message and message.get("text", "").startswith("/start"):
                kind = message["chat"]["type"]
                emu.bot_api(
                    token, "sendMessage", chat_id=message["chat"]["id"], text=f"Hello, {kind} chat!"
                )
            elif message and message.get("photo"):
                photo_ids.append(message["photo"][-1]["file_id"])
                emu.bot_api(
                    token, "sendPhoto", chat_id=message["chat"]["id"],
                    photo=photo_ids[-1], caption="Nice photo! Here it is back.",
                )  # fmt: skip
                emu.upload(
                    token, "sendDocument",
                    {"document": ("notes.txt", b"Some notes\n", "text/plain")},
                    chat_id=message["chat"]["id"],
                )  # fmt: skip
            elif "channel_post" in update:
                post = update["channel_post"]
                emu.bot_api(
                    token, "sendMessage", chat_id=post["chat"]["id"], text=f"Seen: {post['text']}"
                )
            elif "inline_query" in update:
                query = update["inline_query"]
                results = [
                    {
                        "type": "article", "id": "a1", "title": f"Movie: {query['query']}",
                        "description": "An article result",
                        "input_message_content": {"message_text": f"🎬 {query['query']} (1999)"},
                    }
                ]  # fmt: skip
                if photo_ids:
                    results.append(
                        {
                            "type": "photo",
                            "id": "p1",
                            "photo_file_id": photo_ids[0],
                            "caption": "Poster",
                        }
                    )
                emu.bot_api(
                    token, "answerInlineQuery", inline_query_id=query["id"], results=results
                )


def test_groups_inline_queries_and_media_in_the_browser(emu, page, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    bot = emu.create_bot("media_web_bot", "Media Bot")
    stop = threading.Event()
    worker = threading.Thread(target=run_media_bot, args=(emu, bot["token"], stop), daemon=True)
    worker.start()
    try:
        page.goto(emu.url + "/chat/media_web_bot")
        expect(page.get_by_role("heading", name="Media Bot")).to_be_visible()
        box = page.get_by_role("textbox", name="Message")
        box.fill("/start")
        box.press("Enter")
        expect(page.locator("li.from-bot").last).to_contain_text("Hello, private chat!")

        # Send a photo from the attach button; the bot echoes it and sends a document.
        image = tmp_path / "sunset.png"
        image.write_bytes(png(240, 160, (230, 120, 40)))
        page.locator("#attach").set_input_files(str(image))
        expect(page.locator("li.mine img")).to_have_count(1)
        echoed = page.locator("li.from-bot img")
        expect(echoed).to_have_count(1)
        expect(page.locator("li.from-bot", has=page.locator("img"))).to_contain_text("Nice photo!")
        assert echoed.evaluate("img => img.naturalWidth") == 240  # the image really loaded
        link = page.locator("li.from-bot a.document")
        expect(link).to_contain_text("notes.txt")
        with page.expect_download() as download:
            link.click()
        assert download.value.suggested_filename == "notes.txt"
        shot(page, "10-media")

        # Inline mode: "@bot query" lists results; clicking one posts it via the bot.
        box.fill("@media_web_bot matrix")
        results = page.locator("#inline-results .inline-result")
        expect(results).to_have_count(2)
        expect(results.first).to_contain_text("Movie: matrix")
        shot(page, "11-inline-results")
        results.first.click()
        mine = page.locator("li.mine").last
        expect(mine).to_contain_text("via @media_web_bot")
        expect(mine).to_contain_text("🎬 matrix (1999)")
        expect(page.locator("#inline-results")).to_be_hidden()

        # A group created from the page, with the bot in it.
        page.locator("details.identity summary").click()
        page.get_by_label("New group with this bot").fill("Film club")
        shot(page, "13-group-form")
        page.get_by_role("button", name="Create group").click()
        expect(page.locator("#chat-select")).to_contain_text("Group: Film club")
        expect(page.locator("li.message")).to_have_count(0)
        expect(page.locator("#group-form")).to_be_hidden()  # the panel closed itself
        box.fill("/start")
        box.press("Enter")
        expect(page.locator("li.from-bot").last).to_contain_text("Hello, group chat!")
        [group] = [g for g in emu.control("GET", "/groups") if g["title"] == "Film club"]
        assert group["bot_usernames"] == ["media_web_bot"]
        box.fill("@media_web_bot dune")
        expect(results).to_have_count(2)
        results.nth(1).click()
        expect(page.locator("li.mine img")).to_have_count(1)
        expect(page.locator("li.mine").last).to_contain_text("Poster")
        shot(page, "12-group")
        posted = emu.messages("media_web_bot", group["id"])
        assert posted[-1]["via_bot"]["username"] == "media_web_bot" and posted[-1]["photo"]

        # A channel: the person (its owner) posts, the bot sees it as a channel_post.
        page.locator("details.identity summary").click()
        page.get_by_label("New group with this bot").fill("Premieres")
        page.get_by_label("Make it a channel").check()
        page.get_by_role("button", name="Create group").click()
        expect(page.locator("#bot-subtitle")).to_contain_text("Channel: Premieres")
        box.fill("Dune opens today")
        box.press("Enter")
        expect(page.locator("li.from-bot").last).to_contain_text("Seen: Dune opens today")
        expect(page.locator("li.message").first.locator(".sender")).to_have_text("Premieres")
        shot(page, "14-channel")
    finally:
        stop.set()
        worker.join(timeout=5)


def test_a_person_edits_a_message_and_sees_videos_stickers_and_voice(emu, page):  # noqa: F811
    from playwright.sync_api import expect

    token = emu.create_bot("media_bot", "Media Bot")["token"]
    page.goto(emu.url + "/chat/media_bot")
    expect(page.get_by_role("heading", name="Media Bot")).to_be_visible()
    page.get_by_role("textbox", name="Message").fill("helo")
    page.get_by_role("textbox", name="Message").press("Enter")
    mine = page.locator("li.message.mine").first
    expect(mine).to_contain_text("helo")
    [chat] = emu.control("GET", "/bots/media_bot/chats")
    user_id = chat["chat"]["id"]
    emu.upload(token, "sendVideo", {"video": ("c.mp4", b"\x00" * 64, "video/mp4")}, chat_id=user_id)
    emu.upload(
        token, "sendSticker", {"sticker": ("s.png", png(256, 256), "image/png")}, chat_id=user_id
    )
    emu.upload(
        token,
        "sendVoice",
        {"voice": ("v.ogg", b"OggS" + b"\x00" * 60, "audio/ogg")},
        chat_id=user_id,
    )
    expect(page.locator("li.from-bot video")).to_have_count(1)
    expect(page.locator("li.from-bot img.sticker")).to_have_count(1)
    expect(page.locator("li.from-bot audio")).to_have_count(1)
    expect(page.locator("li.from-bot .audio")).to_contain_text("Voice message")

    page.once("dialog", lambda dialog: dialog.accept("hello"))
    mine.get_by_role("button", name="Edit this message").click()
    expect(mine).to_contain_text("hello")
    expect(mine).to_contain_text("edited")
    shot(page, "media-edited")
    updates = emu.bot_api(token, "getUpdates")[1]["result"]
    assert [u["edited_message"]["text"] for u in updates if "edited_message" in u] == ["hello"]
    # Bot messages offer no "Edit".
    assert page.locator("li.from-bot button.edit-message").count() == 0
