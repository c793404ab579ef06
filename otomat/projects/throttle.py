"""A small per-address limit on what the public pages store (estimates, leads), counted in
Django's cache like payment callbacks are (per process unless a shared cache is configured).
Over the limit a person gets a translated page, HTTP 429, that says when to try again."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from otomat.accounts.throttle import client_ip
from otomat.lib import windows

WINDOW_SECONDS = 3600


def limit(kind: str) -> int:
    """Per address and hour: ``PROJECTS_LEADS_PER_HOUR`` for "lead",
    ``PROJECTS_ESTIMATES_PER_HOUR`` for "estimate"; 0 turns the limit off."""
    if kind == "lead":
        return settings.PROJECTS_LEADS_PER_HOUR
    return settings.PROJECTS_ESTIMATES_PER_HOUR


def _key(kind: str, ip: str | None) -> str:
    return f"otomat:projects:{kind}:{ip or 'unknown'}"


def over_limit(request: HttpRequest, kind: str) -> bool:
    return windows.reached(_key(kind, client_ip(request)), limit(kind))


def count(request: HttpRequest, kind: str) -> None:
    windows.count(_key(kind, client_ip(request)), window_seconds=WINDOW_SECONDS)


def too_many(request: HttpRequest) -> HttpResponse:
    return render(request, "projects/throttled.html", {"minutes": WINDOW_SECONDS // 60}, status=429)
