"""The estimator's live range: what one HTMX preview (POST /projects/estimate/preview/, every
option picked) and one computation cost at 8 (the demo) and 200 options, beside a plain listing
of the same options in the same run.

    .venv/bin/python bench/estimator.py [--sizes 8,200] [--repeat 50]

Each size runs in a fresh process on a fresh SQLite database: the demo option set, plus
``size - 8`` quantity options that each require the previous one (a long dependency chain).
Prints the median wall time and the queries of: listing the active options with their
dependencies (the baseline), ``estimator.compute`` with every option picked, and the preview
request through Django's test client (middleware, template and all).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from _common import child_env, run_child


def child(size: int, repeat: int) -> dict:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    call_command("migrate", interactive=False, verbosity=0)
    from otomat.projects import estimator
    from otomat.projects.demo import seed_demo
    from otomat.projects.models import EstimatorOption

    seed_demo()
    previous = None
    for n in range(max(0, size - 8)):
        option = EstimatorOption.objects.create(
            key=f"extra-{n}",
            kind="quantity",
            max_quantity=5,
            title=f"Extra {n}",
            weeks_min=1,
            weeks_max=2,
            cost_min_minor=10000,
            cost_max_minor=20000,
            position=1000 + n,
        )
        if previous is not None:
            option.requires.add(previous)
        previous = option
    picks = {o.key: 1 for o in EstimatorOption.objects.all()}
    form = {f"opt-{key}": "1" for key in picks}
    client = Client()

    def measure(action) -> dict:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            action()
            times.append(time.perf_counter() - start)
        with CaptureQueriesContext(connection) as queries:
            action()
        return {"ms": round(statistics.median(times) * 1000, 2), "queries": len(queries)}

    def listing():
        for option in estimator.active_options():
            list(option.requires.all())

    def preview():
        answer = client.post("/projects/estimate/preview/", form)
        assert answer.status_code == 200 and b'role="alert"' not in answer.content

    return {
        "list the options (baseline)": measure(listing),
        "compute, all picked": measure(lambda: estimator.compute(picks)),
        "preview request": measure(preview),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="8,200")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--child", type=int)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.repeat)))
        return 0
    for size in (int(s) for s in args.sizes.split(",")):
        env = child_env("otomat-bench-estimator-", "sqlite")
        result = run_child(
            __file__, ["--child", str(size), "--repeat", str(args.repeat)], env, label=str(size)
        )
        print(f"\n{size} options, every one picked, median of {args.repeat} (SQLite)")
        print(f"{'':30} {'ms':>8} {'queries':>8}")
        for name, r in result.items():
            print(f"{name:30} {r['ms']:>8} {r['queries']:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
