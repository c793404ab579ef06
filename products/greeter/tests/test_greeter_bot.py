"""Greeter's handlers, fed synthetic updates through botkit's harness (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage
from greeter.bot import CB_COUNT, CB_HELP, build_router

from otomat.botkit.testing import TEST_TOKEN, BotHarness, async_test

PRODUCT_DIR = Path(__file__).resolve().parents[1]


def harness(**config: object) -> BotHarness:
    return BotHarness(build_router, {"bot_token": TEST_TOKEN, **config})


def test_the_schema_is_valid_and_accepts_a_full_configuration() -> None:
    schema = json.loads((PRODUCT_DIR / "config.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    full = {
        "bot_token": TEST_TOKEN,
        "welcome_text": "Hi {name}",
        "language": "pl",
        "show_buttons": False,
        "max_daily_greetings": 5,
        "reply_delay_seconds": 0.5,
        "admins": ["owner_1"],
        "help": {"text": "Help!", "contact": "@owner_1"},
    }
    jsonschema.validate(full, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"bot_token": "not-a-token"}, schema)
    for name, prop in schema["properties"].items():
        assert prop.get("title") and prop.get("description"), name


@async_test
async def test_it_greets_by_first_name_with_buttons() -> None:
    bot = harness(welcome_text="Hi {name}, {not a field}")
    calls = await bot.send_text("/start", first_name="Alice")
    [sent] = [c for c in calls if isinstance(c, SendMessage)]
    assert sent.text == "Hi Alice, {not a field}"
    buttons = [b.callback_data for b in sent.reply_markup.inline_keyboard[0]]
    assert buttons == [CB_HELP, CB_COUNT]


@async_test
async def test_it_uses_the_default_welcome_and_no_buttons_when_disabled() -> None:
    bot = harness(show_buttons=False)
    [sent] = await bot.send_text("/start", first_name="Bob")
    assert sent.text == "Hello, Bob! Welcome."
    assert sent.reply_markup is None


@async_test
async def test_it_answers_briefly_after_the_daily_limit() -> None:
    bot = harness(max_daily_greetings=2, language="id")
    for _ in range(2):
        await bot.send_text("/start", first_name="Citra")
    assert bot.texts(await bot.send_text("/start", first_name="Citra")) == [
        "Selamat datang kembali, Citra!"
    ]
    assert bot.ctx.store.get("stats:users") == 1
    assert bot.ctx.store.get("stats:greetings") == 3


@async_test
async def test_help_includes_the_contact() -> None:
    bot = harness(help={"text": "Ask me.", "contact": "@owner"})
    assert bot.texts(await bot.send_text("/help")) == ["Ask me.\n\nContact: @owner"]
    assert bot.texts(await harness().send_text("/help")) == [
        "I greet new users. Send /start to be greeted again."
    ]


@async_test
async def test_the_help_button_answers_the_callback_and_sends_help() -> None:
    bot = harness(language="pl")
    calls = await bot.press(CB_HELP)
    assert isinstance(calls[0], AnswerCallbackQuery)
    assert bot.texts(calls) == [
        "Witam nowych użytkowników. Wyślij /start, aby przywitać się ponownie."
    ]


@async_test
async def test_the_count_button_counts_per_user_and_edits_the_message() -> None:
    bot = harness()
    await bot.press(CB_COUNT, user_id=7)
    calls = await bot.press(CB_COUNT, user_id=7)
    assert bot.answered_callbacks(calls)[0].text == "Count: 2"
    [edit] = [c for c in calls if isinstance(c, EditMessageText)]
    assert edit.text == "Count: 2"
    assert bot.texts(await bot.press(CB_COUNT, user_id=8)) == ["Count: 1"]


@async_test
async def test_stats_are_for_admins_only() -> None:
    bot = harness(admins=["@Owner"])
    await bot.send_text("/start", user_id=1)
    await bot.send_text("/start", user_id=2)
    assert bot.texts(await bot.send_text("/stats", username="mallory")) == [
        "Sorry, /stats is only for the bot's administrators."
    ]
    assert bot.texts(await bot.send_text("/stats", username="owner")) == [
        "Greeted users: 2\nGreetings sent: 2"
    ]


@async_test
async def test_other_text_gets_a_polite_fallback() -> None:
    bot = harness()
    assert bot.texts(await bot.send_text("what's up?")) == [
        "Sorry, I only understand /start and /help."
    ]
    assert bot.counters.updates == 1 and bot.errors == []


@async_test
async def test_two_instances_keep_separate_state() -> None:
    """Shared-runtime readiness: state lives in each context, not in module globals."""
    first, second = harness(), harness()
    await first.send_text("/start", user_id=1)
    assert first.ctx.store.get("stats:users") == 1
    assert second.ctx.store.get("stats:users") is None
