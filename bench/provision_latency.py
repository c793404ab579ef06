"""Platform-level provisioning latency: from ``install_instance`` (validate, encrypt, record,
provision) through the runner's wake-up, the process backend and the sandbox, to the bot's first
answer in the emulator. Beside it, in the same run, the bare cost: a plain aiogram bot process
started cold, from spawn to its first answer.

    .venv/bin/python bench/provision_latency.py --installs 20 [--spares 1] [--json]

Uses a throwaway data directory with SQLite, a real ``otomat runner`` and the emulator.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--installs", type=int, default=20, help="installs to time (default 20)")
    parser.add_argument("--spares", type=int, default=1, help="warm spares per version (default 1)")
    parser.add_argument("--bare", type=int, default=5, help="cold starts of a bare aiogram bot")
    parser.add_argument("--json", action="store_true", help="also print raw figures as JSON")
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="otomat-bench-"))
    os.environ.update(
        OTOMAT_DATA_DIR=str(data),
        OTOMAT_RUNTIME_SPARES=str(args.spares),
        OTOMAT_RUNNER_RECONCILE_SECONDS="5",
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
    version = import_product(REPO / "products" / "greeter", actor=None)
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
    results: dict[str, list[float]] = {"platform": [], "bare": []}
    try:
        time.sleep(8 if args.spares else 2)  # let the runner start and fill its spare pool
        for i in range(args.installs):
            bot = f"bench{i}_bot"
            token = emulator.create_bot(bot)
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
            time.sleep(3 if args.spares else 0.5)  # spare refill between orders, as in real life
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

    print(
        f"\nprovisioning latency, install_instance → first answer (sandbox "
        f"{settings.RUNTIME_SANDBOX}, spares {args.spares})"
    )
    print(f"{'what':38} {'n':>3} {'median s':>9} {'p90 s':>7} {'min s':>7} {'max s':>7}")
    for name, label in (
        ("platform", "Otomat install (service → answer)"),
        ("bare", "bare aiogram bot, cold (spawn → answer)"),
    ):
        values = results[name]
        if values:
            print(
                f"{label:38} {len(values):>3} {statistics.median(values):>9.3f} "
                f"{percentile(values, 0.9):>7.3f} {min(values):>7.3f} {max(values):>7.3f}"
            )
    if results["platform"] and results["bare"]:
        ratio = statistics.median(results["platform"]) / statistics.median(results["bare"])
        print(f"ratio of medians (Otomat / bare cold start): {ratio:.3f}")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
