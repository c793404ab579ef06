"""Strict reading of an untrusted callback body, shared by the JSON-speaking adapters: every
failure is a ``SignatureError`` (a callback that does not parse must change nothing, exactly
like one whose signature does not verify)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, NoReturn

from otomat.billing.gateways.base import SignatureError


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number")


class StrictJson:
    """``StrictJson("Midtrans notification", max_bytes)``: ``load_json``, ``text``,
    ``optional_text`` and ``refuse`` with the provider's name in every message."""

    def __init__(self, what: str, max_bytes: int) -> None:
        self.what, self.max_bytes = what, max_bytes

    def refuse(self, reason: str) -> NoReturn:
        raise SignatureError(f"{self.what}: {reason}.")

    def load_json(self, body: bytes) -> dict[str, Any]:
        if not isinstance(body, bytes | bytearray):
            self.refuse("the body is not bytes")
        if len(body) > self.max_bytes:
            self.refuse(f"the body is larger than {self.max_bytes} bytes")
        try:
            # Decimals rather than floats, and no NaN/Infinity: nothing in a notification may
            # become inexact on the way in.
            data = json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
        except (ValueError, RecursionError):  # bad JSON or UTF-8, huge integers, deep nesting
            self.refuse("the body is not JSON")
        if not isinstance(data, dict):
            self.refuse("the body is not a JSON object")
        return data

    def text(self, data: Mapping[str, Any], name: str) -> str:
        value = data.get(name)
        if not isinstance(value, str) or not value:
            self.refuse(f"{name} is missing or not a string")
        if len(value) > 255:
            self.refuse(f"{name} is too long")
        return value

    def optional_text(self, data: Mapping[str, Any], name: str) -> str:
        value = data.get(name)
        if value is None:
            return ""
        if not isinstance(value, str) or len(value) > 255:
            self.refuse(f"{name} is not a short string")
        return value
