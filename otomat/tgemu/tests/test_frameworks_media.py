"""aiogram 3 and python-telegram-bot parse the emulator's answers for media kinds, albums,
copy/forward, pins, captions, menu buttons, refusals and people's edited messages."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Iterator

import pytest

from otomat.tgemu.ratelimit import RateLimits
from otomat.tgemu.testing import EmulatorServer, png

from .conftest import ALICE, BOB

MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64
OGG = b"OggS" + b"\x00" * 64
MP3 = b"ID3" + b"\x00" * 64


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(rate_limits=RateLimits(enabled=False)) as server:
        yield server


def test_aiogram_parses_media_albums_copies_pins_and_refusals(emu):
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
    from aiogram.types import (
        BufferedInputFile,
        InputMediaPhoto,
        InputMediaVideo,
        MenuButtonWebApp,
        WebAppInfo,
    )

    created = emu.create_bot("aiogram_media_bot", "Aiogram media")
    emu.send("aiogram_media_bot", user_id=ALICE, first_name="Alice", text="/start")
    emu.send("aiogram_media_bot", user_id=BOB, first_name="Bob", text="/start")

    async def scenario() -> None:
        bot = Bot(
            created["token"], session=AiohttpSession(api=TelegramAPIServer.from_base(emu.url))
        )
        try:
            video = await bot.send_video(
                ALICE, BufferedInputFile(MP4, "clip.mp4"), duration=3, width=64, height=48,
                caption="clip",
            )  # fmt: skip
            assert (video.video.duration, video.video.width, video.caption) == (3, 64, "clip")
            audio = await bot.send_audio(
                ALICE, BufferedInputFile(MP3, "song.mp3"), performer="Band", title="Song"
            )
            assert (audio.audio.performer, audio.audio.title) == ("Band", "Song")
            voice = await bot.send_voice(ALICE, BufferedInputFile(OGG, "note.ogg"), duration=2)
            assert voice.voice.duration == 2
            sticker = await bot.send_sticker(ALICE, BufferedInputFile(png(512, 512), "s.png"))
            assert sticker.sticker.type == "regular" and not sticker.sticker.is_animated
            animated = await bot.send_sticker(
                ALICE, BufferedInputFile(gzip.compress(b"{}"), "a.tgs")
            )
            assert animated.sticker.is_animated
            album = await bot.send_media_group(
                ALICE,
                [
                    InputMediaPhoto(media=BufferedInputFile(png(8, 8), "a.png"), caption="one"),
                    InputMediaVideo(media=video.video.file_id),
                ],
            )
            assert len(album) == 2 and album[0].media_group_id == album[1].media_group_id
            assert album[0].photo[0].width == 8 and album[1].video.file_id == video.video.file_id
            copied = await bot.copy_message(BOB, ALICE, album[0].message_id, caption="copied")
            assert copied.message_id > 0
            forwarded = await bot.forward_message(BOB, ALICE, video.message_id)
            assert forwarded.forward_origin.type == "user"
            assert forwarded.forward_origin.sender_user.id == created["id"]
            assert forwarded.video.file_id == video.video.file_id
            assert await bot.pin_chat_message(ALICE, video.message_id)
            assert (await bot.get_chat(ALICE)).pinned_message.message_id == video.message_id
            assert await bot.unpin_chat_message(ALICE, message_id=video.message_id)
            edited = await bot.edit_message_caption(
                chat_id=ALICE, message_id=video.message_id, caption="<b>new</b>", parse_mode="HTML"
            )
            assert edited.caption == "new" and edited.caption_entities[0].type == "bold"
            with pytest.raises(TelegramBadRequest, match="there is no text in the message to edit"):
                await bot.edit_message_text("x", chat_id=ALICE, message_id=video.message_id)
            button = MenuButtonWebApp(text="Shop", web_app=WebAppInfo(url="https://example.com/"))
            assert await bot.set_chat_menu_button(chat_id=ALICE, menu_button=button)
            kept = await bot.get_chat_menu_button(chat_id=ALICE)
            assert kept.type == "web_app" and kept.web_app.url == "https://example.com/"
            assert (await bot.get_chat_menu_button(chat_id=BOB)).type == "commands"
            with pytest.raises(TelegramBadRequest, match="method is not supported by the emulator"):
                await bot.send_poll(ALICE, "Lunch?", ["Yes", "No"])
            await asyncio.to_thread(
                emu.control, "POST", f"/bots/aiogram_media_bot/users/{ALICE}/block"
            )
            with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
                await bot.send_chat_action(ALICE, "typing")
        finally:
            await bot.session.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_an_aiogram_dispatcher_handles_a_persons_edit(emu):
    from aiogram import Bot, Dispatcher
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.types import Message

    created = emu.create_bot("aiogram_edit_bot", "Aiogram edit")

    async def scenario() -> None:
        bot = Bot(
            created["token"], session=AiohttpSession(api=TelegramAPIServer.from_base(emu.url))
        )
        dp = Dispatcher()

        @dp.edited_message()
        async def on_edit(message: Message) -> None:
            await message.answer(f"You changed it to: {message.text}")

        polling = asyncio.create_task(
            dp.start_polling(bot, handle_signals=False, polling_timeout=1)
        )
        try:
            sent = await asyncio.to_thread(
                emu.send, "aiogram_edit_bot", user_id=ALICE, first_name="Alice", text="helo"
            )
            path = f"/bots/aiogram_edit_bot/chats/{ALICE}/messages/{sent['message_id']}"
            await asyncio.to_thread(emu.control, "PATCH", path, {"user_id": ALICE, "text": "hello"})
            replies = await asyncio.to_thread(
                emu.messages, "aiogram_edit_bot", ALICE, after=sent["message_id"], wait=10
            )
            assert [m["text"] for m in replies if m["from_bot"]] == ["You changed it to: hello"]
        finally:
            await dp.stop_polling()
            await polling
            await bot.session.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_python_telegram_bot_parses_media_albums_copies_pins_and_refusals(emu):
    from telegram import Bot, InputMediaPhoto, InputMediaVideo, MenuButtonWebApp, WebAppInfo
    from telegram.error import BadRequest, Forbidden

    created = emu.create_bot("ptb_media_bot", "PTB media")
    emu.send("ptb_media_bot", user_id=ALICE, first_name="Alice", text="/start")
    emu.send("ptb_media_bot", user_id=BOB, first_name="Bob", text="/start")

    async def scenario() -> None:
        bot = Bot(created["token"], base_url=f"{emu.url}/bot", base_file_url=f"{emu.url}/file/bot")
        async with bot:
            video = await bot.send_video(
                ALICE, MP4, duration=3, width=64, height=48, filename="c.mp4"
            )
            assert (video.video.duration, video.video.height) == (3, 48)
            audio = await bot.send_audio(
                ALICE, MP3, performer="Band", title="Song", filename="s.mp3"
            )
            assert audio.audio.title == "Song"
            voice = await bot.send_voice(ALICE, OGG, duration=2, filename="n.ogg")
            assert voice.voice.duration == 2
            sticker = await bot.send_sticker(ALICE, png(512, 512))
            assert sticker.sticker.width == 512 and not sticker.sticker.is_video
            album = await bot.send_media_group(
                ALICE,
                [
                    InputMediaPhoto(png(8, 8), caption="one"),
                    InputMediaVideo(video.video.file_id),
                ],
            )
            assert len(album) == 2 and album[0].media_group_id == album[1].media_group_id
            copied = await bot.copy_message(BOB, ALICE, album[0].message_id)
            assert copied.message_id > 0
            forwarded = await bot.forward_message(BOB, ALICE, video.message_id)
            assert forwarded.forward_origin.sender_user.id == created["id"]
            assert await bot.pin_chat_message(ALICE, video.message_id)
            assert (await bot.get_chat(ALICE)).pinned_message.message_id == video.message_id
            assert await bot.unpin_all_chat_messages(ALICE)
            edited = await bot.edit_message_caption(ALICE, video.message_id, caption="new")
            assert edited.caption == "new"
            with pytest.raises(BadRequest, match="There is no text in the message to edit"):
                await bot.edit_message_text("x", ALICE, video.message_id)
            button = MenuButtonWebApp("Shop", WebAppInfo("https://example.com/"))
            assert await bot.set_chat_menu_button(ALICE, button)
            assert (await bot.get_chat_menu_button(ALICE)).web_app.url == "https://example.com/"
            with pytest.raises(BadRequest, match="Method is not supported by the emulator"):
                await bot.send_dice(ALICE)
            await asyncio.to_thread(emu.control, "POST", f"/bots/ptb_media_bot/users/{ALICE}/block")
            with pytest.raises(Forbidden, match="bot was blocked by the user"):
                await bot.send_chat_action(ALICE, "typing")

    asyncio.run(asyncio.wait_for(scenario(), 30))
