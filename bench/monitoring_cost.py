"""Monitoring's own cost at 1,000 and 10,000 instances, beside the runner's in the same run.

    .venv/bin/python bench/monitoring_cost.py [--sizes 1000,10000] [--databases sqlite,postgres]
                                              [--repeat 5] [--json]

For each size and database a fresh process builds a fresh database (migrated) with ``size``
customer instances (97 % running, 1 % failed, 1 % stopped, 1 % suspended by billing; each with a
bot token and its recorded transition) and a live runner heartbeat, and starts a fake Bot API in
another process (every getMe answers; its CPU is not counted). Then it measures, each the median
of ``--repeat`` runs, the process CPU time (``time.process_time``: every thread, the Telegram
check's pool included), the database queries and the rows written (INSERT/UPDATE/DELETE row
counts) of:

* **scan, steady**: one ``alerts.scan()`` with no Telegram check due and no hour to aggregate
  (every registered check: instance states, platform, Telegram, stuck provisioning, uptime);
* **scan + Telegram batch**: the same with ``OTOMAT_TELEGRAM_CHECK_BATCH`` bots due (getMe each);
* **scan + hour**: the first scan of a new hour (one UptimeHour row per instance upserted);
* **runner reconcile read** (baseline, no monitoring): ``runner.load_plan()`` — what the
  runner reads every ``OTOMAT_RUNNER_RECONCILE_SECONDS`` (the backend's own work not included).

From these and the default intervals (a scan every ``OTOMAT_MONITORING_SCAN_SECONDS``, each
running bot asked every ``OTOMAT_TELEGRAM_CHECK_SECONDS``) it derives monitoring's rows written
and CPU seconds per hour, beside the runner's reconcile reads per hour. PostgreSQL is used when
it answers at OTOMAT_BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432/otomat_bench;
the database is dropped and created).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from _common import POSTGRES, child_env, postgres_available
from _common import run_child as _run

FAKE_BOT_API = """
import sys
from aiohttp import web

async def call(request):
    token = request.match_info["token"]
    bot_id = int(token.split(":")[0])
    return web.json_response({"ok": True, "result": {
        "id": bot_id, "is_bot": True, "first_name": "Bench", "username": f"b{bot_id}_bot"}})

app = web.Application()
app.router.add_route("*", "/bot{token}/{method}", call)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""
SCHEMA = {
    "type": "object",
    "required": ["bot_token"],
    "properties": {
        "bot_token": {
            "type": "string",
            "x-otomat-secret": True,
            "x-otomat-check": "telegram_token",
        }
    },
}


class Meter:
    """Counts queries and rows written through Django's execute wrapper."""

    def __init__(self) -> None:
        self.queries = 0
        self.rows = 0

    def __call__(self, execute, sql, params, many, context):
        self.queries += 1
        result = execute(sql, params, many, context)
        verb = sql.lstrip()[:6].upper()
        if verb == "INSERT":
            # rowcount is unknown before a RETURNING clause is read: count the rows sent (one
            # array per column with PostgreSQL's UNNEST, else the VALUES groups).
            if not params:
                self.rows += 1
            elif many:
                self.rows += len(params)
            elif "UNNEST(" in sql.upper():
                self.rows += len(params[0])
            else:
                self.rows += sql.split(" VALUES ", 1)[-1].count("), (") + 1
        elif verb in ("UPDATE", "DELETE"):
            self.rows += max(context["cursor"].rowcount, 0)
        return result


def measure(fn, repeat: int, before=None) -> dict:
    """Median CPU seconds, wall seconds, queries and rows written of ``fn()`` over ``repeat``."""
    from django.db import connection

    cpu, wall, queries, rows = [], [], [], []
    for i in range(repeat):
        if before is not None:
            before(i)
        meter = Meter()
        with connection.execute_wrapper(meter):
            c0, w0 = time.process_time(), time.perf_counter()
            fn(i)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        queries.append(meter.queries)
        rows.append(meter.rows)
    return {
        "cpu_s": round(statistics.median(cpu), 4),
        "wall_s": round(statistics.median(wall), 4),
        "queries": int(statistics.median(queries)),
        "rows": int(statistics.median(rows)),
    }


def child(size: int, repeat: int, fake_url: str) -> dict:
    import django

    django.setup()
    from datetime import UTC, datetime, timedelta

    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", interactive=False, verbosity=0)
    from otomat.accounts.models import Account
    from otomat.catalog.models import Product, ProductVersion
    from otomat.instances.models import Instance, InstanceEvent
    from otomat.monitoring import alerts
    from otomat.monitoring.models_uptime import TelegramStatus, UptimeHour
    from otomat.ops.models import ServiceHeartbeat
    from otomat.ops.stale import HOSTNAME
    from otomat.runtime import runner

    settings.BOT_API_URL = fake_url
    real_now = datetime.now(UTC)
    # Two minutes into an hour, the instances two days old (their history aggregated).
    base = real_now.replace(minute=2, second=0, microsecond=0)
    created = base - timedelta(days=2)
    product = Product.objects.create(slug="bench", name="Bench Bot")
    version = ProductVersion.objects.create(
        product=product,
        version="1.0",
        runtime="process",
        source_dir="bench",
        checksum="0",
        config_schema=SCHEMA,
        entry="bench:router",
    )
    accounts_n = max(1, size // 10)
    Account.objects.bulk_create(
        [Account(name=f"Customer {i}", currency="IDR") for i in range(accounts_n)], batch_size=5000
    )
    account_ids = list(Account.objects.order_by("id").values_list("id", flat=True))
    states = []
    for i in range(size):
        share = i % 100
        if share == 0:
            states.append(("failed", "running", ""))
        elif share == 1:
            states.append(("stopped", "stopped", ""))
        elif share == 2:
            states.append(("suspended", "stopped", "billing"))
        else:
            states.append(("running", "running", ""))
    Instance.objects.bulk_create(
        [
            Instance(
                account_id=account_ids[i % accounts_n],
                version=version,
                name=f"bot {i}",
                config={},
                secrets={"bot_token": f"{1_000_000 + i}:{'A' * 35}"},
                bot_id=str(1_000_000 + i),
                live_bot_id=str(1_000_000 + i),
                state=state,
                desired=desired,
                suspension_source=source,
                created_at=created,
                state_changed_at=created + timedelta(minutes=1),
                status_message="gave up after 5 restarts" if state == "failed" else "",
            )
            for i, (state, desired, source) in enumerate(states)
        ],
        batch_size=2000,
    )
    ids = list(Instance.objects.order_by("created_at", "id").values_list("id", "state"))
    InstanceEvent.objects.bulk_create(
        [
            InstanceEvent(
                instance_id=iid,
                at=created + timedelta(minutes=1),
                from_state="provisioning",
                to_state=state,
                cause="bench",
            )
            for iid, state in ids
        ],
        batch_size=5000,
    )
    ServiceHeartbeat.objects.create(
        service="runner", host=HOSTNAME, pid=os.getpid(), started_at=created, seen_at=real_now
    )
    running = sum(1 for _, s in ids if s == "running")

    # History up to the current hour, and every bot checked: the steady state.
    alerts.scan(now=base)
    fresh = base + timedelta(days=1)  # "checked" in the future: not due in any cycle here
    TelegramStatus.objects.bulk_create(
        [TelegramStatus(instance_id=iid, checked_at=fresh) for iid, s in ids if s == "running"],
        batch_size=2000,
        ignore_conflicts=True,
    )
    TelegramStatus.objects.update(checked_at=fresh)
    clock = {"t": base + timedelta(seconds=15)}

    def scan(i: int) -> None:
        clock["t"] += timedelta(seconds=15)
        alerts.scan(now=clock["t"])

    # Warm up (first-scan effects: the rule cache, alert rows of the failed instances).
    for _ in range(2):
        scan(0)
    steady = measure(scan, repeat)

    batch = settings.TELEGRAM_CHECK_BATCH

    def make_due(i: int) -> None:
        TelegramStatus.objects.update(checked_at=fresh)
        pks = list(
            TelegramStatus.objects.order_by("instance_id").values_list("instance_id", flat=True)[
                :batch
            ]
        )
        TelegramStatus.objects.filter(instance_id__in=pks).update(checked_at=created)

    with_telegram = measure(scan, repeat, before=make_due)

    next_hour = base.replace(minute=0) + timedelta(hours=1)

    def hour_scan(i: int) -> None:
        alerts.scan(now=next_hour + timedelta(minutes=1, seconds=i))

    def forget_hour(i: int) -> None:
        TelegramStatus.objects.update(checked_at=fresh)
        UptimeHour.objects.filter(hour=base.replace(minute=0)).delete()

    hour = measure(hour_scan, repeat, before=forget_hour)

    def reconcile(i: int) -> None:
        runner.load_plan()

    reconcile_read = measure(reconcile, repeat)

    scans_per_hour = 3600 / settings.MONITORING_SCAN_SECONDS
    checks_per_hour = running * 3600 / settings.TELEGRAM_CHECK_SECONDS
    batches_per_hour = checks_per_hour / batch
    rows_per_hour = (
        scans_per_hour * steady["rows"]
        + batches_per_hour * (with_telegram["rows"] - steady["rows"])
        + (hour["rows"] - steady["rows"])
        + size / 24  # the day's roll-up, once a day
    )
    cpu_per_hour = (
        scans_per_hour * steady["cpu_s"]
        + batches_per_hour * max(0.0, with_telegram["cpu_s"] - steady["cpu_s"])
        + max(0.0, hour["cpu_s"] - steady["cpu_s"])
    )
    reconciles_per_hour = 3600 / settings.RUNNER_RECONCILE_SECONDS
    return {
        "database": connection.vendor,
        "size": size,
        "running": running,
        "scan": steady,
        "scan_telegram": with_telegram,
        "telegram_batch": batch,
        "scan_hour": hour,
        "reconcile_read": reconcile_read,
        "scan_seconds": settings.MONITORING_SCAN_SECONDS,
        "telegram_seconds": settings.TELEGRAM_CHECK_SECONDS,
        "reconcile_seconds": settings.RUNNER_RECONCILE_SECONDS,
        "rows_per_hour": round(rows_per_hour),
        "cpu_s_per_hour": round(cpu_per_hour, 1),
        "reconcile_cpu_s_per_hour": round(reconciles_per_hour * reconcile_read["cpu_s"], 1),
        "telegram_batches_per_hour": round(batches_per_hour, 1),
    }


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_child(size: int, database: str, repeat: int, fake_url: str) -> dict:
    env = child_env("otomat-bench-monitoring-", database)
    args = ["--child", str(size), "--repeat", str(repeat), "--fake", fake_url]
    return _run(__file__, args, env, label=f"{database}, {size}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--databases", default="sqlite")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fake", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.child:
        import logging

        logging.disable(logging.WARNING)
        print(json.dumps(child(args.child, args.repeat, args.fake)))
        return 0
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes must be whole numbers separated by commas, not {args.sizes!r}")
    if any(s < 100 for s in sizes):
        parser.error("each size must be at least 100")
    port = free_port()
    fake = subprocess.Popen([sys.executable, "-c", FAKE_BOT_API, str(port)])
    time.sleep(1.5)
    results = []
    try:
        for database in args.databases.split(","):
            if database == "postgres" and not postgres_available():
                print(f"PostgreSQL skipped: nothing answers at {POSTGRES}", file=sys.stderr)
                continue
            for size in sizes:
                result = run_child(size, database, args.repeat, f"http://127.0.0.1:{port}")
                results.append(result)
                print(f"  {database} {size}: done", file=sys.stderr, flush=True)
    finally:
        fake.terminate()
        fake.wait(10)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"{'database':<10}{'bots':>7}  {'cycle':<24}{'CPU ms':>8}{'wall ms':>9}"
        f"{'queries':>9}{'rows':>8}"
    )
    for r in results:
        cycles = [
            ("scan, steady", r["scan"]),
            (f"scan + Telegram {r['telegram_batch']}", r["scan_telegram"]),
            ("scan + hour", r["scan_hour"]),
            ("runner reconcile read", r["reconcile_read"]),
        ]
        for label, m in cycles:
            print(
                f"{r['database']:<10}{r['size']:>7}  {label:<24}{m['cpu_s'] * 1000:>8.0f}"
                f"{m['wall_s'] * 1000:>9.0f}{m['queries']:>9}{m['rows']:>8}"
            )
    print()
    print(
        f"{'database':<10}{'bots':>7}{'rows/h':>9}{'monitoring CPU s/h':>20}"
        f"{'runner reconcile CPU s/h':>26}{'Telegram batches/h':>20}"
    )
    for r in results:
        print(
            f"{r['database']:<10}{r['size']:>7}{r['rows_per_hour']:>9}{r['cpu_s_per_hour']:>20}"
            f"{r['reconcile_cpu_s_per_hour']:>26}{r['telegram_batches_per_hour']:>20}"
        )
    print(
        f"(scan every {results[0]['scan_seconds']} s, each running bot asked every "
        f"{results[0]['telegram_seconds']} s, reconcile every {results[0]['reconcile_seconds']} s)"
        if results
        else "no results"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
