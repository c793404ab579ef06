"""The runner with ``OTOMAT_RUNTIME_BACKEND=kubernetes``, end to end against the fake API server:
an installed instance becomes a Deployment, its pod's readiness becomes the instance's
``running`` state, a stop removes everything with its label, and the runner's kubeconfig
handling is the one a real cluster would get."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest

pytest.importorskip("kubernetes", reason="the kubernetes extra is not installed")

from asgiref.sync import async_to_sync

from otomat.instances import services
from otomat.instances.models import Instance
from otomat.runtime.backends.base import ActualState, Phase
from otomat.runtime.backends.kubernetes.fake import FakeKubernetes
from otomat.runtime.observe import record_observations
from otomat.runtime.runner import Runner, make_backend

NS = "bots"
TOKEN = "100001:" + "A" * 35


def kubeconfig(path: Path, url: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": url}}],
                "users": [{"name": "runner", "user": {"token": "not-a-real-token"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "runner"}}],
                "current-context": "fake",
            }
        )
    )
    return path


async def until(predicate, what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def test_the_runner_runs_and_stops_an_instance_in_the_cluster(
    db, cast, greeter, settings, tmp_path
) -> None:
    instance = Instance.objects.create(
        account=cast.alice.account,
        version=greeter,
        name="greeter on k8s",
        secrets={"bot_token": TOKEN},
        state=Instance.State.PROVISIONING,
        desired=Instance.Desired.RUNNING,
    )
    iid = str(instance.id)
    with FakeKubernetes(auto_start=True) as kube:
        settings.RUNTIME_BACKEND = "kubernetes"
        settings.K8S_NAMESPACE = NS
        settings.K8S_KUBECONFIG = str(kubeconfig(tmp_path / "kubeconfig", kube.url))
        settings.K8S_IMAGE = "registry.example/otomat-{slug}:{version}"
        runner = Runner()
        reports: list[ActualState] = []

        def on_change(state: ActualState) -> None:
            reports.append(state)
            runner.observe(state)

        async def run_and_stop() -> None:
            runner.backend = make_backend(runner.backend_name, on_change)
            await runner.backend.open()
            try:
                await runner.reconcile()
                await until(
                    lambda: (
                        runner.backend.actual().get(iid, None) is not None
                        and runner.backend.actual()[iid].phase == Phase.RUNNING
                    ),
                    "running",
                )
            finally:
                await runner.backend.close()

        async_to_sync(run_and_stop)()
        record_observations([reports[-1]])
        instance.refresh_from_db()
        assert instance.state == Instance.State.RUNNING

        name = f"otomat-i-{iid}"
        deployment = kube.get("deployments", NS, name)
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == f"registry.example/otomat-greeter:{greeter.version}"
        assert container["args"] == ["product", "--entry", "greeter.bot:build_router"]
        assert container["resources"]["limits"]["memory"] == "256Mi"  # the manifest's memory_mb
        assert "alive" in container["livenessProbe"]["exec"]["command"]  # [health] check=updates
        start = json.loads(base64.b64decode(kube.get("secrets", NS, name)["data"]["start.json"]))
        assert start["config"]["bot_token"] == TOKEN  # decrypted, into the Secret only
        assert TOKEN not in json.dumps(deployment)

        # A person stops it: the next runner (adopting what runs) removes it by label.
        services.stop_instance(instance, actor=cast.alice)
        runner = Runner()
        reports.clear()

        async def stop() -> None:
            runner.backend = make_backend(runner.backend_name, on_change)
            await runner.backend.open()
            try:
                await runner.reconcile()
                await until(lambda: runner.backend.actual()[iid].phase == Phase.STOPPED, "stopped")
            finally:
                await runner.backend.close()

        async_to_sync(stop)()
        assert kube.everything(NS, f"otomat.io/instance={iid}") == []
        record_observations([reports[-1]])
        instance.refresh_from_db()
        assert instance.state == Instance.State.STOPPED and instance.pid is None
