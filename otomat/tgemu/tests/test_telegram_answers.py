"""Telegram's answers over raw HTTP: media kinds, albums, copy/forward, pins, captions, menu
buttons, blocked users, and people editing their own messages (``edited_message``)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import pytest

from otomat.tgemu.ratelimit import RateLimits
from otomat.tgemu.testing import EmulatorServer, png

from .conftest import ALICE, BOB

WEBM = b"\x1a\x45\xdf\xa3" + b"\x00" * 32
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64
OGG = b"OggS" + b"\x00" * 64
MP3 = b"ID3" + b"\x00" * 64


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    """Without flood limits: these tests send many messages to one chat at once."""
    with EmulatorServer(rate_limits=RateLimits(enabled=False)) as server:
        yield server


def _messages(emu: EmulatorServer, chat_id: int = ALICE) -> list[dict]:
    return emu.messages("greeter_bot", chat_id)


def _photo(emu: EmulatorServer, token: str, caption: str = "A cat") -> dict:
    status, body = emu.upload(
        token, "sendPhoto", {"photo": ("cat.png", png(8, 8), "image/png")}, chat_id=ALICE,
        caption=caption,
    )  # fmt: skip
    assert status == 200, body
    return body["result"]


def _error(body: dict, code: int, description: str) -> bool:
    return body == {"ok": False, "error_code": code, "description": description}


# ------------------------------------------------------------------------ media kinds


def test_video_audio_voice_and_sticker_have_telegram_shapes(emu, started):
    token = started["token"]
    status, body = emu.upload(
        token, "sendVideo", {"video": ("clip.mp4", MP4, "video/mp4")}, chat_id=ALICE,
        duration=3, width=640, height=360, caption="<i>clip</i>", parse_mode="HTML",
    )  # fmt: skip
    assert status == 200, body
    video = body["result"]["video"]
    assert (video["duration"], video["width"], video["height"]) == (3, 640, 360)
    assert video["mime_type"] == "video/mp4" and video["file_size"] == len(MP4)
    assert video["file_id"].startswith("BAAC") and body["result"]["caption"] == "clip"

    status, body = emu.upload(
        token, "sendAudio", {"audio": ("song.mp3", MP3, "audio/mpeg")}, chat_id=ALICE,
        duration=200, performer="Band", title="Song",
    )  # fmt: skip
    audio = body["result"]["audio"]
    assert (audio["duration"], audio["performer"], audio["title"]) == (200, "Band", "Song")
    assert audio["file_name"] == "song.mp3"

    status, body = emu.upload(
        token, "sendVoice", {"voice": ("note.ogg", OGG, "audio/ogg")}, chat_id=ALICE, duration=4
    )
    voice = body["result"]["voice"]
    assert voice["duration"] == 4 and voice["mime_type"] == "audio/ogg"
    assert "file_name" not in voice

    sticker_png = png(512, 512)
    status, body = emu.upload(
        token, "sendSticker", {"sticker": ("s.png", sticker_png, "image/png")}, chat_id=ALICE
    )
    sticker = body["result"]["sticker"]
    assert (sticker["type"], sticker["width"], sticker["is_animated"], sticker["is_video"]) == (
        "regular", 512, False, False,
    )  # fmt: skip
    assert "caption" not in body["result"]
    status, body = emu.upload(
        token, "sendSticker", {"sticker": ("a.tgs", gzip.compress(b"{}"), "application/x-tgsticker")},
        chat_id=ALICE,
    )  # fmt: skip
    assert body["result"]["sticker"]["is_animated"] is True
    status, body = emu.upload(
        token, "sendSticker", {"sticker": ("v.webm", WEBM, "video/webm")}, chat_id=ALICE
    )
    assert body["result"]["sticker"]["is_video"] is True
    # A file_id is reusable as its own kind only.
    again = emu.bot_api(token, "sendVideo", chat_id=ALICE, video=video["file_id"])[1]
    assert again["result"]["video"]["file_id"] == video["file_id"]
    status, body = emu.bot_api(token, "sendVoice", chat_id=ALICE, voice=video["file_id"])
    assert _error(body, 400, "Bad Request: can't use file of type Video as Voice")


def test_bad_media_is_refused_and_sends_nothing(emu, started):
    token = started["token"]
    before = len(_messages(emu))
    status, body = emu.upload(
        token, "sendSticker", {"sticker": ("x.txt", b"plain text", "text/plain")}, chat_id=ALICE
    )
    assert status == 400 and "sticker must be" in body["description"]
    status, body = emu.upload(
        token, "sendVideo", {"video": ("c.mp4", MP4, "video/mp4")}, chat_id=ALICE, duration=-1
    )
    assert _error(body, 400, "Bad Request: wrong duration specified")
    status, body = emu.bot_api(token, "sendAudio", chat_id=ALICE)
    assert _error(body, 400, "Bad Request: there is no audio in the request")
    assert len(_messages(emu)) == before


# ----------------------------------------------------------------------- media groups


def test_a_media_group_is_one_album_of_messages(emu, started):
    token = started["token"]
    photo = _photo(emu, token)["photo"][0]["file_id"]
    media = [
        {"type": "photo", "media": photo, "caption": "<b>first</b>", "parse_mode": "HTML"},
        {"type": "video", "media": "attach://clip", "duration": 2, "width": 10, "height": 10},
    ]
    status, body = emu.multipart(
        f"/bot{token}/sendMediaGroup",
        {"chat_id": str(ALICE), "media": media},
        {"clip": ("clip.mp4", MP4, "video/mp4")},
    )
    assert status == 200, body
    first, second = body["result"]
    assert first["media_group_id"] == second["media_group_id"]
    assert first["caption"] == "first" and first["caption_entities"][0]["type"] == "bold"
    assert second["video"]["duration"] == 2 and second["message_id"] == first["message_id"] + 1


def test_a_bad_media_group_sends_nothing(emu, started):
    token = started["token"]
    photo = _photo(emu, token)["photo"][0]["file_id"]
    before = len(_messages(emu))
    one = [{"type": "photo", "media": photo}]
    status, body = emu.bot_api(token, "sendMediaGroup", chat_id=ALICE, media=one)
    assert _error(body, 400, "Bad Request: media must be an Array of 2-10 InputMedia objects")
    status, body = emu.bot_api(
        token, "sendMediaGroup", chat_id=ALICE, media=[*one, {"type": "poll", "media": photo}]
    )
    assert status == 400 and "type must be photo, video, document or audio" in body["description"]
    doc = emu.upload(
        token, "sendDocument", {"document": ("a.txt", b"hello", "text/plain")}, chat_id=ALICE
    )[1]["result"]["document"]["file_id"]
    before = len(_messages(emu))
    status, body = emu.bot_api(
        token, "sendMediaGroup", chat_id=ALICE, media=[*one, {"type": "document", "media": doc}]
    )
    assert status == 400 and "can't be mixed" in body["description"]
    status, body = emu.bot_api(
        token, "sendMediaGroup", chat_id=ALICE, media=[*one, {"type": "photo", "media": "nope"}]
    )
    assert _error(body, 400, "Bad Request: wrong file identifier/HTTP URL specified")
    assert len(_messages(emu)) == before


# --------------------------------------------------------------------- copy, forward


def test_copy_and_forward(emu, started):
    token = started["token"]
    emu.send("greeter_bot", user_id=BOB, first_name="Bob", text="/start")
    [hello] = [m for m in _messages(emu) if m["text"] == "/start"]
    status, body = emu.bot_api(
        token, "forwardMessage", chat_id=BOB, from_chat_id=ALICE, message_id=hello["message_id"]
    )
    assert status == 200, body
    forwarded = body["result"]
    assert forwarded["text"] == "/start" and forwarded["chat"]["id"] == BOB
    origin = forwarded["forward_origin"]
    assert origin["type"] == "user" and origin["sender_user"]["id"] == ALICE
    assert origin["date"] == hello["date"]

    photo = _photo(emu, token, caption="old caption")
    status, body = emu.bot_api(
        token, "copyMessage", chat_id=BOB, from_chat_id=ALICE, message_id=photo["message_id"],
        caption="new caption",
    )  # fmt: skip
    assert status == 200 and set(body["result"]) == {"message_id"}
    copy = next(m for m in _messages(emu, BOB) if m["message_id"] == body["result"]["message_id"])
    assert copy["caption"] == "new caption" and "forward_origin" not in copy
    assert copy["photo"][0]["file_id"] == photo["photo"][0]["file_id"]


def test_copy_and_forward_refuse_missing_messages_and_blocked_users(emu, started):
    token = started["token"]
    _status, body = emu.bot_api(
        token, "forwardMessage", chat_id=ALICE, from_chat_id=ALICE, message_id=999
    )
    assert _error(body, 400, "Bad Request: message to forward not found")
    _status, body = emu.bot_api(
        token, "copyMessage", chat_id=ALICE, from_chat_id=ALICE, message_id=999
    )
    assert _error(body, 400, "Bad Request: message to copy not found")
    _status, body = emu.bot_api(token, "copyMessage", chat_id=ALICE, message_id=1)
    assert _error(body, 400, "Bad Request: chat_id of the source chat is not specified")
    emu.control("POST", f"/bots/greeter_bot/users/{ALICE}/block")
    before = len(_messages(emu))
    _status, body = emu.bot_api(
        token, "copyMessage", chat_id=ALICE, from_chat_id=ALICE, message_id=1
    )
    assert _error(body, 403, "Forbidden: bot was blocked by the user")
    assert len(_messages(emu)) == before


# ------------------------------------------------------------------------------ pins


def test_pin_and_unpin_show_in_get_chat(emu, started):
    token = started["token"]
    first = emu.bot_api(token, "sendMessage", chat_id=ALICE, text="first")[1]["result"]
    second = emu.bot_api(token, "sendMessage", chat_id=ALICE, text="second")[1]["result"]
    assert "pinned_message" not in emu.bot_api(token, "getChat", chat_id=ALICE)[1]["result"]
    for message in (first, second):
        assert emu.bot_api(
            token, "pinChatMessage", chat_id=ALICE, message_id=message["message_id"]
        )[1]["result"]
    chat = emu.bot_api(token, "getChat", chat_id=ALICE)[1]["result"]
    assert chat["pinned_message"]["text"] == "second"
    assert emu.bot_api(token, "unpinChatMessage", chat_id=ALICE)[1]["result"] is True
    assert (
        emu.bot_api(token, "getChat", chat_id=ALICE)[1]["result"]["pinned_message"]["text"]
        == "first"
    )
    assert emu.bot_api(token, "unpinAllChatMessages", chat_id=ALICE)[1]["result"] is True
    assert "pinned_message" not in emu.bot_api(token, "getChat", chat_id=ALICE)[1]["result"]
    _status, body = emu.bot_api(token, "pinChatMessage", chat_id=ALICE, message_id=999)
    assert _error(body, 400, "Bad Request: message to pin not found")


def test_only_administrator_bots_pin_in_groups(emu, started):
    token = started["token"]
    group = emu.control(
        "POST",
        "/groups",
        {"title": "Team", "member_user_ids": [ALICE], "bot_usernames": ["greeter_bot"]},
    )
    sent = emu.bot_api(token, "sendMessage", chat_id=group["id"], text="rules")[1]["result"]
    _status, body = emu.bot_api(
        token, "pinChatMessage", chat_id=group["id"], message_id=sent["message_id"]
    )
    assert _error(body, 400, "Bad Request: not enough rights to manage pinned messages in the chat")
    assert "pinned_message" not in emu.bot_api(token, "getChat", chat_id=group["id"])[1]["result"]


# ------------------------------------------------------------------------- captions


def test_edit_message_caption_and_text_follow_the_message_kind(emu, started):
    token = started["token"]
    photo = _photo(emu, token)
    text = emu.bot_api(token, "sendMessage", chat_id=ALICE, text="words")[1]["result"]
    status, body = emu.bot_api(
        token, "editMessageText", chat_id=ALICE, message_id=photo["message_id"], text="new"
    )
    assert _error(body, 400, "Bad Request: there is no text in the message to edit")
    status, body = emu.bot_api(
        token, "editMessageCaption", chat_id=ALICE, message_id=text["message_id"], caption="x"
    )
    assert _error(body, 400, "Bad Request: there is no caption in the message to edit")
    status, body = emu.bot_api(
        token, "editMessageCaption", chat_id=ALICE, message_id=photo["message_id"],
        caption="<b>Dog</b>", parse_mode="HTML",
    )  # fmt: skip
    assert status == 200, body
    edited = body["result"]
    assert edited["caption"] == "Dog" and edited["caption_entities"][0]["type"] == "bold"
    assert edited["edit_date"] >= edited["date"] and edited["photo"] == photo["photo"]
    status, body = emu.bot_api(
        token, "editMessageCaption", chat_id=ALICE, message_id=photo["message_id"],
        caption="<b>Dog</b>", parse_mode="HTML",
    )  # fmt: skip
    assert status == 400 and "message is not modified" in body["description"]
    history = {m["message_id"]: m for m in _messages(emu)}
    assert history[photo["message_id"]]["caption"] == "Dog"
    assert history[text["message_id"]]["text"] == "words"


# ----------------------------------------------------------------- menu, chat action


def test_menu_buttons_are_kept_per_chat_with_a_default(emu, started):
    token = started["token"]
    emu.send("greeter_bot", user_id=BOB, text="/start")
    assert emu.bot_api(token, "getChatMenuButton")[1]["result"] == {"type": "commands"}
    web_app = {"type": "web_app", "text": "Shop", "web_app": {"url": "https://example.com/app"}}
    assert emu.bot_api(token, "setChatMenuButton", chat_id=ALICE, menu_button=web_app)[1]["result"]
    assert emu.bot_api(token, "getChatMenuButton", chat_id=ALICE)[1]["result"] == web_app
    assert emu.bot_api(token, "getChatMenuButton", chat_id=BOB)[1]["result"] == {"type": "commands"}
    assert emu.bot_api(token, "setChatMenuButton", menu_button={"type": "commands"})[1]["result"]
    emu.bot_api(token, "setChatMenuButton", chat_id=ALICE, menu_button={"type": "default"})
    assert emu.bot_api(token, "getChatMenuButton", chat_id=ALICE)[1]["result"] == {
        "type": "commands"
    }
    # Bad buttons change nothing.
    emu.bot_api(token, "setChatMenuButton", chat_id=ALICE, menu_button=web_app)
    for bad, description in (
        ({"type": "nope"}, "Bad Request: unsupported menu button type"),
        ({**web_app, "web_app": {"url": "http://insecure"}}, "Bad Request: BUTTON_URL_INVALID"),
        ({**web_app, "text": ""}, "Bad Request: menu button text must be non-empty"),
    ):
        _status, body = emu.bot_api(token, "setChatMenuButton", chat_id=ALICE, menu_button=bad)
        assert _error(body, 400, description), body
    _status, body = emu.bot_api(token, "setChatMenuButton", chat_id=4321, menu_button=web_app)
    assert _error(body, 400, "Bad Request: chat not found")
    assert emu.bot_api(token, "getChatMenuButton", chat_id=ALICE)[1]["result"] == web_app


def test_menu_buttons_survive_a_restart(tmp_path):
    path = tmp_path / "emu.sqlite3"
    web_app = {"type": "web_app", "text": "Shop", "web_app": {"url": "https://example.com/app"}}
    with EmulatorServer(state_path=path) as emu:
        token = emu.create_bot("greeter_bot")["token"]
        emu.send("greeter_bot", user_id=ALICE, text="/start")
        emu.bot_api(token, "setChatMenuButton", chat_id=ALICE, menu_button=web_app)
    with EmulatorServer(state_path=path) as emu:
        assert emu.bot_api(token, "getChatMenuButton", chat_id=ALICE)[1]["result"] == web_app


def test_send_chat_action_to_a_user_who_blocked_the_bot_is_forbidden(emu, started):
    token = started["token"]
    assert emu.bot_api(token, "sendChatAction", chat_id=ALICE, action="typing")[1]["result"]
    emu.control("POST", f"/bots/greeter_bot/users/{ALICE}/block")
    status, body = emu.bot_api(token, "sendChatAction", chat_id=ALICE, action="typing")
    assert (status, body) == (
        403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
    )  # fmt: skip


# --------------------------------------------------------------- people edit messages


def test_a_person_edits_a_message_and_the_bot_gets_edited_message(emu, started):
    token = started["token"]
    sent = emu.send("greeter_bot", user_id=ALICE, text="helo")
    path = f"/bots/greeter_bot/chats/{ALICE}/messages/{sent['message_id']}"
    edited = emu.control("PATCH", path, {"user_id": ALICE, "text": "hello /help"})
    assert edited["text"] == "hello /help" and edited["edited"] is True
    assert edited["entities"][0]["type"] == "bot_command"
    updates = emu.bot_api(token, "getUpdates")[1]["result"]
    assert [list(u)[1] for u in updates] == ["message", "edited_message"]
    update = updates[-1]["edited_message"]
    assert update["message_id"] == sent["message_id"] and update["text"] == "hello /help"
    assert update["edit_date"] >= update["date"]


def test_editing_someone_elses_or_no_message_is_refused(emu, started):
    token = started["token"]
    mine = emu.send("greeter_bot", user_id=ALICE, text="mine")
    reply = emu.bot_api(token, "sendMessage", chat_id=ALICE, text="the bot's")[1]["result"]
    base = f"/control/bots/greeter_bot/chats/{ALICE}/messages/"
    cases = [
        (reply["message_id"], {"user_id": ALICE, "text": "hijack"}, "Bad Request: message can't be edited"),
        (mine["message_id"], {"user_id": ALICE, "text": "mine"}, None),
        (mine["message_id"], {"user_id": ALICE, "text": "  "}, "Bad Request: message text is empty"),
        (mine["message_id"], {"user_id": ALICE}, 'Bad Request: field "text" is required'),
        (999, {"user_id": ALICE, "text": "x"}, f"Bad Request: message 999 not found in chat {ALICE}"),
        (mine["message_id"], {"user_id": BOB, "text": "x"}, "Bad Request: chat_id must be the user's own id or a group id"),
    ]  # fmt: skip
    for message_id, body, description in cases:
        status, answer = emu.request("PATCH", base + str(message_id), body)
        assert status == 400, (body, answer)
        if description:
            assert answer["description"] == description
        else:
            assert "message is not modified" in answer["description"]
    assert [m["text"] for m in _messages(emu)][-2:] == ["mine", "the bot's"]
    assert not any(m["edited"] for m in _messages(emu))
    updates = emu.bot_api(token, "getUpdates")[1]["result"]
    assert all("edited_message" not in u for u in updates)
