"""Webhook delivery to a real local receiver: order, secret header, retries and replies."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .conftest import ALICE, BOB, CHARLIE


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


def test_deliveries_run_concurrently_up_to_max_connections_in_order_per_chat(emu, bot):
    """Three chats, a slow receiver: at most 2 requests at once, each chat's updates in order."""

    async def scenario():
        active = 0
        peak = 0
        seen: list[tuple[int, str]] = []
        done = asyncio.Event()

        async def slow(request: web.Request) -> web.Response:
            nonlocal active, peak
            update = await request.json()
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.05)
            active -= 1
            seen.append((update["message"]["chat"]["id"], update["message"]["text"]))
            if len(seen) == 9:
                done.set()
            return web.Response(text="ok")

        runner, url = await start_receiver(slow)
        try:
            for n in range(3):
                for user in (ALICE, BOB, CHARLIE):
                    await asyncio.to_thread(emu.send, "greeter_bot", user_id=user, text=f"m{n}")
            status, _body = await asyncio.to_thread(
                emu.bot_api, bot["token"], "setWebhook", url=url, max_connections=2
            )
            assert status == 200
            await asyncio.wait_for(done.wait(), 10)
        finally:
            await runner.cleanup()
        return peak, seen

    peak, seen = asyncio.run(scenario())
    assert peak == 2
    for user in (ALICE, BOB, CHARLIE):
        assert [text for chat, text in seen if chat == user] == ["m0", "m1", "m2"]
    info = emu.bot_api(bot["token"], "getWebhookInfo")[1]["result"]
    assert info["max_connections"] == 2 and info["pending_update_count"] == 0


def test_set_webhook_validates_and_reports_its_settings(emu, bot):
    token = bot["token"]
    emu.send("greeter_bot", user_id=ALICE, text="pending")
    for params, description in (
        ({"url": "ftp://x/hook"}, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"),
        ({"url": "http://127.0.0.1:9/h", "secret_token": "bad secret!"}, "Bad Request: secret token contains unallowed characters"),
        ({"url": "http://127.0.0.1:9/h", "secret_token": "x" * 257}, "Bad Request: secret token contains unallowed characters"),
        ({"url": "http://127.0.0.1:9/h", "max_connections": 101}, "Bad Request: bad webhook: max_connections must be between 1 and 100"),
        ({"url": "http://127.0.0.1:9/h", "max_connections": 0}, "Bad Request: bad webhook: max_connections must be between 1 and 100"),
    ):  # fmt: skip
        status, body = emu.bot_api(token, "setWebhook", **params)
        assert (status, body["description"]) == (400, description), params
    info = emu.bot_api(token, "getWebhookInfo")[1]["result"]
    assert info == {"url": "", "has_custom_certificate": False, "pending_update_count": 1}
    status, body = emu.bot_api(
        token,
        "setWebhook",
        url="http://127.0.0.1:9/h",
        secret_token="A-z_09" * 40,
        allowed_updates=["message", "inline_query"],
        drop_pending_updates=True,
    )
    assert (status, body["description"]) == (200, "Webhook was set")
    info = emu.bot_api(token, "getWebhookInfo")[1]["result"]
    assert info["url"] == "http://127.0.0.1:9/h" and info["max_connections"] == 40
    assert info["allowed_updates"] == ["message", "inline_query"]
    assert info["pending_update_count"] == 0


def test_a_failing_chat_is_retried_in_order_without_holding_up_other_chats(emu, bot):
    async def scenario():
        seen: list[tuple[int, str]] = []
        failures = {"n": 0}
        done = asyncio.Event()

        async def picky(request: web.Request) -> web.Response:
            message = (await request.json())["message"]
            if message["chat"]["id"] == ALICE and failures["n"] < 2:
                failures["n"] += 1
                return web.Response(status=500)
            seen.append((message["chat"]["id"], message["text"]))
            if len(seen) == 4:
                done.set()
            return web.Response()

        runner, url = await start_receiver(picky)
        try:
            for user, text in ((ALICE, "a1"), (BOB, "b1"), (ALICE, "a2"), (BOB, "b2")):
                await asyncio.to_thread(emu.send, "greeter_bot", user_id=user, text=text)
            await asyncio.to_thread(emu.bot_api, bot["token"], "setWebhook", url=url)
            await asyncio.wait_for(done.wait(), 10)
        finally:
            await runner.cleanup()
        return seen

    seen = asyncio.run(scenario())
    assert [t for c, t in seen if c == ALICE] == ["a1", "a2"]
    # Bob's updates went through while Alice's first one was being retried.
    assert seen.index((BOB, "b2")) < seen.index((ALICE, "a1"))
    info = emu.bot_api(bot["token"], "getWebhookInfo")[1]["result"]
    assert (
        info["last_error_message"] == "Wrong response from the webhook: 500 Internal Server Error"
    )
