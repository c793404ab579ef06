"""Otomat's local Telegram Bot API emulator (``python -m otomat.tgemu``).

It speaks the subset of the Bot API that aiogram and python-telegram-bot bots use (long polling,
webhooks, messages, inline keyboards, callback queries, commands, photos and documents, inline
mode, groups and channels, Telegram's flood limits), serves a web chat for people and a JSON
control API for tests. It does not import Django: it runs as a separate light
process. See ``docs/tgemu.md``.

Public entry points: :func:`create_app`, :class:`EmulatorState`, :func:`open_state`, and
:class:`otomat.tgemu.testing.EmulatorServer` for tests.
"""

from .persistence import open_state
from .ratelimit import RateLimits
from .server import create_app
from .state import EmulatorState, Limits

__all__ = ["EmulatorState", "Limits", "RateLimits", "create_app", "open_state"]
