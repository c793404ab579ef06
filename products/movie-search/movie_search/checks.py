"""The install-time check the platform runs for each entry of the ``sites`` field.

The schema marks the field with ``"x-otomat-check": "product:movie_search.checks:check_site"``;
the platform imports this module (it needs no aiogram) and calls :func:`check_site` for each
item while the customer fills in the form, so an unreadable site is reported at install time
instead of silently returning no films later.
"""

from __future__ import annotations

from movie_search.sources import DETECT_TIMEOUT, detect


def check_site(value: str) -> str:
    """Return a short confirmation such as ``"WordPress API · 128 posts"`` for a readable site.

    Raises ``ValueError(reason)`` when the site cannot be read ("HTTP 403", "no WordPress API,
    no feed, no sitemap found", "timed out after 10 s", "only http:// and https:// addresses are
    supported"...). Synchronous; returns within about ten seconds (all requests share one
    budget). Makes only GET requests and stores nothing.
    """
    if not isinstance(value, str):
        raise ValueError("the address must be text")
    report = detect(value, timeout=DETECT_TIMEOUT)
    if not report.supported:
        raise ValueError(report.reason)
    return report.summary()
