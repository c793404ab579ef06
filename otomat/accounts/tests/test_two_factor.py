"""Two-factor authentication: enrolment, the code step of the login, recovery codes, turning it
off, and the rule that owner and staff need it before any staff page (the admin included)."""

from __future__ import annotations

import re
import time

import pytest
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from otomat.accounts import two_factor
from otomat.accounts.models import ApiToken, AuditEvent

pytestmark = pytest.mark.smoke

LOGIN = "/accounts/login/"
CODE = "/accounts/login/code/"
ENROL = "/accounts/two-factor/set-up/"


@pytest.fixture(autouse=True)
def _required(settings):
    settings.REQUIRE_STAFF_2FA = True
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def code_for(device: TOTPDevice, *, later: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + later
    return f"{totp.token():0{device.digits}d}"


def enrol(user) -> tuple[TOTPDevice, list[str]]:
    device = two_factor.pending_authenticator(user)
    codes = two_factor.confirm_authenticator(device, code_for(device))
    device.refresh_from_db()
    return device, codes


def password_step(client, email, password):
    return client.post(LOGIN, {"username": email, "password": password})


def logged_in_as(client):
    return client.session.get("_auth_user_id")


# -- enrolment -------------------------------------------------------------------------------


def test_a_customer_enrols_with_a_code_and_sees_recovery_codes_once(client, cast):
    client.force_login(cast.alice)
    page = client.get(ENROL)
    assert page.status_code == 200
    body = page.content.decode()
    assert "<svg" in body and "otpauth" not in body  # the QR code is drawn here, not linked
    secret = page.context["secret"]
    device = TOTPDevice.objects.get(user=cast.alice, confirmed=False)
    assert secret.replace(" ", "") in two_factor.secret_of(device).replace(" ", "")
    # Reloading keeps the same secret (the app may already have it).
    assert client.get(ENROL).context["secret"] == secret

    done = client.post(ENROL, {"code": code_for(device)})
    assert done.status_code == 200
    codes = done.context["codes"]
    assert len(codes) == two_factor.RECOVERY_CODE_COUNT == len(set(codes))
    assert all(re.fullmatch(r"[a-z2-7]{4}-[a-z2-7]{4}", c) for c in codes)
    assert done["Cache-Control"] == "no-store"
    device.refresh_from_db()
    assert device.confirmed
    assert AuditEvent.objects.filter(action="auth.2fa_enabled", actor=cast.alice).count() == 1
    # The codes are not shown again on the two-factor page.
    status = client.get(reverse("accounts:two_factor")).content.decode()
    assert codes[0] not in status and "10 recovery codes left" in status


@pytest.mark.parametrize("code", ["000000", "", "12345", "abcdefgh", "1" * 40, "١٢٣٤٥٦"])
def test_a_wrong_or_malformed_enrolment_code_changes_nothing(client, cast, code):
    client.force_login(cast.alice)
    client.get(ENROL)
    response = client.post(ENROL, {"code": code})
    assert response.status_code == 400
    assert response.context["form"].errors
    assert not TOTPDevice.objects.filter(user=cast.alice, confirmed=True).exists()
    assert not StaticToken.objects.filter(device__user=cast.alice).exists()
    assert not AuditEvent.objects.filter(action__startswith="auth.2fa").exists()


def test_after_a_wrong_code_the_page_asks_to_wait(client, cast, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    client.force_login(cast.alice)
    client.get(ENROL)
    device = TOTPDevice.objects.get(user=cast.alice, confirmed=False)
    client.post(ENROL, {"code": "000000"})
    response = client.post(ENROL, {"code": code_for(device)})
    assert response.status_code == 400
    assert "Wait a few seconds" in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed


def test_the_code_step_asks_to_wait_after_a_wrong_code(client, cast, settings):
    device, _ = enrol(cast.alice)
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    password_step(client, "alice@example.com", cast.password)
    client.post(CODE, {"code": "000000"})
    response = client.post(CODE, {"code": code_for(device, later=30)})
    assert response.status_code == 400
    assert "Wait a few seconds" in response.content.decode()
    assert logged_in_as(client) is None


def test_re_enrolling_replaces_the_old_authenticator(cast):
    _old, old_codes = enrol(cast.alice)
    new, new_codes = enrol(cast.alice)
    assert list(TOTPDevice.objects.filter(user=cast.alice)) == [new]
    assert set(old_codes).isdisjoint(new_codes)
    assert AuditEvent.objects.filter(action="auth.2fa_replaced").count() == 1


def test_the_enrolment_page_is_for_signed_in_people(client, db):
    response = client.get(ENROL)
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))


# -- the login -------------------------------------------------------------------------------


def test_the_password_alone_does_not_log_in_someone_with_an_authenticator(client, cast):
    device, _ = enrol(cast.alice)
    response = password_step(client, "alice@example.com", cast.password)
    assert response.status_code == 302 and response.url.startswith(CODE)
    assert logged_in_as(client) is None
    assert client.get(reverse("instances:list")).status_code == 302  # still a visitor

    done = client.post(CODE, {"code": code_for(device, later=30)})
    assert done.status_code == 302
    assert logged_in_as(client) == str(cast.alice.pk)
    assert AuditEvent.objects.filter(
        action="auth.login", actor=cast.alice, data__second_factor=True
    ).exists()


def test_a_code_is_accepted_once(client, cast):
    device, _ = enrol(cast.alice)
    code = code_for(device, later=30)
    password_step(client, "alice@example.com", cast.password)
    assert client.post(CODE, {"code": code}).status_code == 302
    client.logout()
    password_step(client, "alice@example.com", cast.password)
    replay = client.post(CODE, {"code": code})
    assert replay.status_code == 400
    assert logged_in_as(client) is None


def test_a_recovery_code_logs_in_once(client, cast):
    _, codes = enrol(cast.alice)
    password_step(client, "alice@example.com", cast.password)
    response = client.post(CODE, {"code": codes[3].upper().replace("-", " ")})
    assert response.status_code == 302
    assert logged_in_as(client) == str(cast.alice.pk)
    event = AuditEvent.objects.get(action="auth.2fa_recovery_code_used")
    assert event.actor == cast.alice and event.data == {"codes_left": 9}
    assert codes[3] not in str(event.data)
    client.logout()
    password_step(client, "alice@example.com", cast.password)
    again = client.post(CODE, {"code": codes[3]})
    assert again.status_code == 400
    assert logged_in_as(client) is None
    assert two_factor.recovery_codes_left(cast.alice) == 9


@pytest.mark.parametrize("code", ["", "x" * 33, "000000", "zzzz-zzzz"])
def test_bad_codes_at_login_are_refused_with_a_message(client, cast, code):
    enrol(cast.alice)
    password_step(client, "alice@example.com", cast.password)
    response = client.post(CODE, {"code": code})
    assert response.status_code == 400
    assert response.context["form"].errors
    assert logged_in_as(client) is None
    assert two_factor.recovery_codes_left(cast.alice) == 10


def test_the_code_step_without_a_password_goes_back_to_login(client, cast):
    enrol(cast.alice)
    response = client.post(CODE, {"code": "000000"})
    assert response.status_code == 302 and response.url == reverse("accounts:login")


def test_the_password_step_expires(client, cast, monkeypatch):
    device, _ = enrol(cast.alice)
    password_step(client, "alice@example.com", cast.password)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 11 * 60)
    response = client.post(CODE, {"code": code_for(device)})
    assert response.status_code == 302 and response.url == reverse("accounts:login")
    assert logged_in_as(client) is None


@pytest.mark.parametrize("evil", ["https://evil.example/", "//evil.example", "/\\evil.example"])
def test_the_code_step_sends_only_to_this_site(client, cast, evil):
    device, _ = enrol(cast.alice)
    client.post(LOGIN, {"username": "alice@example.com", "password": cast.password, "next": evil})
    response = client.post(CODE, {"code": code_for(device, later=30), "next": evil})
    assert response.status_code == 302
    assert "evil.example" not in response.url
    assert logged_in_as(client) == str(cast.alice.pk)


def test_a_customer_without_an_authenticator_logs_in_with_the_password(client, cast):
    response = password_step(client, "alice@example.com", cast.password)
    assert response.status_code == 302 and not response.url.startswith(CODE)
    assert client.get(reverse("instances:list")).status_code == 200


# -- staff -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/", "/catalog/manage/", "/billing/manage/"])
def test_staff_without_an_authenticator_are_sent_to_enrolment(client, cast, path):
    client.force_login(cast.staff)
    response = client.get(path)
    assert response.status_code == 302
    assert response.url.startswith(ENROL)


def test_an_htmx_request_is_sent_to_enrolment_as_a_whole_page(client, cast):
    client.force_login(cast.staff)
    response = client.get("/catalog/manage/", HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert response["HX-Redirect"].startswith(ENROL)


def test_staff_reach_staff_pages_after_enrolling(client, cast):
    client.force_login(cast.owner)
    client.get(ENROL)
    device = TOTPDevice.objects.get(user=cast.owner, confirmed=False)
    assert client.post(ENROL, {"code": code_for(device)}).status_code == 200
    assert client.get("/admin/").status_code == 200


def test_staff_2fa_can_be_turned_off_by_setting(client, cast, settings):
    settings.REQUIRE_STAFF_2FA = False
    client.force_login(cast.staff)
    assert client.get("/admin/").status_code == 200


def test_the_admin_login_form_still_asks_for_the_code(client, cast):
    device, _ = enrol(cast.owner)
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "owner@example.com", "password": cast.password, "next": "/admin/"},
    )
    assert response.status_code == 302
    blocked = client.get("/admin/")
    assert blocked.status_code == 302 and blocked.url.startswith(CODE)
    # Halfway through, the enrolment page cannot be used to swap the authenticator.
    assert client.get(ENROL).url.startswith(CODE)
    assert client.post(CODE, {"code": code_for(device, later=30)}).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_the_api_keeps_token_auth_without_a_second_factor(client, cast):
    _, token = ApiToken.issue(cast.staff, "ci")
    response = client.get("/api/v1/instances", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200


# -- recovery codes and turning it off -------------------------------------------------------


def verified_client(client, user, device):
    client.force_login(user)
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    return client


def test_new_recovery_codes_replace_the_old_ones(client, cast):
    device, old = enrol(cast.alice)
    verified_client(client, cast.alice, device)
    response = client.post(reverse("accounts:two_factor_regenerate"), {"secret": cast.password})
    assert response.status_code == 200
    new = response.context["codes"]
    assert set(new).isdisjoint(old)
    assert two_factor.verify_second_factor(cast.alice, old[0]) is None
    assert two_factor.verify_second_factor(cast.alice, new[0]) is not None
    assert AuditEvent.objects.filter(action="auth.2fa_recovery_codes_regenerated").count() == 1


@pytest.mark.parametrize("secret", ["", "wrong-password", "000000", "x" * 5000])
def test_new_recovery_codes_need_the_password_or_a_code(client, cast, secret):
    device, old = enrol(cast.alice)
    verified_client(client, cast.alice, device)
    response = client.post(reverse("accounts:two_factor_regenerate"), {"secret": secret})
    assert response.status_code == 400
    assert "codes" not in response.context
    assert two_factor.verify_second_factor(cast.alice, old[0]) is not None  # old ones still work
    assert not AuditEvent.objects.filter(action="auth.2fa_recovery_codes_regenerated").exists()


def test_recovery_codes_need_an_authenticator_first(client, cast):
    client.force_login(cast.alice)
    response = client.post(reverse("accounts:two_factor_regenerate"), {"secret": cast.password})
    assert response.status_code == 400
    assert "Set up an authenticator first" in response.content.decode()
    assert two_factor.recovery_codes_left(cast.alice) == 0


def test_the_two_factor_page_only_shows(client, cast):
    client.force_login(cast.alice)
    assert client.post(reverse("accounts:two_factor")).status_code == 405
    assert client.get(reverse("accounts:two_factor")).status_code == 200


def test_the_two_factor_actions_want_a_post(client, cast):
    client.force_login(cast.alice)
    assert client.get(reverse("accounts:two_factor_disable")).status_code == 405
    assert client.get(reverse("accounts:two_factor_regenerate")).status_code == 405


@pytest.mark.parametrize("secret", ["", "wrong-password", "000000", "x" * 5000])
def test_turning_off_needs_the_password_or_a_code(client, cast, secret):
    device, _ = enrol(cast.alice)
    verified_client(client, cast.alice, device)
    response = client.post(reverse("accounts:two_factor_disable"), {"secret": secret})
    assert response.status_code == 400
    assert two_factor.has_authenticator(cast.alice)
    assert not AuditEvent.objects.filter(action="auth.2fa_disabled").exists()


def test_turning_off_with_a_code(client, cast):
    device, _ = enrol(cast.alice)
    verified_client(client, cast.alice, device)
    response = client.post(
        reverse("accounts:two_factor_disable"), {"secret": code_for(device, later=30)}
    )
    assert response.status_code == 302
    assert not two_factor.has_authenticator(cast.alice)
    assert two_factor.recovery_codes_left(cast.alice) == 0
    assert AuditEvent.objects.filter(action="auth.2fa_disabled", actor=cast.alice).exists()
    # The next login needs only the password again.
    client.logout()
    assert not password_step(client, "alice@example.com", cast.password).url.startswith(CODE)


def test_staff_cannot_turn_it_off_while_it_is_required(client, cast):
    device, _ = enrol(cast.staff)
    verified_client(client, cast.staff, device)
    response = client.post(reverse("accounts:two_factor_disable"), {"secret": cast.password})
    assert response.status_code == 400
    assert "required for staff" in response.content.decode()
    assert two_factor.has_authenticator(cast.staff)


def test_the_two_factor_pages_are_translated(client, cast):
    cast.alice.language = "id"
    cast.alice.save()
    client.force_login(cast.alice)
    assert "Siapkan autentikasi dua faktor" in client.get(ENROL).content.decode()


@pytest.mark.django_db(transaction=True)
def test_two_logins_at_once_cannot_both_spend_one_recovery_code(cast):
    import threading

    from django.db import connection

    _, codes = enrol(cast.alice)
    barrier = threading.Barrier(4)
    results = []

    def spend():
        try:
            barrier.wait()
            results.append(two_factor.verify_second_factor(cast.alice, codes[0]) is not None)
        finally:
            connection.close()

    threads = [threading.Thread(target=spend) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    assert two_factor.recovery_codes_left(cast.alice) == 9


def test_a_session_opened_before_enrolment_is_asked_for_the_code_on_its_next_page(client, cast):
    """The gate reads the authenticator with the person at every request: a session that
    logged in with the password alone is stopped as soon as an authenticator exists."""
    assert password_step(client, "alice@example.com", cast.password).status_code == 302
    assert client.get(reverse("instances:list")).status_code == 200
    enrol(cast.alice)  # from another device
    response = client.get(reverse("instances:list"))
    assert response.status_code == 302 and response.url.startswith(CODE)


def test_a_signed_in_person_their_account_and_the_gate_cost_one_query(
    cast, django_assert_num_queries
):
    from otomat.accounts.backends import EmailBackend

    with django_assert_num_queries(1):
        alice = EmailBackend().get_user(cast.alice.pk)
        assert alice.account == cast.alice.account
        assert two_factor.had_authenticator_at_load(alice) is False
    # An enrolment begun and never confirmed is no authenticator.
    TOTPDevice.objects.create(user=cast.alice, name="half-done", confirmed=False)
    assert two_factor.had_authenticator_at_load(EmailBackend().get_user(cast.alice.pk)) is False
    enrol(cast.alice)
    staff = EmailBackend().get_user(cast.staff.pk)
    with django_assert_num_queries(0):
        assert staff.account is None  # no membership: known from the same query
    assert two_factor.had_authenticator_at_load(EmailBackend().get_user(cast.alice.pk)) is True
