"""One request of each portal page in process: CPU ms per request (median) and query count,
optionally with a cProfile of the slowest functions. Companion of ``portal.py``, whose data
builder it reuses (the same demo or big data set, in a data directory kept between runs).

    .venv/bin/python bench/portal_profile.py [--size demo|big] [--repeat 20] [--profile PAGE]
                                             [--data-dir DIR]

The figure is ``time.process_time()`` around Django's test client (middleware, view, template
rendering, the database on SQLite in the same process), the queries counted with
``CaptureQueriesContext``; ``/healthz`` is measured the same way as the baseline.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import use_repo

PAGES = ["healthz", "catalog", "list", "detail", "manage", "dashboard"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="demo", choices=["demo", "big"])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--profile", default="", help="comma-separated pages to cProfile")
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data_dir = Path(args.data_dir or f"/tmp/otomat-portal-profile-{args.size}")
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["OTOMAT_DATA_DIR"] = str(data_dir)
    os.environ["OTOMAT_REQUIRE_STAFF_2FA"] = "0"
    os.environ["OTOMAT_LOG_LEVEL"] = "WARNING"
    os.environ.pop("OTOMAT_DATABASE_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "otomat.settings"
    use_repo()
    import portal

    marker = data_dir / "seeded.json"
    if marker.exists():
        import django

        django.setup()
        data = json.loads(marker.read_text())
    else:
        data = portal.seed(args.size)
        marker.write_text(json.dumps(data))

    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    settings.ALLOWED_HOSTS = ["*"]

    def client_with(cookie: str) -> Client:
        client = Client(HTTP_ACCEPT_LANGUAGE="en")
        if cookie:
            name, value = cookie.split("=", 1)
            client.cookies[name] = value
        return client

    paths = {
        "healthz": ("/healthz", ""),
        "catalog": ("/catalog/", data["customer"]),
        "list": ("/instances/", data["customer"]),
        "detail": (f"/instances/{data['instance']}/", data["customer"]),
        "manage": ("/instances/manage/", data["owner"]),
        "dashboard": ("/billing/manage/", data["owner"]),
    }
    profiled = {p for p in args.profile.split(",") if p}
    results = {}
    for page in PAGES:
        path, cookie = paths[page]
        client = client_with(cookie)
        for _ in range(3):  # warm: templates compiled, caches filled
            response = client.get(path)
            assert response.status_code == 200, (page, response.status_code)
        with CaptureQueriesContext(connection) as queries:
            client.get(path)
        query_count = len(queries)  # the next request's request_started empties the log
        cpu = []
        for _ in range(args.repeat):
            began = time.process_time()
            client.get(path)
            cpu.append((time.process_time() - began) * 1000)
        results[page] = {"cpu_ms": statistics.median(cpu), "queries": query_count}
        if page in profiled:
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(5):
                client.get(path)
            profile.disable()
            out = data_dir / f"{page}.prof"
            profile.dump_stats(out)
            print(f"--- {page} ({out}) ---")
            pstats.Stats(profile).sort_stats("cumulative").print_stats(45)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{args.size}: median of {args.repeat} requests, in process")
        for page, r in results.items():
            print(f"  {page:<10} {r['cpu_ms']:7.1f} ms CPU  {r['queries']:3d} queries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
