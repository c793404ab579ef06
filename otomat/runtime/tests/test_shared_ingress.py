"""The webhook ingress and the shared host's command parsing, without bot processes.

The cast: ``alice`` and ``bob`` are two instances with routes; a stranger POSTs without the
secret or to a made-up path and must learn nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from otomat.botkit.testing import async_test
from otomat.runtime.backends.base import InstanceSpec
from otomat.runtime.backends.shared import SharedBackend
from otomat.runtime.ingress import SECRET_HEADER, WebhookIngress
from otomat.runtime.shared_host import AddCommand

TOKEN = "5550001:AAH-secretsecretsecretsecretsecret0"


@async_test
async def test_it_routes_by_path_and_checks_the_secret() -> None:
    ingress = WebhookIngress()
    await ingress.start()
    got: dict[str, list[bytes]] = {"alice": [], "bob": []}
    alice = ingress.add_route(lambda body: got["alice"].append(body) is None)
    bob = ingress.add_route(lambda body: got["bob"].append(body) is None)
    full = ingress.add_route(lambda body: False)  # a host that is restarting
    try:
        assert len(alice.path) >= 43 and alice.path != bob.path and alice.secret != bob.secret
        assert TOKEN not in ingress.url_for(alice)
        async with aiohttp.ClientSession() as http:

            async def post(url: str, secret: str | None, body: bytes = b'{"update_id": 1}'):
                headers = {SECRET_HEADER: secret} if secret is not None else {}
                async with http.post(url, data=body, headers=headers) as resp:
                    return resp.status, await resp.text()

            assert await post(ingress.url_for(alice), alice.secret) == (200, "")
            assert await post(ingress.url_for(bob), bob.secret, b'{"update_id": 2}') == (200, "")
            assert got == {"alice": [b'{"update_id": 1}'], "bob": [b'{"update_id": 2}']}
            # A stranger: wrong secret, missing secret, the other instance's secret, a made-up
            # path. Nothing is delivered and no answer names an instance.
            assert await post(ingress.url_for(alice), "wrong") == (401, "unauthorized")
            assert await post(ingress.url_for(alice), None) == (401, "unauthorized")
            assert await post(ingress.url_for(alice), bob.secret) == (401, "unauthorized")
            assert await post(ingress.public_url + "/tg/made-up", alice.secret) == (
                404,
                "not found",
            )
            assert await post(ingress.url_for(alice), alice.secret, b"not json") == (
                400,
                "bad request",
            )
            assert await post(ingress.url_for(alice), alice.secret, b"") == (400, "bad request")
            huge = b'{"x": "' + b"a" * (2 << 20) + b'"}'
            status, _ = await post(ingress.url_for(alice), alice.secret, huge)
            assert status == 413
            assert await post(ingress.url_for(full), full.secret) == (503, "unavailable")
            async with http.get(ingress.url_for(alice)) as resp:
                assert resp.status == 405
            assert got == {"alice": [b'{"update_id": 1}'], "bob": [b'{"update_id": 2}']}
            assert ingress.remove_route(alice.path) and not ingress.remove_route(alice.path)
            assert await post(ingress.url_for(alice), alice.secret) == (404, "not found")
        stats = ingress.stats
        assert (stats.accepted, stats.unauthorized, stats.not_found) == (2, 3, 2)
    finally:
        await ingress.stop()


def test_it_refuses_bad_ingress_settings() -> None:
    for kwargs in (
        {"public_url": "ftp://example.com"},
        {"public_url": "https://example.com/?q=1"},
        {"public_url": "not a url"},
        {"port": 70000},
        {"max_body": 10},
    ):
        with pytest.raises(ValueError):
            WebhookIngress(**kwargs)
    assert WebhookIngress(public_url="https://bots.example.com/").public_url == (
        "https://bots.example.com"
    )
    with pytest.raises(RuntimeError):
        _ = WebhookIngress().public_url  # not started, no public URL yet


@async_test
async def test_a_busy_port_is_a_clear_error() -> None:
    first = WebhookIngress()
    await first.start()
    try:
        second = WebhookIngress(port=first.port)
        with pytest.raises(OSError):
            await second.start()
        assert not second.started
    finally:
        await first.stop()


def test_add_commands_are_checked_without_echoing_secrets() -> None:
    good = {
        "cmd": "add",
        "instance_id": "alice",
        "generation": 2,
        "config": {"bot_token": TOKEN},
        "api_url": "http://127.0.0.1:1",
        "data_dir": "/tmp/a",
        "log_path": "/tmp/a.log",
        "webhook": {"url": "http://127.0.0.1:2/tg/x", "secret": "s3cr3t"},
    }
    cmd = AddCommand.parse(good)
    assert (cmd.instance_id, cmd.generation, cmd.webhook_secret) == ("alice", 2, "s3cr3t")
    assert TOKEN not in repr(cmd) and "s3cr3t" not in repr(cmd)
    broken = [
        {"instance_id": ""},
        {"instance_id": 5},
        {"config": {"bot_token": 5}},
        {"config": "x"},
        {"api_url": "file:///etc/passwd"},
        {"data_dir": None},
        {"generation": "2"},
        {"generation": True},
        {"webhook": {"url": "http://x"}},
        {"webhook": {"url": "http://x", "secret": ""}},
    ]
    for change in broken:
        with pytest.raises(ValueError) as caught:
            AddCommand.parse({**good, **change})
        assert TOKEN not in str(caught.value)


@async_test
async def test_the_backend_refuses_specs_it_cannot_run(tmp_path: Path) -> None:
    backend = SharedBackend(run_dir=tmp_path / "run")
    base = InstanceSpec(
        instance_id="alice",
        product_slug="p",
        version="1",
        source_dir=tmp_path,
        entry="p.bot:build_router",
        command=None,
        config={"bot_token": TOKEN},
        data_dir=tmp_path / "alice",
        log_path=tmp_path / "alice.log",
    )
    with pytest.raises(RuntimeError):
        await backend.ensure_running(base)  # not open yet
    await backend.open()
    try:
        for bad in (
            {"entry": None, "command": ("python3", "main.py")},
            {"data_dir": Path()},
            {"log_path": Path()},
            {"config": {"token": TOKEN}},
        ):
            kwargs = {**base.__dict__, **bad}
            with pytest.raises(ValueError):
                await backend.ensure_running(InstanceSpec(**kwargs))
        assert backend.actual() == {} and backend.hosts() == []
        await backend.ensure_stopped("nobody")  # unknown: a no-op
        assert backend.actual() == {}
        other = SharedBackend(run_dir=tmp_path / "run")
        with pytest.raises(RuntimeError, match="another shared backend"):
            await other.open()
    finally:
        await backend.close()
    for kwargs in ({"instances_per_host": 0}, {"heartbeat_seconds": 0}, {"concurrency": 0}):
        with pytest.raises(ValueError):
            SharedBackend(run_dir=tmp_path, **kwargs)
    await asyncio.sleep(0)
