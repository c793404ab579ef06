"""Envelope and error shapes, parameter encodings and bad input for the Bot API."""

from __future__ import annotations

import json
import urllib.request

from otomat.tgemu import Limits
from otomat.tgemu.testing import EmulatorServer

from .conftest import ALICE


def raw(emu: EmulatorServer, path: str, data: bytes | None = None, content_type: str | None = None):
    headers = {"Content-Type": content_type} if content_type else {}
    req = urllib.request.Request(
        emu.url + path, data=data, headers=headers, method="POST" if data is not None else "GET"
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_it_wraps_results_in_the_ok_envelope(emu, bot):
    status, body = emu.bot_api(bot["token"], "getMe")
    assert status == 200
    assert body["ok"] is True
    me = body["result"]
    assert me["id"] == bot["id"] and me["is_bot"] is True
    assert me["username"] == "greeter_bot" and me["first_name"] == "Greeter"


def test_it_answers_unknown_token_with_401(emu, bot):
    other = "123456:" + "A" * 35
    assert emu.bot_api(other, "getMe") == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    # A right id with a wrong secret is still unknown.
    wrong = bot["token"].split(":")[0] + ":" + "B" * 35
    assert emu.bot_api(wrong, "getMe")[0] == 401


def test_it_answers_unknown_method_with_404(emu, bot):
    assert emu.bot_api(bot["token"], "fooBar") == (
        404,
        {"ok": False, "error_code": 404, "description": "Not Found"},
    )
    assert raw(emu, "/bot" + bot["token"])[0] == 404
    assert raw(emu, f"/file/bot{bot['token']}/photos/1.jpg")[0] == 404


def test_it_explains_real_methods_it_does_not_emulate(emu, bot):
    from otomat.tgemu.botapi import BOT_API_METHODS, METHODS

    # Every implemented name is a real one (a typo would hide a method behind a 404).
    assert set(METHODS) <= {name.lower() for name in BOT_API_METHODS}
    missing = sorted(name for name in BOT_API_METHODS if name.lower() not in METHODS)
    assert "sendPoll" in missing and "sendVideo" not in missing
    for name in missing:
        assert emu.bot_api(bot["token"], name, chat_id=ALICE) == (
            400,
            {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: method is not supported by the emulator",
            },
        ), name
    assert emu.bot_api(bot["token"], "sendPol")[0] == 404  # not a real name: unknown


def test_method_names_are_case_insensitive(emu, bot):
    assert emu.bot_api(bot["token"], "GETME")[0] == 200
    assert emu.bot_api(bot["token"], "getme")[0] == 200


def test_it_reads_parameters_from_every_encoding(emu, started):
    token = started["token"]
    status, body = raw(emu, f"/bot{token}/sendMessage?chat_id={ALICE}&text=query")
    assert status == 200 and body["result"]["text"] == "query"
    status, body = raw(
        emu,
        f"/bot{token}/sendMessage",
        b"chat_id=1001&text=form",
        "application/x-www-form-urlencoded",
    )
    assert status == 200 and body["result"]["text"] == "form"
    status, body = raw(
        emu,
        f"/bot{token}/sendMessage",
        json.dumps({"chat_id": ALICE, "text": "json"}).encode(),
        "application/json",
    )
    assert status == 200 and body["result"]["text"] == "json"
    boundary = "XyZ"
    multipart = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="chat_id"\r\n\r\n1001\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\nmultipart\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    status, body = raw(
        emu, f"/bot{token}/sendMessage", multipart, f"multipart/form-data; boundary={boundary}"
    )
    assert status == 200 and body["result"]["text"] == "multipart"


def test_it_rejects_bad_json_with_400_not_500(emu, bot):
    status, body = raw(emu, f"/bot{bot['token']}/sendMessage", b"{not json", "application/json")
    assert status == 400 and body["ok"] is False
    assert body["description"].startswith("Bad Request:")
    status, body = raw(emu, f"/bot{bot['token']}/sendMessage", b"[1, 2]", "application/json")
    assert status == 400


def test_it_rejects_wrong_types_with_400(emu, started):
    token = started["token"]
    cases = [
        {"chat_id": ALICE, "text": {"nested": True}},
        {"chat_id": [ALICE], "text": "x"},
        {"chat_id": "not-a-number", "text": "x"},
        {"chat_id": ALICE, "text": "x", "reply_to_message_id": "abc"},
        {"chat_id": ALICE, "text": "x", "disable_notification": "maybe"},
        {"chat_id": ALICE, "text": "x", "reply_markup": "{broken"},
        {"chat_id": ALICE, "text": "x", "reply_markup": 5},
        {"chat_id": 10**30, "text": "x"},
    ]
    for params in cases:
        status, body = emu.bot_api(token, "sendMessage", **params)
        assert status == 400, params
        assert body["error_code"] == 400 and body["description"].startswith("Bad Request:"), body


def test_it_mirrors_telegram_descriptions_for_missing_parameters(emu, started):
    token = started["token"]
    assert (
        emu.bot_api(token, "sendMessage", text="hi")[1]["description"]
        == "Bad Request: chat_id is empty"
    )
    assert emu.bot_api(token, "sendMessage", chat_id=ALICE)[1]["description"] == (
        "Bad Request: message text is empty"
    )
    assert emu.bot_api(token, "sendMessage", chat_id=ALICE, text="   ")[1]["description"] == (
        "Bad Request: message text is empty"
    )
    assert emu.bot_api(token, "sendMessage", chat_id=424242, text="x")[1]["description"] == (
        "Bad Request: chat not found"
    )


def test_it_rejects_oversize_text(emu, started):
    status, body = emu.bot_api(started["token"], "sendMessage", chat_id=ALICE, text="x" * 4097)
    assert (status, body["description"]) == (400, "Bad Request: message is too long")
    assert emu.bot_api(started["token"], "sendMessage", chat_id=ALICE, text="x" * 4096)[0] == 200


def test_it_answers_oversize_bodies_with_413_envelope():
    # The body limit is the upload limit (50 MB by default) plus room for multipart framing.
    with EmulatorServer(limits=Limits(max_upload_bytes=1024 * 1024)) as emu:
        bot = emu.create_bot("greeter_bot")
        status, body = raw(
            emu,
            f"/bot{bot['token']}/sendMessage",
            b"text=" + b"x" * (2 * 1024 * 1024 + 10),
            "application/x-www-form-urlencoded",
        )
    assert status == 413 and body == {
        "ok": False,
        "error_code": 413,
        "description": "Request Entity Too Large",
    }


def test_it_refuses_a_bot_writing_first(emu, bot):
    emu.control("POST", "/groups", {"title": "Lobby", "member_user_ids": [ALICE]})
    status, body = emu.bot_api(bot["token"], "sendMessage", chat_id=ALICE, text="hello?")
    assert (status, body["description"]) == (
        403,
        "Forbidden: bot can't initiate conversation with a user",
    )
