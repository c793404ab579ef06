"""The pieces around the Kubernetes backend: the fake API server's protocol as the official
client sees it (409s, 404, resource versions, selectors, apply ownership, watch), the manifests
(secrets only in Secrets), the container's entry point, and the settings factory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

pytest.importorskip("kubernetes", reason="the kubernetes extra is not installed")

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from otomat.runtime.backends.base import InstanceSpec
from otomat.runtime.backends.kubernetes import manifests as m
from otomat.runtime.backends.kubernetes.fake import FakeKubernetes

NS = "bots"
TOKEN = "123456:AAE-secret-token-value-0123456789abcdef"
PODMAIN = (sys.executable, "-m", "otomat.runtime.backends.kubernetes.podmain")


@pytest.fixture
def kube():
    with FakeKubernetes() as server:
        yield server


def apply_body(name: str, replicas: int = 1, **labels: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "bot", "image": "img:1"}]},
            },
        },
    }


def test_create_conflicts_stale_updates_and_missing_objects_answer_like_the_api(kube) -> None:
    core = client.CoreV1Api(kube.client())
    created = core.create_namespaced_secret(
        NS, {"metadata": {"name": "s", "labels": {"a": "1"}}, "stringData": {"k": "v"}}
    )
    assert created.data == {"k": "dg=="}
    with pytest.raises(ApiException) as exists:
        core.create_namespaced_secret(NS, {"metadata": {"name": "s"}})
    assert exists.value.status == 409
    assert json.loads(exists.value.body)["reason"] == "AlreadyExists"

    current = core.read_namespaced_secret("s", NS)
    current.data = {"k": "dzI="}
    updated = core.replace_namespaced_secret("s", NS, current)
    assert int(updated.metadata.resource_version) > int(current.metadata.resource_version)
    with pytest.raises(ApiException) as stale:  # the old resourceVersion again
        core.replace_namespaced_secret("s", NS, current)
    assert stale.value.status == 409
    assert "the object has been modified" in json.loads(stale.value.body)["message"]
    assert core.read_namespaced_secret("s", NS).data == {"k": "dzI="}  # unchanged by the 409

    with pytest.raises(ApiException) as missing:
        core.read_namespaced_secret("nope", NS)
    assert missing.value.status == 404
    with pytest.raises(ApiException) as invalid:
        core.create_namespaced_secret(NS, {"metadata": {"name": "Not_A_Name"}})
    assert invalid.value.status == 422
    assert kube.get("secrets", NS, "Not_A_Name") is None


def test_label_selectors_and_delete_collection(kube) -> None:
    core = client.CoreV1Api(kube.client())
    for name, labels in (("a", {"x": "1", "y": "2"}), ("b", {"x": "1"}), ("c", {"x": "2"})):
        core.create_namespaced_secret(NS, {"metadata": {"name": name, "labels": labels}})

    def names(selector: str) -> list[str]:
        listed = core.list_namespaced_secret(NS, label_selector=selector)
        return [item.metadata.name for item in listed.items]

    assert names("x=1") == ["a", "b"]
    assert names("x==1,y") == ["a"]
    assert names("x!=1") == ["c"]
    assert names("!y") == ["b", "c"]
    core.delete_collection_namespaced_secret(NS, label_selector="x=1")
    assert names("") == ["c"]


def test_server_side_apply_owns_fields_refuses_conflicts_and_prunes(kube) -> None:
    apps = client.AppsV1Api(kube.client())

    def apply(body: dict, manager: str, force: bool = False):
        return apps.patch_namespaced_deployment(
            body["metadata"]["name"],
            NS,
            body,
            field_manager=manager,
            force=force,
            _content_type="application/apply-patch+yaml",
        )

    first = apply(apply_body("d", team="a"), "otomat")
    again = apply(apply_body("d", team="a"), "otomat")
    assert again.metadata.resource_version == first.metadata.resource_version  # a no-op
    assert again.metadata.generation == 1

    scale = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}
    with pytest.raises(ApiException) as conflict:
        apply({**scale, "spec": {"replicas": 2}}, "kubectl")
    assert conflict.value.status == 409
    status = json.loads(conflict.value.body)
    assert status["details"]["causes"][0]["field"] == ".spec.replicas"
    assert kube.get("deployments", NS, "d")["spec"]["replicas"] == 1  # unchanged

    # A field nobody else owns, set to the value it has, is no conflict (shared ownership).
    apply({**scale, "spec": {"replicas": 1}}, "kubectl")
    # Dropping a label from our apply removes it; a later apply with a new replica count bumps
    # the generation.
    pruned = apply(apply_body("d", replicas=1), "otomat")
    assert "team" not in (pruned.metadata.labels or {})
    bumped = apply(apply_body("d", replicas=0), "otomat", force=True)
    assert bumped.metadata.generation == 2
    with pytest.raises(ApiException) as no_manager:
        apps.patch_namespaced_deployment(
            "d", NS, apply_body("d"), _content_type="application/apply-patch+yaml"
        )
    assert no_manager.value.status == 400


def test_watch_streams_changes_from_a_resource_version_and_ends_after_its_timeout(kube) -> None:
    core = client.CoreV1Api(kube.client())
    listed = core.list_namespaced_secret(NS)
    seen: list[tuple[str, str]] = []

    def follow() -> None:
        for event in watch.Watch().stream(
            core.list_namespaced_secret,
            NS,
            label_selector="w=1",
            resource_version=listed.metadata.resource_version,
            timeout_seconds=1,
        ):
            seen.append((event["type"], event["object"].metadata.name))

    reader = threading.Thread(target=follow)
    reader.start()
    core.create_namespaced_secret(NS, {"metadata": {"name": "w1", "labels": {"w": "1"}}})
    core.create_namespaced_secret(NS, {"metadata": {"name": "other"}})
    core.delete_namespaced_secret("w1", NS)
    reader.join(timeout=10)
    assert not reader.is_alive()
    assert seen == [("ADDED", "w1"), ("DELETED", "w1")]


def spec(tmp_path: Path, **kw) -> InstanceSpec:
    values = {
        "instance_id": "0b9c7c5e-3f6a-4c1e-9a63-5b1f2d0c9e11",
        "product_slug": "greeter",
        "version": "1.2.0+build.5",
        "source_dir": tmp_path,
        "entry": "greeter.bot:build_router",
        "command": None,
        "config": {"bot_token": TOKEN},
        "memory_mb": 200,
        "generation": 7,
    }
    values.update(kw)
    return InstanceSpec(**values)


def test_manifests_keep_secrets_in_secrets_and_names_within_limits(tmp_path: Path) -> None:
    s = spec(tmp_path)
    deployment = m.instance_deployment(
        s, NS, image=m.image_for("reg/p-{slug}:{version}", s), cpu_limit="1", health_check="process"
    )
    text = json.dumps(deployment)
    assert TOKEN not in text
    assert "env" not in deployment["spec"]["template"]["spec"]["containers"][0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "reg/p-greeter:1.2.0-build.5"
    assert "livenessProbe" not in container  # "process": the container's exit is the check
    assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert deployment["spec"]["template"]["metadata"]["labels"][m.GENERATION] == "7"
    name = m.instance_name(s.instance_id)
    assert len(name) + len("-0123456789-abcde") <= 63  # the pod name stays a valid hostname
    secret = m.instance_secret(s, NS, 5.0)
    assert TOKEN not in json.dumps(secret)  # base64, but there: the Secret is the only place
    assert "startData" not in secret and list(secret["data"]) == ["start.json"]
    host = m.host_deployment(
        m.host_name("greeter", "1.2.0", 0), NS, s, image="i", cpu_limit="1", memory_mb=1024
    )
    assert TOKEN not in json.dumps(host)
    assert host["spec"]["template"]["spec"]["containers"][0]["args"][0] == "host"


PROGRAM = """
import json, os, sys
start = json.loads(sys.stdin.readline())
control = os.fdopen(int(os.environ["OTOMAT_CONTROL_FD"]), "w")
print("token is", start["config"]["bot_token"], flush=True)
control.write(json.dumps({"event": "ready"}) + "\\n"); control.flush()
print("data dir", start["data_dir"], flush=True)
sys.exit(78)
"""


def test_the_pod_entry_point_feeds_the_secret_on_stdin_and_scrubs_the_log(tmp_path: Path) -> None:
    start_dir, state, product, data = (tmp_path / d for d in ("start", "state", "product", "data"))
    for folder in (start_dir, state, product, data):
        folder.mkdir()
    (product / "main.py").write_text(textwrap.dedent(PROGRAM))
    payload = m.start_payload(spec(tmp_path), 5.0)
    (start_dir / "start.json").write_text(json.dumps(payload))
    env = {
        **os.environ,
        "OTOMAT_POD_START_DIR": str(start_dir),
        "OTOMAT_POD_STATE_DIR": str(state),
        "OTOMAT_POD_PRODUCT_DIR": str(product),
        "OTOMAT_POD_DATA_DIR": str(data),
    }
    podmain = PODMAIN
    assert subprocess.run([*podmain, "ready"], env=env, check=False).returncode == 1
    done = subprocess.run(
        [*podmain, "product", "--", sys.executable, "main.py"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 78, done.stderr
    assert "token is ***" in done.stdout and TOKEN not in done.stdout
    assert "data dir /data" in done.stdout
    assert subprocess.run([*podmain, "ready"], env=env, check=False).returncode == 0
    alive = subprocess.run([*podmain, "alive", "--max-age", "60"], env=env, check=False)
    assert alive.returncode == 0


def test_the_runner_factory_builds_both_runtimes_from_settings(settings, kube) -> None:
    from otomat.runtime.backends.kubernetes import make_backends

    settings.K8S_NAMESPACE = "tenant-bots"
    settings.K8S_IMAGE = "registry.example/otomat-{slug}:{version}"
    backends = make_backends(None, api_client=kube.client())
    assert set(backends) == {"process", "shared"}
    assert backends["process"].runtime == "process" and backends["shared"].runtime == "shared"
    assert backends["shared"].namespace == "tenant-bots"

    from django.core.exceptions import ImproperlyConfigured

    from otomat.runtime.backends.kubernetes import api_client_from_settings

    settings.K8S_KUBECONFIG = str(Path("/nonexistent/kubeconfig"))
    with pytest.raises(ImproperlyConfigured, match="cannot configure the Kubernetes client"):
        api_client_from_settings()


def test_the_dockerfile_matches_what_the_manifests_and_the_entry_point_expect() -> None:
    import importlib.util

    from otomat.runtime.backends.kubernetes import podmain

    root = Path(__file__).resolve().parents[5]
    text = (root / "deploy" / "images" / "Dockerfile").read_text()
    targets = re.findall(r"^FROM \S+ AS (\S+)$", text, flags=re.MULTILINE)
    assert {"product", "shared-host"} <= set(targets)
    assert f"USER {m.UID}:{m.UID}" in text and f"--uid {m.UID}" in text
    entry = re.search(r'^ENTRYPOINT \["python", "-m", "([\w.]+)"\]$', text, flags=re.MULTILINE)
    assert entry and importlib.util.find_spec(entry.group(1)) is not None
    assert f"COPY ${{PRODUCT}} {podmain.PRODUCT_DIR}" in text
    assert str(podmain.START_DIR) == m.START_FILE_DIR and str(podmain.DATA_DIR) == m.DATA_DIR


@pytest.mark.slow
def test_the_host_entry_point_follows_the_secret_files(tmp_path: Path) -> None:
    """Instances join and leave a running shared host as the mounted Secret's files come and
    go (the kubelet's part — updating the files — is played by the test)."""
    import signal
    import time

    start_dir, state, product, data = (tmp_path / d for d in ("start", "state", "product", "data"))
    for folder in (start_dir, state, product / "p", data):
        folder.mkdir(parents=True)
    (product / "p" / "__init__.py").write_text("")
    (product / "p" / "bot.py").write_text(
        "from aiogram import Router\n\n\ndef build_router(ctx):\n    return Router()\n"
    )
    env = {
        **os.environ,
        "OTOMAT_POD_START_DIR": str(start_dir),
        "OTOMAT_POD_STATE_DIR": str(state),
        "OTOMAT_POD_PRODUCT_DIR": str(product),
        "OTOMAT_POD_DATA_DIR": str(data),
        "OTOMAT_POD_SCAN_SECONDS": "0.1",
    }
    proc = subprocess.Popen(
        [*PODMAIN, "host", "--entry", "p.bot:build_router"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(iter(proc.stdout.readline, "")))
    reader.start()

    def wait_for(predicate, what: str) -> None:
        deadline = time.monotonic() + 60
        while not predicate():
            assert proc.poll() is None, "".join(output)
            assert time.monotonic() < deadline, f"{what}: {''.join(output)}"
            time.sleep(0.05)

    try:
        wait_for(lambda: (state / "otomat-ready").exists(), "host ready")
        s = spec(tmp_path, instance_id="alice", runtime="shared")
        command = m.add_command(s) | {"api_url": "http://127.0.0.1:9"}
        (start_dir / "alice.json").write_text(json.dumps(command))
        (start_dir / "bob.json").write_text(json.dumps({"cmd": "add", "instance_id": "bob"}))
        wait_for(lambda: any("[bob] [otomat] rejected" in line for line in output), "bob")
        wait_for(lambda: (data / "alice").is_dir(), "alice's data directory")
        (start_dir / "alice.json").unlink()
        wait_for(lambda: any("[alice] [otomat] removed" in line for line in output), "removed")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=5)
    assert TOKEN not in "".join(output)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("K8S_NAMESPACE", "Bots_Prod", "OTOMAT_K8S_NAMESPACE='Bots_Prod' is not a valid"),
        ("K8S_NAMESPACE", "", "OTOMAT_K8S_NAMESPACE='' is not a valid"),
        ("K8S_IMAGE", "reg/{product}:{version}", "may use only {slug} and {version}"),
        ("K8S_IMAGE", "reg/p:{", "may use only {slug} and {version}"),
        ("K8S_IMAGE", "reg/p {slug}", "is not an image reference"),
    ],
)
def test_bad_settings_are_refused_clearly_before_anything_is_applied(
    settings, kube, setting, value, message
) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from otomat.runtime.backends.kubernetes import make_backends

    setattr(settings, setting, value)
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        make_backends(None, api_client=kube.client())
    assert kube.requests == []


def test_an_unreachable_or_refusing_api_server_is_named_when_the_backend_opens(kube) -> None:
    import asyncio

    from otomat.runtime.backends.kubernetes.backend import KubernetesBackend, KubernetesError

    with pytest.raises(ValueError, match="runtime must be process or shared"):
        KubernetesBackend(api_client=kube.client(), namespace=NS, runtime="docker")
    api = kube.client()
    api.configuration.host = "http://127.0.0.1:9"  # nothing listens there
    api.configuration.retries = 0
    backend = KubernetesBackend(api_client=api, namespace=NS)
    with pytest.raises(
        KubernetesError, match=r"cannot reach the Kubernetes API at http://127\.0\.0\.1:9"
    ):
        asyncio.run(backend.open())


def test_the_purge_after_the_grace_period_deletes_the_data_volume_in_the_cluster():
    from otomat.runtime.backends.kubernetes import delete_instance_data
    from otomat.runtime.backends.kubernetes import manifests as mf
    from otomat.runtime.backends.kubernetes.fake import FakeKubernetes

    with FakeKubernetes() as kube:
        api = kube.client()
        from kubernetes import client

        core = client.CoreV1Api(api)
        for iid in ("a" * 8, "b" * 8):
            core.create_namespaced_persistent_volume_claim(
                "otomat",
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {
                        "name": f"otomat-d-{iid}",
                        "labels": {mf.DATA_OF: mf.label_value(iid)},
                    },
                    "spec": {"accessModes": ["ReadWriteOnce"]},
                },
            )
        delete_instance_data("a" * 8, api_client=api)
        left = [o["metadata"]["name"] for o in kube.list("persistentvolumeclaims", "otomat")]
        assert left == ["otomat-d-" + "b" * 8]
