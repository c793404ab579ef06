"""The shared runtime's default store: a host's round trip to the runner's store service, beside
the database store called in-process (what hosts did when they held the database URL).

    .venv/bin/python bench/shared_store.py [--ops 3000] [--database-url URL]

Both sides run the same ``DatabaseStore`` queries against the same database, so the ratio is
the cost of the socket hop (frame, JSON, the runner's loop, its store thread). Figures are
printed, not asserted; record them in bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed_pair(ops: int, before: Callable[[int], None], now: Callable[[int], None]) -> float:
    """Alternate the two calls (so load from elsewhere hits both alike); print both, return the
    ratio of their means (now / before)."""
    samples: dict[str, list[float]] = {"before": [], "now": []}
    for i in range(ops):
        for label, fn in (("before", before), ("now", now)):
            start = time.perf_counter()
            fn(i)
            samples[label].append(time.perf_counter() - start)
    means = {}
    for label, name in (("before", "in-process DatabaseStore (before)"),
                        ("now", "runner-served RemoteStore (now)")):  # fmt: skip
        values = sorted(samples[label])
        means[label] = statistics.fmean(values)
        p95 = values[int(len(values) * 0.95)]
        print(f"  {name:<34} {1 / means[label]:7.0f} ops/s   mean {means[label] * 1e6:6.0f} µs"
              f"   p95 {p95 * 1e6:6.0f} µs")  # fmt: skip
    return means["now"] / means["before"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=3000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="otomat-bench-store-")
    os.environ.setdefault("OTOMAT_DATA_DIR", scratch)
    if args.database_url:
        os.environ["OTOMAT_DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "otomat.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections

    from otomat.botdata.store import DatabaseStore
    from otomat.runtime.hoststore import RemoteStore, StoreChannel, StoreService

    call_command("migrate", "botdata", verbosity=0)
    print(f"database: {connection.vendor}; {args.ops} calls of each kind")

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    service = StoreService("bench", on_thread_exit=connections.close_all)
    ours, theirs = socket.socketpair()
    serving = asyncio.run_coroutine_threadsafe(service.serve(ours), loop)

    async def grant() -> str:
        return service.grant("bench-remote")

    channel = StoreChannel(theirs)
    remote = RemoteStore(channel, asyncio.run_coroutine_threadsafe(grant(), loop).result())
    local = DatabaseStore("bench-local")
    value = {"chat": 12345, "query": "matrix", "page": 2, "results": list(range(10))}

    async def in_a_host_loop() -> list[float]:
        # Both stores are called from inside a running event loop, as product handlers call
        # them: the in-process DatabaseStore then hands each query to its worker thread.
        ratios = []
        for op, call in (
            ("get", lambda s, i: s.get(f"k{i % 100}")),
            ("set", lambda s, i: s.set(f"k{i % 100}", value)),
            ("incr", lambda s, i: s.incr("n")),
        ):
            print(f"{op}:")
            ratio = timed_pair(
                args.ops, lambda i, c=call: c(local, i), lambda i, c=call: c(remote, i)
            )
            ratios.append(ratio)
            print(f"  cost of the hop: {ratio:.2f}× the in-process call")
        return ratios

    ratios = asyncio.run(in_a_host_loop())
    print(f"geometric mean ratio: {statistics.geometric_mean(ratios):.2f}×")
    channel.close()
    serving.result(timeout=10)
    asyncio.run_coroutine_threadsafe(service.close(), loop).result()
    connections.close_all()


if __name__ == "__main__":
    main()
