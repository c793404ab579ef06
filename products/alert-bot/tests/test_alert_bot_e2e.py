"""End to end through the Bot API emulator: subscribe, a URL goes down, quiet hours, 429s.

The bot runs in this event loop wired like the host (``otomat.botkit.testing.LiveBot``: polling
plus ``ctx.scheduler.run`` on the SQLite store); the emulator runs in its own thread; the watched
site is a local aiohttp server. Time is moved with time_machine (the scheduler and the quiet
hours read the wall clock; asyncio's timers are monotonic and unaffected).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from alert_bot.bot import build_router
from alert_bot.sources import parse_line
from fakesite import FakeSite, Page

from otomat.botkit.store import SQLiteStore, Store
from otomat.botkit.testing import LiveBot, async_test
from otomat.tgemu.ratelimit import RateLimits
from otomat.tgemu.testing import EmulatorServer

BOT = "alerts_e2e_bot"


def bot_texts(emu: EmulatorServer, chat_id: int) -> list[str]:
    return [
        m.get("text", "") for m in emu.messages(BOT, chat_id) if (m.get("from") or {}).get("is_bot")
    ]


async def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            # Called in the loop's thread: conditions read the bot's SQLite store, which is bound
            # to this thread; the emulator calls they make are quick local HTTP requests.
            result = condition()
            if result:
                return result
            await asyncio.sleep(0.05)


async def command(emu: EmulatorServer, user_id: int, text: str, expect: str) -> None:
    before = len(await asyncio.to_thread(bot_texts, emu, user_id))
    await asyncio.to_thread(emu.send, BOT, user_id=user_id, text=text, first_name=f"U{user_id}")
    replies = await wait_for(lambda: bot_texts(emu, user_id)[before:])
    assert expect in replies[-1], replies


@pytest.fixture(
    params=[
        "process",
        # The database store's worker thread commits for real: no wrapping test transaction.
        pytest.param("shared", marks=pytest.mark.django_db(transaction=True)),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """The process runtime's SQLite file, or the shared runtime's database store."""
    if request.param == "process":
        return SQLiteStore(tmp_path / "store.sqlite3")
    from otomat.botdata.store import DatabaseStore, close_worker_connection

    request.addfinalizer(close_worker_connection)
    return DatabaseStore("e2e-instance")


@async_test
async def test_a_url_going_down_alerts_once_and_quiet_hours_hold_it(
    tmp_path: Path, store: Store
) -> None:
    with EmulatorServer() as emu:
        token = emu.create_bot(BOT)["token"]
        async with FakeSite() as site:
            site.pages["/health"] = Page(body=b"ok")
            line = f"up {site.url('/health')} every 60"
            source_id = parse_line(line).id
            config = {"bot_token": token, "sources": [line], "admins": ["1001"]}
            start = datetime(2030, 1, 1, 10, 0, tzinfo=UTC)
            with time_machine.travel(start, tick=True) as traveller:
                async with LiveBot(
                    build_router, config, api_url=emu.url, data_dir=tmp_path, store=store
                ) as live:
                    for user in (1001, 1002, 1003):
                        await command(emu, user, "/subscribe", "Subscribed")
                    await command(emu, 1003, "/quiet 09:00-12:00 UTC", "Quiet hours set")
                    # The first check ran at start and found the site up: no alert.
                    await wait_for(lambda: store.get(f"state:{source_id}", {}).get("ok") is True)

                    site.pages["/health"] = Page(status=500, body=b"oops")
                    traveller.shift(timedelta(seconds=61))
                    for user in (1001, 1002):
                        await wait_for(lambda u=user: any("DOWN" in t for t in bot_texts(emu, u)))

                    # Still down at the next check: nobody is alerted again.
                    checked = store.get(f"state:{source_id}")["checked"]
                    traveller.shift(timedelta(seconds=61))
                    await wait_for(lambda: store.get(f"state:{source_id}")["checked"] > checked)
                    await asyncio.sleep(0.3)
                    assert sum("DOWN" in t for t in bot_texts(emu, 1001)) == 1
                    assert sum("DOWN" in t for t in bot_texts(emu, 1002)) == 1
                    assert not any("DOWN" in t for t in bot_texts(emu, 1003))  # quiet

                    # Quiet hours end at 12:00 UTC: the held alert arrives as a summary.
                    traveller.move_to(datetime(2030, 1, 1, 11, 59, 50, tzinfo=UTC))
                    await asyncio.sleep(0.3)
                    assert not any("DOWN" in t for t in bot_texts(emu, 1003))
                    traveller.move_to(datetime(2030, 1, 1, 12, 0, 2, tzinfo=UTC))
                    summary = await wait_for(
                        lambda: [t for t in bot_texts(emu, 1003) if "DOWN" in t]
                    )
                    assert len(summary) == 1 and "held during your quiet hours" in summary[0]
                    assert sum("DOWN" in t for t in bot_texts(emu, 1001)) == 1
                    await command(emu, 1001, "/sources", "HTTP status 500, expected below 400")
                    assert live.errors == []


@async_test
async def test_many_subscribers_under_telegrams_rate_limit_all_get_the_alert(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The emulator answers 429 with retry_after when the bot sends too fast: nothing is lost."""
    limits = RateLimits(bot_per_second=8.0)
    with EmulatorServer(rate_limits=limits) as emu:
        token = emu.create_bot(BOT)["token"]
        config = {"bot_token": token, "send_rate_per_second": 30}
        async with LiveBot(build_router, config, api_url=emu.url, data_dir=tmp_path) as live:
            users = list(range(2001, 2021))
            for user in users:
                live.ctx.store.set(f"sub:{user}", {"title": str(user), "type": "private"})
                await asyncio.to_thread(emu.send, BOT, user_id=user, text="hi")
            from alert_bot import delivery

            delivery.enqueue(live.ctx, ["🔴 DOWN: https://shop.example"])
            for user in users:
                await wait_for(lambda u=user: "🔴 DOWN: https://shop.example" in bot_texts(emu, u))
            await wait_for(lambda: live.ctx.store.keys("out:") == [])
    assert "Telegram asked to slow down" in caplog.text  # the 429 path was taken


def chat_texts(emu: EmulatorServer, chat_id: int) -> list[str]:
    return [m.get("text", "") for m in emu.messages(BOT, chat_id)]


@async_test
async def test_channels_and_groups_subscribe_and_receive_alerts(tmp_path: Path) -> None:
    with EmulatorServer() as emu:
        token = emu.create_bot(BOT)["token"]
        channel = emu.control(
            "POST",
            "/channels",
            {
                "title": "Shop alerts",
                "owner_user_id": 3001,
                "username": "shop_alerts",
                "bot_usernames": [BOT],
            },
        )
        group = emu.control(
            "POST", "/groups", {"title": "Ops", "member_user_ids": [3002], "bot_usernames": [BOT]}
        )
        config = {"bot_token": token, "admins": ["3001", "3003"]}
        async with LiveBot(build_router, config, api_url=emu.url, data_dir=tmp_path) as live:
            await command(emu, 3001, "/subscribe @shop_alerts", "Subscribed @shop_alerts")
            assert any("now receives alerts" in t for t in chat_texts(emu, channel["id"]))
            await command(emu, 3001, "/subscribe @no_such_channel", "I cannot post in")
            await command(emu, 3002, "/subscribe @shop_alerts", "Only the bot's admins")
            await command(emu, 3002, "/quiet @shop_alerts 22:00-07:00", "Only the bot's admins")
            # Another admin (a private chat allows Telegram only ~1 message a second).
            await command(emu, 3003, "/quiet @other_chan 22:00-07:00", "not subscribed")
            await command(
                emu, 3003, "/quiet @shop_alerts 22:00-07:00 Europe/Warsaw", "Quiet hours set"
            )
            assert live.ctx.store.get(f"sub:{channel['id']}")["tz"] == "Europe/Warsaw"
            await command(emu, 3003, "/quiet @shop_alerts off", "Quiet hours are off")

            before = len(chat_texts(emu, group["id"]))
            await asyncio.to_thread(
                emu.send, BOT, user_id=3002, text="/subscribe", chat_id=group["id"]
            )
            await wait_for(
                lambda: any("Subscribed" in t for t in chat_texts(emu, group["id"])[before:])
            )
            assert sorted(live.ctx.store.keys("sub:")) == sorted(
                [f"sub:{channel['id']}", f"sub:{group['id']}"]
            )

            from alert_bot import delivery

            delivery.enqueue(live.ctx, ["🔴 DOWN: https://shop.example"])
            for chat in (channel["id"], group["id"]):
                await wait_for(lambda c=chat: "🔴 DOWN: https://shop.example" in chat_texts(emu, c))
            await command(emu, 3001, "/unsubscribe @shop_alerts", "Unsubscribed")
            assert live.ctx.store.keys("sub:") == [f"sub:{group['id']}"]
            assert live.errors == []
