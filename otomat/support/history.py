"""A ticket's history (staff's panel) in the reader's language. Events keep the words the
services wrote (English, or a status's label in the language of the request that changed it)
for audits; they are translated when shown. An event not known here is shown as stored."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from otomat.support.models import Priority, Ticket, TicketEvent


def _label(choices, stored: str) -> str:
    """A status or priority label stored in any of the platform's languages, in the active one
    (the stored words when they are not a label)."""
    from django.conf import settings

    found = None
    for lang, _name in settings.LANGUAGES:
        with translation.override(lang):
            found = next((v for v, label in choices.choices if str(label) == stored), None)
        if found is not None:
            return str(dict(choices.choices)[found])
    return stored


def _arrow(choices) -> Callable[[re.Match], str]:
    return lambda m: (
        _("%(old)s → %(new)s")
        % {
            "old": _label(choices, m[1]),
            "new": _label(choices, m[2]),
        }
    )


def _opened(m: re.Match) -> str:
    channels = dict(Ticket.Channel.choices)
    channel = str(channels.get(m[2], m[2]))
    text = (
        _("opened from an email")
        if m[1] == "email" and m[2] == "email"
        else _("opened via %(channel)s") % {"channel": channel}
    )
    if m[3]:
        text += ", " + _("following up %(number)s") % {"number": m[3]}
    return text


def _out_of_scope(m: re.Match) -> str:
    reason = m[1]
    if used := re.match(r"^all (\d+) revisions used$", reason):
        n = int(used[1])
        reason = ngettext("all %(n)s revision used", "all %(n)s revisions used", n) % {"n": n}
    elif ended := re.match(r"^free support ended on (\S+) and no included time is left$", reason):
        reason = _("free support ended on %(day)s and no included time is left") % {"day": ended[1]}
    return _("outside what was bought: %(reason)s") % {"reason": reason}


def _sla(m: re.Match) -> str:
    label = {
        "first response": _("first response"),
        "response": _("response"),
        "resolution": _("resolution"),
    }[m[1]]
    if m[2] == "exceeded":
        return _("%(clock)s time exceeded") % {"clock": label}
    text = _("%(clock)s time %(percent)s%% used") % {"clock": label, "percent": m[3]}
    return text + (": " + _("escalated to the owner") if m[4] else "")


_PATTERNS: list[tuple[str, re.Pattern, Callable[[re.Match], str]]] = [
    ("opened", re.compile(r"^opened by (\S+) via (\w+)(?:, following up (\S+))?$"), _opened),
    ("out_of_scope", re.compile(r"^outside what was bought: (.*)$", re.S), _out_of_scope),
    (
        "revision",
        re.compile(r"^uses revision (\d+) of (\d+)$"),
        lambda m: _("uses revision %(n)s of %(total)s") % {"n": m[1], "total": m[2]},
    ),
    ("status", re.compile(r"^(.+) → (.+)$"), _arrow(Ticket.Status)),
    ("priority", re.compile(r"^(.+) → (.+)$"), _arrow(Priority)),
    ("assigned", re.compile(r"^unassigned$"), lambda m: _("unassigned")),
    (
        "assigned",
        re.compile(r"^assigned to (\S+)$"),
        lambda m: _("assigned to %(who)s") % {"who": m[1]},
    ),
    (
        "reopened",
        re.compile(r"^the customer wrote again$"),
        lambda m: _("the customer wrote again"),
    ),
    (
        "merged",
        re.compile(r"^(\S+) merged into this ticket$"),
        lambda m: _("%(number)s merged into this ticket") % {"number": m[1]},
    ),
    (
        "split",
        re.compile(r"^messages moved to (\S+)$"),
        lambda m: _("messages moved to %(number)s") % {"number": m[1]},
    ),
    (
        "split",
        re.compile(r"^split from (\S+)$"),
        lambda m: _("split from %(number)s") % {"number": m[1]},
    ),
    (
        "rated",
        re.compile(r"^rated (\d)/5$"),
        lambda m: _("rated %(n)s/5") % {"n": m[1]},
    ),
    (
        "quote",
        re.compile(r"^quote sent: (.+) for (\d+) days$"),
        lambda m: (
            ngettext(
                "quote sent: %(price)s for %(days)s day",
                "quote sent: %(price)s for %(days)s days",
                int(m[2]),
            )
            % {"price": m[1], "days": int(m[2])}
        ),
    ),
    (
        "quote",
        re.compile(r"^quote accepted; invoice (\S+)$"),
        lambda m: _("quote accepted; invoice %(number)s") % {"number": m[1]},
    ),
    (
        "quote",
        re.compile(r"^quote paid \((\S+)\); ticket unlocked$"),
        lambda m: _("quote paid (%(number)s); ticket unlocked") % {"number": m[1]},
    ),
    ("quote", re.compile(r"^quote declined$"), lambda m: _("quote declined")),
    ("quote", re.compile(r"^quote withdrawn$"), lambda m: _("quote withdrawn")),
    (
        "bug",
        re.compile(r"^linked to product bug #(\d+)$"),
        lambda m: _("linked to product bug #%(n)s") % {"n": m[1]},
    ),
    (
        "bug",
        re.compile(r"^fix released in (\S+)$"),
        lambda m: _("fix released in %(version)s") % {"version": m[1]},
    ),
    (
        "sla_",
        re.compile(
            r"^(first response|response|resolution) time "
            r"(exceeded|(\d+)% used(: escalated to the owner)?)$"
        ),
        _sla,
    ),
    (
        "sla_breach",
        re.compile(r"^first response given after its due time$"),
        lambda m: _("first response given after its due time"),
    ),
    (
        "sla_breach",
        re.compile(r"^resolved after the resolution time$"),
        lambda m: _("resolved after the resolution time"),
    ),
]


def event_text(event: TicketEvent) -> str:
    """``event``'s detail in the active language (as stored when it is not a usual one)."""
    for kind, pattern, render in _PATTERNS:
        if event.kind.startswith(kind) and (match := pattern.match(event.detail)):
            return render(match)
    return event.detail
