"""What to tell someone whose request went over Django's size limits.

Django refuses a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (files aside), more than
``DATA_UPLOAD_MAX_NUMBER_FIELDS`` fields or ``DATA_UPLOAD_MAX_NUMBER_FILES`` files by raising
``RequestDataTooBig``/``TooManyFieldsSent``/``TooManyFilesSent``, which end as a bare "Bad
Request (400)". The API (a JSON 413) and the pages (``otomat.web.views.bad_request``) say
instead which limit it was, with these messages."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.utils.translation import gettext as _

TOO_LARGE = (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent)


def format_size(size: int) -> str:
    """``2 MB``, ``512 KB`` or ``1000 bytes``: a limit as people read it."""
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return _("%(n)d bytes") % {"n": size}


def body_limit() -> str:
    """The body size limit (``DATA_UPLOAD_MAX_MEMORY_SIZE``), for descriptions and messages."""
    size = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return _("no limit") if size is None else format_size(size)


def too_large_message(exc: Exception, *, api: bool = False) -> str:
    """A sentence saying which limit ``exc`` (one of :data:`TOO_LARGE`) went over."""
    if isinstance(exc, TooManyFieldsSent):
        return _("The request has more fields than the %(n)d accepted.") % {
            "n": settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        }
    if isinstance(exc, TooManyFilesSent):
        return _("The request has more files than the %(n)d accepted.") % {
            "n": settings.DATA_UPLOAD_MAX_NUMBER_FILES
        }
    if api:
        return _("The request body is larger than %(limit)s, the most the API accepts.") % {
            "limit": body_limit()
        }
    return _(
        "What you sent is too large: a form may hold at most %(limit)s, attached files aside."
    ) % {"limit": body_limit()}
