"""The bot's handlers through botkit's harness (no network except the local fake sites)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.methods import AnswerInlineQuery, DeleteMessage, EditMessageText
from aiogram.types import InlineQuery, Update
from movie_fakesites import FakeSites
from movie_search.bot import (
    MAX_DELETE_SECONDS,
    build_router,
    delete_message_job,
    reindex_job,
)
from movie_search.index import Index, reindex
from movie_search.sources import SiteReport
from movie_search.sources.base import Item

from otomat.botkit import MemoryStore
from otomat.botkit.testing import TEST_TOKEN, BotHarness, async_test

PRODUCT_DIR = Path(__file__).resolve().parents[1]


def harness(tmp_path: Path, sites: FakeSites | None = None, **config: Any) -> BotHarness:
    """A bot over ``tmp_path`` whose index already holds the WordPress fake site."""
    site_urls = [sites.url("wordpress")] if sites else ["https://films.example/"]
    if sites:
        reindex(Index(tmp_path / "index.sqlite3"), site_urls)
    return BotHarness(
        build_router,
        {"bot_token": TEST_TOKEN, "sites": site_urls, **config},
        data_dir=tmp_path,
    )


def test_the_schema_is_valid_and_marks_the_site_check() -> None:
    schema = json.loads((PRODUCT_DIR / "config.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    full = {
        "bot_token": TEST_TOKEN,
        "sites": ["https://films.example/", "http://blog.example/feed"],
        "auto_delete_minutes": 30,
        "delete_group_queries": True,
        "reindex_hours": 6,
        "results_per_page": 5,
        "language": "id",
        "admins": ["owner_1"],
    }
    jsonschema.validate(full, schema)
    for bad in (
        {**full, "sites": []},
        {**full, "sites": ["ftp://x.example/"]},
        {**full, "sites": [f"https://{i}.example/" for i in range(11)]},
        {**full, "auto_delete_minutes": 2881},
        {**full, "language": "de"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    assert (
        schema["properties"]["sites"]["x-otomat-check"] == "product:movie_search.checks:check_site"
    )
    for name, prop in schema["properties"].items():
        assert prop.get("title") and prop.get("description"), name


@async_test
async def test_it_answers_a_search_with_titles_years_sites_and_links(
    tmp_path: Path, sites: FakeSites
) -> None:
    bot = harness(tmp_path, sites, results_per_page=1)
    [sent] = await bot.send_text("/search matirx")
    assert sent.parse_mode == "HTML" and sent.link_preview_options.is_disabled
    assert sent.text.startswith("Results for “matirx” — 1–1 of 2\n\n1. <b>The Matrix (1999)</b>")
    assert f'<a href="{sites.url("wordpress")}the-matrix/">Open</a>' in sent.text
    assert f'<a href="{sites.url("wordpress")}uploads/the-matrix.jpg">Poster</a>' in sent.text
    [[button]] = sent.reply_markup.inline_keyboard
    assert button.text == "Next »" and button.callback_data == "ms:1:1"


@async_test
async def test_plain_text_in_private_searches_too(tmp_path: Path, sites: FakeSites) -> None:
    bot = harness(tmp_path, sites)
    [sent] = await bot.send_text("amelie")
    assert "<b>Amélie (2001)</b>" in sent.text and sent.reply_markup is None
    [sent] = await bot.send_text("godfather")
    assert sent.text == "Nothing found for “godfather”. Check the spelling or try a shorter title."


@async_test
async def test_a_search_before_the_first_indexing_says_so(tmp_path: Path, sites: FakeSites) -> None:
    """Until a site was read once, "nothing found" would be false: the bot says it is still
    reading; once the first run ended, a miss is a miss."""
    bot = BotHarness(
        build_router,
        {"bot_token": TEST_TOKEN, "sites": [sites.url("wordpress")], "language": "id"},
        data_dir=tmp_path,
    )
    assert bot.texts(await bot.send_text("/search matrix")) == [
        "Saya masih membaca situs untuk pertama kalinya. Silakan coba lagi sebentar lagi."
    ]
    reindex(Index(tmp_path / "index.sqlite3"), [sites.url("wordpress")])
    [sent] = await bot.send_text("/search godfather")
    assert sent.text.startswith("Tidak ada hasil untuk")


@async_test
async def test_bad_queries_get_a_clear_answer(tmp_path: Path, sites: FakeSites) -> None:
    bot = harness(tmp_path, sites)
    assert bot.texts(await bot.send_text("/search")) == [
        "Send /search followed by a film title, e.g. /search matrix."
    ]
    assert bot.texts(await bot.send_text("/search " + "x" * 201)) == [
        "That query is too long: at most 200 characters, please."
    ]
    assert bot.ctx.store.keys("q:") == []  # nothing remembered for refused queries


@async_test
async def test_the_buttons_page_through_results(tmp_path: Path, sites: FakeSites) -> None:
    bot = harness(tmp_path, sites, results_per_page=1, language="pl")
    await bot.send_text("/search matrix")
    calls = await bot.press("ms:1:1")
    [edit] = [c for c in calls if isinstance(c, EditMessageText)]
    assert edit.text.startswith(
        "Wyniki dla „matrix” — 2–2 z 2\n\n2. <b>The Matrix Reloaded (2003)</b>"
    )
    [[prev]] = edit.reply_markup.inline_keyboard
    assert (prev.text, prev.callback_data) == ("« Wstecz", "ms:1:0")
    # A page past the end is clamped to the last page, not an error.
    [edit] = [c for c in await bot.press("ms:1:999") if isinstance(c, EditMessageText)]
    assert "2–2 z 2" in edit.text


@async_test
async def test_expired_or_forged_buttons_are_answered_politely(
    tmp_path: Path, sites: FakeSites
) -> None:
    bot = harness(tmp_path, sites)
    for data in ("ms:zz:1", "ms:1:1", "ms:../../x:1", "ms:1:-1", "ms:" + "9" * 40 + ":1"):
        calls = await bot.press(data)
        [answer] = bot.answered_callbacks(calls)
        assert answer.text == "This search has expired. Please search again."
        assert not [c for c in calls if isinstance(c, EditMessageText)]
    await bot.send_text("/search matrix")
    bot.ctx.store.set("q:1", {"q": "matrix", "t": time.time() - 3 * 86400})  # two days old
    [answer] = bot.answered_callbacks(await bot.press("ms:1:0"))
    assert answer.text == "This search has expired. Please search again."
    assert bot.errors == []


@async_test
async def test_answers_are_scheduled_for_deletion(tmp_path: Path, sites: FakeSites) -> None:
    bot = harness(tmp_path, sites, auto_delete_minutes=5)
    [sent] = await bot.send_text("/search matrix", user_id=42)
    assert sent.chat_id == 42
    [job] = bot.ctx.scheduler.pending("delete_message")
    assert job.key == "del:42:1000" and job.payload == {"chat_id": 42, "message_id": 1000}
    assert 290 < (job.due_at - datetime.now(UTC)).total_seconds() <= 300


@async_test
async def test_deletion_is_capped_at_telegrams_48_hours(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = harness(tmp_path, auto_delete_minutes=5000)
    with caplog.at_level(logging.INFO):
        await bot.send_text("/search matrix")
    [job] = bot.ctx.scheduler.pending("delete_message")
    assert (job.due_at - datetime.now(UTC)).total_seconds() <= MAX_DELETE_SECONDS
    assert "beyond Telegram's 48-hour limit" in caplog.text


@async_test
async def test_no_deletion_when_auto_delete_is_off(tmp_path: Path) -> None:
    bot = harness(tmp_path)
    await bot.send_text("/search matrix")
    assert bot.ctx.scheduler.pending("delete_message") == []
    jobs = {j.key: j for j in bot.ctx.scheduler.pending("reindex")}
    assert jobs["reindex"].every == 6 * 3600  # periodic, and a first run at start:
    assert jobs["reindex:now"].every is None


class FlakyBot:
    """A stand-in ``Bot`` whose deleteMessage fails with a given Telegram error."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.calls: list[tuple[int, int]] = []

    async def delete_message(self, chat_id: int, message_id: int) -> bool:
        self.calls.append((chat_id, message_id))
        if self.error:
            raise self.error
        return True


def bad_request(text: str) -> TelegramBadRequest:
    return TelegramBadRequest(method=DeleteMessage(chat_id=1, message_id=2), message=text)


@async_test
async def test_the_delete_job_treats_gone_and_too_old_messages_as_done(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = harness(tmp_path).ctx
    payload = {"chat_id": 1, "message_id": 2}
    await delete_message_job(ctx, FlakyBot(None), payload)
    await delete_message_job(
        ctx, FlakyBot(bad_request("Bad Request: message to delete not found")), payload
    )
    with caplog.at_level(logging.WARNING):
        await delete_message_job(
            ctx,
            FlakyBot(bad_request("Bad Request: message can't be deleted for everyone")),
            payload,
        )
        await delete_message_job(
            ctx,
            FlakyBot(
                TelegramForbiddenError(
                    method=DeleteMessage(chat_id=1, message_id=2),
                    message="Forbidden: bot was kicked",
                )
            ),
            payload,
        )
        await delete_message_job(ctx, FlakyBot(None), {"chat_id": "1; drop", "message_id": None})
    assert "can't be deleted (older than 48 hours" in caplog.text
    assert "no longer in chat 1" in caplog.text
    assert "bad payload" in caplog.text
    with pytest.raises(TelegramBadRequest):  # anything else is retried by the scheduler
        await delete_message_job(ctx, FlakyBot(bad_request("Bad Request: chat not found")), payload)


@async_test
async def test_stats_and_reindex_are_for_admins_only(tmp_path: Path, sites: FakeSites) -> None:
    config = {
        "bot_token": TEST_TOKEN,
        "sites": [sites.url("wordpress"), sites.url("forbidden")],
        "admins": ["@Owner"],
        "auto_delete_minutes": 10,
    }
    bot = BotHarness(build_router, config, data_dir=tmp_path)
    for command in ("/stats", "/reindex"):
        assert bot.texts(await bot.send_text(command, username="mallory")) == [
            "Sorry, this command is only for the bot's administrators."
        ]
    assert Index(tmp_path / "index.sqlite3").count() == 0  # mallory's /reindex did nothing
    assert bot.texts(await bot.send_text("/reindex", username="owner")) == ["Re-indexing 2 sites…"]
    [job] = [j for j in bot.ctx.scheduler.pending("reindex") if j.key == "reindex:now"]
    assert job.payload == {"chat_id": 1}
    await reindex_job(bot.ctx, bot.bot, job.payload)  # what the scheduler runs
    [report] = bot.texts(bot.session.requests[-1:])
    assert report.startswith("Re-indexing done: 7 films from 1 of 2 sites.\n\nSites: 2")
    await bot.send_text("/search matrix")
    [stats] = bot.texts(await bot.send_text("/stats", username="OWNER"))
    lines = stats.splitlines()
    host = sites.url("wordpress").split("://")[1].rstrip("/")
    assert lines[0] == "Sites: 2 · films indexed: 7"
    assert lines[1].startswith(f"✓ {host} — WordPress API, 7 items, indexed 20")
    assert lines[2].endswith("— HTTP 403")
    assert lines[3] == "Messages waiting for auto-delete: 1"


async def inline(bot: BotHarness, query: str, offset: str = "") -> AnswerInlineQuery:
    update = Update(
        update_id=99,
        inline_query=InlineQuery(id="iq1", from_user=bot.user(5), query=query, offset=offset),
    )
    [answer] = [c for c in await bot.feed(update) if isinstance(c, AnswerInlineQuery)]
    return answer


@async_test
async def test_inline_mode_answers_articles_and_a_hint(tmp_path: Path, sites: FakeSites) -> None:
    bot = harness(tmp_path, sites)
    answer = await inline(bot, "matirx")
    assert [r.title for r in answer.results] == ["The Matrix (1999)", "The Matrix Reloaded (2003)"]
    first = answer.results[0]
    assert first.url == sites.url("wordpress") + "the-matrix/"
    assert first.thumbnail_url == sites.url("wordpress") + "uploads/the-matrix.jpg"
    assert first.input_message_content.message_text.startswith("<b>The Matrix (1999)</b>")
    assert answer.next_offset == ""
    hint = await inline(bot, "   ")
    assert [r.title for r in hint.results] == ["Type a film title"]
    assert (await inline(bot, "godfather")).results == []
    assert (await inline(bot, "matrix", offset="9999999")).results[0].title == "The Matrix (1999)"
    assert bot.errors == []


@async_test
async def test_help_is_in_the_configured_language(tmp_path: Path) -> None:
    bot = harness(tmp_path, language="id")
    [text] = bot.texts(await bot.send_text("/start"))
    assert text.startswith("Saya mencari film yang diterbitkan di films.example.")
    assert "@test_bot <judul>" in text


@async_test
async def test_two_instances_keep_separate_indexes(tmp_path: Path, sites: FakeSites) -> None:
    first = harness(tmp_path / "a", sites)
    second = harness(tmp_path / "b")
    assert "The Matrix" in first.texts(await first.send_text("matrix"))[0]
    answer = second.texts(await second.send_text("matrix"))[0]
    assert "Matrix" not in answer and answer.startswith("I am still reading the sites")


def test_a_changed_site_list_is_indexed_at_start_not_at_the_next_period(tmp_path: Path) -> None:
    store = MemoryStore()
    config = {"bot_token": TEST_TOKEN, "sites": ["https://a.example/"]}
    first = BotHarness(build_router, config, store=store, data_dir=tmp_path)
    assert {j.key for j in first.ctx.scheduler.pending("reindex")} == {"reindex", "reindex:now"}
    first.ctx.scheduler.cancel("reindex:now")  # as if it ran
    BotHarness(build_router, config, store=store, data_dir=tmp_path)  # a plain restart
    assert {j.key for j in first.ctx.scheduler.pending("reindex")} == {"reindex"}
    edited = {**config, "sites": ["https://a.example/", "https://b.example/"]}
    BotHarness(build_router, edited, store=store, data_dir=tmp_path)
    assert {j.key for j in first.ctx.scheduler.pending("reindex")} == {"reindex", "reindex:now"}


def test_the_check_module_imports_without_aiogram() -> None:
    """The platform imports it in a bare sandboxed interpreter; aiogram must not be needed."""
    code = (
        "import sys; sys.modules['aiogram'] = None; "
        "from movie_search.checks import check_site; "
        "print(check_site.__name__, 'aiogram' in sys.modules and sys.modules['aiogram'] is not None)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PRODUCT_DIR, capture_output=True, text=True, timeout=30
    )
    assert done.stdout.split() == ["check_site", "False"], done.stderr


@async_test
async def test_inline_results_are_paged_with_offsets(tmp_path: Path) -> None:
    site = "https://films.example/"
    Index(tmp_path / "index.sqlite3").replace_site(
        site,
        SiteReport(site, "rss", source_url=site + "feed"),
        [Item.make(f"Matrix Part {n}", f"{site}{n}") for n in range(25)],
    )
    bot = harness(tmp_path)
    first = await inline(bot, "matrix")
    assert (len(first.results), first.next_offset) == (20, "20")
    second = await inline(bot, "matrix", offset="20")
    assert [r.id for r in second.results] == [f"r{n}" for n in range(20, 25)]
    assert second.next_offset == ""
    assert not {r.id for r in first.results} & {r.id for r in second.results}
