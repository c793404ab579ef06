"""Channels, my_chat_member, chat_member and users blocking bots."""

from __future__ import annotations

from .conftest import ALICE, BOB, CHARLIE


def updates(emu, token: str) -> list[dict]:
    _status, body = emu.bot_api(token, "getUpdates")
    if body["result"]:
        emu.bot_api(token, "getUpdates", offset=body["result"][-1]["update_id"] + 1)
    return body["result"]


def test_a_channel_post_reaches_its_bots_and_they_post_back(emu, bot):
    token = bot["token"]
    channel = emu.control(
        "POST",
        "/channels",
        {"title": "News", "username": "news_chan", "owner_user_id": ALICE,
         "bot_usernames": ["greeter_bot"]},
    )  # fmt: skip
    assert channel["type"] == "channel" and channel["id"] < -1_000_000_000_000
    assert channel["admin_bot_usernames"] == ["greeter_bot"]
    [added] = updates(emu, token)
    member = added["my_chat_member"]
    assert member["chat"]["type"] == "channel" and member["from"]["id"] == ALICE
    assert member["old_chat_member"]["status"] == "left"
    assert member["new_chat_member"]["status"] == "administrator"
    assert member["new_chat_member"]["can_post_messages"] is True

    post = emu.control("POST", f"/channels/{channel['id']}/posts", {"text": "Hello #news"})
    assert "from" not in post and post["sender_chat"]["id"] == channel["id"]
    [update] = updates(emu, token)
    assert update["channel_post"]["text"] == "Hello #news"
    assert update["channel_post"]["chat"]["username"] == "news_chan"

    for chat_ref in (channel["id"], "@news_chan"):
        status, body = emu.bot_api(token, "sendMessage", chat_id=chat_ref, text="from the bot")
        assert status == 200 and body["result"]["sender_chat"]["id"] == channel["id"]
    status, body = emu.bot_api(token, "getChatMember", chat_id=channel["id"], user_id=bot["id"])
    assert body["result"]["status"] == "administrator"


def test_bad_channel_requests_change_nothing(emu, bot):
    for body in (
        {"owner_user_id": ALICE},
        {"title": "x"},
        {"title": "x", "owner_user_id": ALICE, "bot_usernames": ["nobody_bot"]},
        {"title": "x", "owner_user_id": ALICE, "username": "no"},
    ):
        assert emu.request("POST", "/control/channels", body)[0] == 400, body
    assert emu.state.groups == {} and emu.state.users == {}
    group = emu.control("POST", "/groups", {"title": "G", "member_user_ids": [ALICE]})
    status, body = emu.request("POST", f"/control/channels/{group['id']}/posts", {"text": "x"})
    assert status == 400 and "not a channel" in body["description"]
    assert emu.request("POST", "/control/channels/-1/posts", {"text": "x"})[0] == 404
    channel = emu.control("POST", "/channels", {"title": "C", "owner_user_id": ALICE})
    assert emu.request("POST", f"/control/channels/{channel['id']}/posts", {"text": " "})[0] == 400
    # Readers cannot write in a channel through the message endpoint either.
    emu.control("POST", f"/groups/{channel['id']}/bots", {"username": "greeter_bot", "admin": True})
    status, body = emu.request(
        "POST",
        "/control/bots/greeter_bot/messages",
        {"user_id": BOB, "text": "hi", "chat_id": channel["id"]},
    )
    assert status == 400
    status, body = emu.request(
        "POST", f"/control/groups/{channel['id']}/bots", {"username": "greeter_bot", "admin": False}
    )
    assert status == 400 and "administrators" in body["description"]


def test_bots_get_my_chat_member_when_added_and_removed(emu, bot):
    token = bot["token"]
    group = emu.control("POST", "/groups", {"title": "Team", "member_user_ids": [ALICE]})
    emu.control(
        "POST", f"/groups/{group['id']}/bots", {"username": "greeter_bot", "by_user_id": ALICE}
    )
    emu.control("POST", f"/groups/{group['id']}/bots", {"username": "greeter_bot", "admin": True})
    emu.control("DELETE", f"/groups/{group['id']}/bots/greeter_bot")
    statuses = [
        (
            u["my_chat_member"]["old_chat_member"]["status"],
            u["my_chat_member"]["new_chat_member"]["status"],
        )
        for u in updates(emu, token)
    ]
    assert statuses == [("left", "member"), ("member", "administrator"), ("administrator", "left")]
    status, body = emu.bot_api(token, "sendMessage", chat_id=group["id"], text="still here?")
    assert (status, body["description"]) == (
        403,
        "Forbidden: bot is not a member of the group chat",
    )
    status, body = emu.request("DELETE", f"/control/groups/{group['id']}/bots/greeter_bot")
    assert status == 400
    # leaveChat sends my_chat_member too.
    emu.control("POST", f"/groups/{group['id']}/bots", {"username": "greeter_bot"})
    updates(emu, token)
    assert emu.bot_api(token, "leaveChat", chat_id=group["id"])[0] == 200
    [left] = updates(emu, token)
    assert left["my_chat_member"]["new_chat_member"]["status"] == "left"


def test_chat_member_updates_only_when_asked_for_and_only_to_admins(emu, bot):
    token = bot["token"]
    other = emu.create_bot("other_bot")
    group = emu.control(
        "POST",
        "/groups",
        {"title": "T", "member_user_ids": [ALICE], "bot_usernames": ["greeter_bot", "other_bot"]},
    )
    emu.control("POST", f"/groups/{group['id']}/bots", {"username": "greeter_bot", "admin": True})
    updates(emu, token)
    updates(emu, other["token"])
    emu.control("POST", f"/groups/{group['id']}/members", {"user_id": BOB, "first_name": "Bob"})
    assert updates(emu, token) == []  # not in the default allowed_updates
    emu.bot_api(token, "getUpdates", allowed_updates=["message", "chat_member"])
    emu.bot_api(other["token"], "getUpdates", allowed_updates=["chat_member"])
    emu.control("DELETE", f"/groups/{group['id']}/members/{BOB}")
    emu.control("POST", f"/groups/{group['id']}/members", {"user_id": CHARLIE})
    changes = [
        (
            u["chat_member"]["new_chat_member"]["user"]["id"],
            u["chat_member"]["new_chat_member"]["status"],
        )
        for u in updates(emu, token)
    ]
    assert changes == [(BOB, "left"), (CHARLIE, "member")]
    assert updates(emu, other["token"]) == []  # not an administrator
    assert (
        emu.request("POST", f"/control/groups/{group['id']}/members", {"user_id": CHARLIE})[0]
        == 400
    )
    assert emu.request("DELETE", f"/control/groups/{group['id']}/members/{BOB}")[0] == 400
    assert emu.request("DELETE", f"/control/groups/{group['id']}/members/x")[0] == 400


def test_a_user_blocks_and_unblocks_the_bot(emu, started):
    token = started["token"]
    result = emu.control("POST", f"/bots/greeter_bot/users/{ALICE}/block")
    assert result == {"user_id": ALICE, "blocked": True, "changed": True}
    [update] = updates(emu, token)
    member = update["my_chat_member"]
    assert member["chat"] == {"id": ALICE, "type": "private", "first_name": "Alice"}
    assert (member["old_chat_member"]["status"], member["new_chat_member"]["status"]) == (
        "member",
        "kicked",
    )
    status, body = emu.bot_api(token, "sendMessage", chat_id=ALICE, text="hello?")
    assert (status, body) == (
        403,
        {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
    )
    assert emu.control("POST", f"/bots/greeter_bot/users/{ALICE}/block")["changed"] is False
    # Writing to the bot again restarts it, like Telegram's "Restart bot" button.
    emu.send("greeter_bot", user_id=ALICE, text="/start")
    kinds = [list(u)[1] for u in updates(emu, token)]
    assert kinds == ["my_chat_member", "message"]
    assert emu.bot_api(token, "sendMessage", chat_id=ALICE, text="welcome back")[0] == 200
    assert emu.request("POST", f"/control/bots/greeter_bot/users/{BOB}/block")[0] == 404
    assert emu.request("POST", "/control/bots/greeter_bot/users/x/block")[0] == 400


def test_channels_blocks_and_bot_settings_survive_a_restart(tmp_path):
    from otomat.tgemu.testing import EmulatorServer

    path = tmp_path / "state.json"
    with EmulatorServer(state_path=path) as emu:
        emu.create_bot("greeter_bot")
        emu.send("greeter_bot", user_id=ALICE, text="/start")
        emu.control("POST", f"/bots/greeter_bot/users/{ALICE}/block")
        emu.control("PATCH", "/bots/greeter_bot", {"inline_feedback": True})
        channel = emu.control(
            "POST",
            "/channels",
            {"title": "C", "owner_user_id": BOB, "bot_usernames": ["greeter_bot"]},
        )
        emu.control("POST", f"/channels/{channel['id']}/posts", {"text": "kept"})
        emu.control("POST", "/clock", {"advance_seconds": 3600})
    with EmulatorServer(state_path=path) as emu:
        assert emu.control("GET", "/clock")["offset_seconds"] == 3600
        token = emu.control("GET", "/bots/greeter_bot")["token"]
        assert emu.control("GET", "/bots/greeter_bot")["inline_feedback"] is True
        assert emu.bot_api(token, "sendMessage", chat_id=ALICE, text="x")[0] == 403
        again = emu.control("GET", f"/groups/{channel['id']}")
        assert again["type"] == "channel" and again["admin_bot_usernames"] == ["greeter_bot"]
        assert again["owner_user_id"] == BOB
        [post] = emu.messages("greeter_bot", channel["id"])
        assert post["text"] == "kept" and post["sender_chat"]["id"] == channel["id"]


def test_bad_membership_requests_are_refused_and_change_nothing(emu, bot):
    group = emu.control("POST", "/groups", {"title": "G", "member_user_ids": [ALICE]})
    before = emu.control("GET", f"/groups/{group['id']}")
    for method, path, body, status in (
        ("POST", f"/control/groups/{group['id']}/bots", {"username": "nobody_bot"}, 400),
        ("POST", f"/control/groups/{group['id']}/bots", {}, 400),
        (
            "POST",
            f"/control/groups/{group['id']}/bots",
            {"username": "greeter_bot", "by_user_id": 77},
            404,
        ),
        ("POST", "/control/groups/-42/bots", {"username": "greeter_bot"}, 404),
        ("POST", "/control/groups/x/bots", {"username": "greeter_bot"}, 400),
        ("POST", f"/control/groups/{group['id']}/members", {"user_id": -5}, 400),
        ("POST", f"/control/groups/{group['id']}/members", {}, 400),
        ("DELETE", f"/control/groups/{group['id']}/members/{CHARLIE}", None, 404),
        ("POST", "/control/bots/nobody_bot/users/1001/block", None, 404),
        ("POST", f"/control/bots/greeter_bot/users/{ALICE}/block", None, 400),  # never started it
    ):
        got, answer = emu.request(method, path, body)
        assert got == status, (method, path, answer)
        assert answer["ok"] is False and answer["description"]
    assert emu.control("GET", f"/groups/{group['id']}") == before
    assert emu.bot_api(bot["token"], "getUpdates")[1]["result"] == []
