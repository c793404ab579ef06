"""The seller's public status page (``/status/``) and its badge (``/status/badge.svg``).

What a visitor sees, and nothing else: the seller's name; each listed product's state
("Operational", "Degraded", "Outage") derived from its customer instances in aggregate; the
incidents marked public, by their public title, with their public updates; public maintenance
windows; and 90 days of uptime per product. No customer, instance name, count of instances or
customer-written text is shown: instance counts would tell competitors the seller's size, so
the page states only the aggregate verdict (see docs/monitoring.md, "Status page").

Every figure is a grouped query over all instances (the page costs the same with ten thousand).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, Sum
from django.db.models.functions import TruncDate
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import formats, timezone
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from otomat.billing.models import BillingSettings
from otomat.catalog.models import Product
from otomat.instances.models import Instance
from otomat.lib import charts
from otomat.monitoring.models import Alert, Incident, IncidentUpdate, Maintenance
from otomat.monitoring.models_uptime import UptimeDay, UptimeHour

HISTORY_DAYS = 90
# The uptime history is the page's only costly read (a grouped sum over every instance's day
# rows: ~0.8 s at 10,000 instances × 30 days); it changes by the hour, so it is kept this long
# in the cache (per process with the default cache) and the states stay live.
HISTORY_CACHE_SECONDS = 300
RESOLVED_SHOWN_DAYS = 14
# A product is in an outage when at least this share of its bots that should answer do not.
OUTAGE_SHARE = Decimal("0.5")

OPERATIONAL, DEGRADED, OUTAGE = "operational", "degraded", "outage"
_RANK = {OPERATIONAL: 0, DEGRADED: 1, OUTAGE: 2}
BADGE_COLORS = {OPERATIONAL: "#1f8a4c", DEGRADED: "#b7791f", OUTAGE: "#c62f2f"}


def state_label(state: str) -> str:
    return {
        OPERATIONAL: pgettext("status", "Operational"),
        DEGRADED: pgettext("status", "Degraded"),
        OUTAGE: pgettext("status", "Outage"),
    }[state]


def _verdict(expected: int, down: int) -> str:
    if not down:
        return OPERATIONAL
    if expected and Decimal(down) / expected >= OUTAGE_SHARE:
        return OUTAGE
    return DEGRADED


def product_states(products: list[Product]) -> dict[int, str]:
    """product id → its state, from the customer instances that should answer (desired running,
    not suspended or stopped): down when failed, or running with a firing alert (a revoked token,
    a webhook that keeps failing). One grouped query."""
    firing = Alert.objects.filter(instance=OuterRef("pk"), state=Alert.State.FIRING)
    rows = (
        Instance.objects.filter(
            kind=Instance.Kind.CUSTOMER,
            desired=Instance.Desired.RUNNING,
            state__in=(Instance.State.RUNNING, Instance.State.PROVISIONING, Instance.State.FAILED),
            version__product__in=products,
        )
        .annotate(alerting=Exists(firing))
        .values("version__product_id")
        .annotate(
            expected=Count("id"),
            down=Count("id", filter=Q(state=Instance.State.FAILED) | Q(alerting=True)),
        )
        .order_by()
    )
    states = {p.pk: OPERATIONAL for p in products}
    for row in rows:
        states[row["version__product_id"]] = _verdict(row["expected"], row["down"])
    return states


def product_history(products: list[Product], now: datetime, days: int = HISTORY_DAYS):
    """product id → [(day, percent or None)] over the last ``days`` UTC days, today last: the
    days rolled up (UptimeDay) and, for the days not rolled up yet, their hours (UptimeHour);
    two grouped queries."""
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    sums: dict[int, dict] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    rolled = set()
    for row in (
        UptimeDay.objects.filter(day__gte=first, instance__version__product__in=products)
        .values("instance__version__product_id", "day")
        .annotate(up=Sum("up_seconds"), down=Sum("down_seconds"))
        .order_by()
    ):
        sums[row["instance__version__product_id"]][row["day"]] = [row["up"], row["down"]]
        rolled.add(row["day"])
    start = datetime.combine(first, time(0), tzinfo=UTC)
    for row in (
        UptimeHour.objects.filter(hour__gte=start, instance__version__product__in=products)
        .annotate(day=TruncDate("hour", tzinfo=UTC))
        .values("instance__version__product_id", "day")
        .annotate(up=Sum("up_seconds"), down=Sum("down_seconds"))
        .order_by()
    ):
        if row["day"] in rolled:
            continue
        bucket = sums[row["instance__version__product_id"]][row["day"]]
        bucket[0] += row["up"]
        bucket[1] += row["down"]
    result = {}
    for product in products:
        per_day = sums.get(product.pk, {})
        series = []
        for i in range(days):
            day = first + timedelta(days=i)
            up, down = per_day.get(day, (0, 0))
            percent = (
                (Decimal(up) * 100 / (up + down)).quantize(Decimal("0.01")) if up + down else None
            )
            series.append((day, percent))
        result[product.pk] = series
    return result


def cached_history(products: list[Product], now: datetime) -> dict:
    """:func:`product_history`, kept ``HISTORY_CACHE_SECONDS`` per UTC day and product set."""
    ids = ",".join(str(p.pk) for p in products)
    key = f"otomat:status:history:{now.astimezone(UTC).date()}:{ids}"
    history = cache.get(key)
    if history is None:
        history = product_history(products, now)
        cache.set(key, history, HISTORY_CACHE_SECONDS)
    return history


def _percent(value: Decimal | None) -> str:
    return _("no data") if value is None else formats.number_format(value, 2) + " %"


def _products() -> list[Product]:
    """The products on the page: those listed in the catalog."""
    return list(Product.objects.filter(is_listed=True).order_by("name"))


def status_context(now: datetime | None = None) -> dict:
    now = now or timezone.now()
    products = _products()
    states = product_states(products)
    history = cached_history(products, now)
    rows = []
    for product in products:
        series = history[product.pk]
        counted = [p for _d, p in series if p is not None]
        average = (sum(counted) / len(counted)).quantize(Decimal("0.01")) if counted else None
        bars = charts.day_bars(
            [(formats.date_format(d, "SHORT_DATE_FORMAT"), p, _percent(p)) for d, p in series],
            title=_("%(product)s: uptime per day, last %(days)s days")
            % {"product": product.name, "days": HISTORY_DAYS},
            height=22,
        )
        state = states[product.pk]
        rows.append(
            {
                "product": product,
                "state": state,
                "label": state_label(state),
                "bars": bars,
                "average": _percent(average),
            }
        )
    overall = max((r["state"] for r in rows), key=_RANK.get, default=OPERATIONAL)
    public_updates = Prefetch(
        "updates",
        queryset=IncidentUpdate.objects.filter(public=True).order_by("-at", "-id"),
        to_attr="public_updates",
    )
    incidents = Incident.objects.filter(public=True).prefetch_related(public_updates)
    current = list(incidents.exclude(status=Incident.Status.RESOLVED).order_by("-opened_at"))
    recent = list(
        incidents.filter(
            status=Incident.Status.RESOLVED,
            resolved_at__gte=now - timedelta(days=RESOLVED_SHOWN_DAYS),
        ).order_by("-resolved_at")
    )
    windows = Maintenance.objects.filter(public=True, ends_at__gt=now, ended_early_at__isnull=True)
    return {
        "seller": BillingSettings.get().seller_name,
        "now": now,
        "overall": overall,
        "overall_label": {
            OPERATIONAL: _("All systems operational"),
            DEGRADED: _("Some bots have problems"),
            OUTAGE: _("Major outage"),
        }[overall],
        "rows": rows,
        "current_incidents": current,
        "recent_incidents": recent,
        "maintenance": list(windows.order_by("starts_at")[:20]),
        "history_days": HISTORY_DAYS,
        "resolved_days": RESOLVED_SHOWN_DAYS,
    }


@require_GET
def status_page(request: HttpRequest) -> HttpResponse:
    response = render(request, "web/status.html", status_context())
    # A visitor's copy may be kept briefly; a logged-in person's page carries their menu.
    if request.user.is_authenticated:
        patch_cache_control(response, private=True, no_cache=True)
    else:
        patch_cache_control(response, max_age=30)
    return response


def badge_svg(label: str, message: str, color: str) -> str:
    """A flat two-part badge in the shields.io style (text XML-escaped)."""
    lw = 10 + int(len(label) * 6.5)
    mw = 10 + int(len(message) * 6.5)
    width = lw + mw
    e = charts._e
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{e(label)}: {e(message)}"><title>{e(label)}: {e(message)}</title>'
        f'<rect width="{lw}" height="20" fill="#555"/>'
        f'<rect x="{lw}" width="{mw}" height="20" fill="{e(color)}"/>'
        f'<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" '
        f'text-anchor="middle"><text x="{lw / 2:.1f}" y="14">{e(label)}</text>'
        f'<text x="{lw + mw / 2:.1f}" y="14">{e(message)}</text></g></svg>'
    )


@require_GET
@cache_control(max_age=60, public=True)
def badge(request: HttpRequest) -> HttpResponse:
    """``/status/badge.svg``: the overall state; ``?product=<slug>`` for one listed product
    (an unknown or unlisted product is a 404)."""
    slug = request.GET.get("product", "")
    if slug:
        product = Product.objects.filter(slug=slug, is_listed=True).first()
        if product is None:
            raise Http404("No such product on the status page.")
        products, label = [product], product.name
    else:
        products, label = _products(), _("status")
    states = product_states(products)
    state = max(states.values(), key=_RANK.get, default=OPERATIONAL)
    svg = badge_svg(label, state_label(state), BADGE_COLORS[state])
    response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    response["Content-Language"] = getattr(request, "LANGUAGE_CODE", "en")
    return response
