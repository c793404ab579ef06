"""Staff-only control calls: the bot list, tokens, creating, deleting and resetting bots.

With a control token they need ``Authorization: Bearer <token>``; without one (development mode)
only direct loopback clients may make them. A bot's own chat keeps working for everyone.
"""

from __future__ import annotations

import urllib.request
from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request

from otomat.tgemu import control
from otomat.tgemu.testing import EmulatorServer

from .conftest import ALICE
from .test_cli import run_cli

SECRET = "s3cret-control-token-for-tests"
PROXIED = {"X-Forwarded-For": "203.0.113.7"}
NO_TOKEN = {"Authorization": ""}


def _refused(status: int, body: dict) -> bool:
    return status == 403 and "control token" in body["description"]


def _staff_calls(emu: EmulatorServer, headers: dict[str, str]) -> list[tuple[int, dict]]:
    return [
        emu.request("GET", "/control/bots", headers=headers),
        emu.request("POST", "/control/bots", {"username": "intruder_bot"}, headers=headers),
        emu.request("DELETE", "/control/bots/greeter_bot", headers=headers),
        emu.request("POST", "/control/reset", headers=headers),
        emu.request("GET", "/control/bots/greeter_bot/updates", headers=headers),
        emu.request(
            "PATCH", "/control/bots/greeter_bot", {"inline_feedback": True}, headers=headers
        ),
        emu.request("POST", "/control/clock", {"advance_seconds": 5}, headers=headers),
        emu.request("PUT", "/control/rate_limits", {"enabled": False}, headers=headers),
    ]


def _chat_still_works(emu: EmulatorServer, token: str, headers: dict[str, str]) -> None:
    """What the chat page does: read the bot (no token in it), write, read the history."""
    status, bot = emu.request("GET", "/control/bots/greeter_bot", headers=headers)
    assert status == 200 and bot["username"] == "greeter_bot" and "token" not in bot
    body = {"user_id": ALICE, "first_name": "Alice", "text": "/start"}
    status, _ = emu.request("POST", "/control/bots/greeter_bot/messages", body, headers=headers)
    assert status == 201
    status, history = emu.request(
        "GET", f"/control/bots/greeter_bot/chats/{ALICE}/messages", headers=headers
    )
    assert status == 200 and [m["text"] for m in history] == ["/start"]
    assert emu.request("GET", "/control/access", headers=headers)[1]["staff"] is False
    assert emu.bot_api(token, "getMe")[0] == 200  # the Bot API is the token's own business


def test_development_mode_answers_staff_calls_for_direct_loopback_clients_only(emu, bot):
    access = emu.request("GET", "/control/access")[1]
    assert (access["staff"], access["mode"]) == (True, "loopback")
    status, bots = emu.request("GET", "/control/bots")
    assert status == 200 and bots[0]["token"] == bot["token"]
    # Through a proxy on this machine the socket is loopback, but the client is not.
    for status, body in _staff_calls(emu, PROXIED):
        assert _refused(status, body), (status, body)
    # Nothing changed: the bot exists, no intruder was created, settings and clock are as before.
    assert [b["username"] for b in emu.control("GET", "/bots")] == ["greeter_bot"]
    assert emu.control("GET", "/bots/greeter_bot")["inline_feedback"] is False
    assert emu.control("GET", "/clock")["offset_seconds"] == 0
    assert emu.control("GET", "/rate_limits")["enabled"] is True
    _chat_still_works(emu, bot["token"], PROXIED)


def test_a_remote_client_is_not_staff_in_development_mode():
    app = mock.MagicMock()
    app.get.return_value = ""
    for peer, staff in ((("127.0.0.1", 5000), True), (("::1", 5000, 0, 0), True),
                        (("192.0.2.5", 5000), False), (("10.0.0.8", 5000), False)):  # fmt: skip
        transport = mock.Mock()
        transport.get_extra_info.side_effect = lambda name, default=None, p=peer: (
            p if name == "peername" else default
        )
        request = make_mocked_request("GET", "/control/bots", app=app, transport=transport)
        assert control.is_staff(request) is staff, peer


def test_with_a_control_token_staff_calls_need_it_even_on_loopback():
    with EmulatorServer(control_token=SECRET) as emu:
        token = emu.create_bot("greeter_bot", "Greeter")["token"]  # sent with the token
        for headers in (NO_TOKEN, {"Authorization": "Bearer wrong-token-of-same-size!!"}):
            for status, body in _staff_calls(emu, headers):
                assert _refused(status, body), (headers, status, body)
        assert [b["username"] for b in emu.control("GET", "/bots")] == ["greeter_bot"]
        assert emu.control("GET", "/bots")[0]["token"] == token
        access = emu.control("GET", "/access")
        assert (access["staff"], access["mode"]) == (True, "token")
        _chat_still_works(emu, token, NO_TOKEN)
        with urllib.request.urlopen(emu.url + "/chat/greeter_bot") as resp:
            assert resp.status == 200
        emu.control("DELETE", "/bots/greeter_bot")  # staff may
        assert emu.control("GET", "/bots") == []


def test_the_bot_list_page_no_longer_embeds_tokens(emu, bot):
    """The page itself is static; what it shows comes from the staff-only list call."""
    with urllib.request.urlopen(emu.url + "/") as resp:
        page = resp.read().decode()
    assert bot["token"] not in page
    assert 'id="staff-only"' in page


@pytest.mark.parametrize("value", ["short", ""])
def test_the_cli_refuses_a_short_control_token(value):
    result = run_cli("--port", "0", "--control-token", value)
    assert result.returncode == 2
    assert "--control-token must be at least 16 characters" in result.stderr
