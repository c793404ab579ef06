"""The command line: help text, exit statuses, and no Django in the emulator process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "otomat.tgemu", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


def test_cli_help_describes_the_options():
    result = run_cli("--help")
    assert result.returncode == 0
    for option in ("--host", "--port", "--state", "--log-level", "/bot<token>/<method>"):
        assert option in result.stdout


def test_cli_refuses_a_corrupt_state_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("garbage")
    result = run_cli("--port", "0", "--state", str(path))
    assert result.returncode == 2
    assert "cannot load state file" in result.stderr
    assert path.read_text() == "garbage"


def test_cli_refuses_a_file_that_is_not_a_state_store(tmp_path):
    path = tmp_path / "bad.sqlite3"
    path.write_bytes(b"garbage, not SQLite")
    result = run_cli("--port", "0", "--state", str(path))
    assert result.returncode == 2
    assert (
        "cannot load state file" in result.stderr and "not an emulator state store" in result.stderr
    )
    assert path.read_bytes() == b"garbage, not SQLite"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("bad")] == ["bad.sqlite3"]


def test_the_emulator_does_not_import_django():
    code = (
        "import sys, otomat.tgemu, otomat.tgemu.cli, otomat.tgemu.testing; "
        "sys.exit(any(m.split('.')[0] == 'django' for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert result.returncode == 0, "importing otomat.tgemu pulled in Django"


def test_the_documented_otomat_tgemu_command_line_takes_the_options(tmp_path):
    """docs/tgemu.md runs `otomat tgemu --host … --port … --state …`; every option reaches the
    emulator's own parser (a corrupt state file proves --state was read, and exit 2 that the
    emulator, not the platform's parser, answered)."""
    state = tmp_path / "state.json"
    state.write_text("garbage")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "otomat.cli",
            "tgemu",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--state",
            str(state),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert "unrecognized arguments" not in result.stderr
    assert result.returncode == 2 and "cannot load state file" in result.stderr
    help_text = subprocess.run(
        [sys.executable, "-m", "otomat.cli", "tgemu", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert help_text.returncode == 0 and "--state" in help_text.stdout
