"""Otomat bot SDK: what a product imports.

A product exposes ``build_router(ctx: BotContext) -> aiogram.Router`` and names it in its
manifest (``entry = "package.module:build_router"``); handlers receive the same context by
declaring a ``ctx: BotContext`` parameter. See docs/botkit.md.

This package's top level imports no aiogram, so the runner can use its protocol constants cheaply.
"""

from otomat.botkit.context import BotContext
from otomat.botkit.scheduler import Job, JobHandler, Scheduler
from otomat.botkit.store import MemoryStore, SQLiteStore, Store

__all__ = ["BotContext", "Job", "JobHandler", "MemoryStore", "SQLiteStore", "Scheduler", "Store"]
