"""Live checks for configuration values, named by a schema field's ``x-otomat-check``.

A check takes the submitted value and returns a short confirmation to show next to the field
(``"@greeter_bot"``), or raises :class:`CheckError` with a message for the customer. Checks run
in the install/edit form's ``clean`` and in the HTMX endpoint ``catalog:check_field``.

Bot tokens are credentials: they never appear in a message, an exception or a log line. httpx
logs every request URL at INFO, and the Bot API puts the token in the URL, so
:class:`RedactBotTokens` is attached to httpx's loggers when the catalog app starts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import httpx
from django.conf import settings
from django.utils.translation import gettext as _

from otomat.catalog.errors import CheckError

Check = Callable[[str], str]
CHECKS: dict[str, Check] = {}

# Telegram tokens are "<bot id>:<secret>". Checking the shape first also keeps a value with "/"
# or "?" from changing the request path.
TOKEN_RE = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{1,100}$")
TOKEN_IN_TEXT_RE = re.compile(r"bot\d{1,20}:[A-Za-z0-9_-]+")
DEFAULT_TIMEOUT = 5.0  # seconds; the customer is waiting on the form


def register(name: str) -> Callable[[Check], Check]:
    """Decorator: make ``fn`` available as ``"x-otomat-check": name`` in config schemas."""

    def decorator(fn: Check) -> Check:
        CHECKS[name] = fn
        return fn

    return decorator


def run_check(name: str, value: str, *, source_dir: Path | None = None) -> str:
    """Run the check called ``name`` on ``value``; returns the confirmation text.

    ``product:module:function`` checks are the product's own and run sandboxed with the product
    version's files (``source_dir``). Raises :class:`CheckError` when the value is refused or the
    check cannot run (an unknown platform check name is a programming error: ``KeyError``).
    """
    if name.startswith("product:"):
        from otomat.catalog.product_checks import run_product_check

        return run_product_check(name, value, source_dir=source_dir)
    return CHECKS[name](value)


def is_known_check(name: str) -> bool:
    from otomat.catalog.product_checks import is_product_check

    return name in CHECKS or is_product_check(name)


def get_bot_username(token: str, *, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Ask the Bot API (``settings.BOT_API_URL``) who ``token`` belongs to.

    Returns the bot's username (without "@"); raises :class:`CheckError` with a message that
    never contains the token.
    """
    token = token.strip()
    if not TOKEN_RE.match(token):
        raise CheckError(
            _("This does not look like a bot token; @BotFather gives one like 123456789:AAE…")
        )
    base = settings.BOT_API_URL.rstrip("/")
    try:
        response = httpx.get(f"{base}/bot{token}/getMe", timeout=timeout)
    except httpx.HTTPError as exc:
        # str(exc) of connection errors is the socket error, without the URL (and the token).
        reason = _redact(str(exc)) or type(exc).__name__
        raise CheckError(
            _("Cannot reach the Bot API at %(url)s: %(reason)s") % {"url": base, "reason": reason}
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code in (401, 404):
        # Telegram answers 401 for a revoked/unknown token and 404 for a malformed one.
        description = body.get("description") if isinstance(body, dict) else None
        raise CheckError(
            _("Telegram rejected this token (%(code)s %(reason)s)")
            % {
                "code": response.status_code,
                "reason": _redact(description or response.reason_phrase),
            }
        )
    if not isinstance(body, dict) or not body.get("ok"):
        raise CheckError(
            _("The Bot API at %(url)s answered unexpectedly (HTTP %(code)s)")
            % {"url": base, "code": response.status_code}
        )
    username = (body.get("result") or {}).get("username")
    if not isinstance(username, str) or not username:
        raise CheckError(_("The Bot API at %(url)s did not say which bot this is") % {"url": base})
    return username


@register("telegram_token")
def check_telegram_token(value: str) -> str:
    """``x-otomat-check: telegram_token``: the token belongs to a bot; returns "@username"."""
    return "@" + get_bot_username(value)


def _redact(text: str) -> str:
    return TOKEN_IN_TEXT_RE.sub("bot<token>", text)


class RedactBotTokens(logging.Filter):
    """Replace ``bot<id>:<secret>`` in a log record with ``bot<token>``.

    httpx logs ``HTTP Request: GET https://…/bot123:ABC/getMe`` at INFO; this keeps tokens out of
    logs for every caller (the catalog's checks, botkit, the runtime), not only ours.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the caller's bug; don't lose the record
            return True
        if TOKEN_IN_TEXT_RE.search(message):
            record.msg, record.args = _redact(message), None
        return True


def install_log_redaction() -> None:
    """Attach :class:`RedactBotTokens` to the loggers that see Bot API URLs (idempotent)."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactBotTokens) for f in logger.filters):
            logger.addFilter(RedactBotTokens())
