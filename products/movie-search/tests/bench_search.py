"""Search and indexing figures (not a test): ``python products/movie-search/tests/bench_search.py``.

Builds an index of N synthetic titles in a temporary directory and times typo-tolerant
searches; prints one line per figure.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from movie_search.index import Index
from movie_search.sources import SiteReport
from movie_search.sources.base import Item

WORDS = [
    "the",
    "matrix",
    "reloaded",
    "amelie",
    "labyrinth",
    "spirited",
    "away",
    "parasite",
    "blade",
    "runner",
    "dark",
    "knight",
    "return",
    "king",
    "lord",
    "rings",
    "star",
    "wars",
    "empire",
    "strikes",
    "back",
    "godfather",
    "pulp",
    "fiction",
    "fight",
    "club",
    "seven",
    "samurai",
    "city",
    "god",
    "life",
    "beautiful",
    "back",
    "future",
    "alien",
    "aliens",
    "terminator",
    "judgment",
    "day",
]


def main(n: int = 5000) -> None:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        index = Index(Path(tmp) / "index.sqlite3")
        items = [
            Item.make(
                " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4)))
                + f" ({rng.randint(1950, 2024)})",
                f"https://films.example/{k}",
            )
            for k in range(n)
        ]
        report = SiteReport("https://films.example/", "wordpress", source_url="x")
        started = time.perf_counter()
        index.replace_site("https://films.example/", report, [i for i in items if i])
        print(f"index {n} titles: {time.perf_counter() - started:.2f} s")
        for query in ("matrix", "matirx", "godfathr", "blade runer", "xyzzy"):
            runs = []
            for _ in range(20):
                started = time.perf_counter()
                hits = index.search(query)
                runs.append(time.perf_counter() - started)
            print(
                f"search {query!r}: median {statistics.median(runs) * 1000:.1f} ms, "
                f"{len(hits)} hits (of {n})"
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
