"""Two-factor authentication: TOTP authenticators and one-time recovery codes (django-otp).

One confirmed TOTP device per person (named "authenticator") and one static device holding the
recovery codes (named "recovery"). Each action writes its own audit event; codes and secrets are
never written to the audit log."""

from __future__ import annotations

import functools

from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from otomat.accounts.models import User

RECOVERY_CODE_COUNT = 10
TOTP_NAME = "authenticator"
RECOVERY_NAME = "recovery"


class TwoFactorError(Exception):
    """A refused two-factor action; the message is shown to the person."""


@functools.cache
def _exempt() -> frozenset[str]:
    return frozenset(
        reverse(name)
        for name in (
            "accounts:login",
            "accounts:login_code",
            "accounts:logout",
            "accounts:two_factor_enrol",
            "set_language",
        )
    )


def exempt_paths() -> frozenset[str]:
    """Pages a person between password and second factor may still open."""
    return _exempt()


def has_authenticator(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def had_authenticator_at_load(user: User) -> bool:
    """Whether ``user`` had a confirmed authenticator when this request loaded them (read in the
    same query as the person, ``EmailBackend.get_user``); asked again when the person was loaded
    some other way. For the gate at the start of a request only: an enrolment later in the
    request is seen by ``has_authenticator``."""
    known = getattr(user, "authenticator_at_load", None)
    return has_authenticator(user) if known is None else bool(known)


def normalise_code(code: str) -> str:
    """What people type: spaces and dashes ignored, case ignored."""
    return "".join(ch for ch in code if ch not in " -\t").lower()


def looks_like_totp(code: str) -> bool:
    return len(code) == 6 and code.isdigit()


def format_recovery_code(token: str) -> str:
    return f"{token[:4]}-{token[4:]}" if len(token) == 8 else token


def pending_authenticator(user: User) -> TOTPDevice:
    """The unconfirmed authenticator being set up (created on first call, then reused so the
    QR code stays the same when the page is reloaded)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False, name=TOTP_NAME).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)
    return device


def secret_of(device: TOTPDevice) -> str:
    """The base32 secret for manual entry, in groups of four."""
    from base64 import b32encode

    plain = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(plain[i : i + 4] for i in range(0, len(plain), 4))


def qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// URL as an inline SVG QR code, drawn here (nothing leaves the server)."""
    import segno

    return segno.make(device.config_url, error="m").svg_inline(scale=5, border=2)


def recovery_codes_left(user: User) -> int:
    return StaticToken.objects.filter(
        device__user=user, device__name=RECOVERY_NAME, device__confirmed=True
    ).count()


def _new_recovery_codes(user: User) -> list[str]:
    device, _ = StaticDevice.objects.get_or_create(
        user=user, name=RECOVERY_NAME, defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    tokens = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=t) for t in tokens)
    return [format_recovery_code(t) for t in tokens]


def confirm_authenticator(
    device: TOTPDevice, code: str, *, ip: str | None = None
) -> list[str] | None:
    """Finish setting up ``device`` with a code from the app. Returns the new recovery codes
    (shown once) on success, None when the code is wrong (nothing else changes then). The
    person's previous authenticator, if any, is replaced."""
    from otomat.accounts.services import record_audit

    code = normalise_code(code)
    if not looks_like_totp(code) or not device.verify_token(code):
        return None
    user = device.user
    with transaction.atomic():
        replaced = (
            TOTPDevice.objects.filter(user=user, confirmed=True).exclude(pk=device.pk).exists()
        )
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
        device.confirmed = True
        codes = _new_recovery_codes(user)
        record_audit(
            "auth.2fa_replaced" if replaced else "auth.2fa_enabled",
            actor=user,
            target=user,
            ip=ip,
        )
    return codes


def must_wait(user: User, code: str, *, device: TOTPDevice | None = None) -> bool:
    """True while django-otp's back-off after wrong codes (1 s, 2 s, 4 s, ...) refuses even a
    right code for the device this code is meant for, so the page can say so."""
    code = normalise_code(code)
    if device is not None:
        candidates = [device]
    elif looks_like_totp(code):
        candidates = list(TOTPDevice.objects.filter(user=user, confirmed=True))
    else:
        candidates = list(StaticDevice.objects.filter(user=user, name=RECOVERY_NAME))
    return any(not d.verify_is_allowed()[0] for d in candidates)


def verify_second_factor(user: User, code: str, *, ip: str | None = None):
    """Check a login code: a 6-digit TOTP code or an unused recovery code (which is then used
    up). Returns the device that accepted it, or None. A recovery code is checked under a row
    lock (django-otp's verify_token), so two requests cannot both spend one code."""
    import django_otp

    from otomat.accounts.services import record_audit

    code = normalise_code(code)
    if not code or len(code) > 16:
        return None
    if looks_like_totp(code):
        devices = TOTPDevice.objects.filter(user=user, confirmed=True)
    else:
        devices = StaticDevice.objects.filter(user=user, confirmed=True, name=RECOVERY_NAME)
    for device in devices:
        matched = django_otp.verify_token(user, device.persistent_id, code)
        if matched is not None:
            if isinstance(matched, StaticDevice):
                record_audit(
                    "auth.2fa_recovery_code_used",
                    actor=user,
                    target=user,
                    ip=ip,
                    data={"codes_left": recovery_codes_left(user)},
                )
            return matched
    return None


def confirm_identity(user: User, secret: str) -> bool:
    """True when ``secret`` is the person's password or a current authenticator code (used to
    disable two-factor or to make new recovery codes)."""
    if not secret or len(secret) > 4096:
        return False
    code = normalise_code(secret)
    if looks_like_totp(code):
        for device in TOTPDevice.objects.filter(user=user, confirmed=True):
            if device.verify_token(code):
                return True
    return user.check_password(secret)


def regenerate_recovery_codes(user: User, *, ip: str | None = None) -> list[str]:
    """New recovery codes; the old ones stop working. Raises TwoFactorError without an
    authenticator."""
    from otomat.accounts.services import record_audit

    if not has_authenticator(user):
        raise TwoFactorError(_("Set up an authenticator first."))
    with transaction.atomic():
        codes = _new_recovery_codes(user)
        record_audit("auth.2fa_recovery_codes_regenerated", actor=user, target=user, ip=ip)
    return codes


def disable(user: User, *, ip: str | None = None) -> None:
    """Remove the authenticator and recovery codes. Raises TwoFactorError for owner and staff
    while two-factor is required for them."""
    from django.conf import settings

    from otomat.accounts.services import record_audit

    if settings.REQUIRE_STAFF_2FA and (user.is_staff or user.is_superuser):
        raise TwoFactorError(
            _(
                "Two-factor authentication is required for staff: set up a new authenticator "
                "instead of turning it off."
            )
        )
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        record_audit("auth.2fa_disabled", actor=user, target=user, ip=ip)
