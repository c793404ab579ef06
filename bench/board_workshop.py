"""The workshop review with 50 clients × 40 open cards (2,000 cards), on SQLite and PostgreSQL.

    .venv/bin/python bench/board_workshop.py [--repeat 15] [--databases sqlite,postgres]

In a fresh migrated database: 50 customer accounts, each with one project of 40 open cards in
a spread of states (a third waiting on the client, a sixth blocked with a reason) and 20
released cards that the review must skip. Then, ``--repeat`` times each, median and p90:

* ``workshop.review()`` — the service the page calls (grouping per client included);
* ``GET /projects/board/workshop/`` as staff through Django's test client (the whole page), and
  how many SQL queries it makes (it must not grow with the number of clients);
* the baseline, in the same run: a plain listing of the same open cards with their project and
  account (``select_related``) and nothing else.

PostgreSQL is used when it answers at OTOMAT_BENCH_POSTGRES (default
postgres://postgres@127.0.0.1:5432/otomat_bench_board; the database is dropped and created).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from _common import child_env, percentile, postgres_available
from _common import run_child as _run

POSTGRES = os.environ.get(
    "OTOMAT_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/otomat_bench_board"
)
CLIENTS = 50
OPEN_CARDS = 40
RELEASED_CARDS = 20


def _timed(fn, repeat: int) -> list[float]:
    fn()  # warm caches and connections
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def child(repeat: int) -> dict:
    import django

    django.setup()
    from datetime import UTC, datetime, timedelta

    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    call_command("migrate", interactive=False, verbosity=0)
    from otomat.accounts.models import Account, User
    from otomat.projects.board import workshop
    from otomat.projects.board.models import BLOCKED_MOVE, WHOSE_MOVE, Card, Project

    staff = User.objects.create_superuser(email="owner@example.com", password="x")
    now = datetime.now(UTC)
    statuses = ["todo", "in_progress", "waiting_client", "waiting_us", "staging", "accepted"]
    cards = []
    for n in range(CLIENTS):
        account = Account.objects.create(name=f"Client {n:02d}")
        project = Project.objects.create(account=account, title=f"Project {n}", created_by=staff)
        for i in range(OPEN_CARDS + RELEASED_CARDS):
            if i >= OPEN_CARDS:
                status, reason = "released", ""
            elif i % 6 == 5:
                status, reason = "blocked", ("technical" if i % 12 == 5 else "communication")
            else:
                status, reason = statuses[i % len(statuses)], ""
            move = BLOCKED_MOVE[reason] if status == "blocked" else WHOSE_MOVE[status]
            cards.append(
                Card(
                    project=project,
                    title=f"Card {n}-{i}",
                    status=status,
                    blocked_reason=reason,
                    whose_move=move,
                    move_since=now - timedelta(hours=i * 7 + n),
                    position=i,
                )
            )
    Card.objects.bulk_create(cards, batch_size=1000)
    open_statuses = [s for s in Card.Status.values if s != "released"]

    def review():
        return workshop.review()

    def listing():
        return list(
            Card.objects.filter(status__in=open_statuses)
            .select_related("project__account")
            .order_by("move_since")
        )

    client = Client()
    client.force_login(staff)

    def page():
        response = client.get("/projects/board/workshop/")
        assert response.status_code == 200, response.status_code
        return response

    with CaptureQueriesContext(connection) as queries:
        page()
    rows = review()
    return {
        "clients": len(rows),
        "open_cards": sum(sum(r.counts.values()) for r in rows),
        "page_queries": len(queries),
        "review_ms": _timed(review, repeat),
        "page_ms": _timed(page, repeat),
        "listing_ms": _timed(listing, repeat),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.repeat)))
        return
    results = {}
    for database in args.databases.split(","):
        if database == "postgres" and not postgres_available(POSTGRES):
            print("PostgreSQL does not answer; skipped", file=sys.stderr)
            continue
        env = child_env(
            "otomat-bench-board-", database, postgres=POSTGRES, OTOMAT_REQUIRE_STAFF_2FA="0"
        )
        results[database] = _run(
            __file__, ["--child", "--repeat", str(args.repeat)], env, label=database
        )
    if args.json:
        print(json.dumps(results))
        return
    for database, r in results.items():
        print(
            f"{database}: {r['clients']} clients, {r['open_cards']:,} open cards in the review; "
            f"the page makes {r['page_queries']} SQL queries"
        )
        print(f"{'what':46} {'median ms':>10} {'p90 ms':>8}")
        for label, key in (
            ("workshop.review() service", "review_ms"),
            ("GET /projects/board/workshop/ (whole page)", "page_ms"),
            ("baseline: plain listing of the open cards", "listing_ms"),
        ):
            values = r[key]
            print(f"{label:46} {statistics.median(values):10.1f} {percentile(values, 0.9):8.1f}")
        ratio = statistics.median(r["review_ms"]) / statistics.median(r["listing_ms"])
        print(f"service / listing (median): {ratio:.1f}x")
        print()


if __name__ == "__main__":
    main()
