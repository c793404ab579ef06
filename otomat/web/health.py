"""An instance's health for its page: is the bot answering, its uptime over 30 days with one bar
per day, its recent errors, its @username and a link to open the chat.

The instance page is composed in ``web`` (``web/instance_pages.py``), above instances and
monitoring; the card is drawn by the ``{% instance_health %}`` tag
(``web/templatetags/health_tags.py``) and refreshed from :func:`health_fragment`. The fragment answers 404 for an
instance the person may not see (the same scoping as the instance page).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from otomat.instances.models import Instance
from otomat.instances.views import get_instance
from otomat.lib import charts, emulator
from otomat.monitoring.models import Alert
from otomat.monitoring.models_uptime import TelegramStatus
from otomat.monitoring.uptime import uptime_for
from otomat.runtime.logs import tail

UPTIME_DAYS = 30
ERROR_LINES = 5
# Lines of the log searched for errors (the page shows the last few of them).
ERROR_SCAN_LINES = 400
_ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback \(most recent call last\)")
S = Instance.State
# The 30-day uptime moves by seconds a minute but costs seven queries and the walk over the last
# hours: the page and its 15-second refresh reuse one process's figures for this long, and
# compute them again at once when the instance changes state or the day changes.
UPTIME_REUSE_SECONDS = 30
_UPTIME_REUSED_MAX = 2_000
_uptime_reused: dict[tuple, tuple[float, object]] = {}


def telegram_status(instance: Instance) -> TelegramStatus | None:
    """What monitoring's Telegram check last saw of the bot (None before the first check), read
    once per instance object: the page's title and its health card both show it."""
    if not hasattr(instance, "_telegram_status"):
        instance._telegram_status = TelegramStatus.objects.filter(instance=instance).first()
    return instance._telegram_status


def bot_username(instance: Instance, telegram: TelegramStatus | None) -> str:
    """The bot's @username (without "@"): the emulator bot of a sandbox or trial, else what the
    last getMe answered (stored by monitoring's Telegram check)."""
    if instance.emulator_bot:
        return instance.emulator_bot
    return telegram.username if telegram and telegram.username else ""


def chat_link(instance: Instance, username: str) -> str:
    """Where a person opens a chat with the bot: the emulator's web chat when the bot talks to
    the built-in emulator (sandboxes and trials, or a Bot API base that is the emulator),
    t.me otherwise."""
    if not username:
        return ""
    on_emulator = instance.on_emulator or (
        bool(settings.EMULATOR_URL)
        and settings.BOT_API_URL.rstrip("/") == settings.EMULATOR_URL.rstrip("/")
    )
    if on_emulator:
        return emulator.chat_url(username)
    return f"https://t.me/{username}"


def _when(moment: datetime) -> str:
    return formats.date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")


def answering(instance: Instance, alerts: list[Alert], now: datetime) -> dict:
    """The plain-language headline: ``{"level": "ok"|"down"|"off"|"starting", "text": ...,
    "reason": ...}``."""
    state = instance.state
    if state == S.FAILED or (alerts and state in (S.RUNNING, S.PROVISIONING)):
        starts = [a.failing_since for a in alerts if a.failing_since]
        if state == S.FAILED:
            starts.append(instance.state_changed_at)
        since = min(starts) if starts else instance.state_changed_at
        reason = "; ".join(a.summary for a in alerts if a.summary)
        return {
            "level": "down",
            "text": _("Not answering since %(when)s") % {"when": _when(since)},
            "reason": reason,
        }
    if state == S.RUNNING:
        text = _("Answering")
        if instance.last_update_at:
            text = _("Answering · last message handled %(when)s") % {
                "when": _when(instance.last_update_at)
            }
        return {"level": "ok", "text": text, "reason": ""}
    if state == S.PROVISIONING:
        return {"level": "starting", "text": _("Starting…"), "reason": ""}
    texts = {
        S.PENDING: _("Not started yet"),
        S.STOPPED: _("Not answering: stopped on purpose"),
        S.SUSPENDED: _("Not answering: suspended"),
        S.TERMINATED: _("Removed"),
    }
    return {"level": "off", "text": texts.get(state, instance.get_state_display()), "reason": ""}


def _percent_text(value: float | None) -> str:
    if value is None:
        return _("no data")
    return formats.number_format(Decimal(str(value)).quantize(Decimal("0.01")), 2) + " %"


def _uptime(instance: Instance, now: datetime):
    key = (instance.pk, instance.state, instance.state_changed_at, now.astimezone(UTC).date())
    moment = time.monotonic()
    reused = _uptime_reused.get(key)
    if reused is not None and moment - reused[0] < UPTIME_REUSE_SECONDS:
        return reused[1]
    uptime = uptime_for(instance, days=UPTIME_DAYS, now=now)
    if len(_uptime_reused) >= _UPTIME_REUSED_MAX:
        _uptime_reused.clear()
    _uptime_reused[key] = (moment, uptime)
    return uptime


def uptime_card(instance: Instance, now: datetime) -> dict:
    uptime = _uptime(instance, now)
    days = []
    for day in uptime.days:
        percent = None if day.percent is None else Decimal(str(day.percent))
        tip = _percent_text(day.percent)
        if day.errors:
            tip += " · " + ngettext("%(n)s error", "%(n)s errors", day.errors) % {"n": day.errors}
        days.append((formats.date_format(day.day, "SHORT_DATE_FORMAT"), percent, tip))
    title = _("Uptime per day, last %(days)s days") % {"days": UPTIME_DAYS}
    return {
        "percent": uptime.percent,
        "percent_text": _percent_text(uptime.percent),
        "bars": charts.day_bars(days, title=title, height=20),
        "errors_period": sum(d.errors for d in uptime.days),
    }


def recent_errors(instance: Instance) -> list[str]:
    lines = tail(instance.log_path, ERROR_SCAN_LINES)
    return [line for line in lines if _ERROR_LINE.search(line)][-ERROR_LINES:]


def health_context(instance: Instance, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    alerts = list(
        Alert.objects.filter(instance=instance, state=Alert.State.FIRING).order_by("failing_since")
    )
    telegram = telegram_status(instance)
    username = bot_username(instance, telegram)
    return {
        "instance": instance,
        "answer": answering(instance, alerts, now),
        "uptime": uptime_card(instance, now) if instance.kind == Instance.Kind.CUSTOMER else None,
        "errors": recent_errors(instance),
        "bot_username": username,
        "chat_url": chat_link(instance, username),
        "telegram": telegram,
        "poll_seconds": 15,
    }


@login_required
def health_fragment(request: HttpRequest, instance_id) -> HttpResponse:
    """HTMX: the health card of one instance the person may see (404 otherwise)."""
    instance = get_instance(request, instance_id)
    return render(request, "web/_instance_health.html", health_context(instance))
