"""Error pages Django renders itself (``handler400`` in ``otomat.urls``).

A request over Django's size limits (``DATA_UPLOAD_MAX_MEMORY_SIZE``, the number of fields or
files) raises before any view runs, usually in the CSRF check reading the form; Django would
answer a bare "Bad Request (400)". This page says what was too large and the limit, with a 413;
under ``/api/`` the answer is the API's JSON. Other bad requests keep Django's own answer."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views import defaults

from otomat.lib.limits import TOO_LARGE, too_large_message


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not isinstance(exception, TOO_LARGE):
        return defaults.bad_request(request, exception)
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": too_large_message(exception, api=True)}, status=413)
    context = {"title": _("Too large"), "message": too_large_message(exception)}
    return render(request, "web/error.html", context, status=413)
