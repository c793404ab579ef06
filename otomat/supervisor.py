"""The main command: set everything up and run web server, task worker, runner and the Telegram
emulator as one process group. Ctrl-C (or SIGTERM) stops them all cleanly; a service that dies is
restarted with a growing delay."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

import httpx


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
    def __init__(self, name: str, argv: list[str]) -> None:
        self.name, self.argv = name, argv
        self.proc: subprocess.Popen | None = None
        self.failures = 0
        self.next_start = 0.0

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv)  # inherits env, stdout and stderr
        self.started = time.monotonic()

    def poll(self) -> None:
        """Restart a service that exited, waiting longer after each quick failure."""
        if self.proc is None or self.proc.poll() is None:
            return
        if time.monotonic() - self.started > 60:
            self.failures = 0
        self.failures += 1
        delay = min(30, 2 ** (self.failures - 1))
        print(
            f"[otomat] {self.name} exited with {self.proc.returncode}; restarting in {delay}s",
            file=sys.stderr,
            flush=True,
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


def run_all(*, host: str, port: int, emulator_port: int, demo: bool) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "otomat.settings")
    # The emulator always runs: sandboxes and "try it" use it even when customers' bots talk to
    # Telegram; customers' bots use it only when no OTOMAT_BOT_API_URL is given.
    use_emulator = not os.environ.get("OTOMAT_EMULATOR_URL")
    emulator_url = os.environ.get("OTOMAT_EMULATOR_URL") or f"http://127.0.0.1:{emulator_port}"
    os.environ["OTOMAT_EMULATOR_URL"] = emulator_url
    os.environ.setdefault("OTOMAT_BOT_API_URL", emulator_url)
    os.environ.setdefault("OTOMAT_BASE_URL", f"http://{host}:{port}")

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

    compile_catalogs()
    print("[otomat] preparing the database…", flush=True)
    call_command("migrate", interactive=False, verbosity=0)

    py = sys.executable
    services: list[Service] = []
    if use_emulator:
        emulator = Service(
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
            print("[otomat] the emulator did not start; see the messages above.", file=sys.stderr)
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
                Service(
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

    for name, sub in (
        ("runner", ["runner"]),
        ("worker", ["worker"]),
        ("scheduler", ["scheduler"]),
        ("web", ["web", "--host", host, "--port", str(port)]),
    ):
        service = Service(name, [py, "-m", "otomat.cli", *sub])
        service.start()
        services.append(service)

    web_url = f"http://{host}:{port}/"
    if not _wait_http(
        f"http://127.0.0.1:{port}/healthz"
        if host in ("0.0.0.0", "127.0.0.1")
        else web_url + "healthz",
        30,
    ):
        print(
            "[otomat] the web server did not answer yet; it may still be starting.", file=sys.stderr
        )
    if demo and use_emulator:
        from otomat.demo import ensure_demo_instances

        lines += ensure_demo_instances(emulator_url)
    print("\n" + "=" * 72)
    print(f"  Otomat is running:     {web_url}")
    if use_emulator:
        print(f"  Telegram emulator:     {emulator_url}/   (talk to the bots here)")
    for line in lines:
        print(f"  {line}")
    print(f"  Data directory:        {settings.DATA_DIR}")
    print("  Stop with Ctrl-C.")
    print("=" * 72 + "\n", flush=True)

    stopping = False

    def request_stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    while not stopping:
        for service in services:
            service.poll()
            service.maybe_restart()
        time.sleep(0.5)
    print("\n[otomat] stopping…", flush=True)
    # The runner first (it stops the bots), then the rest.
    for service in sorted(services, key=lambda s: s.name != "runner"):
        service.stop()
    deadline = time.monotonic() + 15
    for service in services:
        service.wait(deadline)
    print("[otomat] stopped.", flush=True)
    return 0
