"""Headless Chromium: the owner is sent to set up two-factor at their first login, scans (here:
reads) the secret, confirms a code, keeps the recovery codes; logs out and in again with a code
from the app; then with a recovery code, which the next time is refused."""

from __future__ import annotations

import base64
import time

import pytest

from otomat.testing.browser import log_in, shot

pytestmark = [pytest.mark.browser]


def totp_from_secret(secret: str, *, later: int = 0) -> str:
    """What an authenticator app shows for the secret on the page (RFC 6238, SHA-1, 30 s)."""
    from django_otp.oath import TOTP

    plain = secret.replace(" ", "").upper()
    key = base64.b32decode(plain + "=" * (-len(plain) % 8))
    totp = TOTP(key, step=30, digits=6)
    totp.time = time.time() + later
    return f"{totp.token():06d}"


def log_out(page, url: str) -> None:
    page.goto(f"{url}/")
    page.locator("details.menu summary").click()
    page.get_by_role("button", name="Log out").click()


def test_enrol_log_in_with_a_code_and_with_a_recovery_code_once(
    browser_page, live_server, cast, settings
):
    from playwright.sync_api import expect

    settings.REQUIRE_STAFF_2FA = True
    # django-otp waits a second after a wrong code before it takes a right one (the page says
    # so; accounts/tests/test_two_factor.py shows it); this story types the right one at once.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    page = browser_page
    url = live_server.url

    # First login: the owner lands on enrolment, whatever page they asked for.
    log_in(page, url, "owner@example.com", cast.password)
    page.goto(f"{url}/admin/")
    expect(page.get_by_role("heading", name="Set up two-factor authentication")).to_be_visible()
    expect(page.locator(".qr svg")).to_be_visible()
    shot(page, "2fa-01-enrol")
    secret = page.get_by_test_id("totp-secret").inner_text()
    page.get_by_label("Code").fill("000000")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("That code is not right")).to_be_visible()
    page.get_by_label("Code").fill(totp_from_secret(secret))
    page.get_by_role("button", name="Confirm").click()

    expect(page.get_by_role("heading", name="Recovery codes")).to_be_visible()
    codes = page.get_by_test_id("recovery-codes").inner_text().split()
    assert len(codes) == 10
    expect(page.get_by_role("link", name="Download")).to_have_attribute(
        "download", "otomat-recovery-codes.txt"
    )
    shot(page, "2fa-02-recovery-codes")
    page.get_by_role("link", name="I have saved them").click()
    expect(page).to_have_url(f"{url}/admin/")
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()

    # Log out and in: the password, then a code from the app.
    log_out(page, url)
    log_in(page, url, "owner@example.com", cast.password)
    expect(page.get_by_role("heading", name="Two-factor code")).to_be_visible()
    shot(page, "2fa-03-code")
    page.get_by_label("Code").fill(totp_from_secret(secret, later=30))
    page.get_by_role("button", name="Verify").click()
    page.goto(f"{url}/admin/")
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()

    # A recovery code works instead of the app, once.
    log_out(page, url)
    log_in(page, url, "owner@example.com", cast.password)
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("You used a recovery code; 9 left")).to_be_visible()
    page.goto(f"{url}/admin/")
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()

    log_out(page, url)
    log_in(page, url, "owner@example.com", cast.password)
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("That code is not right")).to_be_visible()
    shot(page, "2fa-04-spent-recovery-code")
    page.goto(f"{url}/admin/")
    expect(page.get_by_role("heading", name="Site administration")).not_to_be_visible()
    assert "/admin/login/" in page.url  # still a visitor
