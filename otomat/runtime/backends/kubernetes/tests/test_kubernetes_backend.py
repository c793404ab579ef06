"""The Kubernetes backend's lifecycle against the fake API server (``fake.py``), through the
official ``kubernetes`` client: install, config change (rolling), stop, crash (restart count
read back), conflict, removal (nothing left with the label), the shared hosts, adoption."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("kubernetes", reason="the kubernetes extra is not installed")

from otomat.botkit.testing import async_test
from otomat.runtime.backends.base import ActualState, InstanceSpec, Phase
from otomat.runtime.backends.kubernetes.backend import KubernetesBackend
from otomat.runtime.backends.kubernetes.fake import FakeKubernetes
from otomat.runtime.logs import tail

NS = "bots"
TOKEN = "123456:AAE-secret-token-value-0123456789abcdef"


def spec(tmp_path: Path, iid: str = "i-1", generation: int = 1, **kw: Any) -> InstanceSpec:
    values: dict[str, Any] = {
        "instance_id": iid,
        "product_slug": "greeter",
        "version": "1.0.0",
        "source_dir": tmp_path / "product",
        "entry": "greeter.bot:build_router",
        "command": None,
        "config": {"bot_token": TOKEN, "greeting": f"hello v{generation}"},
        "log_path": tmp_path / f"{iid}.log",
        "memory_mb": 128,
        "generation": generation,
    }
    values.update(kw)
    return InstanceSpec(**values)


async def until(predicate: Callable[[], Any], what: str, timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def make(kube: FakeKubernetes, states: list[ActualState], **kw: Any) -> KubernetesBackend:
    return KubernetesBackend(
        api_client=kube.client(),
        namespace=NS,
        on_change=states.append,
        watch_timeout=1,
        log_poll_seconds=3600,  # the tests call poll_logs_once themselves
        health_check=lambda s: "heartbeat",
        **kw,
    )


def phase_of(backend: KubernetesBackend, iid: str) -> Phase | None:
    state = backend.actual().get(iid)
    return state.phase if state else None


def only_pod(kube: FakeKubernetes, iid: str) -> str:
    pods = kube.pods_of(NS, f"otomat.io/instance={iid}")
    assert len(pods) == 1, pods
    return pods[0]


@async_test
async def test_install_config_change_crash_conflict_and_removal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    states: list[ActualState] = []
    with FakeKubernetes() as kube:
        backend = make(kube, states)
        await backend.open()
        try:
            # Install: a Secret with the configuration and a one-replica Deployment.
            await backend.ensure_running(spec(tmp_path))
            assert phase_of(backend, "i-1") == Phase.STARTING
            secret = kube.get("secrets", NS, "otomat-i-i-1")
            start = json.loads(base64.b64decode(secret["data"]["start.json"]))
            assert start["config"]["bot_token"] == TOKEN and start["data_dir"] == "/data"
            deployment = kube.get("deployments", NS, "otomat-i-i-1")
            assert deployment["metadata"]["labels"]["otomat.io/instance"] == "i-1"
            assert deployment["spec"]["replicas"] == 1
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            assert container["resources"]["limits"]["memory"] == "128Mi"
            assert "alive" in container["livenessProbe"]["exec"]["command"]
            assert {f["manager"] for f in deployment["metadata"]["managedFields"]} == {"otomat"}
            assert all(f["operation"] == "Apply" for f in deployment["metadata"]["managedFields"])
            # The secrets are in the Secret only: not in the Deployment, nor in any request
            # to a path that is not the Secret's.
            assert TOKEN not in json.dumps(deployment)
            # The data volume is a claim of its own, labelled apart from what runs.
            claim = kube.get("persistentvolumeclaims", NS, "otomat-d-i-1")
            assert claim["metadata"]["labels"]["otomat.io/data-of"] == "i-1"
            assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
            volumes = deployment["spec"]["template"]["spec"]["volumes"]
            assert {
                "name": "data",
                "persistentVolumeClaim": {"claimName": "otomat-d-i-1"},
            } in volumes

            first = only_pod(kube, "i-1")
            kube.start_pod(NS, first)
            await until(lambda: phase_of(backend, "i-1") == Phase.RUNNING, "running")
            assert backend.actual()["i-1"].generation == 1

            # Idempotent: the same generation applies nothing.
            before = len(kube.requests)
            await backend.ensure_running(spec(tmp_path))
            assert len(kube.requests) == before

            # Logs are read back from the API into the instance's log, scrubbed.
            kube.write_log(NS, first, "started", f"token is {TOKEN}")
            await backend.poll_logs_once()
            lines = tail(tmp_path / "i-1.log")
            assert any(line.endswith("started") for line in lines)
            assert not any(TOKEN in line for line in lines)
            await backend.poll_logs_once()  # read again: no line twice
            assert len(tail(tmp_path / "i-1.log")) == len(lines)

            # Config change: a new generation rolls the pod (the old one goes first).
            await backend.ensure_running(spec(tmp_path, generation=2))
            start = json.loads(
                base64.b64decode(kube.get("secrets", NS, "otomat-i-i-1")["data"]["start.json"])
            )
            assert start["config"]["greeting"] == "hello v2"
            second = only_pod(kube, "i-1")
            assert second != first
            assert kube.get("pods", NS, second)["metadata"]["labels"]["otomat.io/generation"] == "2"
            assert backend.actual()["i-1"].phase == Phase.STARTING
            kube.start_pod(NS, second)
            await until(
                lambda: (
                    backend.actual()["i-1"].phase == Phase.RUNNING
                    and backend.actual()["i-1"].generation == 2
                ),
                "generation 2 running",
            )
            assert kube.get("deployments", NS, "otomat-i-i-1")["metadata"]["generation"] == 2

            # Crash: the container exits, the kubelet restarts it; the restart count and the
            # exit code are read back.
            kube.write_log(NS, second, "about to fail")
            kube.crash_pod(NS, second, exit_code=1)
            await until(lambda: phase_of(backend, "i-1") == Phase.BACKOFF, "backoff")
            observed = backend.actual()["i-1"]
            assert observed.restarts == 1 and observed.last_exit_code == 1
            assert "restart #1" in observed.message
            await until(
                lambda: any("about to fail" in line for line in tail(tmp_path / "i-1.log")),
                "the previous container's log copied",
            )
            kube.start_pod(NS, second)
            await until(lambda: phase_of(backend, "i-1") == Phase.RUNNING, "running again")
            assert backend.actual()["i-1"].restarts == 1

            # Conflict: a person scales the Deployment with kubectl (server-side apply under
            # another field manager); the next apply is refused with 409, logged, then forced.
            from kubernetes import client

            apps = client.AppsV1Api(kube.client())
            apps.patch_namespaced_deployment(
                "otomat-i-i-1",
                NS,
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "otomat-i-i-1"},
                    "spec": {"replicas": 3},
                },
                field_manager="kubectl",
                force=True,
                _content_type="application/apply-patch+yaml",
            )
            assert len(kube.pods_of(NS, "otomat.io/instance=i-1")) == 3
            await backend.ensure_running(spec(tmp_path, generation=3))
            assert backend.conflicts == [
                'Deployment/otomat-i-i-1: Apply failed with 1 conflict(s): conflict with "kubectl":'
                " .spec.replicas"
            ]
            deployment = kube.get("deployments", NS, "otomat-i-i-1")
            assert deployment["spec"]["replicas"] == 1
            owners = {f["manager"]: f["fieldsV1"] for f in deployment["metadata"]["managedFields"]}
            assert "f:replicas" in owners["otomat"]["f:spec"]
            assert "kubectl" not in owners
            assert len(kube.pods_of(NS, "otomat.io/instance=i-1")) == 1

            # Stop and removal: clean-up by label, nothing is left with it; the data volume
            # stays until the terminated instance's grace period ends.
            await backend.ensure_stopped("i-1")
            assert kube.everything(NS, "otomat.io/instance=i-1") == []
            await until(lambda: phase_of(backend, "i-1") == Phase.STOPPED, "stopped")
            await backend.ensure_stopped("i-1")  # idempotent
            assert kube.everything(NS, "otomat.io/data-of=i-1") == [
                "PersistentVolumeClaim/otomat-d-i-1"
            ]
            await backend.delete_data("i-1")
            assert kube.everything(NS, "otomat.io/data-of=i-1") == []
        finally:
            await backend.close()
    leaks = [path for _, path, body in kube.bodies if TOKEN.encode() in body]
    assert leaks == []  # base64 in the Secret's body: the token itself travels nowhere
    secret_bodies = [path for _, path, body in kube.bodies if b"start.json" in body]
    assert secret_bodies and all("/secrets/" in path for path in secret_bodies)
    assert TOKEN not in caplog.text
    phases = [s.phase for s in states if s.instance_id == "i-1"]
    assert phases[0] == Phase.STARTING and phases[-1] == Phase.STOPPED
    assert Phase.RUNNING in phases and Phase.BACKOFF in phases


@async_test
async def test_a_crash_loop_or_a_refused_token_ends_failed_and_scaled_to_zero(
    tmp_path: Path,
) -> None:
    with FakeKubernetes() as kube:
        backend = make(kube, [], crash_loop_restarts=3)
        await backend.open()
        try:
            await backend.ensure_running(spec(tmp_path))
            pod = only_pod(kube, "i-1")
            for attempt in range(3):
                kube.start_pod(NS, pod, ready=False)
                kube.write_log(NS, pod, f"Traceback attempt {attempt}")
                kube.crash_pod(NS, pod, exit_code=2)
            await until(lambda: phase_of(backend, "i-1") == Phase.FAILED, "failed")
            failed = backend.actual()["i-1"]
            assert failed.restarts == 3 and failed.last_exit_code == 2
            assert "crash loop" in failed.message and "Traceback attempt 2" in failed.message
            await until(
                lambda: kube.get("deployments", NS, "otomat-i-i-1")["spec"]["replicas"] == 0,
                "scaled to zero",
            )
            assert kube.pods_of(NS, "otomat.io/instance=i-1") == []
            assert phase_of(backend, "i-1") == Phase.FAILED  # not STOPPED by the pod going

            # A person starts it again: replicas 1 and a fresh pod.
            await backend.ensure_running(spec(tmp_path))
            assert kube.get("deployments", NS, "otomat-i-i-1")["spec"]["replicas"] == 1
            kube.start_pod(NS, only_pod(kube, "i-1"))
            await until(lambda: phase_of(backend, "i-1") == Phase.RUNNING, "running")
            assert backend.actual()["i-1"].restarts == 0

            # Exit code 78 (the bot token was refused) fails at once.
            await backend.ensure_running(spec(tmp_path, "i-2"))
            pod = only_pod(kube, "i-2")
            kube.crash_pod(NS, pod, exit_code=78)
            await until(lambda: phase_of(backend, "i-2") == Phase.FAILED, "failed")
            assert "token was refused" in backend.actual()["i-2"].message
        finally:
            await backend.close()


@async_test
async def test_a_new_runner_adopts_what_runs_and_close_leaves_it_running(tmp_path: Path) -> None:
    with FakeKubernetes(auto_start=True) as kube:
        first = make(kube, [])
        await first.open()
        await first.ensure_running(spec(tmp_path, generation=4))
        await until(lambda: phase_of(first, "i-1") == Phase.RUNNING, "running")
        pod = only_pod(kube, "i-1")
        await first.close()
        assert kube.pods_of(NS, "otomat.io/instance=i-1") == [pod]  # the bot kept running

        states: list[ActualState] = []
        second = make(kube, states)
        await second.open()
        try:
            assert second.actual()["i-1"].phase == Phase.RUNNING
            assert second.actual()["i-1"].generation == 4
            before = len(kube.requests)
            await second.ensure_running(spec(tmp_path, generation=4))
            assert len(kube.requests) == before  # adopted, not replaced
            assert kube.pods_of(NS, "otomat.io/instance=i-1") == [pod]
            await second.purge()  # what runs goes; the data stays for delete_data
            assert kube.everything(NS, "otomat.io/managed-by=otomat,!otomat.io/data-of") == []
            assert kube.everything(NS, "otomat.io/data-of") == [
                "PersistentVolumeClaim/otomat-d-i-1"
            ]
        finally:
            await second.close()


@async_test
async def test_shared_hosts_carry_many_instances_and_go_with_the_last(tmp_path: Path) -> None:
    states: list[ActualState] = []
    with FakeKubernetes() as kube:
        backend = make(kube, states, runtime="shared", instances_per_host=2)
        await backend.open()
        try:
            for n in range(3):
                await backend.ensure_running(spec(tmp_path, f"s-{n}", runtime="shared"))
            hosts = kube.list("deployments", NS, "otomat.io/runtime=shared")
            assert len(hosts) == 2  # 2 + 1 instances
            first, second = (h["metadata"]["name"] for h in hosts)
            secret = kube.get("secrets", NS, first)
            assert sorted(secret["data"]) == ["s-0.json", "s-1.json"]
            added = json.loads(base64.b64decode(secret["data"]["s-0.json"]))
            assert added["cmd"] == "add" and added["config"]["bot_token"] == TOKEN
            assert TOKEN not in json.dumps(hosts)
            # Which objects carry an instance: a label per instance on the host's Secret.
            assert kube.everything(NS, "instance.otomat.io/s-1") == [f"Secret/{first}"]

            pod = kube.pods_of(NS, f"otomat.io/host={first}")[0]
            template_before = kube.get("deployments", NS, first)["spec"]["template"]
            kube.start_pod(NS, pod)
            await until(
                lambda: phase_of(backend, "s-0") == phase_of(backend, "s-1") == Phase.RUNNING,
                "both running",
            )
            assert phase_of(backend, "s-2") == Phase.STARTING

            # Host logs are routed to each instance by their prefix.
            kube.write_log(NS, pod, "[s-0] hello from zero", "[s-1] hello from one")
            await backend.poll_logs_once()
            (line,) = tail(tmp_path / "s-0.log")
            assert line.endswith(" hello from zero")

            # A host crash affects the instances it carries, not those of the other host.
            kube.crash_pod(NS, pod, exit_code=137)
            await until(lambda: phase_of(backend, "s-1") == Phase.BACKOFF, "backoff")
            assert backend.actual()["s-0"].last_exit_code == 137
            assert phase_of(backend, "s-2") == Phase.STARTING

            # One leaves: the host stays, the Secret drops its key, the pod is not restarted.
            await backend.ensure_stopped("s-0")
            assert sorted(kube.get("secrets", NS, first)["data"]) == ["s-1.json"]
            assert kube.get("deployments", NS, first)["spec"]["template"] == template_before
            assert kube.pods_of(NS, f"otomat.io/host={first}") == [pod]
            assert phase_of(backend, "s-0") == Phase.STOPPED
            assert kube.everything(NS, "instance.otomat.io/s-0") == []

            # The last one leaves: nothing is left with the host's label.
            await backend.ensure_stopped("s-1")
            assert kube.everything(NS, f"otomat.io/host={first}") == []
            await backend.ensure_stopped("s-2")
            assert kube.everything(NS, "otomat.io/managed-by=otomat") == []
            assert second not in {h["metadata"]["name"] for h in kube.list("deployments", NS)}
        finally:
            await backend.close()


@async_test
async def test_the_watch_recovers_from_410_gone(tmp_path: Path) -> None:
    with FakeKubernetes() as kube:
        backend = make(kube, [])
        await backend.open()
        try:
            await backend.ensure_running(spec(tmp_path))
            pod = only_pod(kube, "i-1")
            kube.compacted_before = kube.rv + 1_000_000  # every resumed watch is now too old
            await asyncio.sleep(1.2)  # the watch times out (1 s), resumes, gets 410, re-lists
            kube.compacted_before = 0
            kube.start_pod(NS, pod)
            await until(lambda: phase_of(backend, "i-1") == Phase.RUNNING, "running", 10)
        finally:
            await backend.close()


@async_test
async def test_a_shared_instance_whose_token_is_refused_fails_alone(tmp_path: Path) -> None:
    with FakeKubernetes(auto_start=True) as kube:
        backend = make(kube, [], runtime="shared")
        await backend.open()
        try:
            for n in range(2):
                await backend.ensure_running(spec(tmp_path, f"s-{n}", runtime="shared"))
            await until(lambda: phase_of(backend, "s-1") == Phase.RUNNING, "running")
            (host,) = kube.list("deployments", NS, "otomat.io/runtime=shared")
            name = host["metadata"]["name"]
            (pod,) = kube.pods_of(NS, f"otomat.io/host={name}")
            kube.write_log(NS, pod, "[s-1] [otomat] fatal: invalid_token")
            await backend.poll_logs_once()
            assert phase_of(backend, "s-1") == Phase.FAILED
            assert "token was refused" in backend.actual()["s-1"].message
            assert phase_of(backend, "s-0") == Phase.RUNNING
            assert sorted(kube.get("secrets", NS, name)["data"]) == ["s-0.json"]
            # Started again by a person (a new generation): back in the host.
            await backend.ensure_running(spec(tmp_path, "s-1", generation=2, runtime="shared"))
            assert sorted(kube.get("secrets", NS, name)["data"]) == ["s-0.json", "s-1.json"]
            assert phase_of(backend, "s-1") == Phase.RUNNING
        finally:
            await backend.close()


@async_test
async def test_a_new_runner_adopts_shared_hosts_without_dropping_anyone(tmp_path: Path) -> None:
    with FakeKubernetes(auto_start=True) as kube:
        first = make(kube, [], runtime="shared")
        await first.open()
        for n in range(3):
            await first.ensure_running(spec(tmp_path, f"s-{n}", runtime="shared"))
        await first.close()
        (host,) = kube.list("deployments", NS, "otomat.io/runtime=shared")
        name = host["metadata"]["name"]
        (pod,) = kube.pods_of(NS, f"otomat.io/host={name}")

        second = make(kube, [], runtime="shared")
        await second.open()
        try:
            assert {i: s.phase for i, s in second.actual().items()} == {
                f"s-{n}": Phase.RUNNING for n in range(3)
            }
            before = len(kube.requests)
            await second.ensure_running(spec(tmp_path, "s-0", runtime="shared"))
            assert len(kube.requests) == before  # the same generation: nothing applied
            # A changed one is re-applied; the others, not confirmed yet, stay in the Secret.
            await second.ensure_running(spec(tmp_path, "s-1", generation=2, runtime="shared"))
            data = kube.get("secrets", NS, name)["data"]
            assert sorted(data) == ["s-0.json", "s-1.json", "s-2.json"]
            assert json.loads(base64.b64decode(data["s-1.json"]))["generation"] == 2
            assert kube.pods_of(NS, f"otomat.io/host={name}") == [pod]  # nobody restarted
            await second.ensure_stopped("s-2")
            assert sorted(kube.get("secrets", NS, name)["data"]) == ["s-0.json", "s-1.json"]
        finally:
            await second.close()


@async_test
async def test_log_reads_are_bounded_per_poll_and_take_turns(tmp_path: Path) -> None:
    with FakeKubernetes(auto_start=True) as kube:
        backend = make(kube, [], log_reads_per_poll=2)
        await backend.open()
        try:
            for n in range(5):
                await backend.ensure_running(spec(tmp_path, f"i-{n}"))
            await until(
                lambda: all(s.phase == Phase.RUNNING for s in backend.actual().values()), "running"
            )
            for n in range(5):
                kube.write_log(NS, only_pod(kube, f"i-{n}"), f"line of {n}")
            reads = []
            for _ in range(3):
                before = sum(1 for _, path, _ in kube.requests if path.endswith("/log"))
                await backend.poll_logs_once()
                reads.append(
                    sum(1 for _, path, _ in kube.requests if path.endswith("/log")) - before
                )
            assert reads == [2, 2, 2]
            for n in range(5):  # after three polls of two, every pod was read
                assert any(line.endswith(f"line of {n}") for line in tail(tmp_path / f"i-{n}.log"))
        finally:
            await backend.close()
