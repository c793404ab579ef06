"""Real processes for end-to-end tests: the Telegram emulator and the runner, started on free
loopback ports against the test database, stopped (and their children with them) at teardown."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from django.conf import settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1, message: str = ""):
    """Poll ``predicate`` until it returns a truthy value; raise AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(message or f"condition not met within {timeout}s (last: {last!r})")


class Emulator:
    def __init__(self, state_file: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Output goes to a file: a pipe nobody reads would block the emulator once it is full.
        self.log_file = state_file.with_suffix(".log")
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "otomat.tgemu",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--state",
                    str(state_file),
                    "--log-level",
                    os.environ.get("OTOMAT_TEST_EMULATOR_LOG", "info"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        wait_until(self._healthy, 20, message="the emulator did not start")
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"emulator exited: {self.log_file.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{self.url}/control/health", timeout=1).status_code == 200
        return False

    def create_bot(self, username: str) -> str:
        response = self.client.post(
            "/control/bots", json={"username": username, "first_name": username}
        )
        response.raise_for_status()
        return response.json()["token"]

    def say(
        self,
        bot: str,
        text: str,
        user_id: int = 1001,
        first_name: str = "Alice",
        reply_to: int | None = None,
    ) -> dict:
        """Send ``text`` to ``bot`` as a user (with ``reply_to``: as Telegram's "Reply" to that
        message of the chat)."""
        body = {"user_id": user_id, "first_name": first_name, "text": text}
        if reply_to is not None:
            body["reply_to_message_id"] = reply_to
        response = self.client.post(f"/control/bots/{bot}/messages", json=body)
        response.raise_for_status()
        return response.json()

    def bot_replies(self, bot: str, chat_id: int, after: int, wait: float = 0) -> list[dict]:
        response = self.client.get(
            f"/control/bots/{bot}/chats/{chat_id}/messages",
            params={"after": after, "wait": wait},
        )
        response.raise_for_status()
        payload = response.json()
        messages = payload if isinstance(payload, list) else payload.get("messages", [])
        return [m for m in messages if m.get("from_bot") and not m.get("deleted")]

    def ask(self, bot: str, text: str, *, timeout: float = 15, user_id: int = 1001) -> str | None:
        """Send ``text`` as a user and return the bot's first answer, or None within timeout."""
        sent = self.say(bot, text, user_id=user_id)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            remaining = max(0.5, min(5.0, deadline - time.monotonic()))
            replies = self.bot_replies(bot, user_id, sent["message_id"], wait=remaining)
            if replies:
                return replies[0].get("text", "")
        return None

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def database_url() -> str:
    """The URL of the database the tests use right now (the test database)."""
    from otomat.lib.dburl import current_database_url

    return current_database_url()


class RunnerProcess:
    """``otomat runner`` against the test database and the test's data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.log_file = data_dir / "runner-output.log"
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTOMAT_")}
        env.update(
            OTOMAT_DATA_DIR=str(self.data_dir),
            OTOMAT_DATABASE_URL=database_url(),
            OTOMAT_SECRET_KEY=settings.SECRET_KEY,
            OTOMAT_ENCRYPTION_KEYS=",".join(settings.ENCRYPTION_KEYS),
            OTOMAT_BOT_API_URL=settings.BOT_API_URL,
            OTOMAT_EMULATOR_URL=settings.EMULATOR_URL,
            OTOMAT_RUNNER_RECONCILE_SECONDS="2",
            OTOMAT_RUNTIME_SANDBOX=settings.RUNTIME_SANDBOX,
            OTOMAT_RUNTIME_SPARES=str(settings.RUNTIME_SPARES),
            OTOMAT_SHARED_SPARE_HOSTS=str(settings.SHARED_SPARE_HOSTS),
            OTOMAT_SHARED_STORE=settings.SHARED_STORE,
            OTOMAT_RUNTIME_BACKOFF_SECONDS=str(settings.RUNTIME_BACKOFF_SECONDS),
            OTOMAT_RUNTIME_CRASH_LOOP_EXITS=str(settings.RUNTIME_CRASH_LOOP_EXITS),
            OTOMAT_RUNTIME_CRASH_LOOP_WINDOW=str(settings.RUNTIME_CRASH_LOOP_WINDOW),
            DJANGO_SETTINGS_MODULE="otomat.settings",
        )
        return env

    def start(self) -> RunnerProcess:
        handle = self.log_file.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "otomat.cli", "runner"],
            env=self.env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
        )
        handle.close()
        return self

    def output(self) -> str:
        return self.log_file.read_text(errors="replace")[-5000:] if self.log_file.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def processes_in(directory: Path) -> list[int]:
    """Live processes (bubblewrap wrappers excluded) whose working directory is ``directory``.

    Compares inodes, so it sees through sandboxes (inside bubblewrap the path is /data) and
    through renames (a warm spare's directory becomes the instance's)."""
    try:
        target = os.stat(directory)
    except FileNotFoundError:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0]
            if b"bwrap" in argv0 or not argv0:
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state in ("Z", "X"):
                continue
            cwd = os.stat(entry / "cwd")
        except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
            continue
        if (cwd.st_dev, cwd.st_ino) == (target.st_dev, target.st_ino):
            found.append(int(entry.name))
    return found


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL when the test process dies (PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG


def task_backend_for_tests() -> str:
    """The task queue the task tests use: "database", or "redis" (RQ on ``settings.REDIS_URL``)
    when ``OTOMAT_TEST_TASK_BACKEND=redis`` (scripts/test's RQ pass)."""
    return "redis" if os.environ.get("OTOMAT_TEST_TASK_BACKEND") == "redis" else "database"


def tasks_setting_for_tests() -> dict:
    """``settings.TASKS`` for the test process itself, matching ``task_backend_for_tests``."""
    if task_backend_for_tests() == "redis":
        return {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    return {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def flush_test_redis() -> None:
    """Empty the Redis database of ``settings.REDIS_URL`` in the RQ pass (each run of
    scripts/test has a database number of its own), so one test's jobs never reach the next."""
    if task_backend_for_tests() == "redis":
        import redis

        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).flushdb()


class WorkerProcess:
    """``otomat worker`` against the test database, on the test's task queue (the database's,
    or RQ's with ``OTOMAT_TEST_TASK_BACKEND=redis``); it dies with the test process.
    ``kill()`` ends it like ``kill -9`` (on RQ its main process: a job's forked work horse is
    ``horse_pids()``)."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        self.extra_env = env
        self.log_file = data_dir / "worker-output.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTOMAT_")}
        env.update(
            OTOMAT_DATA_DIR=str(self.data_dir),
            OTOMAT_DATABASE_URL=database_url(),
            OTOMAT_SECRET_KEY=settings.SECRET_KEY,
            OTOMAT_ENCRYPTION_KEYS=",".join(settings.ENCRYPTION_KEYS),
            OTOMAT_TASK_BACKEND=task_backend_for_tests(),
            OTOMAT_REDIS_URL=settings.REDIS_URL,
            DJANGO_SETTINGS_MODULE="otomat.settings",
        )
        env.update(self.extra_env)
        with self.log_file.open("ab") as handle:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "otomat.cli", "worker"],
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                preexec_fn=_die_with_parent,  # only prctl, before exec
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def output(self) -> str:
        return self.log_file.read_text(errors="replace")[-5000:] if self.log_file.exists() else ""

    def horse_pids(self) -> list[int]:
        """The worker's child processes (RQ's work horse while it runs a job)."""
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                return [int(pid) for pid in f.read().split()]
        except OSError:
            return []

    def kill(self) -> None:
        """``kill -9`` of the worker and of a job's work horse (RQ's forked child would
        outlive its parent otherwise), as when its machine is lost."""
        if self.proc and self.proc.poll() is None:
            horses = self.horse_pids()
            self.proc.kill()
            self.proc.wait()
            for pid in horses:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)  # a loaded machine: RQ stops its scheduler first
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
