"""Figures for the owner's dashboard: MRR, overdue amounts, churn and revenue, per currency
(amounts in different currencies are never added together). Every figure is one aggregate query
(a series of months is one query with a filtered sum or count per month), so the dashboard
reads the subscriptions a handful of times, not once per month shown.

MRR counts list prices (coupons are not subtracted) of subscriptions that are active or past
due — not trials, not suspended ones — normalised to a month (a yearly plan counts 1/12).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from dateutil.relativedelta import relativedelta
from django.core.cache import caches
from django.db.models import Count, F, Q, Sum

from otomat.billing.models import BillingAction, Invoice, Payment, Subscription
from otomat.billing.money import Money

SS = Subscription.Status
PAYING = [SS.ACTIVE, SS.PAST_DUE]


def _money(currency: str, minor: Decimal | int) -> Money:
    return Money(int(Decimal(minor).quantize(Decimal(1), rounding=ROUND_HALF_UP)), currency)


def mrr(*, at_filter: Q | None = None) -> dict[str, Money]:
    """Monthly recurring revenue per currency of the subscriptions matching ``at_filter``
    (default: paying now)."""
    qs = Subscription.objects.filter(at_filter if at_filter is not None else Q(status__in=PAYING))
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in qs.values("plan__currency", "plan__period_months").annotate(
        total=Sum("plan__price_minor")
    ):
        totals[row["plan__currency"]] += Decimal(row["total"]) / row["plan__period_months"]
    return {cur: _money(cur, value) for cur, value in sorted(totals.items())}


def month_starts(now: datetime, months: int) -> list[datetime]:
    """The first instants of the last ``months`` calendar months (UTC), oldest first."""
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return [first - relativedelta(months=i) for i in range(months - 1, -1, -1)]


def _live_at(moment: datetime) -> Q:
    """Subscriptions that were paying at ``moment``: activated, not ended, not in their trial.
    Approximate in one way: a past suspension is not told apart (it is not dated)."""
    return (
        Q(activated_at__lte=moment)
        & (Q(ended_at__isnull=True) | Q(ended_at__gt=moment))
        & ~Q(status=SS.PENDING)
        & ~Q(trial_end__gt=moment)
    )


def mrr_history(now: datetime, months: int = 12) -> tuple[list[str], dict[str, list[Money]]]:
    """(month labels, currency → MRR at the end of each month). The current month's point is
    the MRR of now, the same figure as the dashboard's card. The past points are one grouped
    query (a filtered sum per month over one pass of the subscriptions), not one per month."""
    labels, series = [], defaultdict(list)
    starts = month_starts(now, months)
    ends = [start + relativedelta(months=1) for start in starts[:-1]]
    past: list[dict[str, Decimal]] = [defaultdict(Decimal) for _ in ends]
    if ends:
        sums = {
            f"m{i}": Sum("plan__price_minor", filter=_live_at(end)) for i, end in enumerate(ends)
        }
        rows = (
            Subscription.objects.filter(activated_at__lte=ends[-1])
            .order_by()
            .values("plan__currency", "plan__period_months")
            .annotate(**sums)
        )
        for row in rows:
            for i in range(len(ends)):
                if row[f"m{i}"] is not None:
                    past[i][row["plan__currency"]] += (
                        Decimal(row[f"m{i}"]) / row["plan__period_months"]
                    )
    per_point = [{cur: _money(cur, v) for cur, v in sorted(p.items())} for p in past] + [mrr()]
    currencies = sorted({c for point in per_point for c in point})
    for start, point in zip(starts, per_point, strict=True):
        labels.append(start.strftime("%Y-%m"))
        for cur in currencies:
            series[cur].append(point.get(cur, Money.zero(cur)))
    return labels, dict(series)


def overdue(now: datetime) -> dict[str, dict[str, Money]]:
    """currency → {"1-7", "8-30", "31+", "total"}: amounts due on invoices past their due date,
    by how many days late."""
    day = timedelta(days=1)
    windows = {
        "1-7": Q(due_at__gt=now - 8 * day),
        "8-30": Q(due_at__gt=now - 31 * day, due_at__lte=now - 8 * day),
        "31+": Q(due_at__lte=now - 31 * day),
    }
    base = Invoice.objects.filter(status=Invoice.Status.OPEN, due_at__lte=now)
    result: dict[str, dict[str, Money]] = {}
    for name, window in windows.items():
        for row in base.filter(window).values("currency").annotate(total=Sum("amount_due_minor")):
            cur = row["currency"]
            result.setdefault(cur, {})[name] = Money(row["total"] or 0, cur)
    for cur, parts in result.items():
        for name in windows:
            parts.setdefault(name, Money.zero(cur))
        parts["total"] = Money(sum(parts[n].amount_minor for n in windows), cur)
    return dict(sorted(result.items()))


def churn(now: datetime, months: int = 12) -> tuple[list[str], list[Decimal]]:
    """Monthly churn in percent: subscriptions that ended in a month (cancelled or terminated)
    over those paying at its start. One aggregate query: two filtered counts per month."""
    starts = month_starts(now, months)
    counts: dict[str, Count] = {}
    for i, start in enumerate(starts):
        end = min(start + relativedelta(months=1), now)
        counts[f"live{i}"] = Count("id", filter=_live_at(start))
        counts[f"ended{i}"] = Count(
            "id",
            filter=Q(ended_at__gte=start, ended_at__lt=end, activated_at__isnull=False)
            # a trial that ends unpaid is not churn
            & ~Q(trial_end__gt=F("ended_at"), trial_end__isnull=False),
        )
    figures = Subscription.objects.filter(activated_at__isnull=False).aggregate(**counts)
    labels, values = [], []
    for i, start in enumerate(starts):
        at_start, ended = figures[f"live{i}"] or 0, figures[f"ended{i}"] or 0
        labels.append(start.strftime("%Y-%m"))
        rate = Decimal(ended * 100) / at_start if at_start else Decimal(0)
        values.append(rate.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))
    return labels, values


def revenue_by_month(now: datetime, months: int = 12) -> tuple[list[str], dict[str, list[Money]]]:
    starts = month_starts(now, months)
    rows = (
        Payment.objects.filter(received_at__gte=starts[0], received_at__lte=now)
        .values("currency", "received_at__year", "received_at__month")
        .annotate(total=Sum("amount_minor"))
    )
    table: dict[str, dict[str, int]] = defaultdict(dict)
    for row in rows:
        key = f"{row['received_at__year']:04d}-{row['received_at__month']:02d}"
        table[row["currency"]][key] = row["total"]
    labels = [s.strftime("%Y-%m") for s in starts]
    series = {
        cur: [Money(values.get(label, 0), cur) for label in labels]
        for cur, values in sorted(table.items())
    }
    return labels, series


def revenue_by_product(now: datetime, days: int = 365) -> dict[str, list[tuple[str, Money]]]:
    """currency → [(product name, revenue)] over the last ``days``, largest first."""
    rows = (
        Payment.objects.filter(received_at__gte=now - timedelta(days=days), received_at__lte=now)
        .values("currency", "invoice__subscription__plan__product__name")
        .annotate(total=Sum("amount_minor"))
    )
    result: dict[str, list[tuple[str, Money]]] = defaultdict(list)
    for row in rows:
        name = row["invoice__subscription__plan__product__name"] or "Other"
        result[row["currency"]].append((name, Money(row["total"], row["currency"])))
    return {
        cur: sorted(items, key=lambda item: -item[1].amount_minor)
        for cur, items in sorted(result.items())
    }


def counts(now: datetime) -> dict[str, int]:
    by_status = dict(
        Subscription.objects.values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return {
        "active": by_status.get(SS.ACTIVE, 0) + by_status.get(SS.PAST_DUE, 0),
        "trialing": by_status.get(SS.TRIALING, 0),
        "suspended": by_status.get(SS.SUSPENDED, 0),
        "pending": by_status.get(SS.PENDING, 0),
        "actions_today": BillingAction.objects.filter(at__gte=now - timedelta(days=1)).count(),
    }


# The dashboard's figures are kept this long (one computation per period, not one per view:
# a month series is cheap in the database but costly to build in the ORM), in the cache every
# web worker shares ("shared"); any save or delete of a subscription, invoice or payment drops them
# (``forget_dashboard``), so only changes by queryset updates wait for the period to end.
DASHBOARD_CACHE_SECONDS = 60
DASHBOARD_CACHE_KEY = "otomat:billing:dashboard:v1"


def dashboard_figures(now: datetime) -> dict:
    """Every figure of the owner's dashboard, per currency, as of ``figures["at"]`` (at most
    ``DASHBOARD_CACHE_SECONDS`` before ``now``)."""
    figures = caches["shared"].get(DASHBOARD_CACHE_KEY)
    if figures is None:
        figures = {
            "version": uuid.uuid4().hex,  # names this computation (the charts drawn from it)
            "at": now,
            "mrr": mrr(),
            "mrr_history": mrr_history(now),
            "revenue_by_month": revenue_by_month(now),
            "revenue_by_product": revenue_by_product(now),
            "churn": churn(now),
            "overdue": overdue(now),
            "counts": counts(now),
        }
        caches["shared"].set(DASHBOARD_CACHE_KEY, figures, DASHBOARD_CACHE_SECONDS)
    return figures


def forget_dashboard(**kwargs) -> None:
    """Receiver of ``post_save`` and ``post_delete`` of the models the figures are made of."""
    caches["shared"].delete(DASHBOARD_CACHE_KEY)
