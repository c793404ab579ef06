"""Fixtures: a real emulator on 127.0.0.1 and a fixed cast.

Alice and Bob are users who talk to bots; Charlie is an outsider who must not see their chats.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from otomat.tgemu.testing import EmulatorServer

ALICE = 1001
BOB = 1002
CHARLIE = 1003


@pytest.fixture(autouse=True)
def no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail any test during which the emulator logged an error (an unexpected exception)."""
    yield
    errors = [
        r
        for r in caplog.records
        if r.name.startswith("otomat.tgemu") and r.levelno >= logging.ERROR
    ]
    assert not errors, [r.getMessage() for r in errors]


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture
def bot(emu: EmulatorServer) -> dict:
    """A registered bot, ``greeter_bot``, with its token."""
    return emu.create_bot("greeter_bot", "Greeter")


@pytest.fixture
def started(emu: EmulatorServer, bot: dict) -> dict:
    """``greeter_bot`` after Alice sent /start (so it may write to her) and the update was read."""
    emu.send("greeter_bot", user_id=ALICE, first_name="Alice", text="/start")
    status, body = emu.bot_api(bot["token"], "getUpdates")
    assert status == 200 and len(body["result"]) == 1
    emu.bot_api(bot["token"], "getUpdates", offset=body["result"][-1]["update_id"] + 1)
    return bot
