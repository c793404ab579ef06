"""Platform-level provisioning latency: from ``install_instance`` (validate, encrypt, record,
provision) through the runner's wake-up, the process backend and the sandbox, to the bot's first
answer in the emulator. Beside it, in the same run, the bare cost: a plain aiogram bot process
started cold, from spawn to its first answer.

    .venv/bin/python bench/provision_latency.py --installs 20 [--spares 1] [--json]
    .venv/bin/python bench/provision_latency.py --via-payment [--runtime shared] --installs 20

``--via-payment`` times what a paying customer waits for instead: the order is placed and its
Midtrans checkout made first (not timed), then the clock starts at the payment callback
(``payments.receive_callback``: verify, confirm with Get Status at the fake Midtrans, record the
payment, run the subscription, provision) and stops at the bot's first answer. ``--runtime
shared`` runs the greeter in the shared runtime instead (a copy of it with ``runtime =
"shared"``), whose host is already running with one instance before the first timed order.

Uses a throwaway data directory with SQLite, a real ``otomat runner`` and the emulator.
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
import textwrap
import time
from pathlib import Path

from _common import percentile

REPO = Path(__file__).resolve().parent.parent
BARE_BOT = textwrap.dedent("""
    import asyncio, sys
    from aiogram import Bot, Dispatcher
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.filters import CommandStart

    async def main():
        bot = Bot(sys.argv[2], session=AiohttpSession(api=TelegramAPIServer.from_base(sys.argv[1])))
        dp = Dispatcher()

        @dp.message(CommandStart())
        async def start(message):
            await message.answer("hi")

        await dp.start_polling(bot, handle_signals=True)

    asyncio.run(main())
""")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--installs", type=int, default=20, help="installs to time (default 20)")
    parser.add_argument("--spares", type=int, default=1, help="warm spares per version (default 1)")
    parser.add_argument("--bare", type=int, default=5, help="cold starts of a bare aiogram bot")
    parser.add_argument(
        "--via-payment",
        action="store_true",
        help="time payment callback → first answer of a paid order (see the docstring)",
    )
    parser.add_argument("--runtime", choices=("process", "shared"), default="process")
    parser.add_argument(
        "--gap",
        type=float,
        default=None,
        help="seconds between orders, for the spare pool to refill (default 3 with spares, "
        "else 0.5); a loaded machine warms a spare more slowly",
    )
    parser.add_argument("--json", action="store_true", help="also print raw figures as JSON")
    args = parser.parse_args()
    if args.gap is None:
        args.gap = 3 if args.spares else 0.5

    data = Path(tempfile.mkdtemp(prefix="otomat-bench-"))
    os.environ.update(
        OTOMAT_DATA_DIR=str(data),
        OTOMAT_RUNTIME_SPARES=str(args.spares),
        OTOMAT_RUNNER_RECONCILE_SECONDS="5",
        OTOMAT_EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
        OTOMAT_TASK_BACKEND="django_tasks.backends.immediate.ImmediateBackend",
        DJANGO_SETTINGS_MODULE="otomat.settings",
    )
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from otomat.accounts.services import sign_up
    from otomat.catalog.services import import_product
    from otomat.instances import services
    from otomat.testing.processes import Emulator, wait_until

    call_command("migrate", verbosity=0)
    emulator = Emulator(data / "tgemu.json")
    settings.BOT_API_URL = emulator.url
    os.environ["OTOMAT_BOT_API_URL"] = emulator.url
    source = REPO / "products" / "greeter"
    if args.runtime == "shared":
        source = data / "greeter-shared"
        shutil.copytree(REPO / "products" / "greeter", source)
        manifest = source / "otomat.toml"
        manifest.write_text(
            manifest.read_text()
            .replace('slug = "greeter"', 'slug = "greeter-shared"')
            .replace('runtime = "process"', 'runtime = "shared"')
        )
    version = import_product(source, actor=None)
    customer = sign_up(
        email="bench@example.com",
        password="bench-pass-123456",
        full_name="Bench",
        account_name="Bench",
    )
    runner = subprocess.Popen(
        [sys.executable, "-m", "otomat.cli", "runner"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=data,
    )
    results: dict[str, list[float]] = {"platform": [], "callback": [], "bare": []}
    fake = None
    try:
        time.sleep(8 if args.spares else 2)  # let the runner start and fill its spare pool
        if args.runtime == "shared":  # the shared host runs (one instance) before the first order
            token = emulator.create_bot("warm_bot")
            services.install_instance(
                account=customer.account,
                version=version,
                name="warm",
                config={"bot_token": token},
                actor=customer,
            )
            if emulator.ask("warm_bot", "/start", timeout=60, user_id=7) is None:
                raise SystemExit("the shared host did not answer")
        if args.via_payment:
            fake, pay = paid_orders(version, customer)
        for i in range(args.installs):
            bot = f"bench{i}_bot"
            token = emulator.create_bot(bot)
            if args.via_payment:
                instance, deliver = pay(bot, token)
                started = time.perf_counter()
                deliver()
                results["callback"].append(time.perf_counter() - started)
            else:
                started = time.perf_counter()
                instance = services.install_instance(
                    account=customer.account,
                    version=version,
                    name=bot,
                    config={"bot_token": token},
                    actor=customer,
                )
            answer = emulator.ask(bot, "/start", timeout=30, user_id=7)
            elapsed = time.perf_counter() - started
            if answer is None:
                print(f"install {i}: no answer", file=sys.stderr)
                continue
            results["platform"].append(elapsed)
            services.remove_instance(instance, actor=customer)
            time.sleep(args.gap)  # spare refill between orders, as in real life
        for i in range(args.bare):
            bot = f"bare{i}_bot"
            token = emulator.create_bot(bot)
            started = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-c", BARE_BOT, emulator.url, token],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            answer = wait_until(lambda b=bot: emulator.ask(b, "/start", timeout=1, user_id=7), 60)
            results["bare"].append(time.perf_counter() - started)
            proc.terminate()
            proc.wait(10)
    finally:
        runner.terminate()
        runner.wait(30)
        emulator.close()
        if fake is not None:
            fake.close()

    start = "payment callback" if args.via_payment else "install_instance"
    print(
        f"\nprovisioning latency, {start} → first answer (runtime {args.runtime}, sandbox "
        f"{settings.RUNTIME_SANDBOX}, spares {args.spares})"
    )
    print(
        f"{'what':38} {'n':>3} {'median s':>9} {'p90 s':>7} {'p95 s':>7} {'min s':>7} {'max s':>7}"
    )
    for name, label in (
        (
            "platform",
            "paid order (callback → answer)"
            if args.via_payment
            else "Otomat install (service → answer)",
        ),
        ("callback", "  of which the callback's own handling"),
        ("bare", "bare aiogram bot, cold (spawn → answer)"),
    ):
        values = results[name]
        if values:
            print(
                f"{label:38} {len(values):>3} {statistics.median(values):>9.3f} "
                f"{percentile(values, 0.9):>7.3f} {percentile(values, 0.95):>7.3f} "
                f"{min(values):>7.3f} {max(values):>7.3f}"
            )
    if results["platform"] and results["bare"]:
        ratio = statistics.median(results["platform"]) / statistics.median(results["bare"])
        print(f"ratio of medians (Otomat / bare cold start): {ratio:.3f}")
    if args.json:
        print(json.dumps(results))
    return 0


def paid_orders(version, customer):
    """(fake Midtrans, pay): ``pay(name, token)`` places an order on a paid plan with its
    Midtrans checkout and returns (instance, deliver), ``deliver()`` handing the genuine
    settlement callback to billing as the web view does."""
    from otomat.billing import payments
    from otomat.billing.gateways.fakes.midtrans import FakeMidtrans
    from otomat.billing.models import DunningPolicy, GatewayConfig, Plan
    from otomat.billing.subscriptions import place_order

    fake = FakeMidtrans().start()
    settings_ = fake.gateway_settings()
    GatewayConfig.objects.create(
        code="midtrans",
        enabled=True,
        credentials=settings_["credentials"],
        api_base=settings_["api_base"],
    )
    plan = Plan.objects.create(
        product=version.product,
        code="bench",
        name="Monthly",
        currency="IDR",
        price_minor=150_000,
        dunning_policy=DunningPolicy.objects.create(name="Bench"),
    )

    def pay(name: str, token: str):
        instance, invoice = place_order(
            account=customer.account,
            version=version,
            plan=plan,
            name=name,
            config={"bot_token": token},
            actor=customer,
        )
        checkout = payments.start_checkout(invoice, "midtrans", return_url="http://bench/")
        headers, body = fake.notification(checkout.reference, "paid")

        def deliver() -> None:
            status, _, reply = payments.receive_callback(
                "midtrans", headers=headers, body=body, remote_addr="127.0.0.1"
            )
            if status != 200:
                raise SystemExit(f"the callback was answered {status}: {reply}")

        return instance, deliver

    return fake, pay


if __name__ == "__main__":
    sys.exit(main())
