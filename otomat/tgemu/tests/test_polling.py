"""getUpdates: long polling, offsets, limits, allowed_updates and the 409 conflicts."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from otomat.tgemu.testing import EmulatorServer

from .conftest import ALICE, BOB


async def call(
    session: aiohttp.ClientSession, emu: EmulatorServer, token: str, method: str, **params
):
    async with session.post(f"{emu.url}/bot{token}/{method}", json=params) as resp:
        return resp.status, await resp.json()


async def until_polling(emu: EmulatorServer, bot_id: int) -> None:
    """Wait until the emulator holds a getUpdates call of the bot (a read from another thread)."""
    for _ in range(250):
        bot = emu.state.bots.get(bot_id)
        if bot is not None and bot.poller is not None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("getUpdates never started waiting")


def test_it_returns_at_once_when_an_update_arrives_during_a_long_poll(emu, bot):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            poll = asyncio.create_task(call(session, emu, bot["token"], "getUpdates", timeout=20))
            await until_polling(emu, bot["id"])
            assert not poll.done()
            started = time.monotonic()
            await asyncio.to_thread(emu.send, "greeter_bot", user_id=ALICE, text="hello")
            status, body = await asyncio.wait_for(poll, 5)
            return status, body, time.monotonic() - started

    status, body, elapsed = asyncio.run(scenario())
    assert status == 200 and elapsed < 2
    [update] = body["result"]
    assert update["message"]["text"] == "hello"
    assert update["message"]["from"]["id"] == ALICE


def test_it_times_out_with_an_empty_list(emu, bot):
    started = time.monotonic()
    status, body = emu.bot_api(bot["token"], "getUpdates", timeout=1)
    elapsed = time.monotonic() - started
    assert (status, body) == (200, {"ok": True, "result": []})
    assert 0.9 <= elapsed < 5


def test_offset_confirms_earlier_updates(emu, bot):
    token = bot["token"]
    for text in ("one", "two", "three"):
        emu.send("greeter_bot", user_id=ALICE, text=text)
    updates = emu.bot_api(token, "getUpdates")[1]["result"]
    ids = [u["update_id"] for u in updates]
    assert [u["message"]["text"] for u in updates] == ["one", "two", "three"]
    assert ids == sorted(ids) and len(set(ids)) == 3
    # Without an offset nothing is confirmed.
    assert len(emu.bot_api(token, "getUpdates")[1]["result"]) == 3
    rest = emu.bot_api(token, "getUpdates", offset=ids[1])[1]["result"]
    assert [u["update_id"] for u in rest] == ids[1:]
    assert emu.bot_api(token, "getUpdates", offset=ids[-1] + 1)[1]["result"] == []
    # Confirmed updates are gone for good, even with an older offset.
    assert emu.bot_api(token, "getUpdates", offset=ids[0])[1]["result"] == []


def test_negative_offset_keeps_only_the_last_updates(emu, bot):
    token = bot["token"]
    for text in ("one", "two", "three", "four"):
        emu.send("greeter_bot", user_id=ALICE, text=text)
    last_two = emu.bot_api(token, "getUpdates", offset=-2)[1]["result"]
    assert [u["message"]["text"] for u in last_two] == ["three", "four"]
    assert [u["message"]["text"] for u in emu.bot_api(token, "getUpdates")[1]["result"]] == [
        "three",
        "four",
    ]


def test_limit_is_clamped_between_1_and_100(emu, bot):
    token = bot["token"]
    for i in range(3):
        emu.send("greeter_bot", user_id=ALICE, text=f"m{i}")
    assert len(emu.bot_api(token, "getUpdates", limit=2)[1]["result"]) == 2
    assert len(emu.bot_api(token, "getUpdates", limit=0)[1]["result"]) == 1
    assert len(emu.bot_api(token, "getUpdates", limit=1000)[1]["result"]) == 3


def test_update_ids_increase_per_bot_and_message_ids_per_chat(emu, bot):
    emu.create_bot("other_bot")
    first = emu.send("greeter_bot", user_id=ALICE, text="a")
    second = emu.send("greeter_bot", user_id=ALICE, text="b")
    bobs = emu.send("greeter_bot", user_id=BOB, text="c")
    elsewhere = emu.send("other_bot", user_id=ALICE, text="d")
    assert (first["message_id"], second["message_id"]) == (1, 2)
    assert bobs["message_id"] == 1 and elsewhere["message_id"] == 1
    assert first["chat"]["id"] == ALICE and bobs["chat"]["id"] == BOB


def test_a_second_poller_terminates_the_first_with_409(emu, bot):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            first = asyncio.create_task(call(session, emu, bot["token"], "getUpdates", timeout=10))
            await until_polling(emu, bot["id"])
            second = asyncio.create_task(call(session, emu, bot["token"], "getUpdates", timeout=1))
            return await asyncio.wait_for(first, 5), await asyncio.wait_for(second, 5)

    (status1, body1), (status2, body2) = asyncio.run(scenario())
    assert status1 == 409
    assert body1 == {
        "ok": False,
        "error_code": 409,
        "description": "Conflict: terminated by other getUpdates request; make sure that only one "
        "bot instance is running",
    }
    assert (status2, body2["ok"]) == (200, True)


def test_get_updates_conflicts_with_an_active_webhook(emu, bot):
    token = bot["token"]
    assert emu.bot_api(token, "setWebhook", url="http://127.0.0.1:9/hook")[1] == {
        "ok": True,
        "result": True,
        "description": "Webhook was set",
    }
    status, body = emu.bot_api(token, "getUpdates")
    assert status == 409
    assert body["description"] == (
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to "
        "delete the webhook first"
    )
    assert emu.bot_api(token, "deleteWebhook")[1]["description"] == "Webhook was deleted"
    assert emu.bot_api(token, "getUpdates")[0] == 200


def test_set_webhook_ends_a_waiting_poll(emu, bot):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            poll = asyncio.create_task(call(session, emu, bot["token"], "getUpdates", timeout=10))
            await until_polling(emu, bot["id"])
            await call(session, emu, bot["token"], "setWebhook", url="http://127.0.0.1:9/hook")
            return await asyncio.wait_for(poll, 5)

    status, body = asyncio.run(scenario())
    assert (status, body["description"]) == (409, "Conflict: terminated by setWebhook request")


def test_allowed_updates_filters_new_updates(emu, bot):
    token = bot["token"]
    emu.bot_api(token, "getUpdates", allowed_updates=["callback_query"])
    emu.send("greeter_bot", user_id=ALICE, text="ignored")
    assert emu.bot_api(token, "getUpdates")[1]["result"] == []
    # As JSON text inside a form field, as libraries send it; [] restores the default types.
    emu.bot_api(token, "getUpdates", allowed_updates="[]")
    emu.send("greeter_bot", user_id=ALICE, text="seen")
    assert [u["message"]["text"] for u in emu.bot_api(token, "getUpdates")[1]["result"]] == ["seen"]


def test_bad_get_updates_parameters_are_400(emu, bot):
    token = bot["token"]
    for params in (
        {"offset": "x"},
        {"timeout": "soon"},
        {"allowed_updates": "{bad"},
        {"allowed_updates": [1]},
    ):
        status, body = emu.bot_api(token, "getUpdates", **params)
        assert status == 400 and body["description"].startswith("Bad Request:"), params


def test_pending_updates_are_bounded():
    from otomat.tgemu.state import Limits

    with EmulatorServer(limits=Limits(max_pending_updates=5, max_messages_per_chat=3)) as emu:
        small = emu.create_bot("small_bot")
        for i in range(8):
            emu.send("small_bot", user_id=ALICE, text=f"m{i}")
        updates = emu.bot_api(small["token"], "getUpdates")[1]["result"]
        assert [u["message"]["text"] for u in updates] == ["m3", "m4", "m5", "m6", "m7"]
        history = emu.messages("small_bot", ALICE)
        assert [m["text"] for m in history] == ["m5", "m6", "m7"]


def test_stopping_the_server_ends_long_polls_promptly():
    with EmulatorServer() as emu:
        created = emu.create_bot("waiting_bot")
        token = created["token"]

        async def scenario():
            async with aiohttp.ClientSession() as session:
                poll = asyncio.create_task(call(session, emu, token, "getUpdates", timeout=30))
                await until_polling(emu, created["id"])
                started = time.monotonic()
                await asyncio.to_thread(emu.stop)
                status, body = await asyncio.wait_for(poll, 5)
                return status, body, time.monotonic() - started

        status, body, elapsed = asyncio.run(scenario())
    assert (status, body) == (200, {"ok": True, "result": []})
    assert elapsed < 3
