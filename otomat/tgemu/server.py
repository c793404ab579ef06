"""The aiohttp application: Bot API, control API and web chat in one server.

:func:`create_app` wires the routes, the error middleware that turns every failure into a
Telegram-style envelope (never a traceback), the webhook deliverer and, when the state has a
``path``, the incremental state-store writer.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from . import (
    chats,
    control,
    files,
    inline,
    message_ops,  # noqa: F401 - registers its Bot API methods
    settings,
    webchat,
)
from .botapi import call_method
from .errors import ApiError
from .params import Params, read_request_params
from .persistence import Persister
from .state import EmulatorState
from .webhook import WebhookDeliverer

log = logging.getLogger("otomat.tgemu")

# Room for multipart overhead around the largest allowed upload (Limits.max_upload_bytes); a
# larger body is refused with 413 before it is read into memory.
MULTIPART_OVERHEAD = 1024 * 1024
_TOKEN_IN_PATH = re.compile(r"/bot(\d+):[^/]*")
_HTTP_ERROR_TEXT = {
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Request Entity Too Large",
}
WEBHOOKS_KEY: web.AppKey[WebhookDeliverer] = web.AppKey("tgemu_webhooks", WebhookDeliverer)


def _redact(path: str) -> str:
    """Hide the secret half of a bot token in logged paths."""
    return _TOKEN_IN_PATH.sub(r"/bot\1:***", path)


def _envelope(error: ApiError) -> web.Response:
    return web.json_response(error.to_envelope(), status=error.code)


def _is_api_path(path: str) -> bool:
    return path.startswith(("/bot", "/control/", "/file/")) or path == "/control"


@web.middleware
async def origin_guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Refuse cross-site writes to the control API.

    It has no authentication, so a web page open in the developer's browser could otherwise
    POST ``/control/reset`` to 127.0.0.1. Browsers send ``Origin`` on such requests; tools and
    same-origin pages (the web chat) pass.
    """
    origin = request.headers.get("Origin")
    if (
        origin
        and request.method not in ("GET", "HEAD", "OPTIONS")
        and request.path.startswith("/control/")
    ):
        try:
            same = urlsplit(origin).netloc == request.host
        except ValueError:
            same = False
        if not same:
            raise ApiError(403, "Forbidden: cross-origin control requests are not allowed")
    return await handler(request)


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Render failures as ``{"ok": false, ...}`` envelopes and log one debug line per request."""
    started = time.monotonic()
    try:
        response = await handler(request)
    except ApiError as exc:
        response = _envelope(exc)
    except web.HTTPException as exc:
        if not _is_api_path(request.path) or exc.status < 400:
            raise
        # Router 404/405 and aiohttp's 413 for oversized bodies, in Telegram's shape.
        text = _HTTP_ERROR_TEXT.get(exc.status, exc.reason)
        response = _envelope(ApiError(exc.status, text))
    except Exception:
        log.exception("unexpected error handling %s %s", request.method, _redact(request.path))
        response = _envelope(ApiError(500, "Internal Server Error"))
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "%s %s %s %.1fms",
            request.method,
            _redact(request.path),
            response.status,
            (time.monotonic() - started) * 1000,
        )
    return response


async def bot_api(request: web.Request) -> web.Response:
    """``/bot<token>/<method>``: run the method and wrap the result in ``{"ok": true}``."""
    state = request.app[control.STATE_KEY]
    token = request.match_info["token"]
    name = request.match_info["method"]
    # Authenticate before reading the body, like Telegram answers 401 regardless of parameters.
    if state.bot_by_token(token) is None:
        raise ApiError(401, "Unauthorized")
    params = Params(await read_request_params(request))
    reply = await call_method(state, token, name, params)
    body: dict[str, object] = {"ok": True, "result": reply.result}
    if reply.description:
        body["description"] = reply.description
    return web.json_response(body, dumps=lambda v: json.dumps(v, ensure_ascii=False))


async def file_download(request: web.Request) -> web.Response:
    """``/file/bot<token>/<file_path>``: download a file getFile described (401 bad token)."""
    state = request.app[control.STATE_KEY]
    if state.bot_by_token(request.match_info["token"]) is None:
        raise ApiError(401, "Unauthorized")
    stored = state.files.by_path(request.match_info["path"])
    if stored is None or len(stored.data) > state.limits.max_download_bytes:
        raise ApiError(404, "Not Found")
    return files.file_response(stored, attachment=True)


def create_app(state: EmulatorState, *, control_token: str | None = None) -> web.Application:
    """Build the emulator application around ``state``.

    When ``state.path`` is set, changes are written there (incrementally, off the loop) and flushed on
    shutdown. Webhook delivery tasks run while the application runs. ``control_token`` guards
    the staff-only control endpoints; without it they answer only direct loopback clients.
    """
    app = web.Application(
        middlewares=[error_middleware, origin_guard],
        client_max_size=state.limits.max_upload_bytes + MULTIPART_OVERHEAD,
    )
    app[control.STATE_KEY] = state
    app[control.CONTROL_TOKEN_KEY] = control_token or ""
    webhooks = WebhookDeliverer(state)
    app[WEBHOOKS_KEY] = webhooks
    app.router.add_route("*", r"/bot{token}/{method}", bot_api)
    app.router.add_route("*", r"/file/bot{token}/{path:.*}", file_download)
    app.router.add_routes(control.routes)
    for module in (files, inline, chats, settings):
        app.router.add_routes(module.routes)
    webchat.setup(app)

    persister = Persister(state, state.path) if state.path is not None else None

    async def on_startup(app: web.Application) -> None:
        state.open()
        if persister is not None:
            persister.attach()
        await webhooks.start()

    async def on_cleanup(app: web.Application) -> None:
        await webhooks.stop()
        if persister is not None:
            await persister.flush()

    async def on_shutdown(app: web.Application) -> None:
        state.shutdown()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app
