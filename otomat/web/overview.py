"""The owner's overview (the staff home page): what runs, what is broken, who owes what, which
tickets wait on us and which incidents are open, each linking to its list.

It composes several domains (instances, monitoring, billing, support), so it lives in ``web``,
the top layer. Every figure is an aggregate query: the page costs the same dozen queries with ten
instances or ten thousand (``tests/test_overview.py`` counts them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from otomat.billing import reports
from otomat.catalog.views import staff_required
from otomat.instances.models import Instance, InstanceEvent
from otomat.lib import charts
from otomat.monitoring.models import Incident
from otomat.support.models import Ticket

SPARK_DAYS = 14
# The same horizon as the support workload's "SLA at risk" list.
SLA_RISK_HOURS = 4
OPEN_INCIDENTS_SHOWN = 5
FAILED_SHOWN = 10

# The three headline figures: (state, colour of its sparkline).
HEADLINE = (
    (Instance.State.RUNNING, "#009E73"),
    (Instance.State.FAILED, "#D55E00"),
    (Instance.State.SUSPENDED, "#E69F00"),
)


def state_history(current: dict[str, int], now: datetime, days: int = SPARK_DAYS):
    """state → the number of instances in it at the end of each of the last ``days`` UTC days
    (oldest first, today last = now). Walked back from today's counts through the recorded
    transitions of those days, counted by day in one grouped query."""
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    rows = (
        InstanceEvent.objects.filter(at__gte=start, at__lte=now)
        .annotate(day=TruncDate("at", tzinfo=UTC))
        .values("day", "from_state", "to_state")
        .annotate(n=Count("id"))
        .order_by()
    )
    entered: dict[tuple, int] = {}
    left: dict[tuple, int] = {}
    for row in rows:
        if row["to_state"]:
            key = (row["day"], row["to_state"])
            entered[key] = entered.get(key, 0) + row["n"]
        if row["from_state"]:
            key = (row["day"], row["from_state"])
            left[key] = left.get(key, 0) + row["n"]
    history: dict[str, list[int]] = {}
    for state in Instance.State.values:
        value = current.get(state, 0)
        values = [value]
        for offset in range(days - 1):
            day = today - timedelta(days=offset)
            value = max(0, value - entered.get((day, state), 0) + left.get((day, state), 0))
            values.append(value)
        history[state] = values[::-1]
    return history


def overview_context(now: datetime | None = None) -> dict:
    now = now or timezone.now()
    counts = dict(
        Instance.objects.values_list("state")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("state", "n")
    )
    history = state_history(counts, now)
    labels = dict(Instance.State.choices)
    headline = []
    for state, color in HEADLINE:
        title = _("%(state)s instances, last %(days)s days") % {
            "state": labels[state],
            "days": SPARK_DAYS,
        }
        headline.append(
            {
                "state": state,
                "label": labels[state],
                "count": counts.get(state, 0),
                "spark": charts.sparkline(
                    history[state], title=title, color=color, width=180, height=36
                ),
            }
        )
    others = [
        {"state": value, "label": label, "count": counts.get(value, 0)}
        for value, label in Instance.State.choices
        if value not in {s for s, _c in HEADLINE}
    ]
    open_incidents = Incident.objects.exclude(status=Incident.Status.RESOLVED)
    incident_counts = open_incidents.aggregate(
        total=Count("id"),
        unacknowledged=Count("id", filter=Q(status=Incident.Status.OPEN)),
    )
    soon = now + timedelta(hours=SLA_RISK_HOURS)
    tickets = Ticket.objects.filter(
        status__in=(Ticket.Status.OPEN, Ticket.Status.PENDING, Ticket.Status.AWAITING_PAYMENT)
    ).aggregate(
        waiting=Count("id", filter=Q(status=Ticket.Status.OPEN)),
        at_risk=Count("id", filter=Q(response_due__lte=soon) | Q(resolution_due__lte=soon)),
        breached=Count("id", filter=Q(response_due__lte=now) | Q(resolution_due__lte=now)),
    )
    return {
        "now": now,
        "headline": headline,
        "other_states": others,
        "open_incidents": list(open_incidents.order_by("-opened_at", "-id")[:OPEN_INCIDENTS_SHOWN]),
        "incident_counts": incident_counts,
        "overdue": reports.overdue(now),
        "tickets": tickets,
        "sla_risk_hours": SLA_RISK_HOURS,
        "recent_failures": list(
            Instance.objects.filter(state=Instance.State.FAILED)
            .select_related("account", "version__product")
            .order_by("-state_changed_at")[:FAILED_SHOWN]
        ),
        "poll_seconds": 10,
    }


def owner_home(request: HttpRequest) -> HttpResponse:
    """The staff home page (``web.views.home`` hands staff here)."""
    return render(request, "web/owner_home.html", overview_context())


@staff_required
def overview_fragment(request: HttpRequest) -> HttpResponse:
    """HTMX: the overview's figures, polled every ``poll_seconds``."""
    return render(request, "web/_overview.html", overview_context())
