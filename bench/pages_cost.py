"""The cost of the owner's overview, the public status page and an instance's health card at
1,000 and 10,000 instances, beside the old overview (state counts and the failed list) in the
same run.

    .venv/bin/python bench/pages_cost.py [--sizes 1000,10000] [--days 30] [--repeat 5]
                                         [--databases sqlite,postgres] [--json]

For each size a fresh process builds a fresh migrated database with ``size`` customer instances
(96 % running, 2 % failed, 1 % stopped, 1 % suspended), one recorded transition per instance
within the sparklines' 14 days, ``--days`` days of UptimeDay rows per instance plus today's
hours (UptimeHour), 50 incidents (half public, with updates), 200 overdue invoices and 300
tickets. It then renders each page's context (the database work and the Python around it; the
HTML template rendering is not included) ``--repeat`` times and prints the median wall time,
the process CPU time and the number of queries. The status page is measured cold (its cache
cleared) and with its uptime history cached (``HISTORY_CACHE_SECONDS``). PostgreSQL is used when it answers at
OTOMAT_BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432/otomat_pages_bench; the
database is dropped and created).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from _common import child_env, postgres_available
from _common import run_child as _run

POSTGRES = os.environ.get(
    "OTOMAT_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/otomat_pages_bench"
)


def child(size: int, days: int, repeat: int) -> dict:
    import django

    django.setup()
    from datetime import UTC, datetime, timedelta

    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count
    from django.test.utils import CaptureQueriesContext

    call_command("migrate", interactive=False, verbosity=0)
    from otomat.accounts.models import Account
    from otomat.billing.models import Invoice
    from otomat.catalog.models import Product, ProductVersion
    from otomat.instances.models import Instance, InstanceEvent
    from otomat.monitoring.models import Incident, IncidentUpdate
    from otomat.monitoring.models_uptime import UptimeDay, UptimeHour
    from otomat.support.models import Department, Ticket
    from otomat.web import health, overview, status

    now = datetime.now(UTC).replace(microsecond=0)
    today = now.date()
    product = Product.objects.create(slug="bench", name="Bench Bot")
    version = ProductVersion.objects.create(
        product=product, version="1.0", runtime="process", source_dir="bench", checksum="0"
    )
    accounts_n = max(1, size // 10)
    Account.objects.bulk_create(
        [Account(name=f"Customer {i}", currency="IDR") for i in range(accounts_n)], batch_size=5000
    )
    account_ids = list(Account.objects.order_by("id").values_list("id", flat=True))

    def state_of(i: int) -> str:
        share = i % 100
        return {0: "failed", 1: "failed", 2: "stopped", 3: "suspended"}.get(share, "running")

    Instance.objects.bulk_create(
        [
            Instance(
                account_id=account_ids[i % accounts_n],
                version=version,
                name=f"bot {i}",
                state=state_of(i),
                desired="running",
                created_at=now - timedelta(days=days + 1),
            )
            for i in range(size)
        ],
        batch_size=2000,
    )
    ids = list(Instance.objects.order_by("id").values_list("id", "state"))
    InstanceEvent.objects.bulk_create(
        [
            InstanceEvent(
                instance_id=iid,
                at=now - timedelta(days=n % 14, hours=1),
                from_state="provisioning",
                to_state=state,
                cause="bench",
            )
            for n, (iid, state) in enumerate(ids)
        ],
        batch_size=5000,
    )
    for d in range(1, days + 1):
        UptimeDay.objects.bulk_create(
            [
                UptimeDay(
                    instance_id=iid,
                    day=today - timedelta(days=d),
                    up_seconds=86400 if state == "running" else 0,
                    down_seconds=86400 if state == "failed" else 0,
                    excluded_seconds=86400 if state in ("stopped", "suspended") else 0,
                )
                for iid, state in ids
            ],
            batch_size=5000,
        )
    start = datetime(today.year, today.month, today.day, tzinfo=UTC)
    for h in range(min(now.hour, 3)):
        UptimeHour.objects.bulk_create(
            [
                UptimeHour(
                    instance_id=iid, hour=start + timedelta(hours=h), up_seconds=3600, end="up"
                )
                for iid, _state in ids
            ],
            batch_size=5000,
        )
    for n in range(50):
        incident = Incident.objects.create(
            title=f"Incident {n}", public=n % 2 == 0, public_title=f"Public {n}", status="open"
        )
        IncidentUpdate.objects.create(incident=incident, kind="update", text="...", public=True)
    Invoice.objects.bulk_create(
        [
            Invoice(
                account_id=account_ids[n % accounts_n],
                number=f"INV/{n}",
                status="open",
                currency="IDR",
                total_minor=100_000,
                amount_due_minor=100_000,
                issued_at=now - timedelta(days=n % 60 + 10),
                due_at=now - timedelta(days=n % 60 + 1),
            )
            for n in range(200)
        ]
    )
    department = Department.objects.create(name="Support")
    Ticket.objects.bulk_create(
        [
            Ticket(
                number=f"T-{n}",
                account_id=account_ids[n % accounts_n],
                department=department,
                subject="Help",
                email_token=f"tok{n}",
                response_due=now + timedelta(hours=n % 10 - 2),
            )
            for n in range(300)
        ]
    )
    sample = Instance.objects.filter(state="running").first()

    def old_overview() -> None:
        dict(
            Instance.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n")
        )
        list(
            Instance.objects.filter(state="failed").select_related("account", "version__product")[
                :10
            ]
        )

    cases = {
        "old overview (baseline)": old_overview,
        "overview": lambda: overview.overview_context(now),
        "status page, cold": lambda: (cache.clear(), status.status_context(now)),
        "status page, history cached": lambda: status.status_context(now),
        "status badge": lambda: status.product_states(status._products()),
        "instance health card": lambda: health.health_context(sample, now),
    }
    results = {}
    from django.utils import translation

    translation.activate("en")
    for name, fn in cases.items():
        fn()  # warm the caches (content types, translations)
        walls, cpus, queries = [], [], 0
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as ctx:
                wall, cpu = time.perf_counter(), time.process_time()
                fn()
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
            queries = len(ctx.captured_queries)
        results[name] = {
            "wall_ms": round(statistics.median(walls) * 1000, 1),
            "cpu_ms": round(statistics.median(cpus) * 1000, 1),
            "queries": queries,
        }
    return results


def run_child(size: int, days: int, repeat: int, database: str) -> dict:
    env = child_env("otomat-bench-pages-", database, postgres=POSTGRES)
    args = ["--child", str(size), "--days", str(days), "--repeat", str(repeat)]
    return _run(__file__, args, env, label=f"{database}, {size}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--databases", default="sqlite")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", type=int)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.days, args.repeat)))
        return 0
    report = {}
    for database in args.databases.split(","):
        if database == "postgres" and not postgres_available(POSTGRES):
            print(f"PostgreSQL does not answer at {POSTGRES}; skipped", file=sys.stderr)
            continue
        for size in (int(s) for s in args.sizes.split(",")):
            report[f"{database} {size}"] = run_child(size, args.days, args.repeat, database)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for key, results in report.items():
        print(f"\n{key} instances ({args.days} days of uptime rows), median of {args.repeat}")
        print(f"{'page':28} {'wall ms':>9} {'cpu ms':>9} {'queries':>8}")
        for name, r in results.items():
            print(f"{name:28} {r['wall_ms']:>9} {r['cpu_ms']:>9} {r['queries']:>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
