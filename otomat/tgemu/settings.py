"""Control endpoints for the emulator's clock, its send-rate limits and per-bot settings.

- ``GET /control/clock``, ``POST /control/clock {"advance_seconds": N}``: the emulator's time
  (message dates, the 48-hour delete limit, inline query expiry) moves forward by N seconds;
  ``/control/reset`` sets it back to the wall clock.
- ``GET /control/rate_limits``, ``PUT /control/rate_limits {...}``: see :mod:`.ratelimit`.
- ``PATCH /control/bots/<username>``: ``supports_inline_queries``, ``inline_feedback``,
  ``can_read_all_group_messages`` (BotFather's /setinline, /setinlinefeedback, /setprivacy).
"""

from __future__ import annotations

from aiohttp import web

from .control import _body, _bot, _json, _state, bot_view, require_staff
from .errors import bad_request

MAX_ADVANCE_SECONDS = 10 * 365 * 24 * 3600

routes = web.RouteTableDef()


def _clock_view(request: web.Request) -> web.Response:
    state = _state(request)
    return _json({"now": state.now(), "offset_seconds": state.clock_offset})


@routes.get("/control/clock")
async def get_clock(request: web.Request) -> web.Response:
    return _clock_view(request)


@routes.post("/control/clock")
async def advance_clock(request: web.Request) -> web.Response:
    """Body: ``advance_seconds`` (0 to ten years; time never goes backwards)."""
    require_staff(request)
    params = await _body(request)
    seconds = params.number("advance_seconds")
    if seconds is None or not 0 <= seconds <= MAX_ADVANCE_SECONDS:
        raise bad_request(
            f'field "advance_seconds" must be a number between 0 and {MAX_ADVANCE_SECONDS}'
        )
    state = _state(request)
    state.clock_offset += seconds
    state.changed()
    return _clock_view(request)


@routes.get("/control/rate_limits")
async def get_rate_limits(request: web.Request) -> web.Response:
    return _json(_state(request).rate_limiter.limits.to_json())


@routes.put("/control/rate_limits")
@routes.post("/control/rate_limits")
async def set_rate_limits(request: web.Request) -> web.Response:
    """Body: any of ``enabled``, ``bot_per_second``, ``private_chat_per_second``,
    ``private_chat_burst``, ``group_per_minute``; the others keep their values."""
    require_staff(request)
    state = _state(request)
    params = await _body(request)
    limiter = state.rate_limiter
    limiter.configure(limiter.limits.updated(params.as_dict()))
    return _json(limiter.limits.to_json())


@routes.patch("/control/bots/{username}")
async def update_bot(request: web.Request) -> web.Response:
    require_staff(request)
    state, bot = _state(request), _bot(request)
    params = await _body(request)
    settings = ("supports_inline_queries", "inline_feedback", "can_read_all_group_messages")
    unknown = sorted(set(params.as_dict()) - set(settings))
    if unknown:
        raise bad_request(f"unknown bot setting(s): {', '.join(unknown)}")
    values = {name: params.boolean(name, getattr(bot, name)) for name in settings}
    for name, value in values.items():  # all validated first, so a bad body changes nothing
        setattr(bot, name, value)
    state.changed(bot)
    return _json(bot_view(state, bot))
