"""The Kubernetes objects the backend applies, as plain dictionaries (pure functions).

A ``process`` instance becomes a Secret and a Deployment named ``otomat-i-<instance id>``; a
``shared`` host (many instances of one product version) becomes a Secret and a Deployment named
``otomat-h-<digest of the version>-<n>``. Configuration and decrypted secrets go only into the
Secrets; the Deployments carry names, labels, the image, limits and probes — nothing a person
could not read on the instance page.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

from otomat.runtime.backends.base import InstanceSpec

MANAGED_BY = "otomat.io/managed-by"
MANAGER = "otomat"  # the value of MANAGED_BY, and the server-side apply field manager
INSTANCE = "otomat.io/instance"
HOST = "otomat.io/host"
RUNTIME = "otomat.io/runtime"
GENERATION = "otomat.io/generation"
DATA_OF = "otomat.io/data-of"  # an instance's data volume: kept when it stops
PRODUCT = "otomat.io/product"
RESTARTED_AT = "otomat.io/restarted-at"
MEMBER_PREFIX = "instance.otomat.io/"  # a host Secret carries one such label per instance
CONTAINER = "bot"
START_FILE_DIR = "/run/otomat"  # the Secret, mounted read-only (tmpfs)
START_KEY = "start.json"  # a process instance's start line (configuration, secrets included)
DATA_DIR = "/data"
UID = 10001


NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def check_image_template(template: str) -> None:
    """Raise ValueError unless ``template`` names an image with only ``{slug}`` and
    ``{version}`` to fill in."""
    try:
        image = template.format(slug="s", version="1.0.0")
    except (KeyError, IndexError, ValueError) as error:
        raise ValueError(
            f"image template {template!r} may use only {{slug}} and {{version}} ({error})"
        ) from None
    if not image or any(c.isspace() for c in image):
        raise ValueError(f"image template {template!r} is not an image reference")


def instance_name(instance_id: str) -> str:
    return f"otomat-i-{_dns(instance_id)}"


def data_claim_name(instance_id: str) -> str:
    return f"otomat-d-{_dns(instance_id)}"


def host_name(product_slug: str, version: str, index: int) -> str:
    digest = hashlib.sha256(f"{product_slug}\0{version}".encode()).hexdigest()[:10]
    return f"otomat-h-{digest}-{index}"


def _dns(value: str) -> str:
    cleaned = re.sub(r"[^a-z0-9-]", "-", value.lower()).strip("-")
    return cleaned[:40] or "x"


def label_value(value: str) -> str:
    """A label value: at most 63 of [A-Za-z0-9._-], starting and ending alphanumeric."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", value)[:63]
    return cleaned.strip("-._") or "x"


def image_for(template: str, spec: InstanceSpec) -> str:
    """``OTOMAT_K8S_IMAGE`` with ``{slug}`` and ``{version}`` (``+`` becomes ``-``: tags allow
    ``[A-Za-z0-9_.-]``)."""
    tag = re.sub(r"[^A-Za-z0-9_.-]", "-", spec.version)
    return template.format(slug=spec.product_slug, version=tag)


def start_payload(spec: InstanceSpec, heartbeat_seconds: float) -> dict[str, Any]:
    """What the program reads on stdin (the same start line the process backend sends)."""
    return {
        "instance_id": spec.instance_id,
        "config": spec.config,
        "api_url": spec.bot_api_url,
        "data_dir": DATA_DIR,
        "heartbeat_seconds": heartbeat_seconds,
    }


def add_command(spec: InstanceSpec) -> dict[str, Any]:
    """A shared host's ``add`` command for ``spec`` (``otomat.runtime.shared_host``)."""
    return {
        "cmd": "add",
        "instance_id": spec.instance_id,
        "generation": spec.generation,
        "config": spec.config,
        "api_url": spec.bot_api_url,
        "data_dir": f"{DATA_DIR}/{spec.instance_id}",
        "log_path": None,
        "store": None,
        "webhook": None,
    }


def _b64(data: Any) -> str:
    text = json.dumps(data, separators=(",", ":"), sort_keys=True)
    return base64.b64encode(text.encode()).decode()


def _meta(name: str, namespace: str, labels: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": labels, **extra}


def instance_labels(spec: InstanceSpec) -> dict[str, str]:
    return {
        MANAGED_BY: MANAGER,
        RUNTIME: "process",
        INSTANCE: label_value(spec.instance_id),
        PRODUCT: label_value(spec.product_slug),
    }


def instance_secret(spec: InstanceSpec, namespace: str, heartbeat_seconds: float) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(instance_name(spec.instance_id), namespace, instance_labels(spec)),
        "type": "Opaque",
        "data": {START_KEY: _b64(start_payload(spec, heartbeat_seconds))},
    }


def host_secret(
    name: str, namespace: str, members: dict[str, dict[str, Any]], labels: dict[str, str]
) -> dict:
    """A host's Secret: one key ``<instance id>.json`` (its ``add`` command) per instance, and
    one label ``instance.otomat.io/<id>`` per instance so a selector finds what carries it."""
    member_labels = {f"{MEMBER_PREFIX}{label_value(iid)}": "true" for iid in members}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(name, namespace, {**labels, **member_labels}),
        "type": "Opaque",
        "data": {f"{iid}.json": _b64(command) for iid, command in sorted(members.items())},
    }


def data_claim(spec: InstanceSpec, namespace: str, size: str, storage_class: str) -> dict:
    """The instance's data volume (``/data``), labelled ``otomat.io/data-of`` rather than
    ``otomat.io/instance``: stopping an instance removes what runs, not its data — as on one
    machine, the data goes when the terminated instance's grace period ends
    (``KubernetesBackend.delete_data``)."""
    labels = {
        MANAGED_BY: MANAGER,
        RUNTIME: "process",
        DATA_OF: label_value(spec.instance_id),
        PRODUCT: label_value(spec.product_slug),
    }
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }
    if storage_class:
        claim_spec["storageClassName"] = storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(data_claim_name(spec.instance_id), namespace, labels),
        "spec": claim_spec,
    }


def _probes(health_check: str) -> dict[str, Any]:
    """Readiness: the program said it is ready (podmain writes ``/tmp/otomat-ready``).
    Liveness from the manifest's ``[health].check``: ``process`` is the container's own
    process (Kubernetes restarts it when it exits — no probe); ``heartbeat`` and ``updates``
    fail when no heartbeat arrived for a minute."""
    probe = ["python", "-m", "otomat.runtime.backends.kubernetes.podmain"]
    probes: dict[str, Any] = {
        "readinessProbe": {
            "exec": {"command": [*probe, "ready"]},
            "periodSeconds": 5,
            "failureThreshold": 1,
        }
    }
    if health_check in ("heartbeat", "updates"):
        probes["livenessProbe"] = {
            "exec": {"command": [*probe, "alive", "--max-age", "60"]},
            "initialDelaySeconds": 30,
            "periodSeconds": 20,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        }
    return probes


def _pod_spec(
    *,
    secret: str,
    image: str,
    args: list[str],
    memory_mb: int,
    cpu_limit: str,
    health_check: str,
    image_pull_secret: str = "",
    data_claim: str = "",
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "args": args,
        "resources": {
            "requests": {"memory": f"{memory_mb}Mi", "cpu": "50m"},
            "limits": {"memory": f"{memory_mb}Mi", "cpu": cpu_limit},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": UID,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "start", "mountPath": START_FILE_DIR, "readOnly": True},
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the pod's own tmpfs
        ],
        **_probes(health_check),
    }
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,  # a bot never talks to the cluster
        "enableServiceLinks": False,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 10,
        "securityContext": {
            "runAsNonRoot": True,
            "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "start", "secret": {"secretName": secret, "defaultMode": 0o440}},
            {"name": "data", "persistentVolumeClaim": {"claimName": data_claim}}
            if data_claim
            else {"name": "data", "emptyDir": {}},
            {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        ],
    }
    if image_pull_secret:
        spec["imagePullSecrets"] = [{"name": image_pull_secret}]
    return spec


def _deployment(
    name: str,
    namespace: str,
    labels: dict[str, str],
    selector: dict[str, str],
    template_labels: dict[str, str],
    annotations: dict[str, str],
    pod_spec: dict[str, Any],
    replicas: int,
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, namespace, labels),
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": selector},
            # One bot must never poll twice (Telegram answers 409 to the second getUpdates):
            # the old pod goes before the new one starts — a rolling update without surge.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
            },
            "template": {
                "metadata": {"labels": template_labels, "annotations": annotations},
                "spec": pod_spec,
            },
        },
    }


def instance_deployment(
    spec: InstanceSpec,
    namespace: str,
    *,
    image: str,
    cpu_limit: str,
    health_check: str,
    replicas: int = 1,
    restarted_at: str = "",
    image_pull_secret: str = "",
    data_claim: str = "",
) -> dict[str, Any]:
    name = instance_name(spec.instance_id)
    labels = instance_labels(spec)
    if spec.entry:
        args = ["product", "--entry", spec.entry]
    else:
        args = ["product", "--", *(spec.command or ())]
    annotations = {RESTARTED_AT: restarted_at} if restarted_at else {}
    return _deployment(
        name,
        namespace,
        labels,
        {INSTANCE: labels[INSTANCE]},
        {**labels, GENERATION: str(spec.generation)},
        annotations,
        _pod_spec(
            secret=name,
            image=image,
            args=args,
            memory_mb=spec.memory_mb,
            cpu_limit=cpu_limit,
            health_check=health_check,
            image_pull_secret=image_pull_secret,
            data_claim=data_claim,
        ),
        replicas,
    )


def host_labels(name: str, spec: InstanceSpec) -> dict[str, str]:
    return {
        MANAGED_BY: MANAGER,
        RUNTIME: "shared",
        HOST: name,
        PRODUCT: label_value(spec.product_slug),
    }


def host_labels_of(labels: dict[str, str]) -> dict[str, str]:
    """An existing host object's own labels (without the per-instance ones)."""
    return {k: v for k, v in labels.items() if not k.startswith(MEMBER_PREFIX)}


def host_deployment(
    name: str,
    namespace: str,
    spec: InstanceSpec,
    *,
    image: str,
    cpu_limit: str,
    memory_mb: int,
    replicas: int = 1,
    restarted_at: str = "",
    image_pull_secret: str = "",
) -> dict[str, Any]:
    """A shared host: one pod that runs every instance listed in its Secret. Instances join
    and leave through the mounted Secret (the kubelet updates the files; podmain adds and
    removes them) — the pod template never names them, so a join restarts nobody."""
    labels = host_labels(name, spec)
    annotations = {RESTARTED_AT: restarted_at} if restarted_at else {}
    return _deployment(
        name,
        namespace,
        labels,
        {HOST: name},
        labels,
        annotations,
        _pod_spec(
            secret=name,
            image=image,
            args=["host", "--entry", spec.entry or ""],
            memory_mb=memory_mb,
            cpu_limit=cpu_limit,
            health_check="heartbeat",
            image_pull_secret=image_pull_secret,
        ),
        replicas,
    )
