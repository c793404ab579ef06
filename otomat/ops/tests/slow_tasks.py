"""A task for the stale-task tests, importable by a real worker process."""

from __future__ import annotations

import os
import time
from pathlib import Path

from django_tasks import task


@task()
def slow_task(folder: str) -> str:
    """Record this attempt, wait until the test writes ``release``, then finish."""
    here = Path(folder)
    attempt = len(list(here.glob("attempt-*"))) + 1
    (here / f"attempt-{attempt}").write_text(str(os.getpid()))
    while not (here / "release").exists():
        time.sleep(0.05)
    return f"done on attempt {attempt}"
