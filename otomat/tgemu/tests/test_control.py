"""The control API: bots, user messages, button presses, chat history, groups and bad input."""

from __future__ import annotations

import re
import threading
import time

import pytest

from .conftest import ALICE, BOB, CHARLIE


def test_it_creates_bots_with_telegram_like_tokens(emu):
    created = emu.create_bot("greeter_bot", "Greeter")
    assert re.fullmatch(r"\d+:[A-Za-z0-9_-]{35}", created["token"])
    assert created["token"].split(":")[0] == str(created["id"])
    assert created["username"] == "greeter_bot"
    listed = emu.control("GET", "/bots")
    assert [b["username"] for b in listed] == ["greeter_bot"]


def test_it_accepts_a_chosen_token(emu):
    created = emu.create_bot("fixed_bot", token="123456789:AAAA-bbbb_CCCC")
    assert created["id"] == 123456789
    assert emu.bot_api("123456789:AAAA-bbbb_CCCC", "getMe")[0] == 200


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"first_name": "No username"}, '"username" is required'),
        ({"username": "greeter"}, "end in 'bot'"),
        ({"username": "a_bot!"}, "invalid bot username"),
        ({"username": "x" * 40 + "bot"}, "invalid bot username"),
        ({"username": "x" * 70 + "bot"}, "too long"),
        ({"username": "fine_bot", "token": "not a token"}, "invalid token"),
        ({"username": "fine_bot", "first_name": ["list"]}, "must be of type String"),
    ],
)
def test_it_refuses_bad_bots(emu, body, fragment):
    status, data = emu.request("POST", "/control/bots", body)
    assert status == 400 and fragment in data["description"], data


def test_duplicate_usernames_are_refused_case_insensitively(emu, bot):
    status, data = emu.request("POST", "/control/bots", {"username": "Greeter_Bot"})
    assert status == 400 and "already taken" in data["description"]


def test_deleting_a_bot_revokes_its_token(emu, bot):
    assert emu.control("DELETE", "/bots/greeter_bot") == {"ok": True}
    assert emu.bot_api(bot["token"], "getMe")[0] == 401
    status, data = emu.request("DELETE", "/control/bots/greeter_bot")
    assert status == 404 and data["ok"] is False


def test_user_messages_become_updates_with_command_entities(emu, bot):
    message = emu.send(
        "greeter_bot",
        user_id=ALICE,
        first_name="Alice",
        username="alice",
        text="/start@greeter_bot now",
    )
    assert message["from_bot"] is False and message["from"]["username"] == "alice"
    [update] = emu.bot_api(bot["token"], "getUpdates")[1]["result"]
    assert update["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 18}]
    assert update["message"]["from"] == {
        "id": ALICE,
        "is_bot": False,
        "first_name": "Alice",
        "username": "alice",
    }


def test_wait_returns_when_the_bot_answers(emu, started):
    def answer_later():
        time.sleep(0.3)
        emu.bot_api(started["token"], "sendMessage", chat_id=ALICE, text="Welcome!")

    threading.Thread(target=answer_later).start()
    started_at = time.monotonic()
    replies = emu.messages("greeter_bot", ALICE, after=1, wait=10)
    assert time.monotonic() - started_at < 5
    assert [m["text"] for m in replies] == ["Welcome!"] and replies[0]["from_bot"] is True


def test_wait_times_out_with_an_empty_list(emu, started):
    started_at = time.monotonic()
    assert emu.messages("greeter_bot", ALICE, after=1, wait=0.5) == []
    assert time.monotonic() - started_at >= 0.45


def test_change_feed_reports_edits_and_deletions(emu, started):
    token = started["token"]
    history = emu.control("GET", f"/bots/greeter_bot/chats/{ALICE}/messages?after_rev=0")
    rev = max(m["rev"] for m in history)
    sent = emu.bot_api(token, "sendMessage", chat_id=ALICE, text="v1")[1]["result"]
    emu.bot_api(token, "editMessageText", chat_id=ALICE, message_id=sent["message_id"], text="v2")
    changes = emu.control("GET", f"/bots/greeter_bot/chats/{ALICE}/messages?after_rev={rev}&wait=1")
    assert [(m["text"], m["edited"]) for m in changes] == [("v2", True)]
    rev = changes[-1]["rev"]
    emu.bot_api(token, "deleteMessage", chat_id=ALICE, message_id=sent["message_id"])
    changes = emu.control("GET", f"/bots/greeter_bot/chats/{ALICE}/messages?after_rev={rev}&wait=1")
    assert [(m["message_id"], m["deleted"]) for m in changes] == [(sent["message_id"], True)]


def test_chats_of_other_users_stay_separate(emu, started):
    emu.bot_api(started["token"], "sendMessage", chat_id=ALICE, text="for Alice only")
    assert emu.messages("greeter_bot", CHARLIE) == []
    assert all(m["chat"]["id"] == ALICE for m in emu.messages("greeter_bot", ALICE))


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"text": "hi"}, '"user_id" is required'),
        ({"user_id": "abc", "text": "hi"}, "Integer"),
        ({"user_id": -5, "text": "hi"}, "positive"),
        ({"user_id": ALICE}, "message text is empty"),
        ({"user_id": ALICE, "text": "x" * 4097}, "message is too long"),
        ({"user_id": ALICE, "text": "hi", "chat_id": BOB}, "own id or a group id"),
        ({"user_id": ALICE, "text": "hi", "chat_id": -42}, "does not exist"),
        (
            {"user_id": ALICE, "text": "hi", "reply_to_message_id": 77},
            "message to be replied not found",
        ),
    ],
)
def test_bad_user_messages_are_refused_and_change_nothing(emu, bot, body, fragment):
    status, data = emu.request("POST", "/control/bots/greeter_bot/messages", body)
    assert status in (400, 404) and fragment in data["description"], data
    assert emu.control("GET", "/bots/greeter_bot/updates") == []


def test_unknown_bots_and_bad_json_bodies(emu, bot):
    status, data = emu.request(
        "POST", "/control/bots/nobody_bot/messages", {"user_id": 1, "text": "x"}
    )
    assert status == 404 and data["ok"] is False
    status, data = emu.request("POST", "/control/bots", ["not", "an", "object"])
    assert status == 400
    status, data = emu.request("GET", "/control/nothing-here")
    assert status == 404 and data["ok"] is False
    status, data = emu.request("GET", f"/control/bots/greeter_bot/chats/{ALICE}/messages?wait=999")
    assert status == 400
    status, data = emu.request("GET", "/control/bots/greeter_bot/chats/abc/messages")
    assert status == 400


def test_pressing_buttons_checks_the_message(emu, started):
    token = started["token"]
    keyboard = {"inline_keyboard": [[{"text": "Ping", "callback_data": "ping"}]]}
    message = emu.bot_api(token, "sendMessage", chat_id=ALICE, text="press", reply_markup=keyboard)[
        1
    ]["result"]
    cases = [
        (
            {"user_id": ALICE, "message_id": message["message_id"], "data": "pong"},
            "no inline button",
        ),
        ({"user_id": ALICE, "message_id": 1, "data": "ping"}, "not sent by @greeter_bot"),
        ({"user_id": ALICE, "message_id": 999, "data": "ping"}, "not found"),
        ({"user_id": ALICE, "message_id": message["message_id"]}, '"data"'),
        ({"user_id": ALICE, "data": "ping"}, '"message_id" is required'),
    ]
    for body, fragment in cases:
        status, data = emu.request("POST", "/control/bots/greeter_bot/callbacks", body)
        assert status == 400 and fragment in data["description"], (body, data)
    forced = emu.press(
        "greeter_bot", user_id=ALICE, message_id=message["message_id"], data="pong", force=True
    )
    assert forced["data"] == "pong" and forced["answered"] is False


def test_callback_status_waits_for_the_answer(emu, started):
    token = started["token"]
    keyboard = {"inline_keyboard": [[{"text": "Ping", "callback_data": "ping"}]]}
    message = emu.bot_api(token, "sendMessage", chat_id=ALICE, text="press", reply_markup=keyboard)[
        1
    ]["result"]
    query = emu.press("greeter_bot", user_id=ALICE, message_id=message["message_id"], data="ping")

    def answer_later():
        time.sleep(0.3)
        emu.bot_api(token, "answerCallbackQuery", callback_query_id=query["id"], text="Pong")

    threading.Thread(target=answer_later).start()
    status = emu.control("GET", f"/bots/greeter_bot/callbacks/{query['id']}?wait=10")
    assert status["answered"] is True and status["answer"]["text"] == "Pong"
    assert emu.request("GET", "/control/bots/greeter_bot/callbacks/nope")[0] == 404


def test_groups_deliver_commands_and_replies_in_privacy_mode(emu, bot):
    nosy = emu.create_bot("nosy_bot", can_read_all_group_messages=True)
    group = emu.control(
        "POST",
        "/groups",
        {
            "title": "Team",
            "member_user_ids": [ALICE, BOB],
            "bot_usernames": ["greeter_bot", "nosy_bot"],
        },
    )
    assert (
        group["id"] < 0
        and group["type"] == "group"
        and group["bot_usernames"] == ["greeter_bot", "nosy_bot"]
    )
    for who in (bot, nosy):
        [joined] = emu.bot_api(who["token"], "getUpdates")[1]["result"]
        assert joined["my_chat_member"]["new_chat_member"]["status"] == "member"
        emu.bot_api(who["token"], "getUpdates", offset=joined["update_id"] + 1)
    emu.send("greeter_bot", user_id=ALICE, text="just chatting", chat_id=group["id"])
    emu.send("greeter_bot", user_id=BOB, text="/help", chat_id=group["id"])
    emu.send("greeter_bot", user_id=CHARLIE, text="/help@nosy_bot", chat_id=group["id"])
    greeter_sees = [
        u["message"]["text"] for u in emu.bot_api(bot["token"], "getUpdates")[1]["result"]
    ]
    nosy_sees = [
        u["message"]["text"] for u in emu.bot_api(nosy["token"], "getUpdates")[1]["result"]
    ]
    assert greeter_sees == ["/help"]
    assert nosy_sees == ["just chatting", "/help", "/help@nosy_bot"]
    reply = emu.bot_api(bot["token"], "sendMessage", chat_id=group["id"], text="Hi team")[1][
        "result"
    ]
    assert reply["chat"]["id"] == group["id"] and reply["message_id"] == 4
    assert CHARLIE in emu.control("GET", f"/groups/{group['id']}")["member_user_ids"]
    history = emu.messages("nosy_bot", group["id"])
    assert [m["text"] for m in history][-1] == "Hi team"


def test_bots_outside_a_group_cannot_use_it(emu, bot):
    emu.create_bot("outsider_bot")
    group = emu.control(
        "POST", "/groups", {"title": "Private club", "bot_usernames": ["greeter_bot"]}
    )
    status, data = emu.request(
        "POST",
        "/control/bots/outsider_bot/messages",
        {"user_id": ALICE, "text": "hi", "chat_id": group["id"]},
    )
    assert status == 400
    outsider = emu.control("GET", "/bots/outsider_bot")
    status, data = emu.bot_api(outsider["token"], "sendMessage", chat_id=group["id"], text="hi")
    assert (status, data["description"]) == (
        403,
        "Forbidden: bot is not a member of the group chat",
    )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": "x", "member_user_ids": "1,2"},
        {"title": "x", "member_user_ids": [1, -2]},
        {"title": "x", "bot_usernames": ["ghost_bot"]},
        {"title": "x", "type": "channel"},
        {"title": "x", "id": 5},
    ],
)
def test_bad_groups_are_refused(emu, bot, body):
    status, data = emu.request("POST", "/control/groups", body)
    assert status == 400, data
    assert emu.control("GET", "/groups") == []


def test_reset_clears_everything(emu, started):
    assert emu.control("POST", "/reset") == {"ok": True}
    assert emu.control("GET", "/bots") == []
    assert emu.bot_api(started["token"], "getMe")[0] == 401
    assert emu.control("GET", "/health") == {"ok": True}


def test_cross_site_writes_are_refused(emu, bot):
    import urllib.request

    request = urllib.request.Request(
        emu.url + "/control/reset",
        data=b"",
        method="POST",
        headers={"Origin": "https://evil.example"},
    )
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("cross-origin reset was accepted")
    except urllib.error.HTTPError as err:
        assert err.code == 403
    assert [b["username"] for b in emu.control("GET", "/bots")] == ["greeter_bot"]
    host = emu.url.removeprefix("http://")
    same = urllib.request.Request(
        emu.url + "/control/reset", data=b"", method="POST", headers={"Origin": f"http://{host}"}
    )
    with urllib.request.urlopen(same, timeout=10) as resp:
        assert resp.status == 200
