"""Apply each person's language and time zone at the edges (the database stays in UTC)."""

import zoneinfo

from django.middleware.locale import LocaleMiddleware
from django.utils import timezone, translation
from django.utils.deprecation import MiddlewareMixin


class AccountLocaleMiddleware(LocaleMiddleware):
    """Django's locale negotiation (session/cookie/Accept-Language), but a logged-in person's saved
    language wins. Runs before authentication, so it reads the user lazily from the session."""

    def process_request(self, request):
        super().process_request(request)
        from django.contrib.auth import get_user

        user = get_user(request)
        # AuthenticationMiddleware's request.user takes this one instead of reading it again.
        request._cached_user = user
        if user.is_authenticated and user.language:
            translation.activate(user.language)
            request.LANGUAGE_CODE = user.language

    def process_response(self, request, response):
        response = super().process_response(request, response)
        # The language was activated for this request's thread only: what runs in that thread
        # next (a background task, the next request's first steps) starts from the default.
        translation.deactivate()
        return response


class AccountTimezoneMiddleware(MiddlewareMixin):
    def process_request(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.timezone:
            try:
                timezone.activate(zoneinfo.ZoneInfo(user.timezone))
                return
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                pass
        timezone.deactivate()


class TwoFactorRequiredMiddleware:
    """Sends a signed-in person who has not passed their second factor to the code page, and
    owner and staff without an authenticator (when ``REQUIRE_STAFF_2FA`` is on) to enrolment,
    before any other page, the admin included. The API (token auth) is left alone."""

    EXEMPT_PREFIXES = (
        "/static/",
        "/api/",
        "/i18n/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/favicon.ico",
    )

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        redirect_to = self._redirect_for(request)
        if redirect_to is not None:
            return redirect_to
        return self.get_response(request)

    def _redirect_for(self, request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        # django-otp's OTPMiddleware (earlier in MIDDLEWARE) adds is_verified; without it nobody
        # counts as verified, so a missing middleware shuts the door instead of opening it.
        if getattr(user, "is_verified", lambda: False)():
            return None
        from django.conf import settings
        from django.shortcuts import redirect
        from django.urls import reverse
        from django.utils.http import urlencode

        from otomat.accounts import two_factor

        path = request.path
        if path.startswith(self.EXEMPT_PREFIXES):
            return None
        if two_factor.had_authenticator_at_load(user):
            target = "accounts:login_code"
        elif settings.REQUIRE_STAFF_2FA and (user.is_staff or user.is_superuser):
            target = "accounts:two_factor_enrol"
        else:
            return None
        if path in two_factor.exempt_paths():
            return None
        query = urlencode({"next": request.get_full_path()}) if request.method == "GET" else ""
        url = reverse(target) + (f"?{query}" if query else "")
        if getattr(request, "htmx", False):
            # A fragment request: have htmx load the whole page instead of swapping it in.
            from django.http import HttpResponse

            response = HttpResponse(status=204)
            response["HX-Redirect"] = url
            return response
        return redirect(url)
