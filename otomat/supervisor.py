"""The main command: set everything up and run web server, task worker, runner and the Telegram
emulator as one process group. Ctrl-C (or SIGTERM) stops them all cleanly; a service that dies is
restarted with a growing delay.

The console stays quiet: every service's output goes to ``DATA_DIR/logs/<service>.log``
(rotated); the console gets warnings, errors and one line per notable event (the
``otomat.events`` logger, see ``otomat.notify.events``), and the banner with the URLs last.
``--verbose`` shows everything, as the services print it."""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx

OUTBOX_BACKEND = "otomat.notify.outbox.OutboxBackend"
LOG_FILE_BYTES = 10 * 1024 * 1024  # per file; five older files are kept beside it
LOG_FILE_BACKUPS = 5
CONSOLE_LINES_PER_MINUTE = 20  # per service; beyond it, one pointer to its log file

# "2026-12-04 18:40:21,435 INFO otomat.scheduler: enqueued billing-run" (settings.LOGGING and
# the emulator's format), or uvicorn's "WARNING:  message".
_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[,.]\d+ ([A-Z]+) ([\w.\-]+): (.*)$")
_UVICORN = re.compile(r"^(WARNING|ERROR|CRITICAL):\s")
_LOUD = {"WARNING", "ERROR", "CRITICAL"}
# Loggers whose warnings are about a visitor's request, not the installation (404s and the
# like); their errors (a 500) still show.
_QUIET_WARNINGS = {"django.request", "django.server"}
EVENTS_LOGGER = "otomat.events"
_CONTINUATION_LINES = 40  # of one traceback or multi-line warning


class ConsoleFilter:
    """Decides, line by line, what of one service's output reaches the console: warnings and
    errors (with the lines that continue them, such as a traceback), and event lines. At most
    ``per_minute`` lines a minute; past that, one line saying where the rest is."""

    def __init__(self, service: str, log_path: Path, *, per_minute: int = CONSOLE_LINES_PER_MINUTE):
        self.service, self.log_path, self.per_minute = service, log_path, per_minute
        self._continuing = 0
        self._window_start = 0.0
        self._shown = 0
        self._told = False

    def __call__(self, line: str, now: float | None = None) -> str | None:
        shown = self._classify(line.rstrip("\r\n"))
        if shown is None:
            return None
        now = time.monotonic() if now is None else now
        if now - self._window_start >= 60:
            self._window_start, self._shown, self._told = now, 0, False
        if self._shown < self.per_minute:
            self._shown += 1
            return shown
        if not self._told:
            self._told = True
            return f"[otomat] more from the {self.service} than shown here: see {self.log_path}"
        return None

    def _classify(self, line: str) -> str | None:
        if line.startswith("{"):  # OTOMAT_LOG_FORMAT=json (otomat.lib.jsonlog)
            shown = self._classify_json(line)
            if shown is not False:
                return shown
        record = _RECORD.match(line)
        if record:
            level, logger, message = record.groups()
            self._continuing = 0
            if logger == EVENTS_LOGGER:
                return f"{line[11:19]} {message}"
            if level in _LOUD and not (level == "WARNING" and logger in _QUIET_WARNINGS):
                self._continuing = _CONTINUATION_LINES
                return f"[{self.service}] {level} {logger}: {message}"
            return None
        if _UVICORN.match(line) or line.startswith("Traceback (most recent call last)"):
            self._continuing = _CONTINUATION_LINES
            return f"[{self.service}] {line}"
        if self._continuing and line.strip():
            self._continuing -= 1
            return f"[{self.service}] {line}"
        return None

    def _classify_json(self, line: str) -> str | bool | None:
        """The same choice for a JSON log line (a traceback is inside it: its last line is
        shown); False when the line is no JSON log record, to be read as plain text."""
        try:
            entry = json.loads(line)
            level, logger = str(entry["level"]), str(entry["logger"])
            message, ts = str(entry["message"]), str(entry.get("ts", ""))
        except (ValueError, KeyError, TypeError):
            return False
        self._continuing = 0
        if logger == EVENTS_LOGGER:
            return f"{ts[11:19]} {message}"
        if level in _LOUD and not (level == "WARNING" and logger in _QUIET_WARNINGS):
            exc = str(entry.get("exc") or "").strip().splitlines()
            tail = f" ({exc[-1]})" if exc else ""
            return f"[{self.service}] {level} {logger}: {message}{tail}"
        return None


class Console:
    """The supervisor's terminal: whole lines, one writer at a time."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def write(self, line: str) -> None:
        stream = self.stream or sys.stdout
        # A closed terminal must not stop the pumps: the children would block on a full pipe.
        with self.lock, contextlib.suppress(OSError, ValueError):
            stream.write(line + "\n")
            stream.flush()


def _file_handler(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def _pump(pipe: IO[bytes], log: logging.Handler, show, console: Console) -> None:
    """Copy a child's output, line by line, to its log file, and to the console what ``show``
    lets through (all of it with --verbose)."""
    with pipe:
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            log.handle(logging.makeLogRecord({"msg": line, "args": None}))
            shown = show(line)
            if shown is not None:
                console.write(shown)


class _ConsoleRecords(logging.Filter):
    """The supervisor's own log records on the console: warnings, errors and events."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.name == EVENTS_LOGGER


class _ConsoleFormat(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if record.name == EVENTS_LOGGER:
            return (
                f"{time.strftime('%H:%M:%S', time.localtime(record.created))} {record.getMessage()}"
            )
        return f"[otomat] {record.levelname} {record.name}: {super().format(record)}"


def _log_to_files(logs_dir: Path, console: Console, *, verbose: bool) -> None:
    """The supervisor's own logging (the demo set-up, migrations): to logs/otomat.log, and to
    the console as ``_ConsoleRecords`` says (everything with --verbose)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    to_file = _file_handler(logs_dir / "otomat.log")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(to_file)
    to_console = logging.StreamHandler(console.stream or sys.stdout)
    if verbose:
        to_console.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    else:
        to_console.addFilter(_ConsoleRecords())
        to_console.setFormatter(_ConsoleFormat("%(message)s"))
    root.addHandler(to_console)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _wait_http(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return True
        time.sleep(0.2)
    return False


class Service:
    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        logs_dir: Path,
        console: Console,
        verbose: bool = False,
    ) -> None:
        self.name, self.argv = name, argv
        self.proc: subprocess.Popen | None = None
        self.failures = 0
        self.next_start = 0.0
        self.console = console
        self.log_path = logs_dir / f"{name}.log"
        self.log = _file_handler(self.log_path)
        self.show = (
            (lambda line: f"[{name}] {line}") if verbose else ConsoleFilter(name, self.log_path)
        )
        self.pumps: list[threading.Thread] = []

    def start(self) -> None:
        # Inherits the environment; output goes through a pipe to the log file and the console.
        self.proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        pump = threading.Thread(
            target=_pump,
            args=(self.proc.stdout, self.log, self.show, self.console),
            name=f"log-{self.name}",
            daemon=True,
        )
        pump.start()
        self.pumps.append(pump)
        self.started = time.monotonic()

    def poll(self) -> None:
        """Restart a service that exited, waiting longer after each quick failure."""
        if self.proc is None or self.proc.poll() is None:
            return
        if time.monotonic() - self.started > 60:
            self.failures = 0
        self.failures += 1
        delay = min(30, 2 ** (self.failures - 1))
        self.console.write(
            f"[otomat] {self.name} exited with {self.proc.returncode}; restarting in {delay}s "
            f"(its messages: {self.log_path})"
        )
        self.proc = None
        self.next_start = time.monotonic() + delay

    def maybe_restart(self) -> None:
        if self.proc is None and time.monotonic() >= self.next_start:
            self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, deadline: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def flush_logs(self, deadline: float) -> None:
        """Let the last lines reach the log file (a child's children may keep the pipe open:
        then give up at ``deadline``)."""
        for pump in self.pumps:
            pump.join(timeout=max(0.0, deadline - time.monotonic()))
        self.log.close()


def run_all(*, host: str, port: int, emulator_port: int, demo: bool, verbose: bool = False) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "otomat.settings")
    # The emulator always runs: sandboxes and "try it" use it even when customers' bots talk to
    # Telegram; customers' bots use it only when no OTOMAT_BOT_API_URL is given.
    use_emulator = not os.environ.get("OTOMAT_EMULATOR_URL")
    emulator_url = os.environ.get("OTOMAT_EMULATOR_URL") or f"http://127.0.0.1:{emulator_port}"
    os.environ["OTOMAT_EMULATOR_URL"] = emulator_url
    os.environ.setdefault("OTOMAT_BOT_API_URL", emulator_url)
    os.environ.setdefault("OTOMAT_BASE_URL", f"http://{host}:{port}")
    if demo:
        # The demo owner logs in with the printed password alone; outside the demo, owner and
        # staff need a second factor (OTOMAT_REQUIRE_STAFF_2FA, docs/configuration.md).
        os.environ.setdefault("OTOMAT_REQUIRE_STAFF_2FA", "0")
    # Without a mail server, mail waits in the outbox page for staff (not on the console).
    outbox = not os.environ.get("OTOMAT_EMAIL_BACKEND") and not os.environ.get("OTOMAT_EMAIL_HOST")
    if outbox:
        os.environ["OTOMAT_EMAIL_BACKEND"] = OUTBOX_BACKEND
    console = Console()

    for what, p in (
        ("web server", port),
        *((("emulator", emulator_port),) if use_emulator else ()),
    ):
        if not _port_free(host if what == "web server" else "127.0.0.1", p):
            print(
                f"[otomat] port {p} for the {what} is in use; pick another with "
                f"{'--port' if what == 'web server' else '--emulator-port'}.",
                file=sys.stderr,
            )
            return 2

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from otomat.lib.i18n import compile_catalogs

    logs_dir = Path(settings.LOGS_DIR)
    _log_to_files(logs_dir, console, verbose=verbose)

    def service(name: str, argv: list[str]) -> Service:
        return Service(name, argv, logs_dir=logs_dir, console=console, verbose=verbose)

    compile_catalogs()
    console.write("[otomat] preparing the database…")
    call_command("migrate", interactive=False, verbosity=0)

    py = sys.executable
    services: list[Service] = []
    if use_emulator:
        emulator = service(
            "emulator",
            [
                py,
                "-m",
                "otomat.tgemu",
                "--host",
                "127.0.0.1",
                "--port",
                str(emulator_port),
                "--state",
                str(settings.DATA_DIR / "tgemu.json"),
            ],
        )
        emulator.start()
        services.append(emulator)
        if not _wait_http(f"{emulator_url}/control/health", 20):
            console.write(f"[otomat] the emulator did not start; see {emulator.log_path}.")
            emulator.stop()
            return 1

    lines: list[str] = []
    fakepay_port = emulator_port + 10
    fakepay = demo and all(_port_free("127.0.0.1", fakepay_port + i) for i in range(4))
    if demo:
        from otomat.demo import ensure_demo_billing, ensure_demo_data, ensure_owner_bot

        lines = ensure_demo_data(emulator_url if use_emulator else None)
        if fakepay:
            ensure_demo_billing(fakepay_port=fakepay_port)
            services.append(
                service(
                    "fakepay",
                    [
                        py,
                        "-m",
                        "otomat.cli",
                        "fakepay",
                        "--port",
                        str(fakepay_port),
                        "--otomat-url",
                        os.environ["OTOMAT_BASE_URL"],
                    ],
                )
            )
            services[-1].start()
            lines.append(
                f"Test payments (no real money): Midtrans, Stripe, Xendit, Przelewy24 fakes on "
                f"ports {fakepay_port}-{fakepay_port + 3}; coupon HEMAT20"
            )
        if use_emulator and not os.environ.get("OTOMAT_OWNER_BOT_TOKEN"):
            owner_token = ensure_owner_bot(emulator_url)
            if owner_token:
                # The worker, scheduler and web server read it at start (notices by Telegram).
                os.environ["OTOMAT_OWNER_BOT_TOKEN"] = owner_token
                os.environ["OTOMAT_OWNER_BOT_USERNAME"] = "demo_owner_bot"
                lines.append(
                    "Billing notices by Telegram: @demo_owner_bot "
                    "(link it under Telegram notices in the account menu)"
                )
    else:
        from otomat.catalog.services import import_builtin_products

        import_builtin_products(actor=None)

    # The web server's processes: OTOMAT_WEB_WORKERS when set, else two at most (the runner,
    # worker, scheduler and emulator share this machine's cores with it).
    web_workers = (
        settings.WEB_WORKERS
        if os.environ.get("OTOMAT_WEB_WORKERS")
        else min(2, settings.WEB_WORKERS)
    )
    for name, sub in (
        ("runner", ["runner"]),
        ("worker", ["worker"]),
        ("scheduler", ["scheduler"]),
        ("web", ["web", "--host", host, "--port", str(port), "--workers", str(web_workers)]),
    ):
        started = service(name, [py, "-m", "otomat.cli", *sub])
        started.start()
        services.append(started)

    web_url = f"http://{host}:{port}/"
    if not _wait_http(
        f"http://127.0.0.1:{port}/healthz"
        if host in ("0.0.0.0", "127.0.0.1")
        else web_url + "healthz",
        30,
    ):
        console.write("[otomat] the web server did not answer yet; it may still be starting.")
    if demo and use_emulator:
        from otomat.demo import ensure_demo_instances

        lines += ensure_demo_instances(emulator_url)
    banner = ["", "=" * 72, f"  Otomat is running:     {web_url}"]
    if use_emulator:
        banner.append(f"  Telegram emulator:     {emulator_url}/   (talk to the bots here)")
    banner += [f"  {line}" for line in lines]
    if outbox:
        banner.append(f"  Mail (no SMTP server): {web_url}notify/outbox/   (staff only)")
    banner += [
        f"  Data directory:        {settings.DATA_DIR}",
        f"  Logs:                  {logs_dir}/<service>.log"
        + ("" if verbose else "   (--verbose shows them here)"),
        "  Stop with Ctrl-C.",
        "=" * 72,
        "",
    ]
    console.write("\n".join(banner))

    stopping = False

    def request_stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    while not stopping:
        for each in services:
            each.poll()
            each.maybe_restart()
        time.sleep(0.5)
    console.write("\n[otomat] stopping…")
    # The runner first (it stops the bots), then the rest.
    for each in sorted(services, key=lambda s: s.name != "runner"):
        each.stop()
    deadline = time.monotonic() + 15
    for each in services:
        each.wait(deadline)
    deadline = time.monotonic() + 2
    for each in services:
        each.flush_logs(deadline)
    console.write("[otomat] stopped.")
    return 0
