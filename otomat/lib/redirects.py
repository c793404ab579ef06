"""Where a ``next`` parameter may send a person: only back to this site."""

from __future__ import annotations

from django.http import HttpRequest
from django.shortcuts import resolve_url
from django.utils.http import url_has_allowed_host_and_scheme


def safe_next_url(request: HttpRequest, candidate: str | None, default: str) -> str:
    """``candidate`` when it points at this site (same host, and https when the request is), else
    ``default`` resolved like ``redirect()`` does (a URL name or a path). Never raises."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(default)
