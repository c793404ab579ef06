"""Reading Bot API method parameters the way Telegram does.

Telegram accepts parameters from the query string, ``application/x-www-form-urlencoded``,
``application/json`` and ``multipart/form-data`` bodies, in any mix. Form values are strings, and
structured values (``reply_markup``, ``allowed_updates``…) arrive JSON-encoded inside them, so every
getter here accepts both the native JSON type and its string form. A value of the wrong shape is a
``400 Bad Request``, never an exception escaping to the server.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .errors import ApiError, bad_request

# Telegram identifiers are signed 64-bit integers; anything larger cannot name a chat or message.
_INT64_MAX = 2**63 - 1


async def read_request_params(request: web.Request) -> dict[str, Any]:
    """Merge the query string and the body of ``request`` into one parameter dict.

    Body values win over query values with the same name. Raises :class:`ApiError` (400) when a
    JSON body is not an object or cannot be decoded; an oversized body surfaces as aiohttp's
    ``HTTPRequestEntityTooLarge``, which the middleware renders as Telegram's 413.
    """
    params: dict[str, Any] = {key: value for key, value in request.query.items()}
    if request.method not in ("POST", "PUT", "PATCH") or not request.body_exists:
        return params
    content_type = request.content_type
    if content_type == "application/json":
        raw = await request.read()
        if not raw.strip():
            return params
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request("can't parse JSON request body") from exc
        if not isinstance(body, dict):
            raise bad_request("JSON request body must be an object")
        params.update(body)
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.post()
        except ValueError as exc:
            # aiohttp raises ValueError for a malformed multipart stream or bad encoding.
            raise bad_request("can't parse request body") from exc
        for key, value in form.items():
            # Files (FileField) are kept as-is; no supported method reads them yet.
            params[key] = value
    return params


class Params:
    """Typed, Telegram-flavoured access to one request's parameters.

    Getters return ``None`` for an absent parameter (an empty string counts as absent, because
    that is what form-encoding clients send for "no value") and raise ``400`` for a present one of
    the wrong type.
    """

    def __init__(self, values: Mapping[str, Any]):
        self._values = dict(values)

    def as_dict(self) -> dict[str, Any]:
        """A copy of every parameter as received."""
        return dict(self._values)

    def __contains__(self, name: str) -> bool:
        return self.raw(name) is not None

    def raw(self, name: str) -> Any:
        """The value as received, or ``None`` when absent or an empty string."""
        value = self._values.get(name)
        if value is None or (isinstance(value, str) and value == ""):
            return None
        return value

    def string(self, name: str, *, max_len: int | None = None) -> str | None:
        """A string parameter; numbers are accepted and converted, like Telegram does."""
        value = self.raw(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if not isinstance(value, str):
            raise bad_request(f'field "{name}" must be of type String')
        if max_len is not None and len(value) > max_len:
            raise bad_request(f'field "{name}" is too long')
        return value

    def integer(self, name: str) -> int | None:
        """A signed 64-bit integer given as a JSON number or a decimal string."""
        value = self.raw(name)
        if value is None:
            return None
        result: int | None = None
        if isinstance(value, bool):
            result = None
        elif isinstance(value, int):
            result = value
        elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
            result = int(value)
        elif isinstance(value, str):
            text = value.strip()
            digits = text[1:] if text[:1] in "+-" else text
            if digits.isascii() and digits.isdigit() and len(digits) <= 19:
                result = int(text)
        if result is None or abs(result) > _INT64_MAX:
            raise bad_request(f'field "{name}" must be of type Integer')
        return result

    def number(self, name: str) -> float | None:
        """A finite float given as a JSON number or a decimal string."""
        value = self.raw(name)
        if value is None:
            return None
        try:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError(name)
            result = float(value)
        except ValueError as exc:
            raise bad_request(f'field "{name}" must be of type Float') from exc
        if not math.isfinite(result):
            raise bad_request(f'field "{name}" must be of type Float')
        return result

    def boolean(self, name: str, default: bool = False) -> bool:
        """A boolean given as JSON ``true``/``false``, ``"true"``/``"false"`` or ``1``/``0``."""
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
            return value.strip().lower() in ("true", "1")
        raise bad_request(f'field "{name}" must be of type Boolean')

    def json_value(self, name: str, *, error: str | None = None) -> Any:
        """A structured parameter, either native JSON or a JSON-encoded string.

        ``error`` replaces the generic message when the string is not valid JSON, so callers can
        mirror Telegram's specific wording (e.g. for ``reply_markup``).
        """
        value = self.raw(name)
        if value is None or not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError as exc:
            raise bad_request(error or f'can\'t parse "{name}" JSON object') from exc

    def json_object(self, name: str, *, error: str | None = None) -> dict[str, Any] | None:
        """Like :meth:`json_value` but the result must be a JSON object."""
        value = self.json_value(name, error=error)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise bad_request(error or f'field "{name}" must be a JSON object')
        return value

    def json_list(self, name: str, *, error: str | None = None) -> list[Any] | None:
        """Like :meth:`json_value` but the result must be a JSON array."""
        value = self.json_value(name, error=error)
        if value is None:
            return None
        if not isinstance(value, list):
            raise bad_request(error or f'field "{name}" must be an Array')
        return value

    def chat_ref(self, name: str = "chat_id") -> int | str:
        """A required chat reference: an integer id or an ``@username`` string.

        Raises ``Bad Request: chat_id is empty`` when absent; a string that is neither numeric nor
        ``@``-prefixed cannot name a chat, and Telegram answers ``chat not found`` for it.
        """
        value = self.raw(name)
        if value is None:
            raise bad_request(f"{name} is empty")
        if isinstance(value, str) and value.strip().startswith("@"):
            return value.strip()
        try:
            result = self.integer(name)
        except ApiError as exc:
            raise bad_request("chat not found") from exc
        assert result is not None
        return result
