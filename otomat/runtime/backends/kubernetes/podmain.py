"""The container's entry point: ``python -m otomat.runtime.backends.kubernetes.podmain MODE``.

* ``product --entry package.module:factory`` (or ``product -- argv…``): one instance. Reads the
  start line (configuration, secrets included) from the mounted Secret ``/run/otomat/start.json``
  and hands it to the program on stdin, as the process backend does; the program's output goes
  to the container log scrubbed of the secrets; its control events become files the probes
  read (``ready`` → ``/tmp/otomat-ready``, every heartbeat → ``/tmp/otomat-heartbeat``). It exits
  with the program's exit code (78 refused token, 3 broken entry point), which the backend reads
  back from the pod's ``lastState``.
* ``host --entry package.module:factory``: a shared host (``otomat.runtime.shared_host``) whose
  instances are the ``<instance id>.json`` files of the mounted Secret. The kubelet updates
  those files when the Secret changes; this loop sends ``add`` for a new or changed file and
  ``remove`` for a vanished one, so instances join and leave without a restart. Per-instance
  log events are written as ``[<instance id>] line``, which the backend routes to each log.
* ``ready`` and ``alive --max-age S``: the readiness and liveness probes (exit 0 or 1).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

START_DIR = Path(os.environ.get("OTOMAT_POD_START_DIR", "/run/otomat"))
STATE_DIR = Path(os.environ.get("OTOMAT_POD_STATE_DIR", "/tmp"))  # noqa: S108 - the pod's tmpfs
PRODUCT_DIR = Path(os.environ.get("OTOMAT_POD_PRODUCT_DIR", "/opt/product"))
DATA_DIR = Path(os.environ.get("OTOMAT_POD_DATA_DIR", "/data"))
SCAN_SECONDS = float(os.environ.get("OTOMAT_POD_SCAN_SECONDS", "2"))  # the Secret's files
COMMAND_READY_AFTER = 1.0


def _touch(name: str) -> None:
    path = STATE_DIR / name
    path.touch()
    os.utime(path)


def probe_ready() -> int:
    return 0 if (STATE_DIR / "otomat-ready").exists() else 1


def probe_alive(max_age: float) -> int:
    try:
        age = time.time() - (STATE_DIR / "otomat-heartbeat").stat().st_mtime
    except FileNotFoundError:
        return 1
    return 0 if age <= max_age else 1


class _Pump:
    """The program's output, scrubbed, to our stdout (the container log)."""

    def __init__(self, secrets: set[str]) -> None:
        self.lock = threading.Lock()
        self.secrets = sorted(secrets, key=len, reverse=True)

    def set_secrets(self, secrets: set[str]) -> None:
        with self.lock:
            self.secrets = sorted(secrets, key=len, reverse=True)

    def line(self, text: str) -> None:
        with self.lock:
            for secret in self.secrets:
                text = text.replace(secret, "***")
            sys.stdout.write(text.rstrip("\n") + "\n")
            sys.stdout.flush()

    def follow(self, stream: Any, prefix: str = "") -> None:
        for raw in iter(stream.readline, b""):
            self.line(prefix + raw.decode("utf-8", "replace"))


def _launch(argv: list[str], control_fd: int, instance_id: str | None) -> subprocess.Popen:
    from otomat.runtime.backends.sandbox import clean_env, otomat_package_dir

    env = clean_env(
        home=str(DATA_DIR),
        pythonpath=f"{os.path.dirname(otomat_package_dir())}:{PRODUCT_DIR}",
        control_fd=control_fd,
        instance_id=instance_id,
    )
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=str(DATA_DIR),
        pass_fds=(control_fd,),
    )


def _forward_signals(proc: subprocess.Popen) -> None:
    def forward(signum: int, _frame: Any) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)


def _events(read_fd: int, handle: Any) -> None:
    with os.fdopen(read_fd, "rb") as control:
        for raw in control:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if isinstance(event, dict):
                handle(event)


def run_product(entry: str | None, command: list[str]) -> int:
    from otomat.runtime.backends.sandbox import program_argv
    from otomat.runtime.logs import secret_values

    start = (START_DIR / "start.json").read_bytes()
    payload = json.loads(start)
    pump = _Pump(secret_values(payload.get("config") or {}))
    argv = program_argv(
        entry=entry,
        command=command or None,
        source_dir=PRODUCT_DIR,
        source_inside=str(PRODUCT_DIR),
        python=sys.executable,
    )
    read_fd, write_fd = os.pipe()
    proc = _launch(argv, write_fd, payload.get("instance_id"))
    os.close(write_fd)
    _forward_signals(proc)

    def handle(event: dict[str, Any]) -> None:
        kind = event.get("event") or event.get("type")
        if kind == "ready":
            _touch("otomat-ready")
            _touch("otomat-heartbeat")
        elif kind == "heartbeat":
            _touch("otomat-heartbeat")

    threading.Thread(target=_events, args=(read_fd, handle), daemon=True).start()
    output = threading.Thread(target=pump.follow, args=(proc.stdout,), daemon=True)
    output.start()
    assert proc.stdin is not None
    proc.stdin.write(start.rstrip(b"\n") + b"\n")
    proc.stdin.flush()
    if not entry:  # a command product: alive for a second counts as ready
        time.sleep(COMMAND_READY_AFTER)
        if proc.poll() is None:
            _touch("otomat-ready")
            _touch("otomat-heartbeat")
    code = proc.wait()
    output.join(timeout=2)
    return code if code >= 0 else 128 - code


def _members() -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for path in START_DIR.glob("*.json"):
        if not path.name.startswith("."):
            found[path.name.removesuffix(".json")] = path.read_bytes()
    return found


def run_host(entry: str, scans: int | None = None) -> int:
    from otomat.runtime.logs import secret_values

    pump = _Pump(set())
    argv = [sys.executable, "-u", "-m", "otomat.runtime.shared_host"]
    argv += ["--source", str(PRODUCT_DIR), "--entry", entry, "--store", "sqlite"]
    read_fd, write_fd = os.pipe()
    proc = _launch(argv, write_fd, None)
    os.close(write_fd)
    _forward_signals(proc)

    def handle(event: dict[str, Any]) -> None:
        kind = event.get("event") or event.get("type")
        iid = event.get("instance_id")
        if kind == "host_ready":
            _touch("otomat-ready")
            _touch("otomat-heartbeat")
        elif kind == "host_heartbeat":
            _touch("otomat-heartbeat")
        elif kind == "log" and iid:
            for line in event.get("lines") or []:
                pump.line(f"[{iid}] {line}")
        elif kind in ("fatal", "error", "ready", "removed", "rejected") and iid:
            pump.line(f"[{iid}] [otomat] {kind}: {event.get('reason') or event.get('message', '')}")

    threading.Thread(target=_events, args=(read_fd, handle), daemon=True).start()
    threading.Thread(target=pump.follow, args=(proc.stdout,), daemon=True).start()
    assert proc.stdin is not None
    known: dict[str, bytes] = {}
    done = 0
    while proc.poll() is None and (scans is None or done < scans):
        members = _members()
        secrets: set[str] = set()
        commands: list[dict[str, Any]] = []
        for iid, content in members.items():
            try:
                command = json.loads(content)
            except ValueError:
                continue
            secrets |= secret_values(command.get("config") or {})
            if known.get(iid) != content:
                if iid in known:
                    commands.append({"cmd": "remove", "instance_id": iid})
                (DATA_DIR / iid).mkdir(parents=True, exist_ok=True)
                command["data_dir"] = str(DATA_DIR / iid)
                commands.append(command)
        commands += [{"cmd": "remove", "instance_id": iid} for iid in known if iid not in members]
        pump.set_secrets(secrets)
        try:
            for command in commands:
                proc.stdin.write((json.dumps(command) + "\n").encode())
            proc.stdin.flush()
        except BrokenPipeError:
            break
        known = members
        done += 1
        time.sleep(SCAN_SECONDS if scans is None else 0.05)
    if scans is not None and proc.poll() is None:
        proc.stdin.close()
    code = proc.wait()
    return code if code >= 0 else 128 - code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="podmain", description=__doc__.split("\n")[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    product = modes.add_parser("product")
    product.add_argument("--entry")
    product.add_argument("command", nargs="*")
    host = modes.add_parser("host")
    host.add_argument("--entry", required=True)
    modes.add_parser("ready")
    alive = modes.add_parser("alive")
    alive.add_argument("--max-age", type=float, default=60.0)
    args = parser.parse_args(argv)
    if args.mode == "ready":
        return probe_ready()
    if args.mode == "alive":
        return probe_alive(args.max_age)
    if args.mode == "host":
        return run_host(args.entry)
    if not args.entry and not args.command:
        parser.error("product needs --entry or a command after --")
    return run_product(args.entry, args.command)


if __name__ == "__main__":
    sys.exit(main())
