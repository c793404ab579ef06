"""An instance's history in the reader's language: the causes of its events are stored as the
services, the runner and billing write them (English codes and phrases, kept for audits and
logs) and are translated when they are shown. A cause not known here is shown as stored."""

from __future__ import annotations

import re
from datetime import date

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from otomat.lib import dates

_PROCESS_ANSWERS = re.compile(r"^process (\d+|None) is answering$")  # None: a pod (Kubernetes)
_PROCESS_EXITED = re.compile(r"^process exited \(code (-?\d+|None)\); restart #(\d+) with backoff$")
_GAVE_UP = re.compile(r"^gave up after (\d+) restarts$")
_TRIAL = re.compile(r"^trial of (\d+) days started$")
_UPGRADED = re.compile(r"^upgraded (\S+) → (\S+)$")
_SUSPENDED = re.compile(r"^suspended \((billing|staff)\): (.*)$", re.S)
_LIFTED = re.compile(r"^suspension lifted \((billing|staff)\): (.*)$", re.S)
_TERMINATED = re.compile(r"^terminated: (.*)$", re.S)
_UNPAID = re.compile(r"^invoice (\S+) unpaid (\d+) days after its due date$")
_CANCELLED = re.compile(
    r"^cancelled by the customer; ended with the period on (\d{4}-\d{2}-\d{2})$"
)


def _usual() -> dict[str, str]:
    return {
        "created": _("created"),
        "installed": _("installed"),
        "started": _("started"),
        "stopped": _("stopped"),
        "restarted": _("restarted"),
        "configuration changed": _("settings changed"),
        "crash loop": _("kept crashing"),
        "order paid": _("order paid"),
        "unpaid": _("invoice unpaid"),
        "trial created": _("trial created"),
        "trial started": _("trial started"),
        "sandbox created": _("sandbox created"),
        "sandbox started": _("sandbox started"),
        "all overdue invoices paid": _("all overdue invoices paid"),
    }


def _reason(text: str) -> str:
    """A reason inside a cause (billing's words for a suspension or its end)."""
    if match := _UNPAID.match(text):
        late = int(match[2])
        return ngettext(
            "invoice %(number)s unpaid %(days)s day after its due date",
            "invoice %(number)s unpaid %(days)s days after its due date",
            late,
        ) % {"number": match[1], "days": late}
    return _usual().get(text, text)


def cause_text(cause: str) -> str:
    """``cause`` (as stored) in the active language when it is one of the usual ones; anything
    else as stored."""
    usual = _usual()
    if cause in usual:
        return usual[cause]
    if _PROCESS_ANSWERS.match(cause):
        return _("the bot answers")
    if match := _PROCESS_EXITED.match(cause):
        return _("the bot stopped (exit code %(code)s); restarting it, attempt %(n)s") % {
            "code": match[1],
            "n": match[2],
        }
    if match := _GAVE_UP.match(cause):
        return _("stopped trying after %(n)s restarts") % {"n": match[1]}
    if match := _TRIAL.match(cause):
        days = int(match[1])
        return ngettext(
            "free trial of %(days)s day started", "free trial of %(days)s days started", days
        ) % {"days": days}
    if match := _UPGRADED.match(cause):
        return _("upgraded from %(old)s to %(new)s") % {"old": match[1], "new": match[2]}
    if match := _SUSPENDED.match(cause):
        if match[1] == "billing":
            return _("suspended for an unpaid invoice: %(reason)s") % {"reason": _reason(match[2])}
        return _("suspended by staff: %(reason)s") % {"reason": match[2]}
    if match := _LIFTED.match(cause):
        return _("suspension lifted: %(reason)s") % {"reason": _reason(match[2])}
    if match := _TERMINATED.match(cause):
        return _("ended: %(reason)s") % {"reason": _reason(match[1])}
    if match := _CANCELLED.match(cause):
        return _("cancelled by the customer; ended with the period on %(day)s") % {
            "day": dates.medium_date(date.fromisoformat(match[1]))
        }
    return cause
