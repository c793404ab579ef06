"""The shared backend end to end: real host processes against the Bot API emulator.

The cast: ``alice``, ``bob`` and ``carol`` are three customers' instances of one product version
living in the same host. ``alice`` misbehaves (her handler raises, sleeps, or her token is
wrong); ``bob`` and ``carol`` must keep answering as if nothing happened.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from otomat.botkit.testing import async_test
from otomat.runtime.backends import procutil
from otomat.runtime.backends.base import ActualState, InstanceSpec, Phase
from otomat.runtime.backends.shared import HostPolicy, SharedBackend
from otomat.runtime.ingress import SECRET_HEADER, WebhookIngress
from otomat.runtime.logs import REDACTED, tail
from otomat.tgemu.ratelimit import RateLimits
from otomat.tgemu.testing import EmulatorServer

# The backend's default store is served from the platform database by a thread of the runner
# (this test process), whose connection must see committed rows: no wrapping transaction.
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROBE = '''
"""A product that can misbehave on demand (per message), for isolation tests."""
import asyncio

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message


def build_router(ctx):
    if ctx.config.get("explode"):
        raise ValueError("this configuration cannot build a router")
    router = Router()

    @ctx.scheduler.handler("remind")
    async def remind(ctx, bot, payload) -> None:
        await bot.send_message(payload["chat"], "reminder from " + ctx.instance_id)

    @router.message(Command("later"))
    async def later(message: Message, ctx) -> None:
        ctx.scheduler.run_at(0.3, "remind", {"chat": message.chat.id})
        await message.answer("scheduled")

    @router.message(Command("boom"))
    async def boom(message: Message, ctx) -> None:
        raise RuntimeError("boom in " + ctx.instance_id)

    @router.message(Command("slow"))
    async def slow(message: Message, ctx) -> None:
        await asyncio.sleep(30)
        await message.answer("late")

    @router.message(Command("block"))
    async def block(message: Message, ctx) -> None:
        import time

        time.sleep(20)  # blocks the whole host's event loop: the one thing a task cannot contain

    @router.message(Command("leak"))
    async def leak(message: Message, ctx) -> None:
        ctx.log.info("my token is %s", ctx.config["bot_token"])
        await message.answer("logged")

    @router.message()
    async def echo(message: Message, ctx) -> None:
        n = ctx.store.incr("seen")
        await message.answer(f"{ctx.instance_id} #{n}: {message.text}")

    return router
'''

_names = itertools.count(1)


@pytest.fixture(scope="module")
def emu():
    with EmulatorServer() as server:
        # These tests are about the runtime, not Telegram's send limits.
        server.state.rate_limiter.configure(RateLimits(enabled=False))
        yield server


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("probe")
    (root / "probe").mkdir()
    (root / "probe" / "__init__.py").write_text("")
    (root / "probe" / "bot.py").write_text(textwrap.dedent(PROBE))
    return root


class Cast:
    """Bots in the emulator and specs for them."""

    def __init__(self, emu: EmulatorServer, probe: Path, root: Path) -> None:
        self.emu, self.probe, self.root = emu, probe, root
        self.usernames: dict[str, str] = {}
        self.tokens: dict[str, str] = {}

    def spec(self, iid: str, *, token: str | None = None, **config: Any) -> InstanceSpec:
        if iid not in self.usernames:
            username = f"{iid}{next(_names)}_bot"
            self.usernames[iid] = username
            self.tokens[iid] = self.emu.create_bot(username)["token"]
        return InstanceSpec(
            instance_id=iid,
            product_slug="probe",
            version="1",
            source_dir=self.probe,
            entry="probe.bot:build_router",
            command=None,
            config={"bot_token": token or self.tokens[iid], **config},
            data_dir=self.root / "instances" / iid,
            log_path=self.root / "logs" / f"{iid}.log",
            bot_api_url=self.emu.url,
        )

    async def ask(self, iid: str, text: str, timeout: float = 10.0) -> str | None:
        """Send ``text`` to the instance's bot; its first answer or None within ``timeout``."""

        def run() -> str | None:
            username = self.usernames[iid]
            sent = self.emu.send(username, user_id=1001, first_name="Dana", text=text)
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                replies = self.emu.messages(username, 1001, after=sent["message_id"], wait=left)
                answers = [m for m in replies if m.get("from_bot")]
                if answers:
                    return answers[0]["text"]
            return None

        return await asyncio.to_thread(run)


def backend_for(root: Path, states: list[ActualState] | None = None, **kw: Any) -> SharedBackend:
    kw.setdefault("policy", HostPolicy(backoff_initial=0.2))
    kw.setdefault("heartbeat_seconds", 0.5)
    kw.setdefault("stop_timeout", 3.0)
    return SharedBackend(
        run_dir=root / "run", on_change=states.append if states is not None else None, **kw
    )


async def until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}")


def phase(backend: SharedBackend, iid: str) -> Phase | None:
    state = backend.actual().get(iid)
    return state.phase if state else None


def running(backend: SharedBackend, *iids: str) -> bool:
    return all(phase(backend, iid) == Phase.RUNNING for iid in iids)


def host_processes(marker: str) -> list[int]:
    """Live shared hosts of this test process whose argv mentions ``marker`` (the product
    folder, or ``--spare``). Only this process's descendants: another test run on the machine
    (scripts/test runs its PostgreSQL pass beside the SQLite pass) has spares of its own. A host
    its backend lost is still one: it dies with its parent (pdeathsig, bwrap's
    --die-with-parent), not before."""
    found = []
    for pid in procutil.descendants(os.getpid()):
        argv = procutil.cmdline(pid)
        mine = "otomat.runtime.shared_host" in argv and any(marker in a for a in argv)
        if mine and procutil.alive(pid):
            found.append(pid)
    return found


# -- the tests ------------------------------------------------------------------------------


@async_test
async def test_a_crashing_or_slow_bot_leaves_its_neighbours_answering(
    emu: EmulatorServer, probe: Path, tmp_path: Path
) -> None:
    cast = Cast(emu, probe, tmp_path)
    backend = backend_for(tmp_path, update_timeout=3.0)
    await backend.open()
    try:
        for iid in ("alice", "bob", "carol"):
            await backend.ensure_running(cast.spec(iid))
        await until(lambda: running(backend, "alice", "bob", "carol"), what="three bots ready")
        assert len(backend.hosts()) == 1  # one process for all three
        pids = {backend.actual()[i].pid for i in ("alice", "bob", "carol")}
        assert len(pids) == 1 and None not in pids
        for iid in ("alice", "bob", "carol"):
            assert await cast.ask(iid, "hi") == f"{iid} #1: hi"

        # alice's handler raises: counted and logged for her only, the others keep answering.
        assert await cast.ask("alice", "/boom", timeout=1.5) is None
        assert await cast.ask("bob", "still there?") == "bob #2: still there?"
        await until(lambda: backend.actual()["alice"].errors == 1, what="alice's error counted")
        assert "RuntimeError: boom in alice" in backend.actual()["alice"].message
        assert any("boom in alice" in line for line in tail(cast.root / "logs" / "alice.log"))
        assert not any("boom" in line for line in tail(cast.root / "logs" / "bob.log"))
        assert backend.actual()["bob"].errors == 0

        # alice's handler sleeps 30 s: bob and carol answer at once, alice's next updates too
        # (a task per update), and the sleeper is cancelled at the update timeout.
        await asyncio.to_thread(emu.send, cast.usernames["alice"], user_id=1001, text="/slow")
        started = time.monotonic()
        assert await cast.ask("bob", "quick") == "bob #3: quick"
        assert await cast.ask("carol", "quick") == "carol #2: quick"
        assert await cast.ask("alice", "and me") == "alice #2: and me"
        assert time.monotonic() - started < 2.5
        await until(lambda: backend.actual()["alice"].errors == 2, what="the slow update timed out")
        assert "took over 3 s" in backend.actual()["alice"].message
        assert running(backend, "alice", "bob", "carol")
        await until(lambda: backend.actual()["bob"].updates_handled == 3, what="heartbeat counters")
    finally:
        await backend.close()
    assert host_processes(str(probe)) == []


# The shipped default (the runner's database store, hosts in bubblewrap when it works) and the
# other store without a sandbox (rlimits only, as on a machine without bwrap).
@pytest.mark.parametrize(("store", "sandbox"), [("database", "auto"), ("sqlite", "none")])
@async_test
async def test_instances_come_and_go_live_and_spread_over_hosts(
    emu: EmulatorServer, probe: Path, tmp_path: Path, store: str, sandbox: str
) -> None:
    cast = Cast(emu, probe, tmp_path)
    states: list[ActualState] = []
    backend = backend_for(tmp_path, states, instances_per_host=2, store=store, sandbox=sandbox)
    await backend.open()
    try:
        await backend.ensure_running(cast.spec("alice"))
        await backend.ensure_running(cast.spec("bob"))
        await until(lambda: running(backend, "alice", "bob"), what="alice and bob")
        first_pid = backend.actual()["alice"].pid
        await backend.ensure_running(cast.spec("bob"))  # idempotent: nothing restarts
        assert await cast.ask("alice", "one") == "alice #1: one"

        await backend.ensure_running(cast.spec("carol"))  # host full: a second host
        await until(lambda: running(backend, "carol"), what="carol in a second host")
        assert backend.actual()["carol"].pid != first_pid
        assert sorted(len(members) for _, _, members in backend.hosts()) == [1, 2]
        assert await cast.ask("carol", "three") == "carol #1: three"

        await backend.ensure_stopped("bob")
        assert phase(backend, "bob") == Phase.STOPPED
        assert await cast.ask("bob", "anyone?", timeout=1.5) is None
        assert await cast.ask("alice", "two") == "alice #2: two"
        assert backend.actual()["alice"].pid == first_pid  # the host was never restarted
        await backend.ensure_stopped("bob")  # idempotent

        # A new generation replaces the old one in place; a stopped instance starts again.
        await backend.ensure_running(dataclass_replace(cast.spec("alice"), generation=2))
        await until(lambda: backend.actual()["alice"].generation == 2 and running(backend, "alice"))
        await backend.ensure_running(cast.spec("bob"))
        await until(lambda: running(backend, "bob"), what="bob back")
        # The message bob missed while stopped waits for him (as on Telegram), then the new one;
        # his store survived the stop.
        await asyncio.to_thread(emu.send, cast.usernames["bob"], user_id=1001, text="back")

        def bob_says() -> list[str]:
            chat = emu.messages(cast.usernames["bob"], 1001)
            return [m["text"] for m in chat if m.get("from_bot")]

        await until(lambda: len(bob_says()) == 2, what="bob's two answers")
        assert sorted(bob_says()) == ["bob #1: anyone?", "bob #2: back"]
        # botkit v2 jobs run in the shared host too, per instance.
        assert await cast.ask("carol", "/later") == "scheduled"

        def reminders() -> list[str]:
            chat = emu.messages(cast.usernames["carol"], 1001)
            return [m["text"] for m in chat if m.get("from_bot") and "reminder" in m["text"]]

        await until(lambda: reminders() == ["reminder from carol"], timeout=10, what="the job")
        assert [s.phase for s in states if s.instance_id == "bob"].count(Phase.RUNNING) >= 2
    finally:
        await backend.close()
    assert host_processes(str(probe)) == []


def dataclass_replace(spec: InstanceSpec, **changes: Any) -> InstanceSpec:
    import dataclasses

    return dataclasses.replace(spec, **changes)


@async_test
async def test_a_killed_host_comes_back_with_all_its_instances(
    emu: EmulatorServer, probe: Path, tmp_path: Path
) -> None:
    cast = Cast(emu, probe, tmp_path)
    states: list[ActualState] = []
    backend = backend_for(tmp_path, states)
    await backend.open()
    try:
        for iid in ("alice", "bob"):
            await backend.ensure_running(cast.spec(iid))
        await until(lambda: running(backend, "alice", "bob"), what="both ready")
        old = backend.actual()["alice"].pid
        assert old is not None
        os.kill(old, signal.SIGKILL)
        await until(lambda: phase(backend, "alice") == Phase.BACKOFF, what="backoff seen")
        await until(
            lambda: running(backend, "alice", "bob") and backend.actual()["bob"].pid != old,
            what="both back in a new host",
        )
        assert backend.actual()["bob"].restarts == 1
        assert backend.actual()["bob"].last_exit_code == -signal.SIGKILL
        assert await cast.ask("alice", "after") == "alice #1: after"
        assert await cast.ask("bob", "after") == "bob #1: after"
        assert not procutil.alive(old)
    finally:
        await backend.close()

    # A runner that died without closing leaves hosts behind: the next one kills them.
    backend = backend_for(tmp_path)
    await backend.open()
    await backend.ensure_running(cast.spec("carol"))
    await until(lambda: running(backend, "carol"), what="carol")
    orphan = backend.actual()["carol"].pid
    assert orphan is not None
    backend._lock_file.close()  # simulate the runner vanishing: lock gone, host still running
    backend._closed = True
    successor = backend_for(tmp_path)
    await successor.open()
    try:
        await until(lambda: not procutil.alive(orphan), timeout=5, what="leftover killed")
    finally:
        await successor.close()
        for _name, pid, _ in backend.hosts():
            if pid and procutil.alive(pid):
                os.kill(pid, signal.SIGKILL)


@async_test
async def test_webhook_mode_through_the_ingress(
    emu: EmulatorServer, probe: Path, tmp_path: Path
) -> None:
    import aiohttp

    cast = Cast(emu, probe, tmp_path)
    backend = backend_for(tmp_path, ingress=WebhookIngress())
    await backend.open()
    try:
        for iid in ("alice", "bob"):
            await backend.ensure_running(cast.spec(iid))
        await until(lambda: running(backend, "alice", "bob"), what="webhooks set")
        url = backend.webhook_url("alice")
        assert url is not None and "/tg/" in url
        _, info = emu.bot_api(cast.tokens["alice"], "getWebhookInfo")
        assert info["result"]["url"] == url
        assert cast.tokens["alice"] not in url and cast.tokens["alice"].split(":")[1] not in url
        assert await cast.ask("alice", "via webhook") == "alice #1: via webhook"
        assert await cast.ask("bob", "me too") == "bob #1: me too"

        # A forged update without the right secret is refused and never reaches the bot.
        forged = b'{"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}, "text": "x"}}'
        async with aiohttp.ClientSession() as http:
            for headers in ({SECRET_HEADER: "guess"}, {}):
                async with http.post(url, data=forged, headers=headers) as resp:
                    assert resp.status == 401
            async with http.post(url + "x", data=forged) as resp:
                assert resp.status == 404
        await asyncio.sleep(0.3)
        assert backend.actual()["alice"].errors == 0
        assert backend.ingress is not None and backend.ingress.stats.accepted >= 2

        # One crash in webhook mode leaves the neighbour answering too.
        assert await cast.ask("alice", "/boom", timeout=1.0) is None
        assert await cast.ask("bob", "fine") == "bob #2: fine"

        await backend.ensure_stopped("alice")
        _status, info = emu.bot_api(cast.tokens["alice"], "getWebhookInfo")
        assert info["result"]["url"] == ""  # deleted on removal
        async with aiohttp.ClientSession() as http, http.post(url, data=forged) as resp:
            assert resp.status == 404
    finally:
        await backend.close()


@async_test
async def test_a_host_blocked_by_one_bot_is_killed_and_its_bots_come_back(
    emu: EmulatorServer, probe: Path, tmp_path: Path
) -> None:
    cast = Cast(emu, probe, tmp_path)
    policy = HostPolicy(backoff_initial=0.2, hang_after=2.0)
    backend = backend_for(tmp_path, ingress=WebhookIngress(), policy=policy)
    await backend.open()
    try:
        for iid in ("alice", "bob"):
            await backend.ensure_running(cast.spec(iid))
        await until(lambda: running(backend, "alice", "bob"), what="both ready")
        old = backend.actual()["bob"].pid
        # A synchronous sleep freezes every bot of the host; its heartbeats stop, so the
        # backend kills it after hang_after and brings both bots back in a new host. (Webhook
        # mode: the update was acknowledged, so it is not redelivered into a crash loop.)
        await asyncio.to_thread(emu.send, cast.usernames["alice"], user_id=1001, text="/block")
        await until(
            lambda: running(backend, "alice", "bob") and backend.actual()["bob"].pid != old,
            timeout=20,
            what="a new host",
        )
        assert await cast.ask("bob", "alive") == "bob #1: alive"
        assert await cast.ask("alice", "alive") == "alice #1: alive"
        assert backend.actual()["bob"].restarts == 1
    finally:
        await backend.close()


@async_test
async def test_bad_tokens_and_broken_configs_fail_only_their_instance(
    emu: EmulatorServer, probe: Path, tmp_path: Path
) -> None:
    cast = Cast(emu, probe, tmp_path)
    backend = backend_for(tmp_path)
    await backend.open()
    try:
        await backend.ensure_running(cast.spec("bob"))
        wrong = "123456789:AAwrongwrongwrongwrongwrongwrongwrong"
        await backend.ensure_running(cast.spec("alice", token=wrong))
        await backend.ensure_running(cast.spec("carol", explode=True))
        await backend.ensure_running(cast.spec("dave", token="not-a-token"))
        await until(
            lambda: all(phase(backend, i) == Phase.FAILED for i in ("alice", "carol", "dave")),
            what="the three broken instances failed",
        )
        assert "invalid bot token" in backend.actual()["alice"].message
        assert "router factory failed" in backend.actual()["carol"].message
        assert "invalid bot token" in backend.actual()["dave"].message
        await until(lambda: running(backend, "bob"), what="bob running")
        assert await cast.ask("bob", "ok?") == "bob #1: ok?"
        assert wrong not in "\n".join(tail(cast.root / "logs" / "alice.log"))
        # An entry point that cannot be imported fails every instance of its host, each
        # time it is started again, and nobody else.
        broken = dataclass_replace(cast.spec("erin"), entry="probe.missing:build_router")
        for _ in range(2):
            await backend.ensure_running(broken)
            await until(lambda: phase(backend, "erin") == Phase.FAILED, what="erin failed")
            assert "entry cannot be loaded" in backend.actual()["erin"].message
            await backend.ensure_stopped("erin")
        # Fixing the token (a new generation) brings alice up in the same host.
        fixed = dataclass_replace(cast.spec("alice"), generation=2)
        await backend.ensure_running(fixed)
        await until(lambda: running(backend, "alice"), what="alice fixed")
        assert backend.actual()["alice"].pid == backend.actual()["bob"].pid
    finally:
        await backend.close()


@async_test
async def test_secrets_stay_out_of_argv_environment_and_logs(
    emu: EmulatorServer, probe: Path, tmp_path: Path
) -> None:
    cast = Cast(emu, probe, tmp_path)
    backend = backend_for(tmp_path)
    await backend.open()
    try:
        await backend.ensure_running(cast.spec("alice", api_key="k-very-secret"))
        await until(lambda: running(backend, "alice"), what="alice")
        pid = backend.actual()["alice"].pid
        token = cast.tokens["alice"]
        # The host itself and, in the sandbox, the program under the bwrap wrappers.
        for each in [pid, *procutil.descendants(pid)]:
            argv = "\0".join(procutil.cmdline(each))
            environ = Path(f"/proc/{each}/environ").read_bytes().decode(errors="replace")
            for secret in (token, "k-very-secret"):
                assert secret not in argv and secret not in environ
            names = [e.split("=", 1)[0] for e in environ.split("\0") if e]
            assert not [n for n in names if n.startswith(("OTOMAT_", "DJANGO")) and n not in (
                "OTOMAT_CONTROL_FD", "OTOMAT_UPDATES_FD", "OTOMAT_STORE_FD")], names  # fmt: skip
        assert await cast.ask("alice", "/leak") == "logged"
        await backend.close()
        logs = [*tail(cast.root / "logs" / "alice.log", 200)]
        logs += [line for path in (tmp_path / "run" / "hosts").glob("*.log") for line in tail(path)]
        assert any(f"my token is {REDACTED}" in line for line in logs)
        assert not any(token in line or "k-very-secret" in line for line in logs)
    finally:
        await backend.close()


@pytest.mark.parametrize("sandbox", ["auto", "none"])
@async_test
async def test_a_spare_host_takes_on_a_version_that_has_no_host(
    emu: EmulatorServer, probe: Path, tmp_path: Path, sandbox: str
) -> None:
    """With ``spare_hosts=1`` a started, imported host waits without a product; the first
    instance of a version with no host is added to it (the spare's pid answers, no new host is
    started for it) and another spare is started at once. In the sandbox the product's files
    reach the spare through its own read-only /opt/product; a second version gets the next
    spare, and a version whose entry cannot be imported fails only its instances."""
    cast = Cast(emu, probe, tmp_path)
    backend = backend_for(tmp_path, spare_hosts=1, sandbox=sandbox)
    await backend.open()
    try:
        await backend.prepare([])  # the runner's first reconcile: nothing listed
        await until(lambda: [s for s in backend.spares() if s[2]], what="an imported spare")
        [(spare_name, spare_pid, _)] = backend.spares()
        assert backend.hosts() == []
        assert host_processes("--spare")  # what the last check counts, it sees

        await backend.ensure_running(cast.spec("alice"))
        await until(lambda: running(backend, "alice"), what="alice in the spare")
        assert backend.actual()["alice"].pid == spare_pid
        assert [(name, members) for name, _, members in backend.hosts()] == [
            (spare_name, ["alice"])
        ]
        assert await cast.ask("alice", "hi") == "alice #1: hi"
        await until(lambda: [s for s in backend.spares() if s[2]], what="the next spare")
        [(next_name, next_pid, _)] = backend.spares()
        assert next_name != spare_name

        other = dataclass_replace(cast.spec("bob"), version="2")
        await backend.ensure_running(other)
        await until(lambda: running(backend, "bob"), what="bob in the next spare")
        assert backend.actual()["bob"].pid == next_pid
        assert await cast.ask("bob", "yo") == "bob #1: yo"

        broken = dataclass_replace(cast.spec("carol"), version="3", entry="probe.no:build_router")
        await until(lambda: [s for s in backend.spares() if s[2]], what="a third spare")
        await backend.ensure_running(broken)
        await until(lambda: phase(backend, "carol") == Phase.FAILED, what="carol failed")
        assert "entry cannot be loaded" in backend.actual()["carol"].message
        assert running(backend, "alice", "bob")
        # A host taken from the spares is an ordinary host: killed, it comes back with its
        # version's files and its instance.
        os.kill(spare_pid, signal.SIGKILL)
        await until(lambda: phase(backend, "alice") == Phase.BACKOFF, what="alice's host died")
        await until(lambda: running(backend, "alice"), timeout=30, what="alice back")
        assert await cast.ask("alice", "again") == "alice #2: again"
    finally:
        await backend.close()
    assert host_processes("--spare") == [] and host_processes(str(probe)) == []
