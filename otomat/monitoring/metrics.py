"""Prometheus ``/metrics``: aggregates read from the database at scrape time.

One custom collector (``prometheus_client``'s documented way for values that live elsewhere)
runs a handful of grouped queries per scrape — instances by state, product and kind, overdue
invoices by currency, open tickets by status, open incidents by severity, the services'
heartbeats, the task queue — so any number of web processes give the same numbers and nothing
is kept in memory between scrapes. The cost grows with the number of groups (products,
currencies), not with the number of customers.

Labels carry only what the owner's catalogue and infrastructure already name: product slugs,
instance states and kinds, currencies, ticket statuses, severities, service and host names and
watched paths. Never a customer's name, email, bot token or any other private value.

Access: a bearer token (``OTOMAT_METRICS_TOKEN``) is required. Without one configured the
endpoint answers 404, as if it did not exist, unless the operator made it public
(``OTOMAT_METRICS_PUBLIC=1``, e.g. when only a private network reaches the server).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.db.models import Count, Sum
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from otomat.monitoring import platform


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"otomat_{name}", doc, labels=labels)


class OtomatCollector:
    """Yields every metric family from the database, each time it is collected."""

    def collect(self):
        now = timezone.now()
        yield from self._instances()
        yield from self._billing(now)
        yield from self._support()
        yield from self._incidents()
        yield from self._platform(now)

    def describe(self):
        return []  # nothing is collected at registration time (no database access then)

    def _instances(self):
        from otomat.instances.models import Instance

        count = _gauge(
            "instances", "Instances by state, product and kind.", ["state", "product", "kind"]
        )
        restarts = _gauge(
            "instance_restarts", "Restarts recorded on instances, summed per product.", ["product"]
        )
        updates = _gauge(
            "instance_updates_handled",
            "Telegram updates the instances handled, summed per product.",
            ["product"],
        )
        errors = _gauge(
            "instance_errors", "Errors the instances reported, summed per product.", ["product"]
        )
        per_product: dict[str, list[int]] = {}
        rows = (
            Instance.objects.values_list("state", "version__product__slug", "kind")
            .annotate(n=Count("id"), r=Sum("restarts"), u=Sum("updates_handled"), e=Sum("errors"))
            .order_by()
        )
        running = broken = 0
        for state, product, kind, n, r, u, e in rows:
            count.add_metric([state, product or "", kind], n)
            totals = per_product.setdefault(product or "", [0, 0, 0])
            totals[0] += r or 0
            totals[1] += u or 0
            totals[2] += e or 0
            if state == Instance.State.RUNNING:
                running += n
            elif state == Instance.State.FAILED:
                broken += n
        for product, (r, u, e) in sorted(per_product.items()):
            restarts.add_metric([product], r)
            updates.add_metric([product], u)
            errors.add_metric([product], e)
        yield count
        yield GaugeMetricFamily("otomat_instances_running", "Instances running.", value=running)
        yield GaugeMetricFamily(
            "otomat_instances_broken", "Instances failed (crash loop, could not start).", broken
        )
        yield restarts
        yield updates
        yield errors

    def _billing(self, now):
        from otomat.billing.models import Invoice

        count = _gauge("invoices_overdue", "Unpaid invoices past their due date.", ["currency"])
        amount = _gauge(
            "invoices_overdue_amount_minor",
            "Amount due on overdue invoices, in the currency's minor unit (cents).",
            ["currency"],
        )
        rows = (
            Invoice.objects.filter(status=Invoice.Status.OPEN, due_at__lt=now)
            .values_list("currency")
            .annotate(n=Count("id"), due=Sum("amount_due_minor"))
            .order_by()
        )
        for currency, n, due in rows:
            count.add_metric([currency], n)
            amount.add_metric([currency], due or 0)
        yield count
        yield amount

    def _support(self):
        from otomat.support.models import Ticket

        gauge = _gauge(
            "tickets_open", "Tickets not resolved, closed or merged, by status.", ["status"]
        )
        done = [Ticket.Status.RESOLVED, Ticket.Status.CLOSED, Ticket.Status.MERGED]
        rows = (
            Ticket.objects.exclude(status__in=done)
            .values_list("status")
            .annotate(n=Count("id"))
            .order_by()
        )
        for status, n in rows:
            gauge.add_metric([status], n)
        yield gauge

    def _incidents(self):
        from otomat.monitoring.models import Incident

        gauge = _gauge(
            "incidents_open",
            "Incidents not resolved, by severity and status.",
            ["severity", "status"],
        )
        rows = (
            Incident.objects.exclude(status=Incident.Status.RESOLVED)
            .values_list("severity", "status")
            .annotate(n=Count("id"))
            .order_by()
        )
        for severity, status, n in rows:
            gauge.add_metric([severity, status], n)
        yield gauge

    def _platform(self, now):
        rows = platform.heartbeat_rows()
        up = _gauge("service_up", "1 while the service has a live process, else 0.", ["service"])
        age = _gauge(
            "service_heartbeat_age_seconds",
            "Seconds since the service's newest heartbeat (absent: never beat).",
            ["service"],
        )
        processes = _gauge("service_processes", "Live processes of the service.", ["service"])
        for name, state in platform.services(now=now, rows=rows).items():
            up.add_metric([name], 1 if state.alive else 0)
            processes.add_metric([name], state.processes)
            if state.age_seconds is not None:
                age.add_metric([name], state.age_seconds)
        yield up
        yield age
        yield processes

        queue = platform.queue(now=now)
        if queue is not None:
            yield GaugeMetricFamily(
                "otomat_task_queue_ready", "Tasks due and waiting for a worker.", queue.ready
            )
            yield GaugeMetricFamily(
                "otomat_task_queue_lag_seconds",
                "Age of the oldest task due and still waiting (0: none waits).",
                queue.lag_seconds,
            )

        disk_used = _gauge(
            "host_disk_used_percent",
            "Used share of a watched filesystem.",
            ["host", "path", "role"],
        )
        disk_free = _gauge(
            "host_disk_free_bytes",
            "Bytes an unprivileged process may still write on a watched filesystem.",
            ["host", "path", "role"],
        )
        memory = _gauge("host_memory_used_percent", "Memory in use (not available).", ["host"])
        memory_free = _gauge("host_memory_available_bytes", "Memory available.", ["host"])
        load = _gauge("host_load5", "Load average over 5 minutes.", ["host"])
        load_cpu = _gauge("host_load_per_cpu", "5-minute load divided by the CPUs.", ["host"])
        for health in platform.hosts(now=now, rows=rows).values():
            for disk in health.disks:
                labels = [health.name, str(disk["path"]), str(disk.get("role", "extra"))]
                disk_used.add_metric(labels, float(disk["used_percent"]))
                disk_free.add_metric(labels, float(disk["free_bytes"]))
            if health.memory:
                memory.add_metric([health.name], float(health.memory["used_percent"]))
                memory_free.add_metric([health.name], float(health.memory["available_bytes"]))
            if health.load:
                load.add_metric([health.name], float(health.load["load5"]))
                load_cpu.add_metric([health.name], float(health.load["per_cpu"]))
        yield from (disk_used, disk_free, memory, memory_free, load, load_cpu)

        size = platform.database_size()
        if size is not None:
            yield GaugeMetricFamily(
                "otomat_database_size_bytes", "Size of the platform database.", size
            )


def render() -> bytes:
    """The exposition text of every metric, collected now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OtomatCollector())
    return generate_latest(registry)


def _authorized(request) -> bool:
    if settings.METRICS_PUBLIC:
        return True
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    return hmac.compare_digest(token.strip().encode(), settings.METRICS_TOKEN.encode())


@never_cache
@require_safe
def metrics_view(request):
    """``GET /metrics``: 404 while neither a token is configured nor the endpoint public; 401
    (with ``WWW-Authenticate: Bearer``) without the right bearer token; the metrics otherwise."""
    if not settings.METRICS_TOKEN and not settings.METRICS_PUBLIC:
        raise Http404("metrics are off")
    if not _authorized(request):
        response = HttpResponse("unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
