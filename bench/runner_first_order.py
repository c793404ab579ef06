"""A version's first paid order in the shared runtime: payment callback → first answer when no
host of that version runs yet, with a spare host (``OTOMAT_SHARED_SPARE_HOSTS=1``, the default)
and without one (``0``, what every first order paid before), beside an order of a version
whose host already runs — in one run.

    .venv/bin/python bench/runner_first_order.py [--orders 5] [--gap 6] [--json]

Each mode runs in a fresh data directory (SQLite) with a real ``otomat runner`` and the Bot API
emulator. After the runner's first reconcile (``OTOMAT_RUNNER_RECONCILE_SECONDS`` is an hour, so
no timed reconcile starts a host for a version meanwhile), each round imports a new product — a
copy of the greeter with ``runtime = "shared"`` and its own slug, so no host of it runs —, places
an order on a paid plan and makes its Midtrans checkout (not timed), waits ``--gap`` seconds (a
spare taken by the previous round is replaced meanwhile; with spares, until its log says it is
ready: a host's start takes several seconds on a loaded machine), then times from the payment callback
handed to billing (``payments.receive_callback``: verify, confirm with Get Status at the fake
Midtrans, record the payment, run the subscription, provision) to the greeter's first answer to
``/start``. A second order of the same version then times the same path with its host running.
The callback handling is ``bench/provision_latency.py``'s (``paid_orders``), reused here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


def wait_for_spare(data: Path, timeout: float = 120) -> None:
    """Until a spare host has said it is ready and was not given a version yet (its log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for log in (data / "run" / "shared" / "hosts").glob("host-spare-*.log"):
            text = log.read_text(errors="replace")
            if "spare host ready" in text and "spare host given" not in text:
                return
        time.sleep(0.1)
    raise SystemExit("no spare host became ready")


def child(spares: int, orders: int, gap: float) -> dict:
    data = Path(os.environ["OTOMAT_DATA_DIR"])
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from provision_latency import paid_orders

    from otomat.accounts.services import sign_up
    from otomat.billing.models import GatewayConfig
    from otomat.catalog.services import import_product
    from otomat.instances import services
    from otomat.testing.processes import Emulator

    call_command("migrate", verbosity=0)
    emulator = Emulator(data / "tgemu.json")
    settings.BOT_API_URL = emulator.url
    os.environ["OTOMAT_BOT_API_URL"] = emulator.url
    customer = sign_up(
        email="bench@example.com", password="bench-pass-123456", full_name="B", account_name="B"
    )
    runner = subprocess.Popen(
        [sys.executable, "-m", "otomat.cli", "runner"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=data,
    )
    first: list[float] = []
    running: list[float] = []
    fakes = []
    try:
        time.sleep(6)  # the runner starts, reconciles once and (with spares) starts its spare
        for n in range(orders):
            source = data / f"greeter-{n}"
            shutil.copytree(REPO / "products" / "greeter", source)
            manifest = source / "otomat.toml"
            manifest.write_text(
                manifest.read_text()
                .replace('slug = "greeter"', f'slug = "greeter-first-{n}"')
                .replace('runtime = "process"', 'runtime = "shared"')
            )
            version = import_product(source, actor=None)
            # paid_orders() configures the gateway for its own fake Midtrans: one per product.
            GatewayConfig.objects.filter(code="midtrans").delete()
            fake, pay = paid_orders(version, customer)
            fakes.append(fake)
            for label, timings in (("first", first), ("again", running)):
                bot = f"order{n}{label}_bot"
                token = emulator.create_bot(bot)
                instance, deliver = pay(bot, token)
                time.sleep(gap if timings is first else 0.5)
                if timings is first and spares:
                    wait_for_spare(data)
                started = time.perf_counter()
                deliver()
                answer = emulator.ask(bot, "/start", timeout=60, user_id=7)
                if answer is None:
                    raise SystemExit(f"order {n}: no answer")
                timings.append(time.perf_counter() - started)
            services.remove_instance(instance, actor=customer)  # the first stays: its host runs
    finally:
        runner.terminate()
        runner.wait(30)
        emulator.close()
        for fake in fakes:
            fake.close()
    return {"first": first, "running": running}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=5, help="first orders per mode (5)")
    parser.add_argument("--gap", type=float, default=6.0, help="seconds before each first order")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.orders, args.gap)))
        return 0
    found = {}
    for spares in (1, 0):
        data = Path(tempfile.mkdtemp(prefix="otomat-bench-first-"))
        env = dict(
            os.environ,
            OTOMAT_DATA_DIR=str(data),
            DJANGO_SETTINGS_MODULE="otomat.settings",
            OTOMAT_SHARED_SPARE_HOSTS=str(spares),
            OTOMAT_RUNNER_RECONCILE_SECONDS="3600",
            OTOMAT_EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
            OTOMAT_TASK_BACKEND="django_tasks.backends.immediate.ImmediateBackend",
        )
        env.pop("OTOMAT_DATABASE_URL", None)
        argv = [sys.executable, __file__, "--child", str(spares), "--orders", str(args.orders)]
        out = subprocess.run(
            [*argv, "--gap", str(args.gap)],
            env=env,
            cwd=data,
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise SystemExit(f"spares={spares} failed:\n{out.stderr[-4000:]}")
        found[spares] = json.loads(out.stdout.strip().splitlines()[-1])
        shutil.rmtree(data, ignore_errors=True)

    print(f"\nshared runtime, payment callback → first answer (SQLite, median of {args.orders})")
    print(f"{'what':58} {'n':>3} {'median s':>9} {'min s':>7} {'max s':>7}")
    rows = [
        ("first order of a version, no host, a spare host (after)", found[1]["first"]),
        ("first order of a version, no host, no spare (before)", found[0]["first"]),
        ("order of a version whose host runs (spares 1)", found[1]["running"]),
        ("order of a version whose host runs (spares 0)", found[0]["running"]),
    ]
    for label, values in rows:
        print(
            f"{label:58} {len(values):>3} {statistics.median(values):>9.3f} "
            f"{min(values):>7.3f} {max(values):>7.3f}"
        )
    if args.json:
        print(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
