"""Errors raised by emulator handlers and turned into Telegram-style error envelopes.

Every failure a client can cause is an :class:`ApiError`; the server middleware renders it as
``{"ok": false, "error_code": N, "description": "..."}`` with HTTP status ``N``, which is how
aiogram and python-telegram-bot pick their exception classes.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A client-visible error with Telegram's envelope fields.

    ``description`` is the full text, prefix included (``"Bad Request: chat not found"``).
    ``parameters`` becomes the envelope's ``parameters`` object (``retry_after`` etc.) if given.
    """

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def to_envelope(self) -> dict[str, Any]:
        """Return the JSON body Telegram sends for this error."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(message: str) -> ApiError:
    """``400 Bad Request: <message>``, Telegram's answer to invalid parameters."""
    return ApiError(400, f"Bad Request: {message}")


def forbidden(message: str) -> ApiError:
    """``403 Forbidden: <message>``, e.g. a bot writing to a user who never started it."""
    return ApiError(403, f"Forbidden: {message}")


def not_found(message: str | None = None) -> ApiError:
    """``404 Not Found`` (Telegram's answer to an unknown method) with an optional detail."""
    return ApiError(404, f"Not Found: {message}" if message else "Not Found")


def conflict(message: str) -> ApiError:
    """``409 Conflict: <message>``, used for competing getUpdates and webhook clashes."""
    return ApiError(409, f"Conflict: {message}")


def unauthorized() -> ApiError:
    """``401 Unauthorized``: the token in the URL belongs to no bot."""
    return ApiError(401, "Unauthorized")
