"""Form data that several tests post."""

from __future__ import annotations


def greeter_install_form(token: str, **extra: str) -> dict[str, str]:
    """The Greeter Bot's install form, filled in with ``token``; ``extra`` adds or overrides."""
    return {
        "instance_name": "Ordered greeter",
        "bot_token": token,
        "welcome_text": "Hi {name}",
        "language": "en",
        "max_daily_greetings": "3",
        "reply_delay_seconds": "0",
        "admins": "",
        "help__text": "",
        "help__contact": "",
        **extra,
    }
