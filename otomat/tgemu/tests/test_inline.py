"""Inline mode: inline_query updates, answerInlineQuery validation, chosen results."""

from __future__ import annotations

import pytest

from otomat.tgemu.testing import png

from .conftest import ALICE, BOB

TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
ARTICLE = {
    "type": "article",
    "id": "m1",
    "title": "The Matrix",
    "input_message_content": {"message_text": "<b>The Matrix</b> (1999)", "parse_mode": "HTML"},
}


def ask(emu, query: str = "matrix", **extra):
    body = {"user_id": ALICE, "first_name": "Alice", "query": query, **extra}
    return emu.control("POST", "/bots/greeter_bot/inline_queries", body)


def next_update(emu, token: str) -> dict:
    _status, body = emu.bot_api(token, "getUpdates", timeout=5)
    update = body["result"][-1]
    emu.bot_api(token, "getUpdates", offset=update["update_id"] + 1)
    return update


def test_an_inline_query_is_answered_and_a_result_chosen(emu, bot):
    token = bot["token"]
    emu.control("PATCH", "/bots/greeter_bot", {"inline_feedback": True})
    assert emu.bot_api(token, "getMe")[1]["result"]["supports_inline_queries"] is True
    query = ask(emu, offset="")
    update = next_update(emu, token)["inline_query"]
    assert update == {
        "id": query["id"],
        "from": {"id": ALICE, "is_bot": False, "first_name": "Alice"},
        "query": "matrix",
        "offset": "",
        "chat_type": "sender",
    }
    status, body = emu.bot_api(
        token,
        "answerInlineQuery",
        inline_query_id=query["id"],
        results=[ARTICLE],
        cache_time=0,
        is_personal=True,
        next_offset="10",
    )
    assert (status, body["result"]) == (200, True)
    answered = emu.control("GET", f"/bots/greeter_bot/inline_queries/{query['id']}?wait=5")
    assert answered["answered"] and answered["answer"]["next_offset"] == "10"
    assert answered["answer"]["results"][0]["id"] == "m1"

    message = emu.control(
        "POST", f"/bots/greeter_bot/inline_queries/{query['id']}/choose", {"result_id": "m1"}
    )
    assert message["text"] == "The Matrix (1999)" and message["from"]["id"] == ALICE
    assert message["via_bot"]["username"] == "greeter_bot"
    assert message["entities"] == [{"type": "bold", "offset": 0, "length": 10}]
    status, body = emu.bot_api(token, "getUpdates")
    kinds = [next(k for k in u if k != "update_id") for u in body["result"]]
    assert kinds == ["message", "chosen_inline_result"]
    chosen = body["result"][1]["chosen_inline_result"]
    assert chosen["result_id"] == "m1" and chosen["query"] == "matrix"
    assert chosen["from"]["id"] == ALICE


def test_chosen_inline_result_needs_inline_feedback(emu, bot):
    query = ask(emu)
    next_update(emu, bot["token"])
    emu.bot_api(bot["token"], "answerInlineQuery", inline_query_id=query["id"], results=[ARTICLE])
    emu.control(
        "POST", f"/bots/greeter_bot/inline_queries/{query['id']}/choose", {"result_id": "m1"}
    )
    body = emu.bot_api(bot["token"], "getUpdates")[1]
    assert [list(u)[1] for u in body["result"]] == ["message"]


def test_photo_results_post_the_cached_photo_into_a_group(emu, started):
    token = started["token"]
    _status, sent = emu.upload(
        token, "sendPhoto", {"photo": ("p.png", png(10, 10), "image/png")}, chat_id=ALICE
    )
    file_id = sent["result"]["photo"][0]["file_id"]
    group = emu.control("POST", "/groups", {"title": "Movies", "member_user_ids": [ALICE, BOB]})
    query = ask(emu, chat_id=group["id"])
    assert next_update(emu, token)["inline_query"]["chat_type"] == "group"
    results = [
        {"type": "photo", "id": "p1", "photo_file_id": file_id, "caption": "poster"},
        {"type": "photo", "id": "p2", "photo_url": "http://x/p.jpg", "thumbnail_url": "http://x/t"},
    ]
    assert (
        emu.bot_api(token, "answerInlineQuery", inline_query_id=query["id"], results=results)[0]
        == 200
    )
    message = emu.control(
        "POST", f"/bots/greeter_bot/inline_queries/{query['id']}/choose", {"result_id": "p1"}
    )
    assert message["chat"]["id"] == group["id"] and message["photo"][0]["file_id"] == file_id
    assert message["caption"] == "poster" and message["via_bot"]["id"] == started["id"]


@pytest.mark.parametrize(
    ("results", "description"),
    [
        ("nope", "Bad Request: can't parse inline query results JSON object"),
        ([{"type": "spaceship", "id": "1"}], "Bad Request: RESULT_TYPE_INVALID"),
        ([ARTICLE, ARTICLE], "Bad Request: RESULT_ID_DUPLICATE"),
        ([{**ARTICLE, "id": "x" * 65}], "Bad Request: RESULT_ID_INVALID"),
        ([{**ARTICLE, "title": None}], "Bad Request: can't parse inline query result: "
         'Field "title" must be of type String'),
        ([{**ARTICLE, "input_message_content": {"message_text": " "}}], "Bad Request: MESSAGE_EMPTY"),
        ([{"type": "photo", "id": "p", "photo_url": "http://x"}], "Bad Request: can't parse "
         'inline query result: Field "thumbnail_url" must be of type String'),
        ([{"type": "photo", "id": "p", "photo_file_id": "AgACnope"}],
         "Bad Request: wrong file identifier/HTTP URL specified"),
        ([{**ARTICLE, "id": str(n)} for n in range(51)], "Bad Request: RESULTS_TOO_MUCH"),
    ],
)  # fmt: skip
def test_bad_answers_are_refused_and_the_query_stays_answerable(emu, bot, results, description):
    query = ask(emu)
    status, body = emu.bot_api(
        bot["token"], "answerInlineQuery", inline_query_id=query["id"], results=results
    )
    assert (status, body["description"]) == (400, description)
    assert (
        emu.control("GET", f"/bots/greeter_bot/inline_queries/{query['id']}")["answered"] is False
    )
    ok = emu.bot_api(
        bot["token"], "answerInlineQuery", inline_query_id=query["id"], results=[ARTICLE]
    )
    assert ok[0] == 200


def test_answers_after_ten_seconds_twice_or_for_unknown_ids_are_too_old(emu, bot):
    token = bot["token"]
    for query_id in ("123", ""):
        status, body = emu.bot_api(token, "answerInlineQuery", inline_query_id=query_id, results=[])
        assert (status, body["description"]) == (400, TOO_OLD)
    query = ask(emu)
    emu.control("POST", "/clock", {"advance_seconds": 11})
    status, body = emu.bot_api(token, "answerInlineQuery", inline_query_id=query["id"], results=[])
    assert (status, body["description"]) == (400, TOO_OLD)
    query = ask(emu)
    assert (
        emu.bot_api(token, "answerInlineQuery", inline_query_id=query["id"], results=[])[0] == 200
    )
    status, body = emu.bot_api(token, "answerInlineQuery", inline_query_id=query["id"], results=[])
    assert (status, body["description"]) == (400, TOO_OLD)
    status, body = emu.bot_api(
        token, "answerInlineQuery", inline_query_id=ask(emu)["id"], results=[], next_offset="x" * 65
    )
    assert (status, body["description"]) == (400, "Bad Request: NEXT_OFFSET_INVALID")


def test_bad_control_requests_change_nothing(emu, bot):
    path = "/bots/greeter_bot/inline_queries"
    assert emu.request("POST", "/control" + path, {"query": "x"})[0] == 400
    assert emu.request("POST", "/control" + path, {"user_id": ALICE, "query": "q" * 257})[0] == 400
    assert emu.request("POST", "/control" + path, {"user_id": ALICE, "chat_id": -5})[0] == 404
    assert emu.request("GET", "/control" + path + "/999")[0] == 404
    assert emu.state.users == {}
    query = ask(emu)
    choose = f"/control{path}/{query['id']}/choose"
    status, body = emu.request("POST", choose, {"result_id": "m1"})
    assert (status, body["description"]) == (
        400,
        "Bad Request: the bot has not answered this inline query",
    )
    emu.bot_api(bot["token"], "answerInlineQuery", inline_query_id=query["id"], results=[ARTICLE])
    status, body = emu.request("POST", choose, {"result_id": "other"})
    assert status == 400 and "not among" in body["description"]
    assert emu.messages("greeter_bot", ALICE) == []
    emu.control("PATCH", "/bots/greeter_bot", {"supports_inline_queries": False})
    status, body = emu.request("POST", "/control" + path, {"user_id": ALICE, "query": "x"})
    assert status == 400 and "inline mode switched off" in body["description"]
    status, body = emu.request("PATCH", "/control/bots/greeter_bot", {"inline_feedback": "maybe"})
    assert status == 400
    status, body = emu.request("PATCH", "/control/bots/greeter_bot", {"colour": True})
    assert status == 400 and "colour" in body["description"]


def test_inline_messages_with_buttons_are_edited_by_inline_message_id(emu, bot):
    token = bot["token"]
    emu.control("PATCH", "/bots/greeter_bot", {"inline_feedback": True})
    query = ask(emu)
    keyboard = {"inline_keyboard": [[{"text": "Next", "callback_data": "page:2"}]]}
    emu.bot_api(
        token, "answerInlineQuery", inline_query_id=query["id"],
        results=[{**ARTICLE, "reply_markup": keyboard}],
    )  # fmt: skip
    message = emu.control(
        "POST", f"/bots/greeter_bot/inline_queries/{query['id']}/choose", {"result_id": "m1"}
    )
    inline_id = message["inline_message_id"]
    assert message["reply_markup"] == keyboard
    updates = emu.bot_api(token, "getUpdates")[1]["result"]
    assert updates[-1]["chosen_inline_result"]["inline_message_id"] == inline_id
    emu.bot_api(token, "getUpdates", offset=updates[-1]["update_id"] + 1)

    emu.press("greeter_bot", user_id=ALICE, message_id=message["message_id"], data="page:2")
    [update] = emu.bot_api(token, "getUpdates")[1]["result"]
    callback = update["callback_query"]
    assert callback["inline_message_id"] == inline_id and "message" not in callback

    status, body = emu.bot_api(
        token, "editMessageText", inline_message_id=inline_id, text="Page 2", reply_markup=keyboard
    )
    assert (status, body["result"]) == (200, True)
    [edited] = emu.messages("greeter_bot", ALICE)
    assert edited["text"] == "Page 2" and edited["edited"]
    for wrong in ("nope", f"{ALICE}_{message['message_id']}_forged", ""):
        status, body = emu.bot_api(token, "editMessageText", inline_message_id=wrong, text="x")
        assert status == 400, wrong
    other = emu.create_bot("other_bot")
    status, body = emu.bot_api(
        other["token"], "editMessageText", inline_message_id=inline_id, text="x"
    )
    assert (status, body["description"]) == (400, "Bad Request: MESSAGE_ID_INVALID")
    assert emu.messages("greeter_bot", ALICE)[0]["text"] == "Page 2"
