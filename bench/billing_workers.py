"""The billing run on task workers: 2 RQ workers (Redis) beside 2 database-queue workers, and
the same run inline in one process as the baseline, on PostgreSQL.

    .venv/bin/python bench/billing_workers.py --sizes 10000[,100000] [--workers 2]
                                              [--modes inline,database,redis] [--json]

For each size and mode a fresh PostgreSQL database (``OTOMAT_BENCH_POSTGRES``, dropped and
created) is migrated and seeded with ``size`` active subscriptions all due for their renewal
invoice now (as in bench/billing_run.py). Then:

* inline — ``run_billing()`` in the measuring process (the baseline);
* database / redis — ``--workers`` real ``otomat worker`` processes on that queue are started
  and waited for (their heartbeats), then the billing run is enqueued once per worker
  (the dunning run of ``run_billing_task`` without its batch of 200 PDFs, see
  bench/_billing_workers_task.py: concurrent runs split the due subscriptions between them by
  skipping rows another run has locked) and timed from the enqueue until every run has
  finished — the workers' start is not counted.

Afterwards each mode's result is checked: one renewal invoice per subscription, numbers without
gaps, one "invoice issued" notice each. RQ uses ``OTOMAT_BENCH_REDIS`` (default
redis://127.0.0.1:6379/13), flushed first.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

from _common import POSTGRES, REPO, child_env, postgres_available
from _common import run_child as _run

REDIS = os.environ.get("OTOMAT_BENCH_REDIS", "redis://127.0.0.1:6379/13")
BACKENDS = {"inline": "django_tasks.backends.dummy.DummyBackend", "database": "database"}
BACKENDS["redis"] = "redis"


def seed(size: int, now) -> None:
    from _billing_seed import seed_renewals

    seed_renewals(size, now)


def start_workers(count: int) -> list[subprocess.Popen]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "bench"), env.get("PYTHONPATH", "")])
    return [
        subprocess.Popen(
            [sys.executable, "-m", "otomat.cli", "worker"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(env["OTOMAT_DATA_DIR"], f"worker-{i}.log"), "ab"),
        )
        for i in range(count)
    ]


def child(size: int, mode: str, workers: int) -> dict:
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", interactive=False, verbosity=0)
    from otomat.billing.models import Invoice
    from otomat.notify.models import Notification
    from otomat.ops.models import ServiceHeartbeat

    now = timezone.now()
    t0 = time.perf_counter()
    seed(size, now)
    seeded = time.perf_counter() - t0
    procs: list[subprocess.Popen] = []
    try:
        if mode == "inline":
            from otomat.billing.dunning import run_billing

            t0 = time.perf_counter()
            run_billing()
            elapsed = time.perf_counter() - t0
        else:
            from _billing_workers_task import dunning_run_task
            from django_tasks import task_backends

            procs = start_workers(workers)
            deadline = time.monotonic() + 180
            while ServiceHeartbeat.objects.filter(service="worker").count() < workers:
                if time.monotonic() > deadline:
                    raise SystemExit("the workers did not start")
                time.sleep(0.2)
            time.sleep(3)  # let them reach their queue's loop
            backend = task_backends["default"]
            t0 = time.perf_counter()
            results = [dunning_run_task.enqueue() for _ in range(workers)]
            while True:
                states = [str(backend.get_result(r.id).status) for r in results]
                if all(s in ("SUCCESSFUL", "FAILED") for s in states):
                    break
                time.sleep(0.05)
            elapsed = time.perf_counter() - t0
            if "FAILED" in states:
                raise SystemExit(f"a billing run failed: {states}")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    invoices = Invoice.objects.filter(kind="renewal")
    numbers = sorted(int(n.rsplit("/", 1)[1]) for n in invoices.values_list("number", flat=True))
    return {
        "mode": mode,
        "size": size,
        "workers": workers if mode != "inline" else 1,
        "seed_s": round(seeded, 1),
        "run_s": round(elapsed, 2),
        "invoices": invoices.count(),
        "distinct_subs": invoices.values("subscription_id").distinct().count(),
        "gap_free": numbers == list(range(1, len(numbers) + 1)),
        "notices": Notification.objects.filter(kind="billing/invoice_issued").count(),
    }


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS, socket_connect_timeout=2).flushdb()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--modes", default="inline,database,redis")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1], args.workers)))
        return 0
    if not postgres_available():
        print(f"PostgreSQL does not answer at {POSTGRES}: nothing measured")
        return 0
    modes = args.modes.split(",")
    if "redis" in modes:
        try:
            flush_redis()
        except Exception as exc:
            print(f"Redis does not answer at {REDIS} ({exc}): redis mode left out")
            modes.remove("redis")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for mode in modes:
            if mode == "redis":
                flush_redis()
            env = child_env("otomat-bench-workers-", "postgres")
            env["OTOMAT_TASK_BACKEND"] = BACKENDS[mode]
            env["OTOMAT_REDIS_URL"] = REDIS
            env["OTOMAT_EMAIL_BACKEND"] = "django.core.mail.backends.dummy.EmailBackend"
            rows.append(
                _run(
                    __file__,
                    ["--child", str(size), mode, "--workers", str(args.workers)],
                    env,
                    label=f"{mode} {size}",
                )
            )
            if not args.json:
                r = rows[-1]
                print(f"  done: {mode} {size}: {r['run_s']} s", file=sys.stderr)
    if args.json:
        print(json.dumps(rows))
        return 0
    print(
        f"{'mode':<10}{'workers':>8}{'subs':>9}{'run s':>9}{'subs/s':>9}{'× inline':>10}"
        f"{'invoices':>10}{'notices':>9}  gap-free"
    )
    for r in rows:
        base = next(
            (b["run_s"] for b in rows if b["mode"] == "inline" and b["size"] == r["size"]), None
        )
        ratio = f"{r['run_s'] / base:.2f}" if base else "-"
        ok = r["gap_free"] and r["distinct_subs"] == r["invoices"] == r["size"]
        print(
            f"{r['mode']:<10}{r['workers']:>8}{r['size']:>9}{r['run_s']:>9.1f}"
            f"{r['size'] / r['run_s']:>9.0f}{ratio:>10}{r['invoices']:>10}{r['notices']:>9}"
            f"  {'yes' if ok else 'NO'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
