"""The runner's reconcile at 1,000, 10,000 and 100,000 idle shared-runtime instances: the
full scan it did before (every row, every spec, every secret decrypted, on every reconcile and
every poke) beside the incremental reconcile, in one run.

    .venv/bin/python bench/runner_reconcile.py [--sizes 1000,10000,100000] [--repeat 5]
                                               [--databases sqlite,postgres] [--json]

For each size and database a fresh process builds a fresh database (migrated) with ``size``
running instances of one shared-runtime product version (each with an encrypted bot token,
last changed an hour ago) and a runner whose backend is an in-memory stand-in that already
runs every one of them. The stand-in answers ``ensure_running`` as the shared backend does for
an instance already running at that generation (its per-instance lock and configuration
comparison), so the "before" pays what the old reconcile paid per instance; starting processes
is not timed. Each row is the median of ``--repeat`` runs (wall time; queries through Django's
execute wrapper):

* **before: full reconcile** — ``runner.load_plan()`` and the old loop over every spec
  (kept callable as the baseline); what every poke and every timed reconcile cost before.
* **after: poke, nothing changed** — ``Runner.reconcile(poked=True)``: one index range read.
* **after: timed reconcile** — the same plus the warm-spare list (every
  ``RUNNER_RECONCILE_SECONDS``).
* **after: poke, one instance changed** — a restart (new generation) then the poke: its spec
  is built and its token decrypted, nobody else's.
* **after: full resync** — every ``RUNNER_RESYNC_SECONDS``: every live row's few columns and
  the backend's whole state, no spec.
* **observations: 1,000 heartbeats** — written one transaction each (before) and as one batch.

PostgreSQL is used when it answers at OTOMAT_BENCH_POSTGRES (default
postgres://postgres@127.0.0.1:5432/otomat_bench_runner; the database is dropped and created).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get(
    "OTOMAT_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/otomat_bench_runner"
)
SCHEMA = {
    "type": "object",
    "required": ["bot_token"],
    "properties": {"bot_token": {"type": "string", "x-otomat-secret": True}},
}


class Meter:
    """Counts queries through Django's execute wrapper."""

    def __init__(self) -> None:
        self.queries = 0

    def __call__(self, execute, sql, params, many, context):
        self.queries += 1
        return execute(sql, params, many, context)


class StandIn:
    """Every instance already runs; ``ensure_running`` does what the shared backend does for
    one that runs at the same generation (lock, compare, return)."""

    name = "stand-in"

    def __init__(self) -> None:
        self.states: dict = {}
        self.specs: dict = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.started = 0

    def actual(self) -> dict:
        import dataclasses

        return {iid: dataclasses.replace(s) for iid, s in self.states.items()}

    async def ensure_running(self, spec) -> None:
        from otomat.runtime.backends.base import ActualState, Phase

        async with self.locks.setdefault(spec.instance_id, asyncio.Lock()):
            known = self.specs.get(spec.instance_id)
            same = known is not None and known.generation == spec.generation
            if same and known.config == spec.config:
                return
            self.started += 1
            self.specs[spec.instance_id] = spec
            self.states[spec.instance_id] = ActualState(
                spec.instance_id, Phase.RUNNING, generation=spec.generation
            )

    async def ensure_stopped(self, instance_id: str) -> None:
        self.specs.pop(instance_id, None)

    async def prepare(self, specs) -> None:
        pass


async def old_reconcile(backend) -> None:
    """The runner's reconcile before the incremental one (the code as it was)."""
    from asgiref.sync import sync_to_async

    from otomat.runtime.backends.base import Phase
    from otomat.runtime.runner import load_plan

    to_run, to_stop, warm = await sync_to_async(load_plan, thread_sensitive=True)()
    known = backend.actual()
    wanted = {spec.instance_id for spec in to_run}
    for spec in to_run:
        current = known.get(spec.instance_id)
        if current and current.phase == Phase.FAILED and current.generation == spec.generation:
            continue
        await backend.ensure_running(spec)
    for instance_id in set(known) - wanted:
        if known[instance_id].phase != Phase.STOPPED or instance_id in to_stop:
            await backend.ensure_stopped(instance_id)
    await backend.prepare(warm)


def build(size: int):
    from datetime import timedelta

    from django.utils import timezone

    from otomat.accounts.services import sign_up
    from otomat.catalog.models import Product, ProductVersion
    from otomat.instances.models import Instance

    customer = sign_up(
        email="bench@example.com", password="bench-pass-123456", full_name="B", account_name="B"
    )
    product = Product.objects.create(slug="bench-bot", name="Bench bot")
    version = ProductVersion.objects.create(
        product=product, version="1.0.0", runtime="shared", entry="bench.bot:build_router",
        config_schema=SCHEMA, source_dir="bench-bot/1.0.0", checksum="0" * 64,
    )  # fmt: skip
    long_ago = timezone.now() - timedelta(hours=1)
    Instance.objects.bulk_create(
        (
            Instance(
                account=customer.account,
                version=version,
                name=f"bot {n}",
                secrets={"bot_token": f"{100000 + n}:" + "A" * 35},
                state="running",
                desired="running",
                changed_at=long_ago,
            )
            for n in range(size)
        ),
        batch_size=2000,
    )
    return customer


async def measure(size: int, repeat: int) -> dict:
    from asgiref.sync import sync_to_async
    from django.db import connection

    from otomat.instances import services
    from otomat.instances.models import Instance
    from otomat.runtime.backends.base import ActualState, Phase
    from otomat.runtime.observe import record_observations
    from otomat.runtime.runner import Runner

    meter = Meter()

    def install_meter() -> None:
        connection.execute_wrappers.append(meter)

    await sync_to_async(install_meter, thread_sensitive=True)()
    results: dict[str, dict] = {}

    async def timed(name: str, run, before=None) -> None:
        seconds, queries = [], []
        for _ in range(repeat):
            if before is not None:
                await before()
            meter.queries = 0
            started = time.perf_counter()
            await run()
            seconds.append(time.perf_counter() - started)
            queries.append(meter.queries)
        results[name] = {"ms": statistics.median(seconds) * 1000, "queries": max(queries)}

    stand_in = StandIn()
    await old_reconcile(stand_in)  # fills the stand-in: everything runs
    await timed("before: full reconcile", lambda: old_reconcile(stand_in))

    runner = Runner()
    runner.backend = stand_in
    meter.queries = 0
    started = time.perf_counter()
    await runner.reconcile()  # the runner's start: a full resync (everything already runs)
    results["after: first reconcile (full resync)"] = {
        "ms": (time.perf_counter() - started) * 1000,
        "queries": meter.queries,
    }
    await timed("after: poke, nothing changed", lambda: runner.reconcile(poked=True))
    await timed("after: timed reconcile, nothing changed", runner.reconcile)
    ids = await sync_to_async(
        lambda: list(Instance.objects.order_by().values_list("pk", flat=True)[: repeat * 2]),
        thread_sensitive=True,
    )()
    pending = iter(ids)

    async def change_one() -> None:
        instance = await sync_to_async(Instance.objects.get, thread_sensitive=True)(
            pk=next(pending)
        )
        await sync_to_async(services.restart_instance, thread_sensitive=True)(instance, actor=None)

    before_starts = stand_in.started
    await timed(
        "after: poke, one instance changed",
        lambda: runner.reconcile(poked=True),
        before=change_one,
    )
    assert stand_in.started - before_starts == repeat, "each change starts its instance once"

    async def full() -> None:
        runner.resync_soon()
        await runner.reconcile()

    await timed("after: full resync", full)

    rows = await sync_to_async(
        lambda: [
            str(i)
            for i in Instance.objects.order_by().values_list("pk", flat=True)[repeat * 2 : 1000]
        ],
        thread_sensitive=True,
    )()
    beats = [ActualState(iid, Phase.RUNNING, generation=1, pid=7) for iid in rows]

    def one_by_one() -> None:
        for beat in beats:
            record_observations([beat])

    await timed(
        f"observations: {len(beats)} one transaction each",
        sync_to_async(one_by_one, thread_sensitive=True),
    )
    await timed(
        f"observations: {len(beats)} in one batch",
        sync_to_async(lambda: record_observations(beats), thread_sensitive=True),
    )
    return results


def child(size: int, repeat: int) -> dict:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "otomat.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    build(size)
    built = time.perf_counter() - started
    results = asyncio.run(measure(size, repeat))
    return {"size": size, "build_s": built, "results": results}


def run_child(size: int, repeat: int, database: str) -> dict:
    data = Path(tempfile.mkdtemp(prefix="otomat-bench-runner-"))
    env = dict(
        os.environ,
        OTOMAT_DATA_DIR=str(data),
        OTOMAT_TASK_BACKEND="django_tasks.backends.immediate.ImmediateBackend",
        OTOMAT_EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
    )
    env.pop("OTOMAT_DATABASE_URL", None)
    if database == "postgres":
        import psycopg

        base, _, name = POSTGRES.rpartition("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        env["OTOMAT_DATABASE_URL"] = POSTGRES
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(size), "--repeat", str(repeat)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"size {size} ({database}) failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(f"{POSTGRES.rpartition('/')[0]}/postgres", connect_timeout=2):
            return True
    except Exception:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--databases", default="sqlite")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.repeat)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    raw = []
    for database in args.databases.split(","):
        if database == "postgres" and not postgres_available():
            print(f"PostgreSQL does not answer at {POSTGRES}: skipped")
            continue
        for size in sizes:
            found = run_child(size, args.repeat, database)
            found["database"] = database
            raw.append(found)
    names = list(raw[0]["results"]) if raw else []
    print(
        f"\nrunner reconcile, idle shared-runtime instances (median of {args.repeat}; ms, queries)"
    )
    columns = [f"{r['database']} {r['size']:,}" for r in raw]
    header = f"{'what':44}" + "".join(f" {c:>20}" for c in columns)
    print(header)
    for name in names:
        cells = "".join(
            f" {r['results'][name]['ms']:>11.2f} ms {r['results'][name]['queries']:>4}q"
            for r in raw
        )
        print(f"{name:44}{cells}")
    for r in raw:
        before = r["results"]["before: full reconcile"]["ms"]
        poke = r["results"]["after: poke, nothing changed"]["ms"]
        print(
            f"{r['database']} {r['size']:,}: poke {before / max(poke, 1e-6):,.0f}× cheaper than "
            f"the full reconcile; building the fleet took {r['build_s']:.1f} s"
        )
    if args.json:
        print(json.dumps(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
