"""The portal under load: requests/s and p50/p95 latency with 50 concurrent clients for the
catalog, the customer's instance list and an instance's page, the staff "All instances" page
and the billing dashboard, each beside ``/healthz`` on the same server in the same run.

    .venv/bin/python bench/portal.py [--sizes demo,big] [--workers 1,default] [--seconds 10]
                                     [--concurrency 50] [--pages catalog,list,...] [--json]

For each size a fresh SQLite data directory under /tmp gets the demo data (``otomat demo``:
owner, customer, the first-party products and plans) and then, bulk-created:

* ``demo``: 5 instances of the demo customer, each with a paid subscription and its invoice;
* ``big``: 10,000 live instances and 100,000 subscriptions (a subscription belongs to one
  instance, so 90,000 of them are ended subscriptions of terminated instances), spread over
  1,000 accounts, with 100,000 invoices (a fifth of them open, some overdue) and 30,000
  payments over the last year; the demo customer owns 20 of the live instances.

The server is the real ``otomat web`` with ``OTOMAT_WEB_WORKERS`` processes: every size runs
once per ``--workers`` entry (``1`` is the old single-process server, ``default`` leaves the
variable unset: one process per CPU). The clients are asyncio tasks speaking plain HTTP/1.1
with keep-alive (lighter than an HTTP library, so that the client takes less of the CPU it
shares with the server), logged in with session cookies made in the data directory. Each page
is loaded for ``--seconds`` after a warm-up; a response other than 200 counts as an error.
The target is every page's p95 within 3× that of ``/healthz`` on the same server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import free_port

REPO = Path(__file__).resolve().parent.parent
PAGES = ["healthz", "catalog", "list", "detail", "manage", "dashboard"]
TARGET = 3.0


# -- the data (run in a child process with OTOMAT_DATA_DIR set) --------------------------------


def seed(size: str) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "otomat.settings")
    import django

    django.setup()
    from datetime import timedelta

    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    call_command("migrate", interactive=False, verbosity=0)
    from otomat.accounts.models import Account, User
    from otomat.billing.models import Invoice, Payment, Plan, Subscription
    from otomat.demo import CUSTOMER_EMAIL, OWNER_EMAIL, ensure_demo_data
    from otomat.instances.models import Instance

    ensure_demo_data()
    owner = User.objects.get(email=OWNER_EMAIL)
    customer = User.objects.get(email=CUSTOMER_EMAIL)
    plan = (
        Plan.objects.filter(currency="IDR").order_by("price_minor").first() or Plan.objects.first()
    )
    version = plan.product.latest_version()
    now = timezone.now()
    S, St = Subscription.Status, Instance.State

    if size == "demo":
        accounts, live, ended, mine = [customer.account], 5, 0, 5
    else:
        others = Account.objects.bulk_create(
            Account(name=f"Customer {i}", currency="IDR") for i in range(999)
        )
        accounts = [customer.account, *others]
        live, ended, mine = 10_000, 90_000, 20

    serial = 0

    def instances_and_subscriptions(count: int, *, terminated: bool, first_mine: int) -> None:
        nonlocal serial
        batch = 5_000
        for start in range(0, count, batch):
            rows = []
            for i in range(start, min(count, start + batch)):
                serial += 1
                account = accounts[0] if i < first_mine else accounts[1 + i % (len(accounts) - 1)]
                rows.append(
                    Instance(
                        account=account,
                        version=version,
                        name=f"bot {serial}",
                        state=St.TERMINATED if terminated else St.RUNNING,
                        desired="stopped" if terminated else "running",
                        created_at=now - timedelta(minutes=serial),
                        terminated_at=now - timedelta(days=serial % 300) if terminated else None,
                    )
                )
            Instance.objects.bulk_create(rows)
            subs = Subscription.objects.bulk_create(
                Subscription(
                    account=inst.account,
                    instance=inst,
                    plan=plan,
                    status=S.CANCELED if terminated else S.ACTIVE,
                    activated_at=now - timedelta(days=30 + (k * 7) % 700),
                    ended_at=now - timedelta(days=k % 300) if terminated else None,
                    current_period_start=now - timedelta(days=10),
                    current_period_end=now + timedelta(days=20),
                )
                for k, inst in enumerate(rows)
            )
            invoices = Invoice.objects.bulk_create(
                Invoice(
                    account=sub.account,
                    subscription=sub,
                    kind=Invoice.Kind.RENEWAL,
                    status=Invoice.Status.OPEN if k % 5 == 0 else Invoice.Status.PAID,
                    number=f"BENCH-{sub.pk:07d}",
                    currency=plan.currency,
                    subtotal_minor=plan.price_minor,
                    total_minor=plan.price_minor,
                    amount_paid_minor=0 if k % 5 == 0 else plan.price_minor,
                    amount_due_minor=plan.price_minor if k % 5 == 0 else 0,
                    issued_at=now - timedelta(days=k % 360),
                    due_at=now - timedelta(days=k % 360) + timedelta(days=14),
                    paid_at=None if k % 5 == 0 else now - timedelta(days=k % 360),
                    buyer={"name": sub.account.name},
                )
                for k, sub in enumerate(subs)
            )
            Payment.objects.bulk_create(
                Payment(
                    account=inv.account,
                    invoice=inv,
                    gateway="manual",
                    provider_payment_id=f"bench-{inv.pk}",
                    amount_minor=inv.total_minor,
                    currency=inv.currency,
                    received_at=inv.paid_at,
                )
                for k, inv in enumerate(invoices)
                if inv.paid_at is not None and k % 3 == 0
            )

    instances_and_subscriptions(live, terminated=False, first_mine=mine)
    instances_and_subscriptions(ended, terminated=True, first_mine=0)

    def session(user) -> str:
        client = Client()
        client.force_login(user)  # a session in the database, as a login makes
        name = settings.SESSION_COOKIE_NAME
        return f"{name}={client.cookies[name].value}"

    detail = Instance.objects.filter(account=customer.account).exclude(state=St.TERMINATED).first()
    return {
        "customer": session(customer),
        "owner": session(owner),
        "instance": str(detail.pk),
        "instances": Instance.objects.exclude(state=St.TERMINATED).count(),
        "subscriptions": Subscription.objects.count(),
    }


# -- the load --------------------------------------------------------------------------------


async def _get(reader, writer, request: bytes) -> tuple[int, int]:
    """One request on a keep-alive connection: (status, body bytes)."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
        return status, len(body)
    if headers.get("transfer-encoding") == "chunked":
        total = 0
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            total += size
            if size == 0:
                return status, total
    return status, 0


async def load(port: int, path: str, cookie: str, seconds: float, concurrency: int) -> dict:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept-Language: en\r\n"
        + (f"Cookie: {cookie}\r\n" if cookie else "")
        + "\r\n"
    ).encode()
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    status, _ = await _get(reader, writer, request)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    errors += 1
        finally:
            writer.close()

    began = time.monotonic()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.monotonic() - began
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": q[49],
        "p95": q[94],
        "errors": errors,
    }


def _wait(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                if b" 200 " in sock.recv(200):
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def serve_and_measure(env: dict, workers: str, data: dict, args) -> dict:
    env = dict(env)
    if workers == "default":
        env.pop("OTOMAT_WEB_WORKERS", None)
    else:
        env["OTOMAT_WEB_WORKERS"] = workers
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "otomat.cli", "web", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    paths = {
        "healthz": ("/healthz", ""),
        "catalog": ("/catalog/", data["customer"]),
        "list": ("/instances/", data["customer"]),
        "detail": (f"/instances/{data['instance']}/", data["customer"]),
        "manage": ("/instances/manage/", data["owner"]),
        "dashboard": ("/billing/manage/", data["owner"]),
    }
    try:
        if not _wait(port, 120):
            raise SystemExit("the web server did not answer /healthz within 120 s")
        results = {}
        for page in args.pages:
            path, cookie = paths[page]
            # Warm-up: every worker imports its templates and opens its connection.
            asyncio.run(load(port, path, cookie, 1.5, args.concurrency))
            results[page] = asyncio.run(load(port, path, cookie, args.seconds, args.concurrency))
        return results
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="demo,big")
    parser.add_argument("--workers", default="1,default")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--pages", default=",".join(PAGES))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seed", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        print(json.dumps(seed(args.seed)))
        return 0
    args.pages = [p for p in args.pages.split(",") if p]
    unknown = set(args.pages) - set(PAGES)
    if unknown or not 0 < args.seconds <= 60 or not 0 < args.concurrency <= 500:
        parser.error(f"pages from {PAGES}, 0 < --seconds <= 60, 0 < --concurrency <= 500")
    if "healthz" not in args.pages:
        args.pages.insert(0, "healthz")

    report = {"cpus": os.cpu_count(), "runs": []}
    for size in args.sizes.split(","):
        if size not in ("demo", "big"):
            parser.error(f"unknown size {size!r} (demo, big)")
        data_dir = tempfile.mkdtemp(prefix=f"otomat-portal-{size}-", dir="/tmp")
        env = {
            **os.environ,
            "OTOMAT_DATA_DIR": data_dir,
            "OTOMAT_REQUIRE_STAFF_2FA": "0",
            "OTOMAT_LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "otomat.settings",
        }
        env.pop("OTOMAT_DATABASE_URL", None)
        try:
            began = time.monotonic()
            seeded_run = subprocess.run(
                [sys.executable, __file__, "--seed", size],
                env=env,
                capture_output=True,
                text=True,
                cwd=REPO,
            )
            if seeded_run.returncode:
                sys.stderr.write(seeded_run.stderr)
                raise SystemExit(f"seeding the {size} data failed")
            out = seeded_run.stdout
            data = json.loads(out.strip().splitlines()[-1])
            seeded = time.monotonic() - began
            for workers in args.workers.split(","):
                results = serve_and_measure(env, workers, data, args)
                report["runs"].append(
                    {
                        "size": size,
                        "instances": data["instances"],
                        "subscriptions": data["subscriptions"],
                        "seed_seconds": round(seeded, 1),
                        "workers": workers if workers != "default" else str(os.cpu_count()),
                        "pages": results,
                    }
                )
                if not args.json:
                    print_run(report["runs"][-1], args)
                    sys.stdout.flush()
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


def print_run(run: dict, args) -> None:
    pages = run["pages"]
    base = pages["healthz"]["p95"]
    print(
        f"\n{run['size']}: {run['instances']:,} live instances, {run['subscriptions']:,} "
        f"subscriptions (seeded in {run['seed_seconds']} s); {run['workers']} web worker(s), "
        f"{args.concurrency} clients, {args.seconds:g} s per page"
    )
    print(f"  {'page':<10} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>6}  p95/healthz")
    for page, r in pages.items():
        ratio = r["p95"] / base if base else float("inf")
        verdict = "" if page == "healthz" else ("ok" if ratio <= TARGET else f"> {TARGET:g}x")
        print(
            f"  {page:<10} {r['rps']:8.1f} {r['p50'] * 1000:8.0f} {r['p95'] * 1000:8.0f} "
            f"{r['errors']:6d}  {ratio:5.1f}x {verdict}"
        )


if __name__ == "__main__":
    sys.exit(main())
