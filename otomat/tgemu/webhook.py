"""Webhook delivery: POST each pending update to the bot's webhook URL, in order.

One task per bot with a webhook, which runs up to ``max_connections`` deliveries at once while
keeping each chat's updates in order. An update leaves the queue only after the receiver answered
2xx; otherwise the failure is recorded for getWebhookInfo (``last_error_date``,
``last_error_message``) and the same update is retried with exponential backoff, so nothing is
lost while the receiver restarts — the queue's size and 24-hour limit bound what is kept, as on
Telegram. Like Telegram, a receiver may answer with a Bot API call in the response body
(``{"method": "sendMessage", ...}``); the emulator executes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import aiohttp

from .botapi import call_method
from .errors import ApiError
from .models import BotRecord, UpdateRecord
from .params import Params
from .state import EmulatorState

log = logging.getLogger("otomat.tgemu.webhook")


class WebhookDeliverer:
    """Owns the delivery tasks; :meth:`start` and :meth:`stop` follow the app's lifetime."""

    def __init__(
        self,
        state: EmulatorState,
        *,
        request_timeout: float = 10.0,
        first_backoff: float = 0.5,
        max_backoff: float = 10.0,
    ) -> None:
        self.state = state
        self.request_timeout = request_timeout
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.request_timeout)
        )
        self.state.on_bot_event = self.on_bot_event
        for bot in self.state.bots.values():
            if bot.webhook is not None:
                self._restart(bot)

    async def stop(self) -> None:
        self.state.on_bot_event = None
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def on_bot_event(self, bot: BotRecord, event: str) -> None:
        """React to setWebhook/deleteWebhook and bot deletion by (re)starting or ending a task."""
        if event == "deleted" or bot.webhook is None:
            task = self._tasks.pop(bot.id, None)
            if task is not None:
                task.cancel()
        else:
            self._restart(bot)

    def _restart(self, bot: BotRecord) -> None:
        old = self._tasks.pop(bot.id, None)
        if old is not None:
            old.cancel()
        self._tasks[bot.id] = asyncio.get_running_loop().create_task(self._run(bot))

    async def _run(self, bot: BotRecord) -> None:
        """Deliver pending updates with up to ``max_connections`` requests at once.

        Updates of one chat (or one user, for inline queries) go strictly in order: only the
        oldest pending update of each chat is ever in flight, and it keeps its chat busy while
        it is retried. Updates of different chats overtake each other, as on Telegram.
        """
        inflight: dict[int, asyncio.Task[None]] = {}
        wake = asyncio.Event()
        try:
            while bot.webhook is not None and self.state.bots.get(bot.id) is bot:
                bot.update_signal.clear()
                wake.clear()
                limit = bot.webhook.max_connections
                seen: set[tuple[Any, ...]] = set()
                for update in self.state.pending_updates(bot):
                    key = _ordering_key(update)
                    if key in seen:
                        continue
                    seen.add(key)
                    if update.update_id in inflight:
                        continue
                    if len(inflight) >= limit:
                        break
                    task = asyncio.get_running_loop().create_task(
                        self._deliver_until_done(bot, update)
                    )
                    inflight[update.update_id] = task
                    task.add_done_callback(
                        lambda _t, uid=update.update_id: (inflight.pop(uid, None), wake.set())
                    )
                signal = asyncio.ensure_future(bot.update_signal.wait())
                woken = asyncio.ensure_future(wake.wait())
                try:
                    await asyncio.wait({signal, woken}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    signal.cancel()
                    woken.cancel()
        finally:
            for task in inflight.values():
                task.cancel()

    async def _deliver_until_done(self, bot: BotRecord, update: UpdateRecord) -> None:
        """POST ``update`` until the receiver takes it (2xx), with exponential backoff."""
        failures = 0
        while bot.webhook is not None and self.state.bots.get(bot.id) is bot:
            if not any(u is update for u in bot.updates):
                return  # dropped meanwhile (drop_pending_updates, queue limit, 24 h)
            error = await self._deliver(bot, update)
            if error is None:
                with contextlib.suppress(ValueError):
                    self.state.remove_update(bot, update)
                return
            failures += 1
            if bot.webhook is not None:
                bot.webhook.last_error_date = self.state.now()
                bot.webhook.last_error_message = error
                self.state.changed(bot)
            delay = min(self.max_backoff, self.first_backoff * 2 ** (failures - 1))
            log.info("webhook of @%s failed (%s); retrying in %.1fs", bot.username, error, delay)
            await asyncio.sleep(delay)

    async def _deliver(self, bot: BotRecord, update: UpdateRecord) -> str | None:
        """POST one update; returns None on success or Telegram-style error text."""
        assert self._session is not None and bot.webhook is not None
        headers = {"Content-Type": "application/json"}
        if bot.webhook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = bot.webhook.secret_token
        body = json.dumps(update.update_api(), ensure_ascii=False).encode("utf-8")
        try:
            async with self._session.post(bot.webhook.url, data=body, headers=headers) as resp:
                if not 200 <= resp.status < 300:
                    return f"Wrong response from the webhook: {resp.status} {resp.reason or ''}".strip()
                reply = await _read_reply(resp)
        except TimeoutError:
            return "Read timeout expired"
        except aiohttp.ClientConnectorError:
            return "Connection refused"
        except (aiohttp.ClientError, ValueError) as exc:
            return f"Connection error: {type(exc).__name__}"
        if reply:
            await self._run_reply(bot, reply)
        return None

    async def _run_reply(self, bot: BotRecord, reply: dict[str, Any]) -> None:
        name = str(reply.pop("method", ""))
        try:
            await call_method(self.state, bot.token, name, Params(reply))
        except ApiError as exc:
            # Telegram cannot report these either: the webhook answer has no one to go back to.
            log.info("method %s in webhook reply of @%s failed: %s", name, bot.username, exc)


def _ordering_key(update: UpdateRecord) -> tuple[Any, ...]:
    """What an update must stay in order with: its chat, or its user when it has no chat."""
    payload = update.payload
    message = payload.get("message") if update.kind == "callback_query" else payload
    chat = message.get("chat") if isinstance(message, dict) else None
    if isinstance(chat, dict) and "id" in chat:
        return ("chat", chat["id"])
    user = payload.get("from")
    if isinstance(user, dict) and "id" in user:
        return ("user", user["id"])
    return ("update", update.update_id)


async def _read_reply(resp: aiohttp.ClientResponse) -> dict[str, Any] | None:
    """A Bot API call in a webhook response body (JSON or form data), or None."""
    content_type = resp.content_type
    params: dict[str, Any] = {}
    if content_type == "application/json":
        with contextlib.suppress(ValueError):
            data = json.loads(await resp.read() or b"null")
            if isinstance(data, dict):
                params = data
    elif content_type == "multipart/form-data":
        reader = aiohttp.MultipartReader(resp.headers, resp.content)
        while (part := await reader.next()) is not None:
            if isinstance(part, aiohttp.BodyPartReader) and part.name:
                params[part.name] = await part.text()
    elif content_type == "application/x-www-form-urlencoded":
        from urllib.parse import parse_qsl

        params = dict(parse_qsl((await resp.read()).decode("utf-8", "replace")))
    return params if params.get("method") else None
