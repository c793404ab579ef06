"""Retention pruning and stored invoice PDFs, on SQLite and PostgreSQL.

    .venv/bin/python bench/retention.py --sizes 20000,100000 [--databases sqlite,postgres]

For each size and database, in a fresh migrated database: seeds ``size`` rows of each of four
kinds past their retention (rejected gateway callbacks, delivered notifications, instance events
over 100 instances, billing actions), then times

* ``prune_old_records()`` as the hourly job runs it (batches of ``OTOMAT_RETENTION_BATCH`` rows,
  each rule in its own short transactions), and, as the baseline in the same run, the same rows
  seeded again and deleted with one unbatched ``QuerySet.delete()`` per kind;
* the next ``prune_old_records()`` when nothing is due (what the hourly job costs then).

Then it renders one invoice PDF 20 times (what issuing costs once) and serves the stored one 20
times (what every download costs), and prints both medians. PostgreSQL is used when it answers
at OTOMAT_BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432/otomat_bench_retention; the
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
    "OTOMAT_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/otomat_bench_retention"
)


def child(size: int) -> dict:
    import django

    django.setup()
    from datetime import UTC, datetime, timedelta

    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from otomat.accounts.models import Account, User
    from otomat.billing.models import BillingAction, GatewayCallback
    from otomat.catalog.models import Product, ProductVersion
    from otomat.instances.models import Instance, InstanceEvent
    from otomat.notify.models import Notification
    from otomat.ops.retention import prune_old_records

    old = datetime(2020, 1, 1, tzinfo=UTC)
    user = User.objects.create_user(email="bench@example.com", password="x")
    account = Account.objects.create(name="Bench")
    product = Product.objects.create(slug="bench", name="Bench Bot")
    version = ProductVersion.objects.create(
        product=product, version="1.0", runtime="process", source_dir="x", checksum="0"
    )
    instances = Instance.objects.bulk_create(
        Instance(account=account, version=version, name=f"i{n}") for n in range(100)
    )

    def seed() -> None:
        chunk = 5000
        for start in range(0, size, chunk):
            n = min(chunk, size - start)
            GatewayCallback.objects.bulk_create(
                GatewayCallback(gateway="midtrans", body="{}", status="rejected", received_at=old)
                for _ in range(n)
            )
            Notification.objects.bulk_create(
                Notification(user=user, channel="email", kind="x", created_at=old, sent_at=old)
                for _ in range(n)
            )
            InstanceEvent.objects.bulk_create(
                InstanceEvent(instance=instances[i % 100], at=old, cause="bench") for i in range(n)
            )
            BillingAction.objects.bulk_create(
                BillingAction(at=old, kind="rejected", reason="bench") for _ in range(n)
            )

    def left() -> int:
        return sum(
            m.objects.count() for m in (GatewayCallback, Notification, InstanceEvent, BillingAction)
        )

    seed()
    started = time.perf_counter()
    counts = prune_old_records()
    batched = time.perf_counter() - started
    kept = left()  # each instance's newest event stays

    started = time.perf_counter()
    prune_old_records()
    idle = time.perf_counter() - started

    seed()
    started = time.perf_counter()
    cutoff = old + timedelta(days=1)
    GatewayCallback.objects.filter(status="rejected", received_at__lt=cutoff).delete()
    Notification.objects.filter(sent_at__lt=cutoff).delete()
    InstanceEvent.objects.filter(at__lt=cutoff).delete()
    BillingAction.objects.filter(at__lt=cutoff).delete()
    one_shot = time.perf_counter() - started

    render, serve = _pdf_figures(user, account)
    return {
        "database": "postgresql"
        if "postgres" in os.environ.get("OTOMAT_DATABASE_URL", "")
        else "sqlite",
        "size": size,
        "rows": 4 * size,
        "pruned": sum(counts.values()),
        "kept": kept,
        "batched_s": round(batched, 3),
        "one_shot_s": round(one_shot, 3),
        "idle_s": round(idle, 4),
        "render_ms": round(render * 1000, 1),
        "serve_ms": round(serve * 1000, 2),
    }


def _pdf_figures(user, account) -> tuple[float, float]:
    from datetime import UTC, datetime

    from otomat.billing import documents
    from otomat.billing.models import BillingSettings, Invoice, InvoiceLine
    from otomat.billing.pdf import render_pdf

    now = datetime(2026, 6, 1, tzinfo=UTC)
    invoice = Invoice.objects.create(
        account=account,
        kind="manual",
        number="BENCH/1",
        currency="IDR",
        subtotal_minor=150_000,
        tax_minor=16_500,
        total_minor=166_500,
        amount_due_minor=166_500,
        issued_at=now,
        due_at=now,
        buyer={"name": "Bench", "lines": ["Jalan 1"], "email": "b@example.com"},
        seller=documents.seller_snapshot(BillingSettings.get()),
    )
    InvoiceLine.objects.create(
        invoice=invoice,
        description="Bench Bot, June 2026",
        unit_price_minor=150_000,
        net_minor=150_000,
        tax_minor=16_500,
        gross_minor=166_500,
    )
    renders = []
    for _ in range(20):
        started = time.perf_counter()
        render_pdf(documents.invoice_document(invoice, invoice.lines.all()))
        renders.append(time.perf_counter() - started)
    documents.stored_pdf(invoice)
    serves = []
    for _ in range(20):
        started = time.perf_counter()
        bytes(documents.stored_pdf(Invoice.objects.get(pk=invoice.pk)).content)
        serves.append(time.perf_counter() - started)
    return statistics.median(renders), statistics.median(serves)


def run_child(size: int, database: str) -> dict:
    env = child_env("otomat-bench-retention-", database, OTOMAT_RETENTION_MAX_ROWS=str(10 * size))
    return _run(__file__, ["--child", str(size)], env, label=f"{database}, {size}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20000,100000")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import logging

        logging.disable(logging.INFO)
        print(json.dumps(child(args.child)))
        return 0
    results = []
    for database in args.databases.split(","):
        if database == "postgres" and not postgres_available(POSTGRES):
            print(f"PostgreSQL skipped: nothing answers at {POSTGRES}", file=sys.stderr)
            continue
        for size in (int(s) for s in args.sizes.split(",")):
            results.append(run_child(size, database))
    print(
        f"{'database':<11}{'rows':>8}{'pruned':>8}{'kept':>6}{'batched s':>11}{'rows/s':>9}"
        f"{'one-shot s':>12}{'× one-shot':>11}{'idle s':>9}{'render ms':>11}{'serve ms':>10}"
    )
    for r in results:
        print(
            f"{r['database']:<11}{r['rows']:>8}{r['pruned']:>8}{r['kept']:>6}"
            f"{r['batched_s']:>11.2f}{r['pruned'] / r['batched_s']:>9.0f}{r['one_shot_s']:>12.2f}"
            f"{r['batched_s'] / r['one_shot_s']:>11.2f}{r['idle_s']:>9.4f}"
            f"{r['render_ms']:>11.1f}{r['serve_ms']:>10.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
