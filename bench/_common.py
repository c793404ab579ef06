"""What the bench scripts share: the repository's path, percentiles, a free port, and the
"child process on a fresh database" pattern (SQLite in a new data directory, or a PostgreSQL
database dropped and created again) that the figures of several scripts are measured in.

Scripts import it as ``from _common import ...`` (Python puts a script's own folder first on
``sys.path``). Standard library only at import time; ``psycopg`` only when PostgreSQL is used.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get(
    "OTOMAT_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/otomat_bench"
)
DUMMY_TASKS = "django_tasks.backends.dummy.DummyBackend"


def use_repo() -> None:
    """Make ``import otomat`` find this checkout (before django.setup())."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def percentile(values: Sequence[float], q: float) -> float:
    """The value at fraction ``q`` (0–1) of the sorted values, rounded to the nearest index."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def nearest_rank(values: Sequence[float], p: int) -> float:
    """The nearest-rank ``p``-th percentile (``p`` in 1–100)."""
    ordered = sorted(values)
    return ordered[max(0, -(-p * len(ordered) // 100) - 1)]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_available(url: str = POSTGRES) -> bool:
    """Whether the server of ``url`` answers (its ``postgres`` maintenance database)."""
    try:
        import psycopg

        with psycopg.connect(f"{url.rpartition('/')[0]}/postgres", connect_timeout=2):
            return True
    except Exception:
        return False


def fresh_postgres(url: str = POSTGRES) -> None:
    """Drop the database of ``url`` (closing its connections) and create it empty."""
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def child_env(
    prefix: str,
    database: str,
    *,
    postgres: str = POSTGRES,
    keep_otomat: bool = False,
    **extra: str,
) -> dict:
    """The environment of a child measured on a fresh database: a new data directory named
    ``prefix…``, this project's settings, tasks not run (unless ``extra`` says otherwise), and
    ``database`` "postgres" (then the database at ``postgres`` is emptied first) or "sqlite".
    The parent's ``OTOMAT_*`` variables are left out unless ``keep_otomat``."""
    env = {k: v for k, v in os.environ.items() if keep_otomat or not k.startswith("OTOMAT_")}
    env.pop("OTOMAT_DATABASE_URL", None)
    env.update(
        DJANGO_SETTINGS_MODULE="otomat.settings",
        OTOMAT_DATA_DIR=tempfile.mkdtemp(prefix=prefix),
        OTOMAT_TASK_BACKEND=DUMMY_TASKS,
    )
    env.update(extra)
    if database == "postgres":
        fresh_postgres(postgres)
        env["OTOMAT_DATABASE_URL"] = postgres
    return env


def run_child(script: str, args: Sequence[str], env: dict, *, label: str) -> dict:
    """Run ``script`` with ``args`` in ``env`` and return the JSON object it printed last;
    exit with its error output (``label`` says which run) when it fails."""
    out = subprocess.run(
        [sys.executable, script, *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"child failed ({label}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
