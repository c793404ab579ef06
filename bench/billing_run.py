"""A full billing and dunning run over many active subscriptions, on SQLite and PostgreSQL.

    .venv/bin/python bench/billing_run.py --sizes 10000,50000,100000 [--databases sqlite,postgres]
                                          [--json]

For each size and database it builds a fresh database (migrated), seeds ``size`` active
subscriptions (one instance each, ten per customer account), all of them due for their renewal
invoice at the moment of the run — the worst case, e.g. every customer renewing on the 1st —
and times ``run_billing``: a renewal invoice (numbered, taxed, its lines), the action log row
and the "invoice issued" notice (rendered in the customer's language) for every subscription.
Then it times the next run, when nothing is due (the cost of looking). The baseline is the
per-subscription time of the smallest size in the same run; the ratio shows whether time grows
linearly. PostgreSQL is used when it answers at OTOMAT_BENCH_POSTGRES (default
postgres://postgres@127.0.0.1:5432/otomat_bench; the database is dropped and created).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from _common import POSTGRES, child_env, postgres_available
from _common import run_child as _run


def child(size: int, overdue_share: float = 0.0) -> dict:
    """Runs inside a fresh process whose environment points at a fresh database."""
    import django

    django.setup()
    from datetime import UTC, datetime, timedelta

    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", interactive=False, verbosity=0)
    from otomat.billing.dunning import run_billing
    from otomat.billing.models import Invoice, Subscription
    from otomat.instances.models import Instance
    from otomat.notify.models import Notification

    now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    started = time.perf_counter()
    from _billing_seed import seed_renewals

    plan, tax = seed_renewals(size, now)
    batch = 5000
    overdue = int(size * overdue_share)
    if overdue:
        # The first ``overdue`` subscriptions are a period further on with their renewal invoice
        # unpaid 7 days after its due date: the run suspends them one by one (the per-item path:
        # instance transition, audit, action, notice).
        from otomat.billing.invoicing import _build_lines
        from otomat.billing.models import InvoiceLine, InvoiceSeries
        from otomat.billing.subscriptions import plan_lines

        late = list(Subscription.objects.order_by("id").select_related("instance")[:overdue])
        due = now - timedelta(days=7)
        invoices = []
        for n, sub in enumerate(late, start=1):
            rows = _build_lines(
                plan_lines(sub, plan, period=None, with_setup_fee=False), "IDR", tax
            )
            total = sum(r["gross_minor"] for r in rows)
            invoices.append(
                Invoice(
                    account_id=sub.account_id,
                    subscription=sub,
                    kind="renewal",
                    number=f"INV/2026/{n:06d}",
                    currency="IDR",
                    subtotal_minor=sum(r["net_minor"] for r in rows),
                    tax_minor=sum(r["tax_minor"] for r in rows),
                    total_minor=total,
                    amount_due_minor=total,
                    issued_at=due - timedelta(days=7),
                    due_at=due,
                    period_start=due,
                    idempotency_key=f"renewal:{sub.pk}:{due.isoformat()}",
                )
            )
        Invoice.objects.bulk_create(invoices, batch_size=batch)
        InvoiceSeries.objects.filter(code="inv").update(year=2026, next_number=overdue + 1)
        InvoiceLine.objects.bulk_create(
            [
                InvoiceLine(
                    invoice=i,
                    description="Monthly",
                    unit_price_minor=99_000,
                    net_minor=i.subtotal_minor,
                    tax_minor=i.tax_minor,
                    gross_minor=i.total_minor,
                )
                for i in invoices
            ],
            batch_size=batch,
        )
        Subscription.objects.filter(pk__in=[s.pk for s in late]).update(
            status="past_due",
            anchor_at=due,
            current_period_start=due,
            current_period_end=due + timedelta(days=31),
            next_run_at=now,
        )
    seeded = time.perf_counter() - started

    profile_to = os.environ.get("BILLING_BENCH_PROFILE")
    if profile_to:  # --profile: where the full run spends its time (cProfile stats file)
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0 = time.perf_counter()
    report = run_billing(now=now)
    full = time.perf_counter() - t0
    if profile_to:
        profiler.disable()
        profiler.dump_stats(f"{profile_to}.{connection.vendor}.{size}")
    t0 = time.perf_counter()
    idle = run_billing(now=now + timedelta(minutes=1))
    scan = time.perf_counter() - t0
    invoices = Invoice.objects.filter(kind="renewal").count()
    suspended = Instance.objects.filter(state="suspended").count()
    numbers = set(Invoice.objects.values_list("number", flat=True))
    return {
        "database": connection.vendor,
        "size": size,
        "seed_s": round(seeded, 2),
        "run_s": round(full, 2),
        "processed": report.processed,
        "failed": report.failed,
        "invoices": invoices,
        "gap_free": numbers == {f"INV/2026/{n:06d}" for n in range(1, invoices + 1)},
        "notices": Notification.objects.count(),
        "suspended": suspended,
        "overdue_share": overdue_share,
        "idle_run_s": round(scan, 3),
        "idle_processed": idle.processed,
    }


def run_child(size: int, database: str, overdue_share: float) -> dict:
    env = child_env("otomat-bench-billing-", database)
    args = ["--child", str(size), "--overdue-share", str(overdue_share)]
    return _run(__file__, args, env, label=f"{database}, {size}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,50000,100000")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument(
        "--overdue-share",
        type=float,
        default=0.0,
        help="share of subscriptions whose invoice is 7 days overdue (suspended one by one)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--profile",
        metavar="PATH",
        help="profile each full run with cProfile into PATH.<database>.<size> (slower)",
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import logging

        logging.disable(logging.INFO)
        print(json.dumps(child(args.child, args.overdue_share)))
        return 0
    if args.profile:
        os.environ["BILLING_BENCH_PROFILE"] = str(Path(args.profile).resolve())
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    for database in args.databases.split(","):
        if database == "postgres" and not postgres_available():
            print(f"PostgreSQL skipped: nothing answers at {POSTGRES}", file=sys.stderr)
            continue
        for size in sizes:
            result = run_child(size, database, args.overdue_share)
            results.append(result)
            print(f"  {database} {size}: {result['run_s']} s", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"{'database':<11}{'subs':>8}{'run s':>9}{'µs/sub':>9}{'subs/s':>9}{'× base':>8}"
        f"{'idle run s':>12}{'invoices':>10}{'suspended':>11}{'gap-free':>10}"
    )
    for database in sorted({r["database"] for r in results}):
        rows = [r for r in results if r["database"] == database]
        base = rows[0]["run_s"] / rows[0]["size"]
        for r in rows:
            per = r["run_s"] / r["size"]
            print(
                f"{database:<11}{r['size']:>8}{r['run_s']:>9.1f}{per * 1e6:>9.0f}"
                f"{r['size'] / r['run_s']:>9.0f}{per / base:>8.2f}{r['idle_run_s']:>12.3f}"
                f"{r['invoices']:>10}{r['suspended']:>11}{'yes' if r['gap_free'] else 'NO':>10}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
