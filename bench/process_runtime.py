"""Benchmark of the process runtime: provisioning latency and memory per instance.

Starts the Bot API emulator and a ProcessBackend, then measures

(a) the time from ``ensure_running`` to the bot's first answer in the emulator (the user's
    /start is sent right after ``ensure_running`` returns), over N fresh installs of the greeter
    product, without warm spares (cold start) and with them (the spare pool is allowed to refill
    between installs, as it would between real orders);
(b) the memory of one idle greeter instance (the botkit host process; RSS and USS from
    /proc/<pid>/smaps_rollup, plus the two bwrap wrapper processes) beside a bare aiogram
    polling bot measured in the same run, and the cost of a bare ``import aiogram``.

Usage: ``.venv/bin/python bench/process_runtime.py [--installs 20] [--sandbox auto]``
Results are recorded in bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import free_port, percentile  # noqa: E402

from otomat.runtime.backends import procutil  # noqa: E402
from otomat.runtime.backends.base import InstanceSpec, Phase  # noqa: E402
from otomat.runtime.backends.process import ProcessBackend  # noqa: E402

GREETER = REPO / "products" / "greeter"

BARE_BOT = """
import asyncio, sys
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message

dp = Dispatcher()

@dp.message(F.text)
async def answer(message: Message) -> None:
    await message.answer("bare: " + message.text)

async def main() -> None:
    token, url = sys.stdin.readline().split()
    bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(url)))
    await dp.start_polling(bot)

asyncio.run(main())
"""

IMPORT_COST = """
import resource, time
def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
before = rss_kib()
t = time.perf_counter()
import aiogram, aiogram.client.session.aiohttp, aiogram.methods  # what the host imports
print(time.perf_counter() - t, before, rss_kib())
"""


class Emulator:
    """``python -m otomat.tgemu`` on a free port, driven through its control API."""

    def __init__(self, workdir: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "otomat.tgemu",
                "--port",
                port,
                "--state",
                str(workdir / "emu.json"),
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(base_url=self.url)
        for _ in range(200):
            try:
                async with self.http.get("/control/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError("the emulator did not start")

    async def create_bot(self, username: str) -> str:
        async with self.http.post("/control/bots", json={"username": username}) as response:
            response.raise_for_status()
            return (await response.json())["token"]

    async def say(self, bot: str, text: str, user_id: int = 1001) -> int:
        payload = {"user_id": user_id, "first_name": "Alice", "text": text}
        async with self.http.post(f"/control/bots/{bot}/messages", json=payload) as response:
            response.raise_for_status()
            return (await response.json())["message_id"]

    async def first_answer(
        self, bot: str, after: int, timeout: float = 60, user_id: int = 1001
    ) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            params = {"after": after, "wait": 5}
            async with self.http.get(
                f"/control/bots/{bot}/chats/{user_id}/messages", params=params
            ) as r:
                r.raise_for_status()
                payload = await r.json()
            messages = payload if isinstance(payload, list) else payload.get("messages", [])
            answers = [m for m in messages if m.get("from_bot")]
            if answers:
                return answers[0].get("text", "")
        raise TimeoutError(f"{bot} did not answer within {timeout} s")

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
        self.proc.terminate()
        self.proc.wait(10)


def greeter_spec(root: Path, n: int, token: str, api_url: str) -> InstanceSpec:
    return InstanceSpec(
        instance_id=f"bench-{n}",
        product_slug="greeter",
        version="1.0.0",
        source_dir=GREETER,
        entry="greeter.bot:build_router",
        command=None,
        config={"bot_token": token, "show_buttons": False},
        data_dir=root / "instances" / f"bench-{n}",
        log_path=root / "logs" / f"bench-{n}.log",
        bot_api_url=api_url,
    )


async def measure_installs(
    emu: Emulator, root: Path, *, installs: int, spares: int, sandbox: str, tag: str
) -> tuple[list[float], str]:
    """Seconds from ensure_running to the first answer, for ``installs`` fresh instances."""
    backend = ProcessBackend(run_dir=root / f"run-{tag}", sandbox=sandbox, spares=spares)
    await backend.open()
    latencies: list[float] = []
    try:
        template = greeter_spec(root, 0, "0:x", emu.url)
        await backend.prepare([template])
        for n in range(installs):
            if spares:
                await backend.wait_spares_ready(60)
            username = f"{tag}_{n}_bot"
            spec = greeter_spec(root / tag, n, await emu.create_bot(username), emu.url)
            started = time.monotonic()
            await backend.ensure_running(spec)
            sent = await emu.say(username, "/start")
            await emu.first_answer(username, sent)
            latencies.append(time.monotonic() - started)
            await backend.ensure_stopped(spec.instance_id)
            print(f"  {tag} install {n + 1:2d}: {latencies[-1]:.3f} s", file=sys.stderr)
    finally:
        await backend.close()
    return latencies, backend.sandbox_mode or "?"


async def measure_memory(emu: Emulator, root: Path, sandbox: str, idle: float) -> dict[str, Any]:
    """Memory of one idle greeter instance and of a bare aiogram bot, both after one answer."""
    out: dict[str, Any] = {}
    backend = ProcessBackend(run_dir=root / "run-mem", sandbox=sandbox, spares=0)
    await backend.open()
    bare = None
    try:
        spec = greeter_spec(root / "mem", 1, await emu.create_bot("mem_greeter_bot"), emu.url)
        await backend.ensure_running(spec)
        await emu.first_answer("mem_greeter_bot", await emu.say("mem_greeter_bot", "/start"))

        bare_token = await emu.create_bot("mem_bare_bot")
        bare = subprocess.Popen(
            [sys.executable, "-c", BARE_BOT],
            stdin=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=root,
        )
        bare.stdin.write(f"{bare_token} {emu.url}\n")
        bare.stdin.flush()
        await emu.first_answer("mem_bare_bot", await emu.say("mem_bare_bot", "hi"))

        await asyncio.sleep(idle)  # let both settle into idle long polling
        state = backend.actual()[spec.instance_id]
        assert state.phase == Phase.RUNNING, state
        host_pid = backend.pids(spec.instance_id)[0]
        wrappers = [
            p for p in [state.pid, *procutil.descendants(state.pid)] if procutil.is_bwrap(p)
        ]
        out["greeter"] = procutil.memory_kib(host_pid)
        out["wrappers"] = [procutil.memory_kib(p) for p in wrappers]
        out["bare"] = procutil.memory_kib(bare.pid)
    finally:
        if bare is not None:
            bare.terminate()
            bare.wait(10)
        await backend.close()
    return out


def import_cost() -> dict[str, float]:
    runs = []
    for _ in range(3):
        result = subprocess.run(
            [sys.executable, "-c", IMPORT_COST], capture_output=True, text=True, check=True
        )
        seconds, before, after = result.stdout.split()
        runs.append((float(seconds), int(before), int(after)))
    seconds = statistics.median(r[0] for r in runs)
    return {"seconds": seconds, "rss_before_kib": runs[0][1], "rss_after_kib": runs[0][2]}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--installs", type=int, default=20, help="installs per mode (default 20)")
    parser.add_argument("--sandbox", default="auto", choices=["auto", "bwrap", "none"])
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before measuring")
    parser.add_argument("--json", action="store_true", help="also print the raw results as JSON")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="otomat-bench-"))
    emu = Emulator(root)
    try:
        await emu.start()
        cost = import_cost()
        cold, mode = await measure_installs(
            emu, root, installs=args.installs, spares=0, sandbox=args.sandbox, tag="cold"
        )
        warm, _ = await measure_installs(
            emu, root, installs=args.installs, spares=1, sandbox=args.sandbox, tag="warm"
        )
        memory = await measure_memory(emu, root, args.sandbox, args.idle)
    finally:
        await emu.close()
        shutil.rmtree(root, ignore_errors=True)

    mib = 1024
    g, b = memory["greeter"], memory["bare"]
    wrap_rss = sum(w["rss"] for w in memory["wrappers"])
    wrap_uss = sum(w["uss"] for w in memory["wrappers"])
    print(
        f"\nprocess runtime benchmark — sandbox {mode}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    print("\n(a) provisioning: ensure_running → first answer in the emulator")
    print(f"{'mode':<22}{'n':>4}{'median s':>11}{'p90 s':>9}{'min s':>9}{'max s':>9}")
    for label, values in (("cold start (no spare)", cold), ("warm spare", warm)):
        print(
            f"{label:<22}{len(values):>4}{statistics.median(values):>11.3f}{percentile(values, 0.9):>9.3f}"
            f"{min(values):>9.3f}{max(values):>9.3f}"
        )
    print(f"speed-up (median): {statistics.median(cold) / statistics.median(warm):.0f}x")
    print("\n(b) memory of one idle bot (MiB)")
    print(f"{'process':<34}{'RSS':>8}{'USS':>8}")
    print(f"{'greeter via otomat.botkit.host':<34}{g['rss'] / mib:>8.1f}{g['uss'] / mib:>8.1f}")
    print(f"{'bare aiogram polling bot':<34}{b['rss'] / mib:>8.1f}{b['uss'] / mib:>8.1f}")
    print(f"{'bwrap wrappers (2 processes)':<34}{wrap_rss / mib:>8.1f}{wrap_uss / mib:>8.1f}")
    print(
        f"wrapper overhead vs bare: RSS {(g['rss'] - b['rss']) / mib:+.1f} MiB"
        f" (ratio {g['rss'] / b['rss']:.2f}), USS {(g['uss'] - b['uss']) / mib:+.1f} MiB"
        f" (ratio {g['uss'] / b['uss']:.2f})"
    )
    print(
        f"bare `import aiogram`: {cost['seconds']:.2f} s,"
        f" RSS {cost['rss_before_kib'] / mib:.1f} → {cost['rss_after_kib'] / mib:.1f} MiB"
    )
    if args.json:
        print(json.dumps({"cold": cold, "warm": warm, "memory": memory, "import": cost}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
