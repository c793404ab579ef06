"""Alert Bot's commands, checks and delivery through botkit's harness (local fake sites only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods import SendMessage
from alert_bot import delivery
from alert_bot.bot import build_router, check
from alert_bot.sources import parse_line
from fakesite import FakeSite, Page

from otomat.botkit.testing import TEST_TOKEN, BotHarness, async_test

ADMIN = 42


def harness(**config: Any) -> BotHarness:
    return BotHarness(build_router, {"bot_token": TEST_TOKEN, "admins": ["boss"], **config})


async def say(bot: BotHarness, text: str, user_id: int = 1, username: str | None = None) -> str:
    return "\n".join(bot.texts(await bot.send_text(text, user_id=user_id, username=username)))


async def admin(bot: BotHarness, text: str) -> str:
    return await say(bot, text, user_id=ADMIN, username="boss")


class FakeBot:
    """Records sends; raises prepared exceptions first (429s, 403s)."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.sent: list[tuple[int, str]] = []

    async def send_message(self, chat_id: int, text: str, **kwargs: Any) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((chat_id, text))


def method() -> Any:
    return SendMessage(chat_id=1, text="x")


@async_test
async def test_chats_subscribe_set_quiet_hours_and_unsubscribe() -> None:
    bot = harness()
    assert "/subscribe" in await say(bot, "/start")
    assert "Subscribe this chat first" in await say(bot, "/quiet 22:00-07:00")
    assert "Subscribed" in await say(bot, "/subscribe")
    assert "already subscribed" in await say(bot, "/subscribe")
    assert "Quiet hours set: 22:00-07:00 (Asia/Jakarta)" in await say(
        bot, "/quiet 22:00-7:00 Asia/Jakarta"
    )
    for bad, message in [
        ("/quiet 25:00-07:00", "look like 22:00-07:00"),
        ("/quiet 22:00-22:00", "different times"),
        ("/quiet 22:00-07:00 Mars/Olympus", "unknown time zone"),
        ("/quiet", "Usage"),
    ]:
        assert message in await say(bot, bad)
    assert bot.ctx.store.get("sub:1") == {
        "title": "Alice",
        "type": "private",
        "quiet": "22:00-07:00",
        "tz": "Asia/Jakarta",
    }
    assert "off" in await say(bot, "/quiet off")
    assert bot.ctx.store.get("sub:1")["quiet"] is None
    assert "Unsubscribed" in await say(bot, "/unsubscribe")
    assert "not subscribed" in await say(bot, "/unsubscribe")
    assert bot.ctx.store.keys("sub:") == []


@async_test
async def test_only_admins_manage_sources_and_other_chats() -> None:
    bot = harness(public_subscriptions=False)
    for command in ("/sources", "/watch up https://x.example", "/unwatch abc", "/subscribe @chan"):
        assert "Only the bot's admins" in await say(bot, command)
    assert "Only the bot's admins can subscribe chats" in await say(bot, "/subscribe")
    assert bot.ctx.store.keys("src:") == [] and bot.ctx.store.keys("sub:") == []
    assert "Subscribed -100123" in await admin(bot, "/subscribe -100123")
    assert "Give the channel as @username" in await admin(bot, "/subscribe not a chat")
    assert "Unsubscribed" in await admin(bot, "/unsubscribe -100123")


@async_test
async def test_admins_watch_list_and_unwatch_sources() -> None:
    bot = harness(sources=["up https://a.example every 60", "feed ftp://bad.example"])
    assert [j.key for j in bot.ctx.scheduler.pending("check")] == [
        f"check:{parse_line('up https://a.example every 60').id}"
    ]
    reply = await admin(bot, "/watch json https://api.example/p data.price > 100 every 2m")
    source = parse_line("json https://api.example/p data.price > 100 every 120")
    assert f"id {source.id}" in reply
    [job] = [j for j in bot.ctx.scheduler.pending("check") if j.key == f"check:{source.id}"]
    assert job.every == 120.0 and job.payload == {"id": source.id}
    assert "Already watched" in await admin(
        bot, "/watch json https://api.example/p data.price > 100 every 120"
    )

    listing = await admin(bot, "/sources")
    assert "up https://a.example every 60" in listing and "not checked yet" in listing
    assert "line 2 ('feed ftp://bad.example'): only http://" in listing

    for bad, message in [
        ("/watch up file:///etc/passwd", "Cannot watch that: only http"),
        ("/watch up https://x.example every 5", "at least 60 seconds"),
        ("/watch", "the line is empty"),
        ("/unwatch nope", "No such source"),
        (f"/unwatch {parse_line('up https://a.example every 60').id}", "remove it there"),
    ]:
        assert message in await admin(bot, bad)
    assert len(bot.ctx.store.keys("src:")) == 2
    assert "Stopped watching" in await admin(bot, f"/unwatch {source.id}")
    assert not any(j.key == f"check:{source.id}" for j in bot.ctx.scheduler.pending())


def test_a_restart_keeps_admin_sources_and_follows_the_configuration() -> None:
    first = harness(sources=["up https://a.example every 60"])
    store = first.ctx.store
    watched = parse_line("feed https://b.example/rss every 600")
    from alert_bot.bot import add_source

    add_source(first.ctx, watched, "admin")
    # Restart with a changed configuration, same store: the configured source is replaced, the
    # admin's stays, and its check job is kept (not duplicated).
    again = BotHarness(
        build_router,
        {"bot_token": TEST_TOKEN, "sources": ["up https://c.example every 60"]},
        store=store,
    )
    lines = sorted(v["line"] for _, v in again.ctx.store.items("src:"))
    assert lines == ["feed https://b.example/rss every 600", "up https://c.example every 60"]
    assert len(again.ctx.scheduler.pending("check")) == 2
    assert [j.key for j in again.ctx.scheduler.pending("deliver")] == ["deliver:tick"]


@async_test
async def test_a_site_going_down_alerts_each_subscriber_once() -> None:
    bot = harness()
    await say(bot, "/subscribe", user_id=1)
    await say(bot, "/subscribe", user_id=2)
    async with FakeSite() as site:
        site.pages["/"] = Page(body=b"fine")
        source = parse_line(f"up {site.url('/')} every 60")
        from alert_bot.bot import add_source

        add_source(bot.ctx, source, "admin")
        fake = FakeBot()

        async def tick() -> list[tuple[int, str]]:
            await check(bot.ctx, fake, {"id": source.id})
            await delivery.deliver(bot.ctx, fake, {})
            sent, fake.sent[:] = list(fake.sent), []
            return sent

        assert await tick() == []
        site.pages["/"] = Page(status=503)
        sent = await tick()
        assert sorted(chat for chat, _ in sent) == [1, 2]
        assert all("DOWN" in text and "503" in text for _, text in sent)
        assert await tick() == []  # still down: no repeat
        site.pages["/"] = Page(body=b"fine")
        assert [("UP again" in t) for _, t in await tick()] == [True, True]
    assert bot.ctx.store.keys("out:") == []
    assert "🟢 up" in await admin(bot, "/sources")


@async_test
async def test_quiet_hours_hold_alerts_and_release_one_summary_after() -> None:
    bot = harness()
    await say(bot, "/subscribe", user_id=7)
    await say(bot, "/quiet 22:00-07:00 Asia/Jakarta", user_id=7)  # UTC+7
    await say(bot, "/subscribe", user_id=8)  # no quiet hours
    fake = FakeBot()
    with time_machine.travel(datetime(2030, 1, 1, 16, 30, tzinfo=UTC), tick=False) as traveller:
        # 23:30 in Jakarta
        delivery.enqueue(bot.ctx, ["🔴 DOWN: a", "🟢 UP again: a"])
        await delivery.deliver(bot.ctx, fake, {})
        assert [chat for chat, _ in fake.sent] == [8]  # the quiet chat got nothing
        [release] = bot.ctx.scheduler.pending("deliver")[:1]
        jobs = {j.key: j for j in bot.ctx.scheduler.pending("deliver")}
        assert jobs["deliver:quiet:7"].due_at == datetime(2030, 1, 2, 0, 0, 1, tzinfo=UTC)
        assert release is not None

        traveller.move_to(datetime(2030, 1, 1, 23, 59, tzinfo=UTC))  # 06:59 there: still quiet
        await delivery.deliver(bot.ctx, fake, {})
        assert [chat for chat, _ in fake.sent] == [8]

        traveller.move_to(datetime(2030, 1, 2, 0, 0, 1, tzinfo=UTC))  # 07:00:01 in Jakarta
        await delivery.deliver(bot.ctx, fake, {})
    assert [chat for chat, _ in fake.sent] == [8, 7]
    summary = fake.sent[1][1]
    assert "2 alert(s) held during your quiet hours" in summary
    assert "DOWN: a" in summary and "UP again: a" in summary
    assert bot.ctx.store.keys("out:") == []


@async_test
async def test_429_is_honoured_and_nothing_is_dropped() -> None:
    bot = harness(send_rate_per_second=30)
    for user in range(1, 6):
        await say(bot, "/subscribe", user_id=user)
    fake = FakeBot(
        TelegramRetryAfter(method(), "Too Many Requests: retry after 0", 0),
        TelegramRetryAfter(method(), "Too Many Requests: retry after 0", 0),
    )
    delivery.enqueue(bot.ctx, ["alert"])
    await delivery.deliver(bot.ctx, fake, {})
    assert sorted(chat for chat, _ in fake.sent) == [1, 2, 3, 4, 5]
    assert bot.ctx.store.keys("out:") == []


@async_test
async def test_a_long_retry_after_defers_the_rest_to_a_later_run() -> None:
    bot = harness()
    await say(bot, "/subscribe", user_id=1)
    fake = FakeBot(TelegramRetryAfter(method(), "Too Many Requests: retry after 120", 120))
    delivery.enqueue(bot.ctx, ["alert"])
    await delivery.deliver(bot.ctx, fake, {})
    assert fake.sent == [] and len(bot.ctx.store.keys("out:")) == 1  # kept, not dropped
    [job] = [j for j in bot.ctx.scheduler.pending("deliver") if j.key == "deliver:now"]
    assert job.due_at > datetime.now(UTC) + timedelta(seconds=100)


@async_test
async def test_a_chat_that_blocked_the_bot_is_unsubscribed() -> None:
    bot = harness()
    await say(bot, "/subscribe", user_id=1)
    await say(bot, "/subscribe", user_id=2)
    fake = FakeBot(TelegramForbiddenError(method(), "Forbidden: bot was blocked by the user"))
    delivery.enqueue(bot.ctx, ["alert"])
    await delivery.deliver(bot.ctx, fake, {})
    assert fake.sent == [(2, "alert")]
    assert bot.ctx.store.keys("sub:") == ["sub:2"] and bot.ctx.store.keys("out:") == []


def test_compose_splits_long_batches_under_telegrams_limit() -> None:
    entries = [{"text": "x" * 1500, "held": False} for _ in range(6)]
    messages = delivery.compose(entries)
    assert len(messages) > 1 and all(len(m) <= delivery.MAX_MESSAGE for m in messages)
    assert sum(m.count("x" * 1500) for m in messages) == 6
    assert delivery.compose([{"text": "one"}]) == ["one"]


@pytest.mark.parametrize(
    ("quiet", "local", "expected"),
    [
        ("22:00-07:00", "23:00", True),
        ("22:00-07:00", "06:59", True),
        ("22:00-07:00", "07:00", False),
        ("22:00-07:00", "12:00", False),
        ("13:00-14:00", "13:30", True),
        ("13:00-14:00", "14:00", False),
    ],
)
def test_quiet_hours_in_the_subscribers_time_zone(quiet: str, local: str, expected: bool) -> None:
    hour, minute = map(int, local.split(":"))
    warsaw = datetime(2030, 6, 1, hour, minute, tzinfo=UTC) - timedelta(hours=2)  # CEST = UTC+2
    assert delivery.in_quiet({"quiet": quiet, "tz": "Europe/Warsaw"}, warsaw) is expected


@async_test
async def test_broken_documents_show_in_sources_and_the_log_without_alerts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = harness()
    await say(bot, "/subscribe")
    from alert_bot.bot import add_source

    async with FakeSite() as site:
        site.pages["/rss"] = Page(body=b"<rss><channel><item><title>x", content_type="text/xml")
        site.pages["/api"] = Page(body=b"[" * 50_000, content_type="application/json")
        site.pages["/huge"] = Page(chunked_bytes=3 * 1024 * 1024)
        lines = {
            "/rss": "feed {} every 60",
            "/api": "json {} a.b > 1 every 60",
            "/huge": 'keyword {} "x" every 60',
        }
        sources = {p: parse_line(line.format(site.url(p))) for p, line in lines.items()}
        fake = FakeBot()
        with caplog.at_level("WARNING", logger="bot"):
            for source in sources.values():
                add_source(bot.ctx, source, "admin")
                await check(bot.ctx, fake, {"id": source.id})
    await delivery.deliver(bot.ctx, fake, {})
    assert fake.sent == []  # nothing to alert: the documents are broken, not changed
    listing = await admin(bot, "/sources")
    for expected in ("not well-formed XML", "nested too deeply", "larger than 2 MB"):
        assert expected in listing
        assert expected in caplog.text


@async_test
async def test_a_check_for_a_removed_source_cancels_itself() -> None:
    bot = harness(sources=["up https://a.example every 60"])
    source = parse_line("up https://a.example every 60")
    bot.ctx.store.delete(f"src:{source.id}")
    await check(bot.ctx, FakeBot(), {"id": source.id})
    assert bot.ctx.scheduler.pending("check") == []
