"""The platform's client for the built-in emulator's control API (sandboxes and trials)."""

from __future__ import annotations

import secrets

import httpx
from django.conf import settings


class EmulatorUnavailable(Exception):
    """The emulator is not configured or does not answer; the message says which."""


def _client() -> httpx.Client:
    if not settings.EMULATOR_URL:
        raise EmulatorUnavailable("No emulator is configured (OTOMAT_EMULATOR_URL).")
    return httpx.Client(base_url=settings.EMULATOR_URL, timeout=5)


def create_bot(prefix: str, first_name: str, *, welcome: dict | None = None) -> tuple[str, str]:
    """Create a bot with a fresh username; returns (username, token). Raises EmulatorUnavailable.
    ``welcome``: what the bot's chat page greets people with (``{"hint": {lang: text}, "back":
    url, "back_label": {lang: text}}``, see docs/tgemu.md): only set here, never by a link."""
    username = f"{prefix}{secrets.token_hex(4)}_bot"
    body = {"username": username, "first_name": first_name[:64]}
    if welcome:
        body["welcome"] = welcome
    try:
        with _client() as client:
            response = client.post("/control/bots", json=body)
            response.raise_for_status()
            return username, response.json()["token"]
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        raise EmulatorUnavailable(f"The emulator at {settings.EMULATOR_URL} failed: {exc}") from exc


def delete_bot(username: str) -> None:
    """Best effort: a bot left behind in the emulator harms nobody."""
    try:
        with _client() as client:
            client.delete(f"/control/bots/{username}")
    except (httpx.HTTPError, EmulatorUnavailable):
        pass


def chat_url(username: str) -> str:
    return f"{settings.EMULATOR_PUBLIC_URL}/chat/{username}"
