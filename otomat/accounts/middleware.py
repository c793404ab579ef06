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
        if user.is_authenticated and user.language:
            translation.activate(user.language)
            request.LANGUAGE_CODE = user.language


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
