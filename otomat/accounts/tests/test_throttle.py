"""Login throttling (django-axes) on every door: the customer login form, the admin's login form,
the two-factor code step, and the confirmations that take a password or a code."""

from __future__ import annotations

import time

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from otomat.accounts import two_factor

pytestmark = pytest.mark.smoke

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.AXES_FAILURE_LIMIT = 3
    # django-otp's own per-device back-off would refuse a right code straight after a wrong one;
    # these tests are about the lock-out by email and address.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def code_for(device: TOTPDevice, *, later: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + later
    return f"{totp.token():0{device.digits}d}"


def enrolled(user) -> TOTPDevice:
    device = two_factor.pending_authenticator(user)
    assert two_factor.confirm_authenticator(device, code_for(device)) is not None
    device.refresh_from_db()
    return device


def is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_the_customer_login_locks_after_the_limit_even_with_the_right_password(client, cast):
    for _ in range(3):
        response = client.post(LOGIN, {"username": "alice@example.com", "password": "wrong"})
        assert response.status_code in (200, 429)
    locked = client.post(LOGIN, {"username": "alice@example.com", "password": cast.password})
    assert locked.status_code == 429
    assert "Too many failed attempts" in locked.content.decode()
    assert not is_logged_in(client)


def test_the_admin_login_is_throttled_too(client, cast):
    """Ten wrong owner passwords on /admin/login/, then the right one: refused (it logged in
    before django-axes)."""
    for _ in range(10):
        client.post(ADMIN_LOGIN, {"username": "owner@example.com", "password": "wrong"})
    response = client.post(
        ADMIN_LOGIN, {"username": "owner@example.com", "password": cast.password}
    )
    assert response.status_code == 429
    assert not is_logged_in(client)


def test_failures_on_one_form_count_on_the_other(client, cast):
    for _ in range(3):
        client.post(ADMIN_LOGIN, {"username": "owner@example.com", "password": "wrong"})
    response = client.post(LOGIN, {"username": "owner@example.com", "password": cast.password})
    assert response.status_code == 429
    assert not is_logged_in(client)


def test_the_case_of_the_email_does_not_give_more_tries(client, cast):
    for email in ("Alice@example.com", "ALICE@EXAMPLE.COM", " alice@example.com"):
        client.post(LOGIN, {"username": email, "password": "wrong"})
    response = client.post(LOGIN, {"username": "alice@example.com", "password": cast.password})
    assert response.status_code == 429


def test_the_lock_is_per_email_and_address(client, cast):
    for _ in range(3):
        client.post(LOGIN, {"username": "alice@example.com", "password": "wrong"})
    # Another person from the same address, and alice from another address, are not locked.
    other = client.post(LOGIN, {"username": "charlie@example.com", "password": cast.password})
    assert other.status_code == 302
    client.logout()
    elsewhere = client.post(
        LOGIN,
        {"username": "alice@example.com", "password": cast.password},
        REMOTE_ADDR="203.0.113.9",
    )
    assert elsewhere.status_code == 302


def test_a_forwarded_for_header_does_not_buy_more_tries(client, cast):
    for n in range(3):
        client.post(
            LOGIN,
            {"username": "alice@example.com", "password": "wrong"},
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        )
    response = client.post(
        LOGIN,
        {"username": "alice@example.com", "password": cast.password},
        HTTP_X_FORWARDED_FOR="198.51.100.200",
    )
    assert response.status_code == 429


def test_the_lock_lifts_after_the_cool_off(client, cast, settings):
    for _ in range(3):
        client.post(LOGIN, {"username": "alice@example.com", "password": "wrong"})
    later = timezone.now() + timezone.timedelta(seconds=settings.LOGIN_FAILURE_WINDOW + 5)
    with time_machine.travel(later, tick=False):
        response = client.post(LOGIN, {"username": "alice@example.com", "password": cast.password})
    assert response.status_code == 302
    assert is_logged_in(client)


def test_a_good_login_resets_the_count(client, cast):
    for _ in range(2):
        client.post(LOGIN, {"username": "alice@example.com", "password": "wrong"})
    assert (
        client.post(LOGIN, {"username": "alice@example.com", "password": cast.password}).status_code
        == 302
    )
    client.logout()
    for _ in range(2):
        client.post(LOGIN, {"username": "alice@example.com", "password": "wrong"})
    assert (
        client.post(LOGIN, {"username": "alice@example.com", "password": cast.password}).status_code
        == 302
    )


def test_the_lock_page_is_translated(client, cast):
    for _ in range(3):
        client.post(LOGIN, {"username": "alice@example.com", "password": "wrong"})
    response = client.post(
        LOGIN,
        {"username": "alice@example.com", "password": "wrong"},
        HTTP_ACCEPT_LANGUAGE="pl",
    )
    assert response.status_code == 429
    assert "Zbyt wiele" in response.content.decode()


@pytest.mark.parametrize(
    "data",
    [
        {"username": "", "password": ""},
        {"username": "not-an-email", "password": "x"},
        {"username": "a" * 5000 + "@example.com", "password": "x"},
        {"username": "alice@example.com"},
    ],
)
def test_bad_login_input_is_a_form_error_and_locks_nothing(client, cast, data):
    for _ in range(4):
        response = client.post(LOGIN, data)
        assert response.status_code == 200
        assert response.context["form"].errors
    good = client.post(LOGIN, {"username": "alice@example.com", "password": cast.password})
    assert good.status_code == 302


def test_wrong_two_factor_codes_lock_the_code_step(client, cast):
    device = enrolled(cast.alice)
    client.post(LOGIN, {"username": "alice@example.com", "password": cast.password})
    for _ in range(3):
        client.post(reverse("accounts:login_code"), {"code": "000000"})
    response = client.post(reverse("accounts:login_code"), {"code": code_for(device, later=30)})
    assert response.status_code == 429
    assert not is_logged_in(client)


def test_wrong_codes_and_wrong_passwords_share_one_count(client, cast):
    device = enrolled(cast.alice)
    client.post(LOGIN, {"username": "alice@example.com", "password": "wrong"})
    client.post(LOGIN, {"username": "alice@example.com", "password": "wrong"})
    client.post(LOGIN, {"username": "alice@example.com", "password": cast.password})
    client.post(reverse("accounts:login_code"), {"code": "000000"})
    response = client.post(reverse("accounts:login_code"), {"code": code_for(device, later=30)})
    assert response.status_code == 429
    assert not is_logged_in(client)


def test_a_right_code_after_a_wrong_one_logs_in_below_the_limit(client, cast):
    device = enrolled(cast.alice)
    client.post(LOGIN, {"username": "alice@example.com", "password": cast.password})
    client.post(reverse("accounts:login_code"), {"code": "000000"})
    response = client.post(reverse("accounts:login_code"), {"code": code_for(device, later=30)})
    assert response.status_code == 302
    assert is_logged_in(client)


def test_wrong_confirmations_count_toward_the_lock(client, cast):
    enrolled(cast.alice)
    client.force_login(cast.alice)
    session = client.session
    device = TOTPDevice.objects.get(user=cast.alice, confirmed=True)
    session["otp_device_id"] = device.persistent_id
    session.save()
    for _ in range(3):
        response = client.post(reverse("accounts:two_factor_disable"), {"secret": "wrong"})
        assert response.status_code in (400, 429)
    response = client.post(reverse("accounts:two_factor_disable"), {"secret": cast.password})
    assert response.status_code == 400
    assert "Too many failed attempts" in response.content.decode()
    assert two_factor.has_authenticator(cast.alice)


def test_a_password_reset_does_not_log_in(client, cast):
    """The reset form sets a password and sends the person to the (throttled) login form; it is
    not a way around the lock."""
    import re

    from django.core import mail

    client.post(reverse("accounts:password_reset"), {"email": "alice@example.com"})
    link = re.search(r"https?://[^/]+(/\S+)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    response = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a-brand-new-secret-77", "new_password2": "a-brand-new-secret-77"},
    )
    assert response.status_code == 302
    assert response.url == reverse("accounts:login")
    assert not is_logged_in(client)
