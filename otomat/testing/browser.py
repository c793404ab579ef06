"""Debian's Chromium for browser tests (no Django here: the emulator's tests use it too)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Headless on a machine without internet: without the background-networking flags Chromium keeps
# trying to reach Google's services and fills the logs with refused connections.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

SCREENSHOTS = os.environ.get("OTOMAT_SCREENSHOTS", "")


def shot(page, name: str) -> None:
    """Save a full-page screenshot under $OTOMAT_SCREENSHOTS (when set) to look at later."""
    if SCREENSHOTS:
        folder = Path(SCREENSHOTS)
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def log_in(page, url: str, email: str, password: str) -> None:
    """Log in through the login form of the server at ``url``."""
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
