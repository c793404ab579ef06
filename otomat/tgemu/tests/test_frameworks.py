"""Unmodified aiogram 3 and python-telegram-bot bots, pointed at the emulator, answer a user.

These are the emulator's reason to exist: if a real framework can poll, parse every object and
call back through the emulator, products written against it behave the same here as on Telegram.
"""

from __future__ import annotations

import asyncio

from otomat.tgemu.testing import EmulatorServer

from .conftest import ALICE


async def wait_for_bot_message(
    emu: EmulatorServer, bot_username: str, after: int, *, timeout: float = 10
):
    replies = await asyncio.to_thread(emu.messages, bot_username, ALICE, after=after, wait=timeout)
    assert replies, f"@{bot_username} did not answer within {timeout}s"
    return [m for m in replies if m["from_bot"]]


def test_an_aiogram_bot_answers_commands_and_buttons(emu):
    from aiogram import Bot, Dispatcher, F
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.filters import CommandStart
    from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

    created = emu.create_bot("aiogram_test_bot", "Aiogram")

    async def scenario() -> None:
        session = AiohttpSession(api=TelegramAPIServer.from_base(emu.url))
        bot = Bot(token=created["token"], session=session)
        dp = Dispatcher()

        @dp.message(CommandStart())
        async def start(message: Message) -> None:
            keyboard = InlineKeyboardMarkup(
                inline_keyboard=[[InlineKeyboardButton(text="Ping", callback_data="ping")]]
            )
            await message.answer(f"Hello, {message.from_user.first_name}!", reply_markup=keyboard)

        @dp.callback_query(F.data == "ping")
        async def ping(query: CallbackQuery) -> None:
            await query.answer("Pong!")
            await query.message.edit_text("You pressed Ping")

        polling = asyncio.create_task(
            dp.start_polling(bot, handle_signals=False, polling_timeout=1)
        )
        try:
            sent = await asyncio.to_thread(
                emu.send, "aiogram_test_bot", user_id=ALICE, first_name="Alice", text="/start"
            )
            [hello] = await wait_for_bot_message(emu, "aiogram_test_bot", sent["message_id"])
            assert hello["text"] == "Hello, Alice!"
            assert hello["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "ping"

            query = await asyncio.to_thread(
                emu.press,
                "aiogram_test_bot",
                user_id=ALICE,
                message_id=hello["message_id"],
                data="ping",
            )
            status = await asyncio.to_thread(
                emu.control, "GET", f"/bots/aiogram_test_bot/callbacks/{query['id']}?wait=10"
            )
            assert status["answered"] and status["answer"]["text"] == "Pong!"
            # The edit follows the answer; the change feed waits for it.
            path = f"/bots/aiogram_test_bot/chats/{ALICE}/messages?after_rev={hello['rev']}&wait=10"
            [edited] = await asyncio.to_thread(emu.control, "GET", path)
            assert edited["text"] == "You pressed Ping" and edited["edited"] is True
        finally:
            await dp.stop_polling()
            await asyncio.wait_for(polling, 10)

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_a_python_telegram_bot_application_answers_commands(emu):
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
    from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

    created = emu.create_bot("ptb_test_bot", "PTB")

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Ping", callback_data="ping")]])
        await update.message.reply_text(
            f"Hi <b>{update.effective_user.first_name}</b>",
            parse_mode="HTML",
            reply_markup=keyboard,
        )

    async def ping(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.callback_query.answer("Pong!", show_alert=True)

    async def scenario() -> None:
        application = (
            Application.builder()
            .token(created["token"])
            .base_url(f"{emu.url}/bot")
            .base_file_url(f"{emu.url}/file/bot")
            .build()
        )
        application.add_handler(CommandHandler("start", start))
        application.add_handler(CallbackQueryHandler(ping, pattern="^ping$"))
        async with application:
            await application.updater.start_polling(timeout=1)
            await application.start()
            try:
                sent = await asyncio.to_thread(
                    emu.send, "ptb_test_bot", user_id=ALICE, first_name="Alice", text="/start"
                )
                [hello] = await wait_for_bot_message(emu, "ptb_test_bot", sent["message_id"])
                assert hello["text"] == "Hi Alice"
                assert hello["entities"] == [{"type": "bold", "offset": 3, "length": 5}]
                query = await asyncio.to_thread(
                    emu.press,
                    "ptb_test_bot",
                    user_id=ALICE,
                    message_id=hello["message_id"],
                    data="ping",
                )
                status = await asyncio.to_thread(
                    emu.control, "GET", f"/bots/ptb_test_bot/callbacks/{query['id']}?wait=10"
                )
                assert status["answer"] == {
                    "text": "Pong!",
                    "show_alert": True,
                    "url": None,
                    "cache_time": 0,
                }
            finally:
                await application.updater.stop()
                await application.stop()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_aiogram_parses_every_implemented_method_result(emu):
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.exceptions import TelegramBadRequest, TelegramConflictError
    from aiogram.types import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup

    created = emu.create_bot("aiogram_api_bot", "Aiogram API")
    emu.send("aiogram_api_bot", user_id=ALICE, first_name="Alice", text="/start")
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Go", callback_data="go")]]
    )

    async def scenario() -> None:
        bot = Bot(
            created["token"], session=AiohttpSession(api=TelegramAPIServer.from_base(emu.url))
        )
        try:
            assert (await bot.get_me()).username == "aiogram_api_bot"
            [update] = await bot.get_updates(timeout=0)
            assert (
                update.message.text == "/start" and update.message.from_user.first_name == "Alice"
            )
            sent = await bot.send_message(
                ALICE, "<b>Hi</b>", parse_mode="HTML", reply_markup=keyboard
            )
            assert sent.text == "Hi" and sent.entities[0].type == "bold"
            edited = await bot.edit_message_text("Bye", chat_id=ALICE, message_id=sent.message_id)
            assert edited.text == "Bye" and edited.edit_date is not None
            with_kb = await bot.edit_message_reply_markup(
                chat_id=ALICE, message_id=sent.message_id, reply_markup=keyboard
            )
            assert with_kb.reply_markup.inline_keyboard[0][0].callback_data == "go"
            assert await bot.delete_message(ALICE, sent.message_id) is True
            try:
                await bot.delete_message(ALICE, sent.message_id)
                raise AssertionError("second delete succeeded")
            except TelegramBadRequest as exc:
                assert "message to delete not found" in exc.message
            assert await bot.set_my_commands([BotCommand(command="start", description="Start")])
            assert [c.command for c in await bot.get_my_commands()] == ["start"]
            chat = await bot.get_chat(ALICE)
            assert chat.first_name == "Alice" and chat.type == "private"
            member = await bot.get_chat_member(ALICE, ALICE)
            assert member.status == "member" and member.user.id == ALICE
            assert await bot.get_chat_member_count(ALICE) == 2
            assert await bot.send_chat_action(ALICE, "typing")
            assert await bot.set_my_description("Says hello")
            assert (await bot.get_my_description()).description == "Says hello"
            assert (await bot.get_my_name()).name == "Aiogram API"
            assert await bot.set_webhook("http://127.0.0.1:9/hook", secret_token="abc")
            info = await bot.get_webhook_info()
            assert info.url == "http://127.0.0.1:9/hook"
            try:
                await bot.get_updates()
                raise AssertionError("getUpdates worked with a webhook set")
            except TelegramConflictError:
                pass
            assert await bot.delete_webhook(drop_pending_updates=True)
            assert (await bot.get_webhook_info()).url == ""
        finally:
            await bot.session.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_python_telegram_bot_parses_every_implemented_method_result(emu):
    from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup
    from telegram.error import BadRequest, Conflict, InvalidToken

    created = emu.create_bot("ptb_api_bot", "PTB API")
    emu.send("ptb_api_bot", user_id=ALICE, first_name="Alice", text="/start")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go")]])

    async def scenario() -> None:
        bot = Bot(created["token"], base_url=f"{emu.url}/bot", base_file_url=f"{emu.url}/file/bot")
        async with bot:
            assert bot.username == "ptb_api_bot"
            [update] = await bot.get_updates(timeout=0)
            assert update.message.text == "/start" and update.effective_user.first_name == "Alice"
            sent = await bot.send_message(
                ALICE, "*Hi*", parse_mode="MarkdownV2", reply_markup=keyboard
            )
            assert sent.text == "Hi" and sent.entities[0].type == "bold"
            assert sent.reply_markup.inline_keyboard[0][0].callback_data == "go"
            edited = await bot.edit_message_text("Bye", chat_id=ALICE, message_id=sent.message_id)
            assert edited.text == "Bye" and edited.edit_date is not None
            assert await bot.delete_message(ALICE, sent.message_id)
            try:
                await bot.edit_message_text("x", chat_id=ALICE, message_id=sent.message_id)
                raise AssertionError("edited a deleted message")
            except BadRequest as exc:
                assert "not found" in exc.message.lower()
            try:
                await bot.send_message(4321, "hello?")
                raise AssertionError("wrote to an unknown chat")
            except BadRequest as exc:
                assert "chat not found" in exc.message.lower()
            assert await bot.set_my_commands([BotCommand("help", "Help")])
            assert [c.command for c in await bot.get_my_commands()] == ["help"]
            chat = await bot.get_chat(ALICE)
            assert chat.first_name == "Alice"
            assert (await bot.get_chat_member(ALICE, ALICE)).status == "member"
            assert await bot.send_chat_action(ALICE, "typing")
            assert await bot.set_webhook("http://127.0.0.1:9/hook")
            assert (await bot.get_webhook_info()).url == "http://127.0.0.1:9/hook"
            try:
                await bot.get_updates()
                raise AssertionError("getUpdates worked with a webhook set")
            except Conflict:
                pass
            assert await bot.delete_webhook()
        # Unknown tokens are refused the way PTB expects from Telegram.
        stranger = Bot("1:" + "A" * 35, base_url=f"{emu.url}/bot")
        try:
            await stranger.get_me()
            raise AssertionError("unknown token accepted")
        except InvalidToken:  # PTB's exception for Telegram's 401
            pass

    asyncio.run(asyncio.wait_for(scenario(), 30))
