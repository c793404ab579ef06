"""Greeter Bot, the first first-party Otomat product (see bot.py)."""
