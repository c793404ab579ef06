"""A bot's call answered 429 waits ``retry_after`` and goes out, instead of failing its
handler; a wait longer than the cap, or too many refusals, still raise."""

import asyncio

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramRetryAfter

from otomat.botkit.flood import RetryAfter, honour_flood_limits
from otomat.tgemu.ratelimit import RateLimits
from otomat.tgemu.testing import EmulatorServer


def test_a_flooded_chat_gets_every_answer_after_waiting():
    async def scenario(emu):
        token = emu.create_bot("flood_bot")["token"]
        emu.send("flood_bot", user_id=7, text="/start")  # the user opens the chat
        session = AiohttpSession(api=TelegramAPIServer.from_base(emu.url))
        honour_flood_limits(session)
        honour_flood_limits(session)  # once only
        assert sum(isinstance(m, RetryAfter) for m in session.middleware._middlewares) == 1
        bot = Bot(token, session=session)
        try:
            sent = [await bot.send_message(7, f"answer {n}") for n in range(3)]
        finally:
            await session.close()
        return [m.text for m in sent]

    limits = RateLimits(private_chat_per_second=2.0, private_chat_burst=1)
    with EmulatorServer(rate_limits=limits) as emu:
        assert asyncio.run(scenario(emu)) == ["answer 0", "answer 1", "answer 2"]


def test_a_long_wait_or_too_many_refusals_still_raise():
    class Method:
        pass

    calls = []

    async def refused(bot, method, wait):
        calls.append(wait)
        raise TelegramRetryAfter(method=method, message="Too Many Requests", retry_after=wait)

    async def scenario():
        with pytest.raises(TelegramRetryAfter):
            await RetryAfter(max_wait=5)(lambda b, m: refused(b, m, 60), None, Method())
        assert calls == [60]  # not waited for a minute
        calls.clear()
        with pytest.raises(TelegramRetryAfter):
            await RetryAfter(retries=2)(lambda b, m: refused(b, m, 0), None, Method())
        assert calls == [0, 0, 0]

    asyncio.run(scenario())
