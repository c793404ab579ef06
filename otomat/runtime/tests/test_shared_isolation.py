"""A real shared host, started as the runner starts it (``runner.make_shared_backend`` with the
shipped settings: the database store, the ``auto`` sandbox), probed from inside.

The cast: ``alice`` runs a probe product whose ``/probe`` handler tries, from inside her host, to
reach what must stay out of reach — the platform database, its keys and data directory, the
runner's socket, the repository, and ``bob``'s data (he is a customer whose instance runs in
another host) through the filesystem and through the store protocol, with a forged token and with
a token that is valid for bob on his own host. Her own data must work all the same.
"""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from otomat.botdata.store import DatabaseStore
from otomat.botkit.testing import async_test
from otomat.lib.dburl import current_database_url
from otomat.runtime import runner
from otomat.runtime.backends.base import InstanceSpec, Phase
from otomat.runtime.backends.shared import OTOMAT_ROOT, SharedBackend
from otomat.runtime.logs import tail
from otomat.runtime.notify import runner_socket_path
from otomat.runtime.tests.test_shared_backend import Cast, until
from otomat.tgemu.ratelimit import RateLimits
from otomat.tgemu.testing import EmulatorServer

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROBE = '''
"""Tries what a buggy or malicious product in a shared host might try."""
import json
import os
import pathlib

from aiogram import Router
from aiogram.filters import Command

from otomat.runtime.hoststore import FRAME, RemoteStore, StoreError


def build_router(ctx):
    (pathlib.Path(ctx.data_dir) / "mine.txt").write_text(ctx.instance_id)
    ctx.store.set("owner", ctx.instance_id)
    router = Router()

    @router.message(Command("probe"))
    async def probe(message, ctx) -> None:
        ctx.log.info("probing from inside")
        found = {}
        for name, path in ctx.config["targets"].items():
            try:
                os.lstat(path)
                found[name] = "VISIBLE"
            except OSError as exc:
                found[name] = type(exc).__name__
        procs = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    procs.append(open(f"/proc/{entry}/cmdline", "rb").read().decode(errors="replace"))
                except OSError:
                    pass
        ctx.store.set("k", {"v": 1})
        results = {
            "files": found,
            "env": dict(os.environ),
            "argv": open("/proc/self/cmdline", "rb").read().decode(errors="replace"),
            "procs": procs,
            "data": sorted(os.listdir(pathlib.Path(ctx.data_dir).parent)),
            "own_file": (pathlib.Path(ctx.data_dir) / "mine.txt").read_text(),
            "own_get": ctx.store.get("k"),
            "own_incr": ctx.store.incr("n"),
            "owner": ctx.store.get("owner"),
        }
        channel = ctx.store._channel
        for label, token in (("forged", "A" * 43), ("bobs_token", ctx.config["bob_token"])):
            try:
                results[label] = RemoteStore(channel, token).get("owner")
            except StoreError as exc:
                results[label] = "refused: " + str(exc)
        # A request that names bob's instance next to alice's own, valid token.
        body = json.dumps({"t": ctx.store._token, "op": "get", "a": ["owner"],
                           "instance_id": "bob"}).encode()
        with channel._lock:
            channel._sock.sendall(FRAME.pack(len(body)) + body)
            (size,) = FRAME.unpack(channel._recv(FRAME.size))
            results["named"] = json.loads(channel._recv(size))
        ctx.store.set("probe", results)
        await message.answer("probed")

    return router
'''

ALLOWED_ENV = {
    "PATH",
    "HOME",
    "LANG",
    "PYTHONPATH",
    "PYTHONDONTWRITEBYTECODE",
    "OTOMAT_CONTROL_FD",
    "OTOMAT_UPDATES_FD",
    "OTOMAT_STORE_FD",
    "PWD",  # set by bwrap --chdir: /data
}


@pytest.fixture(scope="module")
def emu():
    with EmulatorServer() as server:
        server.state.rate_limiter.configure(RateLimits(enabled=False))
        yield server


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    root = tmp_path / "product"
    (root / "probe").mkdir(parents=True)
    (root / "probe" / "__init__.py").write_text("")
    (root / "probe" / "bot.py").write_text(textwrap.dedent(PROBE))
    return root


def platform_secrets() -> list[str]:
    """Strings that must appear nowhere in a host: the database URL (and its password, if
    any), the Django secret key and the Fernet keys."""
    found = [current_database_url(), settings.SECRET_KEY, *settings.ENCRYPTION_KEYS]
    password = connection.settings_dict.get("PASSWORD")
    return [s for s in [*found, password] if s]


@async_test
async def test_a_shared_host_reaches_only_its_own_instances_data(
    emu: EmulatorServer, probe: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings.SHARED_STORE == "database", "the shipped default store"
    monkeypatch.setattr(settings, "RUN_DIR", tmp_path / "run")
    backend = runner.make_shared_backend(None)
    assert isinstance(backend, SharedBackend) and backend.store == "database"
    cast = Cast(emu, probe, tmp_path)
    await backend.open()
    try:
        if backend.sandbox_mode != "bwrap":
            pytest.skip("bubblewrap is not installed or does not work here")
        # bob: another product version, so another host (as two products would be).
        bob = cast.spec("bob")
        bob = InstanceSpec(**{**bob.__dict__, "version": "2"})
        await backend.ensure_running(bob)
        await until(lambda: backend.actual()["bob"].phase == Phase.RUNNING, what="bob")
        bob_host = next(h for pool in backend._hosts.values() for h in pool if "bob" in h.members)
        bobs_token = bob_host.service.grant("bob")  # valid on bob's own host
        db_files = [settings.DATABASES["default"]["NAME"], connection.settings_dict["NAME"]]
        targets = {
            "platform database": str(db_files[0]),
            "test database": str(db_files[1]),
            "data dir": str(settings.DATA_DIR),
            "keys": str(Path(settings.DATA_DIR) / "keys"),
            "repository": str(OTOMAT_ROOT / "pyproject.toml"),
            "runner socket": str(runner_socket_path()),
            "bob's data dir": str(bob.data_dir / "mine.txt"),
            "bob's data in his host": str(backend._host_dir(bob_host) / "data" / "bob"),
            "bob's log": str(bob.log_path),
            "all hosts": str(tmp_path / "run" / "shared" / "hosts"),
        }
        alice = cast.spec("alice", targets=targets, bob_token=bobs_token)
        await backend.ensure_running(alice)
        await until(lambda: backend.actual()["alice"].phase == Phase.RUNNING, what="alice")
        assert await cast.ask("alice", "/probe", timeout=20) == "probed"
        results = await asyncio.to_thread(DatabaseStore("alice").get, "probe")
    finally:
        await backend.close()

    # The platform's files, keys and other instances' files do not even exist in her view.
    assert results["files"] == {name: "FileNotFoundError" for name in targets}
    assert results["data"] == ["alice"]  # her host's /data holds her own directory only
    # No platform setting or secret in the environment or the command line.
    assert set(results["env"]) <= ALLOWED_ENV, results["env"]
    leaks = [
        s for s in platform_secrets() for v in [*results["env"].values(), results["argv"]] if s in v
    ]
    assert leaks == []
    # Only the sandbox's own processes: not the runner, not bob's host.
    assert results["procs"] and all(
        "otomat.runtime.shared_host" in p or "bwrap" in p for p in results["procs"]
    ), results["procs"]
    # Her own data works: files, store reads and writes, counters.
    assert results["own_file"] == "alice" and results["owner"] == "alice"
    assert results["own_get"] == {"v": 1} and results["own_incr"] == 1
    # The store protocol gives nothing else: forged token, bob's real token on her socket, or
    # bob's id named in a request.
    assert results["forged"] == "refused: unknown store token"
    assert results["bobs_token"] == "refused: unknown store token"
    assert results["named"]["e"] == "StoreError" and "exactly {t, op, a}" in results["named"]["m"]
    # The rows she wrote are hers in the platform database, and bob's are untouched.
    assert await asyncio.to_thread(DatabaseStore("alice").get, "k") == {"v": 1}
    assert await asyncio.to_thread(DatabaseStore("bob").get, "k") is None
    assert await asyncio.to_thread(DatabaseStore("bob").get, "owner") == "bob"
    # Her log lines reached her log through the runner; the data directories are back home.
    assert any("probing from inside" in line for line in tail(alice.log_path, 50))
    for spec, who in ((alice, "alice"), (bob, "bob")):
        assert spec.data_dir.is_dir() and not spec.data_dir.is_symlink()
        assert (spec.data_dir / "mine.txt").read_text() == who


@async_test
async def test_lent_data_directories_go_home_after_a_runner_crash(tmp_path: Path) -> None:
    """A runner killed while instances' directories were in a host's /data: the next open()
    moves them back (the manifest is outside the host's view, so the host cannot redirect it)."""
    run = tmp_path / "run"
    homes = {iid: tmp_path / "instances" / iid for iid in ("alice", "bob")}
    data = run / "hosts" / "host-x" / "data"
    for iid, home in homes.items():
        (data / iid).mkdir(parents=True)
        (data / iid / "mine.txt").write_text(iid)
        home.parent.mkdir(parents=True, exist_ok=True)
        home.symlink_to(data / iid)
    (run / "hosts" / "host-x" / "lent.json").write_text(
        json.dumps({iid: str(home) for iid, home in homes.items()})
    )
    backend = SharedBackend(run_dir=run, store="sqlite", sandbox="none")
    await backend.open()
    await backend.close()
    for iid, home in homes.items():
        assert home.is_dir() and not home.is_symlink()
        assert (home / "mine.txt").read_text() == iid
    assert not (run / "hosts" / "host-x").exists()


def test_a_directory_swapped_for_a_link_by_the_host_never_comes_home_as_a_link(
    tmp_path: Path,
) -> None:
    home, lent = tmp_path / "home", tmp_path / "lent"
    lent.symlink_to("/etc")  # the host replaced its directory with a link to the platform's files
    home.symlink_to(lent)
    SharedBackend._return_dir(lent, home)
    assert not os.path.lexists(home) and not os.path.lexists(lent)
    assert Path("/etc/passwd").exists()  # what the link pointed to is left alone


def test_a_host_writes_log_lines_only_for_its_own_instances(tmp_path: Path) -> None:
    from otomat.runtime.backends.base import ActualState
    from otomat.runtime.backends.shared import _Host, _Inst, _key

    backend = SharedBackend(run_dir=tmp_path / "run", store="sqlite", sandbox="none")
    specs = {
        iid: InstanceSpec(
            instance_id=iid, product_slug="p", version="1", source_dir=tmp_path, entry="p:f",
            command=None, config={"bot_token": f"12345:{iid}-token-secret-value-xyz"},
            data_dir=tmp_path / iid, log_path=tmp_path / f"{iid}.log", bot_api_url="http://x",
        )
        for iid in ("alice", "bob")
    }  # fmt: skip
    hosts = {iid: _Host(key=_key(spec), name=f"host-{iid}") for iid, spec in specs.items()}
    for iid, spec in specs.items():
        inst = _Inst(spec=spec, state=ActualState(instance_id=iid, phase=Phase.RUNNING))
        inst.host = hosts[iid]
        hosts[iid].members.add(iid)
        hosts[iid].writers.add(iid)
        backend._instances[iid] = inst
    token = specs["alice"].config["bot_token"]
    backend._handle_event(hosts["alice"], {"event": "log", "instance_id": "alice",
                                           "lines": ["hello", f"my token {token}"]})  # fmt: skip
    backend._handle_event(hosts["alice"], {"event": "log", "instance_id": "bob",
                                           "lines": ["forged by alice's host"]})  # fmt: skip
    backend._handle_event(hosts["alice"], {"event": "log", "instance_id": "alice", "lines": 5})
    alice_log = tail(specs["alice"].log_path, 10)
    assert [line.split(" ", 1)[1] for line in alice_log] == ["hello", "my token [redacted]"]
    assert not specs["bob"].log_path.exists()
