"""The process backend: logs, data hand-over, pidfiles, and real sandboxed processes.

The cast: ``alice`` and ``bob`` are two customers' instances side by side; ``platform`` is the
Otomat data directory with its database and key file, which no instance may see.
Tests marked ``slow`` start real processes (bwrap when installed, else unsandboxed).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from otomat.botkit.testing import async_test
from otomat.runtime.backends import datadir, procutil, sandbox
from otomat.runtime.backends.base import ActualState, InstanceSpec, Phase
from otomat.runtime.backends.process import ProcessBackend, RestartPolicy
from otomat.runtime.logs import REDACTED, LogWriter, secret_values, tail

REPO = Path(__file__).resolve().parents[3]
GREETER = REPO / "products" / "greeter"
HAS_BWRAP = sandbox.find_bwrap() is not None
MODE = os.environ.get("OTOMAT_TEST_SANDBOX") or ("bwrap" if HAS_BWRAP else "none")
FAKE_TOKEN = "5550001:AAH-secretsecretsecretsecretsecret0"

needs_bwrap = pytest.mark.skipif(not HAS_BWRAP, reason="bubblewrap is not installed")


# -- helpers ----------------------------------------------------------------------------------


def command_spec(
    root: Path, instance_id: str, script: str, *, generation: int = 1, **config: Any
) -> InstanceSpec:
    """A ``command`` product running ``script`` with the venv's Python."""
    product = root / "products" / instance_id
    product.mkdir(parents=True, exist_ok=True)
    (product / "main.py").write_text(textwrap.dedent(script))
    return InstanceSpec(
        instance_id=instance_id,
        product_slug=f"probe-{instance_id}",
        version="1",
        source_dir=product,
        entry=None,
        command=(sys.executable, "main.py"),
        config={"bot_token": FAKE_TOKEN, **config},
        data_dir=root / "instances" / instance_id / "data",
        log_path=root / "logs" / f"{instance_id}.log",
        generation=generation,
    )


def greeter_spec(root: Path, instance_id: str, token: str, api_url: str, **kw: Any) -> InstanceSpec:
    return InstanceSpec(
        instance_id=instance_id,
        product_slug="greeter",
        version="1.0.0",
        source_dir=GREETER,
        entry="greeter.bot:build_router",
        command=None,
        config={"bot_token": token, "max_daily_greetings": 1, "show_buttons": False},
        data_dir=root / "instances" / instance_id / "data",
        log_path=root / "logs" / f"{instance_id}.log",
        bot_api_url=api_url,
        **kw,
    )


def make_backend(root: Path, states: list[ActualState] | None = None, **kw: Any) -> ProcessBackend:
    kw.setdefault("sandbox", MODE)
    kw.setdefault("spares", 0)
    kw.setdefault("stop_timeout", 3.0)
    kw.setdefault("policy", RestartPolicy(backoff_initial=0.2, stable_after=30))
    return ProcessBackend(
        run_dir=root / "run", on_change=states.append if states is not None else None, **kw
    )


async def until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}")


def phase(backend: ProcessBackend, instance_id: str) -> Phase | None:
    state = backend.actual().get(instance_id)
    return state.phase if state else None


def processes_with(marker: str) -> list[int]:
    """Live non-bwrap processes whose argv contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            argv = procutil.cmdline(int(entry.name))
            if (
                argv
                and "bwrap" not in argv[0]
                and any(marker in a for a in argv)
                and procutil.alive(int(entry.name))
            ):
                found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def tgemu(tmp_path_factory: pytest.TempPathFactory):
    from otomat.testing.processes import Emulator

    emu = Emulator(tmp_path_factory.mktemp("tgemu") / "state.json")
    yield emu
    emu.close()


# -- logs (no processes) ----------------------------------------------------------------------


def test_logs_rotate_by_size_and_tail_reads_across_files(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "alice.log"
    writer = LogWriter(path, max_bytes=2048, backups=3)
    for n in range(400):
        writer.write([f"line {n:03d}"])
    writer.close()
    assert {p.name for p in path.parent.iterdir()} == {
        "alice.log",
        "alice.log.1",
        "alice.log.2",
        "alice.log.3",
    }
    assert all(p.stat().st_size <= 2048 for p in path.parent.iterdir())
    last = tail(path, 150)
    kept = [int(line.rsplit(" ", 1)[1]) for line in last]
    assert kept == list(range(400 - len(kept), 400))
    assert len(kept) == 150  # 150 lines span the current file and rotated ones
    assert tail(path, 1)[0].endswith("line 399")
    assert tail(path, 1)[0][:4].isdigit() and "Z line" in tail(path, 1)[0]
    assert tail(tmp_path / "missing.log") == []
    assert len(tail(path, 10_000)) < 400  # the oldest lines were rotated away


def test_logs_scrub_secrets_and_cut_runaway_lines(tmp_path: Path) -> None:
    config = {"bot_token": FAKE_TOKEN, "help": {"api_key": "k-123456"}, "welcome_text": "Hello"}
    assert secret_values(config) == {FAKE_TOKEN, "k-123456"}
    writer = LogWriter(tmp_path / "a.log", secrets=secret_values(config))
    writer.write([f"url https://api/bot{FAKE_TOKEN}/getMe key=k-123456 Hello", "x" * 40_000])
    writer.close()
    first, second = tail(tmp_path / "a.log")
    assert FAKE_TOKEN not in first and "k-123456" not in first
    assert f"bot{REDACTED}/getMe" in first and first.endswith("Hello")
    assert len(second) < 17_000 and second.endswith("[cut]")


# -- data hand-over and pidfiles (no processes) -----------------------------------------------


def test_adopt_moves_the_instance_data_into_the_spare_dir(tmp_path: Path) -> None:
    spare, data = tmp_path / "spares" / "s1", tmp_path / "instances" / "alice" / "data"
    spare.mkdir(parents=True)
    data.mkdir(parents=True)
    (data / "store.sqlite3").write_text("alice's data")
    (data / "sub").mkdir()
    inode = spare.stat().st_ino
    datadir.adopt(spare, data)
    assert not spare.exists()
    assert data.stat().st_ino == inode  # the spare's bind mount now shows the instance's data
    assert (data / "store.sqlite3").read_text() == "alice's data"
    assert sorted(p.name for p in data.iterdir()) == ["store.sqlite3", "sub"]
    fresh = tmp_path / "spares" / "s2"
    fresh.mkdir()
    datadir.adopt(fresh, tmp_path / "instances" / "bob" / "data")  # first start: no data yet
    assert (tmp_path / "instances" / "bob" / "data").is_dir()


def test_recover_finishes_an_interrupted_hand_over(tmp_path: Path) -> None:
    spares = tmp_path / "spares"
    data = tmp_path / "instances" / "alice" / "data"
    data.mkdir(parents=True)
    (data / "kept.txt").write_text("kept")
    half = spares / "half"  # crashed after moving one entry out of alice's dir
    half.mkdir(parents=True)
    (half / datadir.MARKER).write_text(str(data))
    (half / "moved.txt").write_text("moved")
    (spares / "unused").mkdir()
    datadir.recover(spares)
    assert sorted(p.name for p in data.iterdir()) == ["kept.txt", "moved.txt"]
    assert list(spares.iterdir()) == []


def test_a_pidfile_never_kills_a_reused_pid(tmp_path: Path) -> None:
    registry = procutil.PidRegistry(tmp_path)
    argv = [sys.executable, "-c", "import time; time.sleep(30)"]
    bystander = subprocess.Popen(argv)
    try:
        while procutil.cmdline(bystander.pid) != argv:  # /proc shows argv shortly after exec
            time.sleep(0.01)
        real = procutil.start_time(bystander.pid)
        registry.write("inst-alice", procutil.PidRecord(bystander.pid, real - 1, argv, "alice", 1))
        registry.write("inst-bob", procutil.PidRecord(bystander.pid, real, ["other"], "bob", 1))
        assert registry.kill_leftovers() == []
        assert bystander.poll() is None
        assert registry.records() == {}
        registry.write("inst-alice", procutil.PidRecord(bystander.pid, real, argv, "alice", 1))
        assert [r.instance_id for r in registry.kill_leftovers()] == ["alice"]
        assert bystander.wait(5) == -signal.SIGKILL
    finally:
        bystander.kill()
        bystander.wait()


def test_the_sandbox_command_line_hides_the_platform(tmp_path: Path) -> None:
    launch = sandbox.build_launch(
        mode="bwrap",
        bwrap="/usr/bin/bwrap",
        source_dir=tmp_path / "product",
        data_dir=tmp_path / "alice",
        entry="greeter.bot:build_router",
        command=None,
        control_fd=7,
        instance_id="alice",
    )
    argv = launch.argv
    binds = [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a in ("--bind", "--ro-bind")]
    assert (str(tmp_path / "alice"), "/data") in binds
    assert (sandbox.otomat_package_dir(), "/opt/otomat/otomat") in binds
    assert all(src != str(REPO) for src, _ in binds)  # never the repository root
    writable = [src for src, _ in binds if argv[argv.index(src) - 1] == "--bind"]
    assert writable == [str(tmp_path / "alice")]
    for flag in ("--unshare-pid", "--die-with-parent", "--clearenv", "--new-session"):
        assert flag in argv
    assert "--unshare-net" not in argv  # bots must reach the Bot API
    assert argv[argv.index("--") + 1 :][-4:] == ["--source", "/opt/product", "--entry", argv[-1]]


# -- real processes ---------------------------------------------------------------------------

ISOLATION_PROBE = """
import json, os, resource, sys
start = json.loads(sys.stdin.readline())
def can_read(path):
    try:
        open(path).read()
        return True
    except OSError:
        return False
def can_write(path):
    try:
        open(path, "w").write("x")
        return True
    except OSError:
        return False
report = {
    "targets": {p: can_read(p) for p in sys.argv[1:]},
    "env": sorted(os.environ),
    "secret_env": [k for k in os.environ if k.startswith("OTOMAT_SECRET")],
    "write_product": can_write("/opt/product/main.py"),
    "write_data": can_write("data-probe.txt"),
    "core": resource.getrlimit(resource.RLIMIT_CORE)[0],
    "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    "data_mib": resource.getrlimit(resource.RLIMIT_DATA)[0] // 2**20,
    "pid": os.getpid(),
    "cwd": os.getcwd(),
    "start_keys": sorted(start),
}
with open("report.json", "w") as f:
    json.dump(report, f)
print("probe done", flush=True)
import time; time.sleep(60)
"""


@needs_bwrap
@pytest.mark.slow
@async_test
async def test_an_instance_cannot_see_its_neighbours_or_the_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTOMAT_SECRET_KEY", "platform-secret-key")
    platform = tmp_path / "platform"
    (platform / "keys").mkdir(parents=True)
    (platform / "keys" / "secret_key").write_text("platform-secret-key")
    (platform / "otomat.sqlite3").write_text("database")
    bob_file = tmp_path / "instances" / "bob" / "data" / "store.sqlite3"
    bob_file.parent.mkdir(parents=True)
    bob_file.write_text("bob's data")
    targets = [
        str(bob_file),
        str(platform / "keys" / "secret_key"),
        str(platform / "otomat.sqlite3"),
    ]
    targets.append(str(REPO / "pyproject.toml"))
    spec = command_spec(tmp_path, "alice", ISOLATION_PROBE)
    spec = InstanceSpec(**{**spec.__dict__, "command": (*spec.command, *targets)})
    backend = make_backend(tmp_path, sandbox="bwrap")
    await backend.open()
    try:
        await backend.ensure_running(spec)
        report_file = spec.data_dir / "report.json"
        await until(report_file.exists, what="the probe's report")
        report = json.loads(report_file.read_text())
    finally:
        await backend.close()
    assert report["targets"] == dict.fromkeys(targets, False)
    assert report["secret_env"] == []
    assert set(report["env"]) <= {
        "PATH",
        "HOME",
        "LANG",
        "PYTHONPATH",
        "PYTHONDONTWRITEBYTECODE",
        "OTOMAT_CONTROL_FD",
        "OTOMAT_INSTANCE_ID",
        "PWD",
    }
    assert report["write_product"] is False and report["write_data"] is True
    assert (spec.data_dir / "data-probe.txt").exists()
    assert report["core"] == 0 and report["nofile"] == 1024
    assert report["data_mib"] == spec.memory_mb + sandbox.Limits().memory_headroom_mb
    assert report["pid"] < 10 and report["cwd"] == "/data"  # own pid namespace
    assert report["start_keys"] == [
        "api_url",
        "config",
        "data_dir",
        "heartbeat_seconds",
        "instance_id",
    ]


@pytest.mark.slow
@async_test
async def test_it_restarts_with_backoff_after_kill_9(tmp_path: Path) -> None:
    states: list[ActualState] = []
    spec = command_spec(
        tmp_path,
        "alice",
        "import sys, time; sys.stdin.readline(); print('up', flush=True); time.sleep(60)",
    )
    backend = make_backend(tmp_path, states, policy=RestartPolicy(backoff_initial=0.5))
    await backend.open()
    try:
        await backend.ensure_running(spec)
        await backend.ensure_running(spec)  # idempotent: still one process
        await until(lambda: phase(backend, "alice") == Phase.RUNNING)
        [first] = backend.pids("alice")
        os.kill(first, signal.SIGKILL)
        killed_at = time.monotonic()
        await until(lambda: phase(backend, "alice") == Phase.BACKOFF)
        await until(lambda: backend.pids("alice"), what="the restart")
        assert time.monotonic() - killed_at >= 0.45  # waited for the backoff
        await until(lambda: phase(backend, "alice") == Phase.RUNNING)
        [second] = backend.pids("alice")
        assert second != first and not procutil.alive(first)
        state = backend.actual()["alice"]
        assert state.restarts == 1
        assert "[otomat] process ended: killed by SIGKILL" in "\n".join(tail(spec.log_path))
        assert [s.phase for s in states][:4] == [
            Phase.STARTING,
            Phase.RUNNING,
            Phase.BACKOFF,
            Phase.STARTING,
        ]
    finally:
        await backend.close()
    assert backend.actual()["alice"].phase == Phase.STOPPED
    assert processes_with(str(spec.source_dir)) == []


@pytest.mark.slow
@async_test
async def test_a_crash_loop_ends_failed_with_the_last_log_lines(tmp_path: Path) -> None:
    script = """
    import json, sys
    token = json.loads(sys.stdin.readline())["config"]["bot_token"]
    print(f"loading settings for {token}", flush=True)  # a careless product
    print(f"boom: cannot parse settings", file=sys.stderr, flush=True)
    sys.exit(3 if "--never" in sys.argv else 1)
    """
    spec = command_spec(tmp_path, "alice", script)
    policy = RestartPolicy(backoff_initial=0.05, backoff_max=0.2, crash_loop_exits=4)
    backend = make_backend(tmp_path, policy=policy)
    await backend.open()
    try:
        await backend.ensure_running(spec)
        await until(lambda: phase(backend, "alice") == Phase.FAILED, what="FAILED")
        state = backend.actual()["alice"]
        assert state.restarts == 4 and state.last_exit_code == 1
        assert state.message.startswith("crash loop: 4 unexpected exits")
        assert "boom: cannot parse settings" in state.message
        assert len(state.message.splitlines()) == 21  # reason + the last 20 log lines
        assert f"loading settings for {REDACTED}" in state.message
        assert FAKE_TOKEN not in spec.log_path.read_text()
        await backend.ensure_running(spec)  # a FAILED instance starts afresh
        assert backend.actual()["alice"].restarts == 0
        await until(lambda: phase(backend, "alice") == Phase.FAILED, what="FAILED again")
        await backend.ensure_stopped("alice")
        assert phase(backend, "alice") == Phase.STOPPED
    finally:
        await backend.close()


RUNNER_SCRIPT = """
import asyncio, os, sys
from pathlib import Path
from otomat.runtime.backends.base import InstanceSpec
from otomat.runtime.backends.process import ProcessBackend

async def main():
    root, mode, action = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    backend = ProcessBackend(run_dir=root / "run", sandbox=mode, spares=0)
    await backend.open()
    for name in ("alice", "bob"):
        await backend.ensure_running(InstanceSpec(
            instance_id=name, product_slug="probe", version="1", source_dir=root / "product",
            entry=None, command=(sys.executable, "main.py", "mark" + "er-" + name), config={},
            data_dir=root / "instances" / name, log_path=root / "logs" / (name + ".log")))
    while len(backend.pids("alice") + backend.pids("bob")) < 2:
        await asyncio.sleep(0.05)
    print("started", flush=True)
    if action == "exec":  # lose track of the children without killing them
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)"])
    await asyncio.sleep(60)

asyncio.run(main())
"""


def start_runner(root: Path, action: str) -> subprocess.Popen[str]:
    (root / "product").mkdir(parents=True, exist_ok=True)
    (root / "product" / "main.py").write_text(
        "import time, sys\nsys.stdin.read()\ntime.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER_SCRIPT, str(root), MODE, action],
        stdout=subprocess.PIPE,
        text=True,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
    return proc


@pytest.mark.slow
@async_test
async def test_a_runner_restart_leaves_exactly_one_process_per_instance(tmp_path: Path) -> None:
    old = start_runner(tmp_path, "exec")
    try:
        await until(lambda: len(processes_with("marker-")) == 2)
        exec_argv = [sys.executable, "-c", "import time; time.sleep(60)"]
        await until(lambda: procutil.cmdline(old.pid) == exec_argv, what="the exec")
        leftovers = set(processes_with("marker-"))
        backend = make_backend(tmp_path)
        await backend.open()  # kills the leftovers of the runner that lost track
        try:
            assert not any(procutil.alive(pid) for pid in leftovers)
            for name in ("alice", "bob"):
                spec = command_spec(
                    tmp_path, name, "import time, sys\nsys.stdin.read()\ntime.sleep(60)\n"
                )
                await backend.ensure_running(
                    InstanceSpec(**{**spec.__dict__, "command": (*spec.command, f"marker-{name}")})
                )
            await until(lambda: len(processes_with("marker-")) == 2)
            assert len(processes_with("marker-alice")) == 1
            assert len(processes_with("marker-bob")) == 1
        finally:
            await backend.close()
        assert processes_with("marker-") == []
    finally:
        old.kill()
        old.wait()


@pytest.mark.slow
def test_a_killed_runner_leaves_no_orphan(tmp_path: Path) -> None:
    runner = start_runner(tmp_path, "sleep")
    try:
        assert len(processes_with("marker-")) == 2
    finally:
        runner.kill()
        runner.wait()
    deadline = time.monotonic() + 5
    while processes_with("marker-") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with("marker-") == []


@pytest.mark.slow
@async_test
async def test_an_invalid_token_fails_at_once(tmp_path: Path, tgemu: Any) -> None:
    spec = greeter_spec(tmp_path, "alice", "5550002:AAunknowntokenunknowntokenunknown00", tgemu.url)
    backend = make_backend(tmp_path)
    await backend.open()
    try:
        await backend.ensure_running(spec)
        await until(lambda: phase(backend, "alice") == Phase.FAILED, 30, "FAILED")
        state = backend.actual()["alice"]
    finally:
        await backend.close()
    assert state.restarts == 0 and state.last_exit_code == 78
    assert state.message.startswith("invalid bot token")
    assert "invalid bot token: the Bot API refused it" in state.message


@pytest.mark.slow
@async_test
async def test_a_warm_spare_answers_and_sees_the_instance_data(tmp_path: Path, tgemu: Any) -> None:
    token = tgemu.create_bot("alice_greeter_bot")
    spec = greeter_spec(tmp_path, "alice", token, tgemu.url)
    backend = make_backend(tmp_path, spares=1, heartbeat_seconds=0.5)
    await backend.open()
    try:
        await backend.prepare([spec])
        await backend.ensure_running(spec)  # takes the spare even if it is still importing
        answer = await asyncio.to_thread(tgemu.ask, "alice_greeter_bot", "/start", timeout=30)
        assert answer == "Hello, Alice! Welcome."
        assert "warm spare" in tail(spec.log_path)[0]
        await until(lambda: backend.actual()["alice"].updates_handled == 1, what="a heartbeat")

        # Restart (new generation) through a fresh spare: the store must still hold alice's data.
        assert await backend.wait_spares_ready(30)
        started = time.monotonic()
        await backend.ensure_running(
            greeter_spec(tmp_path, "alice", token, tgemu.url, generation=2)
        )
        answer = await asyncio.to_thread(tgemu.ask, "alice_greeter_bot", "/start", timeout=30)
        took = time.monotonic() - started
        assert answer == "Welcome back, Alice!"  # the daily count survived in the store
        assert took < 5, f"a warm spare took {took:.1f} s to answer"
        state = backend.actual()["alice"]
        assert state.generation == 2 and state.phase == Phase.RUNNING
        assert (spec.data_dir / "store.sqlite3").exists()

        # The token never appears in argv, environment or the log of any of its processes.
        pids = [state.pid, *procutil.descendants(state.pid)]
        assert len(pids) >= (3 if MODE == "bwrap" else 1)
        for pid in pids:
            assert token not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            assert token not in Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        assert token not in spec.log_path.read_text()
        assert not list((tmp_path / "run").rglob("*.json")) or all(
            token not in p.read_text() for p in (tmp_path / "run").rglob("*.json")
        )
    finally:
        await backend.close()
    assert list((tmp_path / "run" / "spares").iterdir()) == []


@pytest.mark.slow
@async_test
async def test_a_process_whose_heartbeats_stop_is_restarted(tmp_path: Path) -> None:
    script = """
    import json, os, sys, time
    sys.stdin.readline()
    fd = int(os.environ["OTOMAT_CONTROL_FD"])
    os.write(fd, b'{"event":"ready"}\\n')
    for n in range(3):
        os.write(fd, b'{"event":"heartbeat","updates":%d,"errors":0}\\n' % n)
        time.sleep(0.1)
    time.sleep(60)  # hung: alive, silent
    """
    spec = command_spec(tmp_path, "alice", script)
    policy = RestartPolicy(backoff_initial=0.1, hang_after=0.5)
    backend = make_backend(tmp_path, policy=policy, heartbeat_seconds=0.1)
    await backend.open()
    try:
        await backend.ensure_running(spec)
        await until(lambda: backend.actual()["alice"].updates_handled == 2, what="heartbeats")
        await until(lambda: backend.actual()["alice"].restarts == 1, 10, "the watchdog")
        assert "[otomat] no heartbeat for" in "\n".join(tail(spec.log_path))
    finally:
        await backend.close()
