"""The second factor: the code step of the login, enrolment, recovery codes, turning it off.
Thin: parse, call otomat.accounts.two_factor, render."""

from __future__ import annotations

import time

import django_otp
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST, require_safe

from otomat.accounts import services, two_factor
from otomat.accounts.forms import ConfirmIdentityForm, EnrolCodeForm, TwoFactorCodeForm
from otomat.accounts.models import User
from otomat.accounts.throttle import client_ip, lockout_response
from otomat.lib.redirects import safe_next_url

# Between the password and the code: who passed the password, with which backend, and when.
PENDING_KEY = "otomat_2fa_pending"
PENDING_SECONDS = 600
WAIT = gettext_lazy("Too many wrong codes in a row. Wait a few seconds, then try again.")


def start_pending_login(request: HttpRequest, user: User) -> None:
    """Remember that ``user`` gave the right password; they are not logged in yet."""
    request.session.cycle_key()
    request.session[PENDING_KEY] = {
        "user": user.pk,
        "backend": getattr(user, "backend", "otomat.accounts.backends.EmailBackend"),
        "at": int(time.time()),
    }


def _pending_user(request: HttpRequest) -> tuple[User | None, str]:
    pending = request.session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None, ""
    if int(time.time()) - int(pending.get("at", 0)) > PENDING_SECONDS:
        request.session.pop(PENDING_KEY, None)
        return None, ""
    user = User.objects.filter(pk=pending.get("user"), is_active=True).first()
    return user, str(pending.get("backend", ""))


def _next(request: HttpRequest) -> str:
    return safe_next_url(
        request,
        request.POST.get("next") or request.GET.get("next"),
        settings.LOGIN_REDIRECT_URL,
    )


def login_code(request: HttpRequest) -> HttpResponse:
    """The login's second step. Serves a person who has just given their password (not logged
    in yet) and a signed-in person not yet verified (e.g. after the admin's login form).
    Wrong codes count toward the same lock-out as wrong passwords."""
    if request.user.is_authenticated:
        if request.user.is_verified() or not two_factor.has_authenticator(request.user):
            return redirect(_next(request))
        user, backend = request.user, ""
    else:
        user, backend = _pending_user(request)
        if user is None:
            messages.info(request, _("Please log in again."))
            return redirect("accounts:login")
    credentials = {"username": user.email}
    form = TwoFactorCodeForm(request.POST or None)
    if request.method == "POST":
        if not AxesProxyHandler.is_allowed(request, credentials):
            return lockout_response(request, None, credentials)
        if form.is_valid() and two_factor.must_wait(user, form.cleaned_data["code"]):
            form.add_error("code", WAIT)
        elif form.is_valid():
            device = two_factor.verify_second_factor(
                user, form.cleaned_data["code"], ip=client_ip(request)
            )
            if device is not None:
                return _finish_login(request, user, backend, device)
            user_login_failed.send(sender=__name__, credentials=credentials, request=request)
            form.add_error("code", _("That code is not right. Try again."))
    return render(
        request,
        "accounts/login_code.html",
        {"form": form, "next": _next(request)},
        status=400 if form.errors else 200,
    )


def _finish_login(request, user, backend, device) -> HttpResponse:
    if not request.user.is_authenticated:
        request.session.pop(PENDING_KEY, None)
        login(request, user, backend=backend or None)
        services.record_audit(
            "auth.login", actor=user, ip=client_ip(request), data={"second_factor": True}
        )
    else:
        from axes.utils import reset_request

        reset_request(request)
    django_otp.login(request, device)
    if device.persistent_id.startswith("otp_static"):
        left = two_factor.recovery_codes_left(user)
        messages.warning(
            request,
            _("You used a recovery code; %(count)d left. Make new ones under Two-factor.")
            % {"count": left},
        )
    return redirect(_next(request))


@login_required
@require_safe
def security(request: HttpRequest) -> HttpResponse:
    """Two-factor status, with the actions that need the password or a code."""
    user = request.user
    return render(
        request,
        "accounts/two_factor.html",
        {
            "enabled": two_factor.has_authenticator(user),
            "codes_left": two_factor.recovery_codes_left(user),
            "required": settings.REQUIRE_STAFF_2FA and (user.is_staff or user.is_superuser),
            "form": ConfirmIdentityForm(),
        },
    )


@login_required
def enrol(request: HttpRequest) -> HttpResponse:
    """Set up (or replace) the authenticator: QR code and secret, confirmed with a code; the
    recovery codes are shown once on success."""
    user = request.user
    if two_factor.has_authenticator(user) and not user.is_verified():
        # Halfway through logging in: the code first, then they may replace the authenticator.
        return redirect(reverse("accounts:login_code") + "?next=" + request.path)
    device = two_factor.pending_authenticator(user)
    form = EnrolCodeForm(request.POST or None)
    if (
        request.method == "POST"
        and form.is_valid()
        and two_factor.must_wait(user, form.cleaned_data["code"], device=device)
    ):
        form.add_error("code", WAIT)
    elif request.method == "POST" and form.is_valid():
        codes = two_factor.confirm_authenticator(
            device, form.cleaned_data["code"], ip=client_ip(request)
        )
        if codes is not None:
            django_otp.login(request, device)
            return _show_codes(request, codes, next_url=_next(request))
        form.add_error(
            "code",
            _("That code is not right. Check the time on your phone and try again."),
        )
    return render(
        request,
        "accounts/two_factor_enrol.html",
        {
            "form": form,
            "qr_svg": two_factor.qr_svg(device),
            "secret": two_factor.secret_of(device),
            "required": settings.REQUIRE_STAFF_2FA
            and (user.is_staff or user.is_superuser)
            and not two_factor.has_authenticator(user),
            "next": _next(request),
        },
        status=400 if form.errors else 200,
    )


def _show_codes(request: HttpRequest, codes: list[str], *, next_url: str) -> HttpResponse:
    response = render(
        request,
        "accounts/recovery_codes.html",
        {"codes": codes, "codes_text": "\n".join(codes) + "\n", "next": next_url},
    )
    response["Cache-Control"] = "no-store"
    return response


def _confirmed(request: HttpRequest) -> tuple[bool, ConfirmIdentityForm]:
    """Check the password-or-code field; wrong answers count toward the login lock-out."""
    form = ConfirmIdentityForm(request.POST)
    credentials = {"username": request.user.email}
    if not form.is_valid():
        return False, form
    if not AxesProxyHandler.is_allowed(request, credentials):
        form.add_error(None, _("Too many failed attempts. Try again later."))
        return False, form
    if two_factor.confirm_identity(request.user, form.cleaned_data["secret"]):
        return True, form
    user_login_failed.send(sender=__name__, credentials=credentials, request=request)
    form.add_error("secret", _("That is neither your password nor a current code."))
    return False, form


def _refused(request: HttpRequest, form: ConfirmIdentityForm) -> HttpResponse:
    user = request.user
    return render(
        request,
        "accounts/two_factor.html",
        {
            "enabled": two_factor.has_authenticator(user),
            "codes_left": two_factor.recovery_codes_left(user),
            "required": settings.REQUIRE_STAFF_2FA and (user.is_staff or user.is_superuser),
            "form": form,
        },
        status=400,
    )


@login_required
@require_POST
def regenerate_codes(request: HttpRequest) -> HttpResponse:
    ok, form = _confirmed(request)
    if not ok:
        return _refused(request, form)
    try:
        codes = two_factor.regenerate_recovery_codes(request.user, ip=client_ip(request))
    except two_factor.TwoFactorError as exc:
        form.add_error(None, str(exc))
        return _refused(request, form)
    return _show_codes(request, codes, next_url=reverse("accounts:two_factor"))


@login_required
@require_POST
def disable(request: HttpRequest) -> HttpResponse:
    ok, form = _confirmed(request)
    if not ok:
        return _refused(request, form)
    try:
        two_factor.disable(request.user, ip=client_ip(request))
    except two_factor.TwoFactorError as exc:
        form.add_error(None, str(exc))
        return _refused(request, form)
    request.session.pop(django_otp.DEVICE_ID_SESSION_KEY, None)
    messages.success(request, _("Two-factor authentication is off."))
    return redirect("accounts:two_factor")
