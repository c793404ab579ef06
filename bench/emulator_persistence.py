"""Benchmark of the emulator's persistence: sendMessage/s against how much history is stored.

For each history size (default 1,000, 20,000 and 100,000 stored messages, in chats of 1,000
messages each, the per-chat cap) the emulator is started as its own process with rate limits
off, loaded with that history, and driven with ``--clients`` concurrent sendMessage calls for
``--seconds`` (after a short warm-up; every message lands in a full chat, so the stored count
stays the same). Four emulators are measured in the same run:

- **current, memory**: this tree's emulator without a state store;
- **current, store**: this tree's emulator with ``--state`` (SQLite, incremental writes);
- **baseline, memory** / **baseline, JSON file**: the emulator as of ``--baseline-ref`` (the
  whole-state JSON file rewritten on the event loop), extracted from git into a temporary
  directory.

Target: sendMessage/s flat (within 20 %) from 1,000 to 100,000 stored messages, with and without
a store. Usage: ``.venv/bin/python bench/emulator_persistence.py [--sizes 1000,20000,100000]``
``[--seconds 4] [--clients 16] [--repeat 2] [--baseline-ref REF] [--no-baseline]``; each figure
is the best of ``--repeat`` runs, which filters out other load on a shared machine. Every run is bounded in
time; results are recorded in bench/README.md ("Emulator persistence").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

# The last commit with the whole-state JSON file (the parent of the SQLite store's commit).
DEFAULT_BASELINE_REF = "5c1a32d25d262d3a1e15bc1d370b4076d6844f6c"
CHAT_SIZE = 1000
START_TIMEOUT = 120.0

RUNNER = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from aiohttp import web
from otomat.tgemu.persistence import open_state
from otomat.tgemu.ratelimit import RateLimits
from otomat.tgemu.server import create_app
from otomat.tgemu.state import EmulatorState
mode, source, port = sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
if mode == "memory":
    state = EmulatorState()
    state.load_json(json.loads(source.read_text()))
else:
    state = open_state(source)
state.rate_limiter.configure(RateLimits(enabled=False))
web.run_app(create_app(state), host="127.0.0.1", port=port, print=None, access_log=None)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def history(size: int) -> tuple[dict, str, list[int]]:
    """A version-1 state file with one bot and ``size`` messages in full chats of 1,000."""
    from otomat.tgemu.state import EmulatorState

    state = EmulatorState()
    bot = state.create_bot("bench_bot", "Bench")
    users = []
    for n in range(max(1, size // CHAT_SIZE)):
        user = state.upsert_user(10_000 + n, first_name=f"User {n}")
        users.append(user.id)
        conv = state._ensure_conversation(("private", bot.id, user.id), user.id)
        for i in range(min(size, CHAT_SIZE)):
            state.add_message(
                conv,
                sender_kind="bot" if i % 2 else "user",
                sender_id=bot.id if i % 2 else user.id,
                text=f"stored message {i} with a little text to make it realistic",
                entities=[],
            )
    return state.to_json(), bot.token, users


def extract_baseline(ref: str, target: Path) -> None:
    archive = subprocess.run(
        ["git", "archive", ref, "otomat/__init__.py", "otomat/tgemu"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)


async def wait_up(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"emulator exited with {proc.returncode}")
            try:
                async with session.get(url + "/control/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("emulator did not start in time")


async def drive(url: str, token: str, users: list[int], clients: int, seconds: float) -> float:
    """sendMessage calls per second over ``seconds``, after a one-second warm-up."""
    counted = 0
    measuring = False
    stop_at = time.monotonic() + 1.0 + seconds
    errors = 0

    async def client(n: int, session: aiohttp.ClientSession) -> None:
        nonlocal counted, errors
        i = n
        while time.monotonic() < stop_at:
            chat = users[i % len(users)]
            i += clients
            async with session.post(
                f"{url}/bot{token}/sendMessage", json={"chat_id": chat, "text": f"load {i}"}
            ) as resp:
                await resp.read()
                if resp.status != 200:
                    errors += 1
            if measuring:
                counted += 1

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(client(n, session)) for n in range(clients)]
        await asyncio.sleep(1.0)
        measuring = True
        started = time.monotonic()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
    if errors:
        raise RuntimeError(f"{errors} sendMessage calls failed")
    return counted / elapsed


def measure(
    root: Path, mode: str, data: dict, token: str, users: list[int], args, work: Path
) -> float:
    """Start one emulator (code under ``root``) with ``data`` and drive it; sendMessage/s."""
    run_dir = Path(tempfile.mkdtemp(dir=work))
    source = run_dir / "tgemu.json"
    source.write_text(json.dumps(data))
    port = free_port()
    runner = run_dir / "runner.py"
    runner.write_text(RUNNER)
    proc = subprocess.Popen(
        [sys.executable, str(runner), str(root), mode, str(source), str(port)],
        cwd=run_dir,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_up(url, proc))
        return asyncio.run(drive(url, token, users, args.clients, args.seconds))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,20000,100000")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs per figure; the best is kept (shared machines)"
    )
    parser.add_argument("--baseline-ref", default=DEFAULT_BASELINE_REF)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    with tempfile.TemporaryDirectory(prefix="tgemu-bench-") as tmp:
        work = Path(tmp)
        setups = [("current, memory", REPO_ROOT, "memory"), ("current, store", REPO_ROOT, "store")]
        if not args.no_baseline:
            baseline = work / "baseline"
            baseline.mkdir()
            extract_baseline(args.baseline_ref, baseline)
            setups += [
                ("baseline, memory", baseline, "memory"),
                ("baseline, JSON file", baseline, "store"),
            ]
        results: dict[str, dict[int, float]] = {name: {} for name, _, _ in setups}
        for size in sizes:
            data, token, users = history(size)
            for name, root, mode in setups:
                rate = max(
                    measure(root, mode, data, token, users, args, work)
                    for _ in range(max(1, args.repeat))
                )
                results[name][size] = rate
                print(f"  {name:<22} {size:>7} stored: {rate:8.0f} sendMessage/s", flush=True)

    print()
    print(f"sendMessage/s with {args.clients} concurrent clients, {args.seconds:g} s per run")
    header = f"{'emulator':<22}" + "".join(f"{s:>10}" for s in sizes) + f"{'last/first':>12}"
    print(header)
    verdicts = []
    for name, by_size in results.items():
        first, last = by_size[sizes[0]], by_size[sizes[-1]]
        ratio = last / first if first else 0.0
        print(f"{name:<22}" + "".join(f"{by_size[s]:>10.0f}" for s in sizes) + f"{ratio:>12.2f}")
        if name.startswith("current"):
            verdicts.append(min(by_size.values()) >= 0.8 * max(by_size.values()))
    print()
    print("target (current emulator flat within 20 %):", "met" if all(verdicts) else "NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
