"""Webhook delivery to a real local receiver: order, secret header, retries and replies."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .conftest import ALICE


async def start_receiver(handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}/hook"


def test_it_posts_updates_in_order_with_the_secret_header(emu, bot):
    async def scenario():
        received: asyncio.Queue = asyncio.Queue()

        async def hook(request: web.Request) -> web.Response:
            await received.put(
                (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
            )
            return web.Response(text="ok")

        runner, url = await start_receiver(hook)
        try:
            await asyncio.to_thread(emu.send, "greeter_bot", user_id=ALICE, text="queued before")
            await asyncio.to_thread(
                emu.bot_api, bot["token"], "setWebhook", url=url, secret_token="s3cr3t"
            )
            await asyncio.to_thread(emu.send, "greeter_bot", user_id=ALICE, text="after")
            first = await asyncio.wait_for(received.get(), 5)
            second = await asyncio.wait_for(received.get(), 5)
        finally:
            await runner.cleanup()
        return first, second

    (secret1, update1), (secret2, update2) = asyncio.run(scenario())
    assert secret1 == secret2 == "s3cr3t"
    assert [update1["message"]["text"], update2["message"]["text"]] == ["queued before", "after"]
    assert update2["update_id"] == update1["update_id"] + 1
    info = emu.bot_api(bot["token"], "getWebhookInfo")[1]["result"]
    assert info["pending_update_count"] == 0


def test_it_retries_failures_and_reports_the_last_error(emu, bot):
    async def scenario():
        attempts: list[int] = []
        delivered = asyncio.Event()

        async def flaky(request: web.Request) -> web.Response:
            attempts.append(1)
            if len(attempts) == 1:
                return web.Response(status=500, text="boom")
            delivered.set()
            return web.Response(text="ok")

        runner, url = await start_receiver(flaky)
        try:
            await asyncio.to_thread(emu.bot_api, bot["token"], "setWebhook", url=url)
            await asyncio.to_thread(emu.send, "greeter_bot", user_id=ALICE, text="retry me")
            await asyncio.wait_for(delivered.wait(), 5)
            info = (await asyncio.to_thread(emu.bot_api, bot["token"], "getWebhookInfo"))[1][
                "result"
            ]
        finally:
            await runner.cleanup()
        return len(attempts), info

    attempts, info = asyncio.run(scenario())
    assert attempts == 2
    assert (
        info["last_error_message"] == "Wrong response from the webhook: 500 Internal Server Error"
    )
    assert isinstance(info["last_error_date"], int)


def test_unreachable_webhooks_keep_updates_pending(emu, bot):
    emu.bot_api(bot["token"], "setWebhook", url="http://127.0.0.1:9/nothing-listens")
    emu.send("greeter_bot", user_id=ALICE, text="waiting")

    async def error_reported():
        for _ in range(50):
            info = (await asyncio.to_thread(emu.bot_api, bot["token"], "getWebhookInfo"))[1][
                "result"
            ]
            if "last_error_message" in info:
                return info
            await asyncio.sleep(0.05)
        raise AssertionError("no delivery error reported")

    info = asyncio.run(error_reported())
    assert info["last_error_message"] == "Connection refused"
    assert info["pending_update_count"] == 1


def test_a_method_in_the_webhook_response_is_executed(emu, bot):
    async def scenario():
        async def answering(request: web.Request) -> web.Response:
            update = await request.json()
            reply = {
                "method": "sendMessage",
                "chat_id": update["message"]["chat"]["id"],
                "text": "Echo",
            }
            return web.json_response(reply)

        runner, url = await start_receiver(answering)
        try:
            await asyncio.to_thread(emu.bot_api, bot["token"], "setWebhook", url=url)
            sent = await asyncio.to_thread(emu.send, "greeter_bot", user_id=ALICE, text="hi")
            return await asyncio.to_thread(
                emu.messages, "greeter_bot", ALICE, after=sent["message_id"], wait=5
            )
        finally:
            await runner.cleanup()

    replies = asyncio.run(scenario())
    assert [m["text"] for m in replies] == ["Echo"]


def test_an_aiogram_webhook_receiver_gets_updates_and_answers(emu, bot):
    from aiogram import Bot, Dispatcher
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.filters import Command
    from aiogram.types import Message
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler

    async def scenario():
        session = AiohttpSession(api=TelegramAPIServer.from_base(emu.url))
        tg_bot = Bot(token=bot["token"], session=session)
        dp = Dispatcher()

        @dp.message(Command("hello"))
        async def hello(message: Message) -> None:
            await message.answer("Hello via the API")

        @dp.message(Command("reply"))
        async def in_response(message: Message):
            # Returned, not awaited: aiogram puts the call in the webhook response body.
            return message.answer("Hello via the webhook response")

        app = web.Application()
        SimpleRequestHandler(
            dp, tg_bot, secret_token="ingress-secret", handle_in_background=False
        ).register(app, path="/hook")
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        try:
            await tg_bot.set_webhook(f"http://{host}:{port}/hook", secret_token="ingress-secret")
            texts = []
            for command in ("/hello", "/reply"):
                sent = await asyncio.to_thread(emu.send, "greeter_bot", user_id=ALICE, text=command)
                replies = await asyncio.to_thread(
                    emu.messages, "greeter_bot", ALICE, after=sent["message_id"], wait=5
                )
                texts.extend(m["text"] for m in replies if m["from_bot"])
            return texts
        finally:
            await runner.cleanup()
            await tg_bot.session.close()

    assert asyncio.run(asyncio.wait_for(scenario(), 20)) == [
        "Hello via the API",
        "Hello via the webhook response",
    ]
