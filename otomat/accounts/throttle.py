"""How django-axes identifies a login attempt and what a locked-out person sees.

Axes counts failed ``authenticate()`` calls (every login form, ``/admin/login/`` included) and
failed two-factor codes, per (email, address) pair; settings.py wires these callables in."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def client_ip(request: HttpRequest) -> str | None:
    """The peer address. Forwarded-for headers are not read here: the web server (uvicorn with
    its trusted proxies) already puts the real client into REMOTE_ADDR."""
    return request.META.get("REMOTE_ADDR") or None


def username_of(request: HttpRequest, credentials: dict | None = None) -> str:
    """The email an attempt is for, normalised like the login backend does, so ``Alice@X`` and
    ``alice@x`` share one counter."""
    source = credentials if credentials else getattr(request, "POST", {})
    value = source.get("username") or source.get("email") or ""
    return str(value).strip().lower()[:254]


def lockout_minutes() -> int:
    return max(1, (settings.LOGIN_FAILURE_WINDOW + 59) // 60)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials=None
) -> HttpResponse:
    """The translated "too many attempts" page, HTTP 429, for every locked-out login form."""
    return render(
        request,
        "accounts/locked_out.html",
        {"minutes": lockout_minutes()},
        status=429,
    )
