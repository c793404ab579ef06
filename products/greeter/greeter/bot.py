"""Greeter Bot: greets users on /start, answers /help, counts greetings.

Every handler takes its instance's :class:`BotContext` as ``ctx`` (aiogram workflow data) and
keeps state only in ``ctx.store``, so one process can host many greeters (shared runtime).

Store layout (keys): ``user:<id>`` first greeting of a user, ``daily:<id>`` greetings today,
``count:<id>`` Count-button presses, ``stats:users`` and ``stats:greetings`` totals.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from otomat.botkit import BotContext

CB_HELP = "greeter:help"
CB_COUNT = "greeter:count"

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "help_button": "Help",
        "count_button": "Count",
        "count": "Count: {n}",
        "again": "Welcome back, {name}!",
        "help": "I greet new users. Send /start to be greeted again.",
        "contact": "Contact: {contact}",
        "fallback": "Sorry, I only understand /start and /help.",
        "stats": "Greeted users: {users}\nGreetings sent: {greetings}",
        "not_admin": "Sorry, /stats is only for the bot's administrators.",
    },
    "id": {
        "help_button": "Bantuan",
        "count_button": "Hitung",
        "count": "Hitungan: {n}",
        "again": "Selamat datang kembali, {name}!",
        "help": "Saya menyapa pengguna baru. Kirim /start untuk disapa lagi.",
        "contact": "Kontak: {contact}",
        "fallback": "Maaf, saya hanya mengerti /start dan /help.",
        "stats": "Pengguna yang disapa: {users}\nSapaan terkirim: {greetings}",
        "not_admin": "Maaf, /stats hanya untuk admin bot.",
    },
    "pl": {
        "help_button": "Pomoc",
        "count_button": "Licznik",
        "count": "Licznik: {n}",
        "again": "Witaj ponownie, {name}!",
        "help": "Witam nowych użytkowników. Wyślij /start, aby przywitać się ponownie.",
        "contact": "Kontakt: {contact}",
        "fallback": "Przepraszam, rozumiem tylko /start i /help.",
        "stats": "Przywitani użytkownicy: {users}\nWysłane powitania: {greetings}",
        "not_admin": "Przepraszam, /stats jest tylko dla administratorów bota.",
    },
}


@dataclass(frozen=True)
class Settings:
    """The instance configuration with the schema's defaults applied."""

    welcome_text: str
    language: str
    show_buttons: bool
    max_daily_greetings: int
    reply_delay_seconds: float
    admins: frozenset[str]
    help_text: str
    help_contact: str

    @classmethod
    def of(cls, ctx: BotContext) -> Settings:
        config: dict[str, Any] = ctx.config
        language = config.get("language", "en")
        if language not in TEXTS:
            language = "en"
        help_cfg = config.get("help") or {}
        return cls(
            welcome_text=config.get("welcome_text") or "Hello, {name}! Welcome.",
            language=language,
            show_buttons=bool(config.get("show_buttons", True)),
            max_daily_greetings=int(config.get("max_daily_greetings", 3)),
            reply_delay_seconds=float(config.get("reply_delay_seconds", 0)),
            admins=frozenset(a.lstrip("@").lower() for a in config.get("admins") or []),
            help_text=help_cfg.get("text") or TEXTS[language]["help"],
            help_contact=help_cfg.get("contact") or "",
        )

    def t(self, key: str, **values: Any) -> str:
        return TEXTS[self.language][key].format(**values)


def render_welcome(template: str, name: str) -> str:
    """Replace ``{name}`` only; other braces in the owner's text stay as written."""
    return template.replace("{name}", name)


def keyboard(settings: Settings) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text=settings.t("help_button"), callback_data=CB_HELP),
                InlineKeyboardButton(text=settings.t("count_button"), callback_data=CB_COUNT),
            ]
        ]
    )


def help_message(settings: Settings) -> str:
    if settings.help_contact:
        return f"{settings.help_text}\n\n{settings.t('contact', contact=settings.help_contact)}"
    return settings.help_text


def record_greeting(ctx: BotContext, user_id: int) -> int:
    """Count one greeting of ``user_id``; return how many they got today (this one included)."""
    store = ctx.store
    today = datetime.now(UTC).date().isoformat()
    if store.get(f"user:{user_id}") is None:
        store.set(f"user:{user_id}", {"first_seen": today})
        store.incr("stats:users")
    store.incr("stats:greetings")
    daily = store.get(f"daily:{user_id}") or {}
    count = daily.get("count", 0) + 1 if daily.get("date") == today else 1
    store.set(f"daily:{user_id}", {"date": today, "count": count})
    return count


def build_router(ctx: BotContext) -> Router:
    """The product's entry point (``greeter.bot:build_router``)."""
    router = Router(name=f"greeter:{ctx.instance_id}")

    @router.message(CommandStart())
    async def on_start(message: Message, ctx: BotContext) -> None:
        settings = Settings.of(ctx)
        user = message.from_user
        name = user.first_name if user else "there"
        today_count = record_greeting(ctx, user.id) if user else 1
        if settings.reply_delay_seconds > 0:
            await asyncio.sleep(settings.reply_delay_seconds)
        if today_count > settings.max_daily_greetings:
            await message.answer(settings.t("again", name=name))
            return
        markup = keyboard(settings) if settings.show_buttons else None
        await message.answer(render_welcome(settings.welcome_text, name), reply_markup=markup)

    @router.message(Command("help"))
    async def on_help(message: Message, ctx: BotContext) -> None:
        await message.answer(help_message(Settings.of(ctx)))

    @router.message(Command("stats"))
    async def on_stats(message: Message, ctx: BotContext) -> None:
        settings = Settings.of(ctx)
        username = (message.from_user.username or "") if message.from_user else ""
        if username.lower() not in settings.admins:
            await message.answer(settings.t("not_admin"))
            return
        await message.answer(
            settings.t(
                "stats",
                users=ctx.store.get("stats:users", 0),
                greetings=ctx.store.get("stats:greetings", 0),
            )
        )

    @router.callback_query(F.data == CB_HELP)
    async def on_help_button(query: CallbackQuery, ctx: BotContext) -> None:
        await query.answer()
        if query.message is not None and query.bot is not None:
            await query.bot.send_message(query.message.chat.id, help_message(Settings.of(ctx)))

    @router.callback_query(F.data == CB_COUNT)
    async def on_count_button(query: CallbackQuery, ctx: BotContext) -> None:
        settings = Settings.of(ctx)
        count = ctx.store.incr(f"count:{query.from_user.id}")
        text = settings.t("count", n=count)
        await query.answer(text)
        # An old message may be inaccessible (older than 48 h): answer with a new one then.
        if isinstance(query.message, Message):
            await query.message.edit_text(text, reply_markup=keyboard(settings))
        elif query.message is not None and query.bot is not None:
            await query.bot.send_message(query.message.chat.id, text)

    @router.message(F.text)
    async def on_other_text(message: Message, ctx: BotContext) -> None:
        await message.answer(Settings.of(ctx).t("fallback"))

    return router
