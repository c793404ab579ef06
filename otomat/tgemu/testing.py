"""Run the emulator inside a test: a real server on 127.0.0.1 and a free port, in a thread.

    with EmulatorServer() as emu:
        bot = emu.create_bot("greeter_bot")
        ...  # point aiogram / python-telegram-bot at emu.url
        emu.send("greeter_bot", user_id=1001, text="/start")
        replies = emu.messages("greeter_bot", 1001, wait=5)

The server runs its own event loop in a daemon thread, so it works from synchronous tests and
from tests that run their own loop (``asyncio.run``) alike. The helpers use only the standard
library and talk to the emulator over HTTP, exactly like any other client.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import struct
import threading
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path
from typing import Any

from aiohttp import web

from .persistence import open_state
from .ratelimit import RateLimits
from .server import create_app
from .state import EmulatorState, Limits


class EmulatorServer:
    """A started-on-enter, stopped-on-exit emulator. ``url`` is ``http://127.0.0.1:<port>``."""

    def __init__(
        self,
        state: EmulatorState | None = None,
        *,
        state_path: Path | None = None,
        limits: Limits | None = None,
        rate_limits: RateLimits | None = None,
        control_token: str | None = None,
    ) -> None:
        """``control_token`` guards the staff-only control calls (default: loopback development
        mode, so tests may use them). ``rate_limits`` defaults to Telegram-like limits (429 on floods); pass
        ``RateLimits(enabled=False)`` for load tests."""
        self.state = state if state is not None else open_state(state_path, limits=limits)
        if rate_limits is not None:
            self.state.rate_limiter.configure(rate_limits)
        self.control_token = control_token
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> EmulatorServer:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._start_site())
            except BaseException as exc:  # reported to the starting thread
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="tgemu-test-server", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=10):
            raise RuntimeError("emulator did not start within 10 s")
        if errors:
            raise errors[0]
        return self

    async def _start_site(self) -> None:
        self._runner = web.AppRunner(
            create_app(self.state, control_token=self.control_token),
            access_log=None,
            handler_cancellation=True,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop the server, flushing the state file if there is one."""
        if self._loop is None or self._thread is None:
            return
        if self._runner is not None:
            future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            future.result(timeout=15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop = None
        self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ HTTP helpers

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        timeout: float = 30,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Send ``body`` as JSON to ``path``; returns (HTTP status, decoded JSON body).

        The control token, if the server has one, is sent unless ``headers`` says otherwise.
        """
        data = None if body is None else json.dumps(body).encode("utf-8")
        sent = {"Content-Type": "application/json"} if data is not None else {}
        if self.control_token:
            sent["Authorization"] = f"Bearer {self.control_token}"
        sent.update(headers or {})
        req = urllib.request.Request(  # noqa: S310 - always our own http://127.0.0.1 URL
            self.url + path,
            data=data,
            method=method,
            headers={k: v for k, v in sent.items() if v},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def control(self, method: str, path: str, body: Any = None, *, timeout: float = 30) -> Any:
        """Call the control API; raises AssertionError with the description on a non-2xx status."""
        status, data = self.request(method, "/control" + path, body, timeout=timeout)
        if not 200 <= status < 300:
            raise AssertionError(f"{method} /control{path} -> {status}: {data}")
        return data

    def bot_api(self, token: str, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
        """Call a Bot API method with JSON parameters; returns (HTTP status, envelope)."""
        return self.request("POST", f"/bot{token}/{method}", params, timeout=60)

    def create_bot(
        self, username: str, first_name: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        body = {"username": username, "first_name": first_name or username, **extra}
        return self.control("POST", "/bots", body)

    def send(self, bot_username: str, *, user_id: int, text: str, **extra: Any) -> dict[str, Any]:
        """A user sends ``text`` to the bot; returns the created message.

        ``extra`` may hold the user's ``first_name``, ``username``…, ``chat_id`` of a group and
        ``reply_to_message_id``.
        """
        body = {"user_id": user_id, "text": text, **extra}
        return self.control("POST", f"/bots/{urllib.parse.quote(bot_username)}/messages", body)

    def press(
        self, bot_username: str, *, user_id: int, message_id: int, data: str, **extra: Any
    ) -> dict[str, Any]:
        """A user presses the inline button with ``data``; returns the callback query status."""
        body = {"user_id": user_id, "message_id": message_id, "data": data, **extra}
        return self.control("POST", f"/bots/{urllib.parse.quote(bot_username)}/callbacks", body)

    def messages(
        self, bot_username: str, chat_id: int, *, after: int = 0, wait: float = 0
    ) -> list[dict[str, Any]]:
        """Messages in the chat newer than ``after``; ``wait`` waits for one from the bot."""
        query = urllib.parse.urlencode({"after": after, "wait": wait})
        path = f"/bots/{urllib.parse.quote(bot_username)}/chats/{chat_id}/messages?{query}"
        return self.control("GET", path, timeout=wait + 30)

    def send_file(
        self,
        bot_username: str,
        *,
        user_id: int,
        kind: str,
        data: bytes,
        filename: str = "file.bin",
        content_type: str = "application/octet-stream",
        **fields: Any,
    ) -> dict[str, Any]:
        """A user sends a ``photo`` or ``document``; returns the created message.

        ``fields`` may hold ``caption``, ``chat_id`` (a group) and ``first_name``.
        """
        form = {"user_id": user_id, "kind": kind, **fields}
        status, body = self.multipart(
            f"/control/bots/{urllib.parse.quote(bot_username)}/files",
            form,
            {"file": (filename, data, content_type)},
        )
        if status != 201:
            raise AssertionError(f"POST /control/bots/{bot_username}/files -> {status}: {body}")
        return body

    def upload(
        self,
        token: str,
        method: str,
        files: dict[str, tuple[str, bytes, str]],
        **params: Any,
    ) -> tuple[int, dict[str, Any]]:
        """Call a Bot API method as ``multipart/form-data`` with ``files``; (status, envelope)."""
        return self.multipart(f"/bot{token}/{method}", params, files)

    def multipart(
        self,
        path: str,
        fields: dict[str, Any],
        files: dict[str, tuple[str, bytes, str]],
        *,
        timeout: float = 60,
    ) -> tuple[int, Any]:
        """POST ``fields`` (JSON-encoded unless strings) and ``files`` (name -> (filename,
        data, content type)) as multipart/form-data; returns (HTTP status, decoded JSON)."""
        body, content_type = encode_multipart(fields, files)
        req = urllib.request.Request(  # noqa: S310 - always our own http://127.0.0.1 URL
            self.url + path, data=body, method="POST", headers={"Content-Type": content_type}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")


def encode_multipart(
    fields: dict[str, Any], files: dict[str, tuple[str, bytes, str]]
) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type header value."""
    boundary = "tgemu" + secrets.token_hex(12)
    parts: list[bytes] = []
    for name, value in fields.items():
        text = value if isinstance(value, str) else json.dumps(value)
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + text.encode("utf-8")
            + b"\r\n"
        )
    for name, (filename, data, content_type) in files.items():
        parts.append(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def png(width: int, height: int, rgb: tuple[int, int, int] = (40, 120, 200)) -> bytes:
    """A valid one-colour PNG image of the given size (for photo tests)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )
