"""Sending, editing and deleting messages, keyboards, callback answers, commands and chats."""

from __future__ import annotations

import pytest

from .conftest import ALICE, BOB, CHARLIE

KEYBOARD = {"inline_keyboard": [[{"text": "Ping", "callback_data": "ping"}]]}


def send(emu, token, **params):
    status, body = emu.bot_api(token, "sendMessage", **{"chat_id": ALICE, **params})
    assert status == 200, body
    return body["result"]


def test_send_message_returns_a_telegram_message(emu, started):
    message = send(emu, started["token"], text="Hello, Alice", reply_markup=KEYBOARD)
    assert message["message_id"] == 2  # Alice's /start was 1
    assert message["from"] == {
        "id": started["id"],
        "is_bot": True,
        "first_name": "Greeter",
        "username": "greeter_bot",
    }
    assert message["chat"] == {"id": ALICE, "type": "private", "first_name": "Alice"}
    assert isinstance(message["date"], int)
    assert message["reply_markup"] == KEYBOARD
    [seen] = [m for m in emu.messages("greeter_bot", ALICE) if m["from_bot"]]
    assert seen["text"] == "Hello, Alice" and seen["reply_markup"] == KEYBOARD


def test_chat_id_may_be_a_group_username(emu, bot):
    emu.control(
        "POST",
        "/groups",
        {
            "title": "Club",
            "username": "the_club",
            "member_user_ids": [ALICE],
            "bot_usernames": ["greeter_bot"],
        },
    )
    message = send(emu, bot["token"], chat_id="@the_club", text="hi all")
    assert message["chat"]["type"] == "group" and message["chat"]["title"] == "Club"
    assert emu.bot_api(bot["token"], "sendMessage", chat_id="@nobody_here", text="x")[1][
        "description"
    ] == ("Bad Request: chat not found")


@pytest.mark.parametrize(
    ("text", "mode", "plain", "entity"),
    [
        ("<b>bold</b> &amp; co", "HTML", "bold & co", {"type": "bold", "offset": 0, "length": 4}),
        ("*bold* text\\.", "MarkdownV2", "bold text.", {"type": "bold", "offset": 0, "length": 4}),
        (
            "_it_ [link](https://example.com)",
            "Markdown",
            "it link",
            {"type": "italic", "offset": 0, "length": 2},
        ),
    ],
)
def test_parse_modes_turn_markup_into_entities(emu, started, text, mode, plain, entity):
    message = send(emu, started["token"], text=text, parse_mode=mode)
    assert message["text"] == plain
    assert entity in message["entities"]


def test_malformed_markup_is_refused_like_telegram(emu, started):
    token = started["token"]
    cases = [
        ("a.b", "MarkdownV2", "Character '.' is reserved"),
        ("<blink>x</blink>", "HTML", 'Unsupported start tag "blink"'),
        ("<b>x", "HTML", "Can't find end tag"),
        ("x", "Klingon", "unsupported parse_mode"),
    ]
    for text, mode, fragment in cases:
        status, body = emu.bot_api(token, "sendMessage", chat_id=ALICE, text=text, parse_mode=mode)
        assert status == 400 and fragment in body["description"], body


@pytest.mark.parametrize(
    ("markup", "fragment"),
    [
        ({"inline_keyboard": [[{"text": "No action"}]]}, "Text buttons are unallowed"),
        (
            {"inline_keyboard": [[{"text": "Big", "callback_data": "x" * 65}]]},
            "BUTTON_DATA_INVALID",
        ),
        (
            {"inline_keyboard": [[{"text": "JS", "url": "javascript:alert(1)"}]]},
            "BUTTON_URL_INVALID",
        ),
        ({"inline_keyboard": [[{"callback_data": "x"}]]}, "can't parse inline keyboard button"),
        ({"inline_keyboard": "rows"}, "must be an Array of Arrays"),
        (
            {"inline_keyboard": [[{"text": "b", "callback_data": "d"}] * 101]},
            "reply markup is too long",
        ),
        ({"whatever": True}, "can't parse reply keyboard markup JSON object"),
    ],
)
def test_bad_keyboards_are_refused(emu, started, markup, fragment):
    status, body = emu.bot_api(
        started["token"], "sendMessage", chat_id=ALICE, text="x", reply_markup=markup
    )
    assert status == 400 and fragment in body["description"], body


def test_reply_keyboards_are_kept_for_the_web_chat_but_not_in_the_message(emu, started):
    markup = {"keyboard": [["Yes", {"text": "No"}]], "one_time_keyboard": True}
    message = send(emu, started["token"], text="Sure?", reply_markup=markup)
    assert "reply_markup" not in message
    [view] = [m for m in emu.messages("greeter_bot", ALICE) if m["from_bot"]]
    assert view["reply_markup"]["keyboard"] == [[{"text": "Yes"}, {"text": "No"}]]


def test_replies_by_id_or_reply_parameters(emu, started):
    token = started["token"]
    first = send(emu, token, text="first")
    reply = send(emu, token, text="second", reply_to_message_id=first["message_id"])
    assert reply["reply_to_message"]["text"] == "first"
    reply = send(emu, token, text="third", reply_parameters={"message_id": first["message_id"]})
    assert reply["reply_to_message"]["message_id"] == first["message_id"]
    status, body = emu.bot_api(
        token, "sendMessage", chat_id=ALICE, text="x", reply_to_message_id=999
    )
    assert (status, body["description"]) == (400, "Bad Request: message to be replied not found")
    lenient = send(
        emu,
        token,
        text="x",
        reply_parameters={"message_id": 999, "allow_sending_without_reply": True},
    )
    assert "reply_to_message" not in lenient


def test_edit_message_text_updates_in_place(emu, started):
    token = started["token"]
    message = send(emu, token, text="draft", reply_markup=KEYBOARD)
    status, body = emu.bot_api(
        token,
        "editMessageText",
        chat_id=ALICE,
        message_id=message["message_id"],
        text="final",
        reply_markup=KEYBOARD,
    )
    assert status == 200
    edited = body["result"]
    assert edited["text"] == "final" and isinstance(edited["edit_date"], int)
    assert edited["reply_markup"] == KEYBOARD
    [view] = [m for m in emu.messages("greeter_bot", ALICE) if m["from_bot"]]
    assert view["text"] == "final" and view["edited"] is True


def test_editing_without_markup_removes_the_inline_keyboard(emu, started):
    message = send(emu, started["token"], text="draft", reply_markup=KEYBOARD)
    body = emu.bot_api(
        started["token"],
        "editMessageText",
        chat_id=ALICE,
        message_id=message["message_id"],
        text="x",
    )[1]
    assert "reply_markup" not in body["result"]


def test_edit_errors_mirror_telegram(emu, started):
    token = started["token"]
    message = send(emu, token, text="same")
    status, body = emu.bot_api(
        token, "editMessageText", chat_id=ALICE, message_id=message["message_id"], text="same"
    )
    assert status == 400 and body["description"].startswith(
        "Bad Request: message is not modified: "
    )
    status, body = emu.bot_api(token, "editMessageText", chat_id=ALICE, message_id=999, text="x")
    assert body["description"] == "Bad Request: message to edit not found"
    status, body = emu.bot_api(token, "editMessageText", chat_id=ALICE, message_id=1, text="x")
    assert body["description"] == "Bad Request: message can't be edited"  # Alice's own /start
    status, body = emu.bot_api(token, "editMessageText", inline_message_id="abc", text="x")
    assert status == 400
    status, body = emu.bot_api(token, "editMessageText", chat_id=ALICE, text="x")
    assert body["description"] == "Bad Request: message identifier is not specified"


def test_edit_message_reply_markup(emu, started):
    token = started["token"]
    message = send(emu, token, text="pick", reply_markup=KEYBOARD)
    other = {"inline_keyboard": [[{"text": "Docs", "url": "https://example.com/docs"}]]}
    status, body = emu.bot_api(
        token,
        "editMessageReplyMarkup",
        chat_id=ALICE,
        message_id=message["message_id"],
        reply_markup=other,
    )
    assert status == 200 and body["result"]["reply_markup"] == other
    status, body = emu.bot_api(
        token,
        "editMessageReplyMarkup",
        chat_id=ALICE,
        message_id=message["message_id"],
        reply_markup=other,
    )
    assert status == 400 and "message is not modified" in body["description"]
    status, body = emu.bot_api(
        token,
        "editMessageReplyMarkup",
        chat_id=ALICE,
        message_id=message["message_id"],
        reply_markup={"keyboard": [["x"]]},
    )
    assert status == 400


def test_delete_message_then_deleting_again_fails(emu, started):
    token = started["token"]
    message = send(emu, token, text="soon gone")
    assert emu.bot_api(token, "deleteMessage", chat_id=ALICE, message_id=message["message_id"]) == (
        200,
        {"ok": True, "result": True},
    )
    status, body = emu.bot_api(
        token, "deleteMessage", chat_id=ALICE, message_id=message["message_id"]
    )
    assert (status, body["description"]) == (400, "Bad Request: message to delete not found")
    status, body = emu.bot_api(token, "deleteMessage", chat_id=ALICE, message_id=424242)
    assert (status, body["description"]) == (400, "Bad Request: message to delete not found")
    [view] = [m for m in emu.messages("greeter_bot", ALICE) if m["from_bot"]]
    assert view["deleted"] is True
    status, body = emu.bot_api(
        token, "editMessageText", chat_id=ALICE, message_id=message["message_id"], text="x"
    )
    assert body["description"] == "Bad Request: message to edit not found"


def test_answer_callback_query_reaches_the_user(emu, started):
    token = started["token"]
    message = send(emu, token, text="press", reply_markup=KEYBOARD)
    query = emu.press("greeter_bot", user_id=ALICE, message_id=message["message_id"], data="ping")
    [update] = emu.bot_api(token, "getUpdates")[1]["result"]
    callback = update["callback_query"]
    assert callback["id"] == query["id"] and callback["data"] == "ping"
    assert (
        callback["from"]["id"] == ALICE
        and callback["message"]["message_id"] == message["message_id"]
    )
    assert isinstance(callback["chat_instance"], str)
    assert (
        emu.bot_api(
            token,
            "answerCallbackQuery",
            callback_query_id=query["id"],
            text="Pong!",
            show_alert=True,
        )[0]
        == 200
    )
    status = emu.control("GET", f"/bots/greeter_bot/callbacks/{query['id']}")
    assert (
        status["answered"] is True
        and status["answer"]["text"] == "Pong!"
        and status["answer"]["show_alert"] is True
    )
    # A query can be answered once; unknown ids fail the same way.
    for query_id in (query["id"], "12345"):
        status, body = emu.bot_api(token, "answerCallbackQuery", callback_query_id=query_id)
        assert status == 400 and "query ID is invalid" in body["description"]
    status, body = emu.bot_api(
        token, "answerCallbackQuery", callback_query_id=query["id"], text="x" * 201
    )
    assert status == 400


def test_commands_are_stored_per_scope_and_language(emu, bot):
    token = bot["token"]
    commands = [
        {"command": "start", "description": "Start"},
        {"command": "help", "description": "Help"},
    ]
    assert emu.bot_api(token, "setMyCommands", commands=commands)[1]["result"] is True
    assert (
        emu.bot_api(
            token,
            "setMyCommands",
            commands=[{"command": "aide", "description": "Aide"}],
            language_code="fr",
        )[0]
        == 200
    )
    assert emu.bot_api(token, "getMyCommands")[1]["result"] == commands
    assert (
        emu.bot_api(token, "getMyCommands", language_code="fr")[1]["result"][0]["command"] == "aide"
    )
    scoped = {"type": "all_group_chats"}
    assert emu.bot_api(token, "getMyCommands", scope=scoped)[1]["result"] == []
    assert emu.control("GET", "/bots/greeter_bot")["commands"] == commands
    assert emu.bot_api(token, "deleteMyCommands")[1]["result"] is True
    assert emu.bot_api(token, "getMyCommands")[1]["result"] == []


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"commands": "{bad"},
        {"commands": [{"command": "Bad Command", "description": "x"}]},
        {"commands": [{"command": "ok", "description": ""}]},
        {"commands": [{"command": "ok", "description": "x"}], "scope": {"type": "nowhere"}},
        {"commands": [{"command": "ok", "description": "x"}], "language_code": "english"},
    ],
)
def test_bad_commands_are_refused(emu, bot, params):
    status, body = emu.bot_api(bot["token"], "setMyCommands", **params)
    assert status == 400 and body["description"].startswith("Bad Request:")


def test_get_chat_and_members(emu, started):
    token = started["token"]
    chat = emu.bot_api(token, "getChat", chat_id=ALICE)[1]["result"]
    assert chat["id"] == ALICE and chat["type"] == "private" and chat["first_name"] == "Alice"
    assert "accent_color_id" in chat and "accepted_gift_types" in chat
    assert (
        emu.bot_api(token, "getChat", chat_id=CHARLIE)[1]["description"]
        == "Bad Request: chat not found"
    )
    member = emu.bot_api(token, "getChatMember", chat_id=ALICE, user_id=ALICE)[1]["result"]
    assert member["status"] == "member" and member["user"]["id"] == ALICE
    assert emu.bot_api(token, "sendChatAction", chat_id=ALICE, action="typing")[1]["result"] is True
    assert emu.bot_api(token, "sendChatAction", chat_id=ALICE, action="dancing")[0] == 400


def test_webhook_info_reports_settings(emu, bot):
    token = bot["token"]
    info = emu.bot_api(token, "getWebhookInfo")[1]["result"]
    assert info == {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
    emu.send("greeter_bot", user_id=BOB, text="queued")
    emu.bot_api(
        token, "setWebhook", url="http://127.0.0.1:9/hook", secret_token="s3cret", max_connections=5
    )
    info = emu.bot_api(token, "getWebhookInfo")[1]["result"]
    assert info["url"] == "http://127.0.0.1:9/hook" and info["max_connections"] == 5
    for params in (
        {"url": "ftp://example.com"},
        {"url": "http://x.y/h", "secret_token": "bad token!"},
    ):
        assert emu.bot_api(token, "setWebhook", **params)[0] == 400
    emu.bot_api(token, "deleteWebhook", drop_pending_updates=True)
    info = emu.bot_api(token, "getWebhookInfo")[1]["result"]
    assert info["url"] == "" and info["pending_update_count"] == 0
    assert emu.bot_api(token, "logOut")[1]["result"] is True
    assert emu.bot_api(token, "close")[1]["result"] is True


def test_delete_messages_in_bulk(emu, started):
    token = started["token"]
    ids = [send(emu, token, text=f"m{i}")["message_id"] for i in range(3)]
    assert (
        emu.bot_api(token, "deleteMessages", chat_id=ALICE, message_ids=[*ids[:2], 999])[1][
            "result"
        ]
        is True
    )
    alive = [
        m["text"] for m in emu.messages("greeter_bot", ALICE) if m["from_bot"] and not m["deleted"]
    ]
    assert alive == ["m2"]
    for bad in ([], "nope", ["x"]):
        assert emu.bot_api(token, "deleteMessages", chat_id=ALICE, message_ids=bad)[0] == 400


def test_group_membership_and_leaving(emu, bot):
    group = emu.control(
        "POST",
        "/groups",
        {"title": "Team", "member_user_ids": [ALICE], "bot_usernames": ["greeter_bot"]},
    )
    emu.control("POST", "/groups", {"title": "Other", "member_user_ids": [BOB]})
    token = bot["token"]
    assert emu.bot_api(token, "getChatMemberCount", chat_id=group["id"])[1]["result"] == 2
    assert (
        emu.bot_api(token, "getChatMember", chat_id=group["id"], user_id=ALICE)[1]["result"][
            "status"
        ]
        == "member"
    )
    assert (
        emu.bot_api(token, "getChatMember", chat_id=group["id"], user_id=BOB)[1]["result"]["status"]
        == "left"
    )
    assert emu.bot_api(token, "getChatMember", chat_id=group["id"], user_id=777)[0] == 400
    # A user's own message in a group cannot be deleted by a bot that is not an administrator.
    mine = emu.send("greeter_bot", user_id=ALICE, text="/hello", chat_id=group["id"])
    status, body = emu.bot_api(
        token, "deleteMessage", chat_id=group["id"], message_id=mine["message_id"]
    )
    assert (status, body["description"]) == (400, "Bad Request: message can't be deleted")
    assert emu.bot_api(token, "leaveChat", chat_id=group["id"])[1]["result"] is True
    status, body = emu.bot_api(token, "sendMessage", chat_id=group["id"], text="still here?")
    assert status == 403
