"""What of a service's output the main command's console shows: warnings, errors (with their
tracebacks) and event lines; never the routine chatter; at most a bounded number a minute."""

from __future__ import annotations

import io
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from otomat.cli import build_parser, main
from otomat.supervisor import Console, ConsoleFilter, Service

REPO = Path(__file__).resolve().parents[2]

LOG = Path("/data/logs/worker.log")
CHATTER = [
    "2026-12-04 18:40:21,401 INFO apscheduler.scheduler: Adding job tentatively -- it will be "
    "properly scheduled when the scheduler starts",
    "2026-12-04 18:40:22,176 INFO django_tasks: Task id=971e path=x.purge state=RUNNING",
    "2026-12-04 18:40:22,574 INFO otomat.billing.dunning: billing run: 0 processed, 0 failed, {}",
    "Content-Type: text/plain; charset=utf-8",
    "Subject: Invoice INV/2026/0001",
    "",
    "[fakepay] midtrans at http://127.0.0.1:18411",
    "2026-12-04 18:41:00,000 WARNING django.request: Not Found: /favicon.ico",
]


def test_routine_output_stays_in_the_log_file():
    show = ConsoleFilter("worker", LOG)
    assert [show(line, now=0) for line in CHATTER] == [None] * len(CHATTER)


def test_events_warnings_and_tracebacks_reach_the_console():
    show = ConsoleFilter("worker", LOG)
    lines = [
        "2026-12-04 18:41:02,123 INFO otomat.events: invoice INV/2026/0001 paid: IDR49,000",
        "2026-12-04 18:41:03,000 WARNING otomat.notify: notification 3 failed (1): refused",
        "2026-12-04 18:41:04,000 ERROR django_tasks: Task failed",
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "ValueError: boom",
        "2026-12-04 18:41:05,000 INFO django_tasks: Task id=1 state=SUCCESSFUL",
        "a stray line after the error's record ended",
        "WARNING:  Invalid HTTP request received.",
        "Traceback (most recent call last):",
        "ImportError: no module named x",
        "2026-12-04 18:41:06,000 ERROR django.request: Internal Server Error: /billing/",
    ]
    assert [show(line, now=0) for line in lines] == [
        "18:41:02 invoice INV/2026/0001 paid: IDR49,000",
        "[worker] WARNING otomat.notify: notification 3 failed (1): refused",
        "[worker] ERROR django_tasks: Task failed",
        "[worker] Traceback (most recent call last):",
        '[worker]   File "x.py", line 1, in <module>',
        "[worker] ValueError: boom",
        None,
        None,
        "[worker] WARNING:  Invalid HTTP request received.",
        "[worker] Traceback (most recent call last):",
        "[worker] ImportError: no module named x",
        "[worker] ERROR django.request: Internal Server Error: /billing/",
    ]


def test_json_log_lines_are_chosen_the_same_way():
    show = ConsoleFilter("worker", LOG)
    lines = [
        '{"ts": "2026-12-04T18:41:01.000+00:00", "level": "INFO", "logger": "django_tasks", '
        '"message": "Task id=1 state=SUCCESSFUL"}',
        '{"ts": "2026-12-04T18:41:02.123+00:00", "level": "INFO", "logger": "otomat.events", '
        '"message": "invoice INV/2026/0001 paid"}',
        '{"ts": "2026-12-04T18:41:04.000+00:00", "level": "ERROR", "logger": "django_tasks", '
        '"message": "Task failed", "exc": "Traceback (most recent call last):\\nValueError: boom"}',
        '{"ts": "2026-12-04T18:41:05.000+00:00", "level": "WARNING", "logger": "django.request", '
        '"message": "Not Found: /x"}',
        '{"not": "a log record"}',
    ]
    assert [show(line, now=0) for line in lines] == [
        None,
        "18:41:02 invoice INV/2026/0001 paid",
        "[worker] ERROR django_tasks: Task failed (ValueError: boom)",
        None,
        None,
    ]


def test_a_flood_is_cut_to_the_limit_a_minute_with_one_pointer_to_the_file():
    show = ConsoleFilter("worker", LOG, per_minute=3)
    warning = "2026-12-04 18:41:03,000 WARNING otomat.notify: failed"
    shown = [show(warning, now=t) for t in range(10)]
    assert shown[:3] == ["[worker] WARNING otomat.notify: failed"] * 3
    assert shown[3] == f"[otomat] more from the worker than shown here: see {LOG}"
    assert shown[4:] == [None] * 6
    assert show(warning, now=61) == "[worker] WARNING otomat.notify: failed"  # a new minute


CHILD = """
import logging, sys
logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
logging.getLogger("apscheduler.scheduler").info("Added job")
print("Subject: Invoice INV/2026/0001")
logging.getLogger("otomat.notify").warning("notification 3 failed")
logging.getLogger("otomat.events").info("invoice INV/2026/0001 paid")
"""


def run_service(tmp_path: Path, *, verbose: bool) -> tuple[list[str], list[str]]:
    console = io.StringIO()
    service = Service(
        "worker",
        [sys.executable, "-c", CHILD],
        logs_dir=tmp_path,
        console=Console(console),
        verbose=verbose,
    )
    service.start()
    service.proc.wait(30)
    service.flush_logs(time.monotonic() + 10)
    return console.getvalue().splitlines(), (tmp_path / "worker.log").read_text().splitlines()


def test_a_service_writes_everything_to_its_log_file_and_little_to_the_console(tmp_path):
    shown, logged = run_service(tmp_path, verbose=False)
    assert len(logged) == 4
    assert logged[0].endswith("INFO apscheduler.scheduler: Added job")
    assert logged[1] == "Subject: Invoice INV/2026/0001"
    assert shown[0] == "[worker] WARNING otomat.notify: notification 3 failed"
    assert shown[1].endswith(" invoice INV/2026/0001 paid") and len(shown) == 2


def test_verbose_shows_everything_on_the_console_too(tmp_path):
    """`otomat run --verbose` (README, docs/operations.md)."""
    shown, logged = run_service(tmp_path, verbose=True)
    assert shown == [f"[worker] {line}" for line in logged] and len(shown) == 4


def test_the_documented_verbose_option_is_in_the_help_and_parses():
    assert build_parser().parse_args(["run", "--verbose"]).verbose is True
    assert build_parser().parse_args(["run"]).verbose is False
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    assert "--verbose" in out.getvalue() and "DATA_DIR/logs/" in out.getvalue()
    for doc in ("README.md", "docs/operations.md"):
        assert "otomat run --verbose" in (REPO / doc).read_text(), doc


def test_a_closed_console_does_not_stop_the_log_file(tmp_path):
    closed = io.StringIO()
    closed.close()
    service = Service(
        "worker", [sys.executable, "-c", CHILD], logs_dir=tmp_path, console=Console(closed)
    )
    service.start()
    service.proc.wait(30)
    service.flush_logs(time.monotonic() + 10)
    assert len((tmp_path / "worker.log").read_text().splitlines()) == 4
    assert not service.pumps[0].is_alive()
