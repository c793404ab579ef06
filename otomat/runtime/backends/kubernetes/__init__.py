"""The ``kubernetes`` runtime backend (docs/kubernetes.md).

* ``backend.py`` — :class:`KubernetesBackend`, behind the interface in ``base.py``;
* ``manifests.py`` — the Secrets and Deployments it applies (pure functions);
* ``podmain.py`` — the container's entry point (``product`` and ``host`` modes, probes);
* ``fake.py`` — a fake API server speaking the real REST protocol, for tests.

The runner selects it with ``OTOMAT_RUNTIME_BACKEND=kubernetes``: :func:`make_backends` gives
one backend per runtime (``process`` and ``shared``), both in ``OTOMAT_K8S_NAMESPACE``.
"""

from __future__ import annotations

from typing import Any

from otomat.runtime.backends.base import Backend, OnChange


def api_client_from_settings() -> Any:
    """An official client configured from ``OTOMAT_K8S_KUBECONFIG``/``OTOMAT_K8S_CONTEXT``, the
    in-cluster service account, or ``~/.kube/config`` — in that order."""
    import os

    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        from kubernetes import client, config
    except ImportError:
        raise ImproperlyConfigured(
            "OTOMAT_RUNTIME_BACKEND=kubernetes needs the kubernetes client: "
            "pip install 'otomat[kubernetes]'"
        ) from None
    configuration = client.Configuration()
    try:
        if settings.K8S_KUBECONFIG or not os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_kube_config(
                config_file=settings.K8S_KUBECONFIG or None,
                context=settings.K8S_CONTEXT or None,
                client_configuration=configuration,
            )
        else:
            config.load_incluster_config(client_configuration=configuration)
    except Exception as error:
        raise ImproperlyConfigured(f"cannot configure the Kubernetes client: {error}") from error
    return client.ApiClient(configuration)


def delete_instance_data(instance_id: str, *, api_client: Any = None) -> None:
    """Delete a terminated instance's data volume in the cluster (the worker's purge of data
    after the grace period; the runner's backend keeps it when it stops the instance)."""
    from django.conf import settings
    from kubernetes import client

    from otomat.runtime.backends.kubernetes import manifests

    core = client.CoreV1Api(api_client or api_client_from_settings())
    core.delete_collection_namespaced_persistent_volume_claim(
        settings.K8S_NAMESPACE,
        label_selector=f"{manifests.DATA_OF}={manifests.label_value(instance_id)}",
    )


def on_instance_data_purged(sender, *, instance_id: str, **kwargs) -> None:
    delete_instance_data(instance_id)


def make_backends(on_change: OnChange | None, api_client: Any = None) -> dict[str, Backend]:
    """``{"process": …, "shared": …}`` for the runner's composite backend, from settings."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    from otomat.runtime.backends.kubernetes import manifests
    from otomat.runtime.backends.kubernetes.backend import KubernetesBackend

    if not manifests.NAMESPACE_RE.match(settings.K8S_NAMESPACE):
        raise ImproperlyConfigured(
            f"OTOMAT_K8S_NAMESPACE={settings.K8S_NAMESPACE!r} is not a valid namespace name"
        )
    try:
        manifests.check_image_template(settings.K8S_IMAGE)
    except ValueError as error:
        raise ImproperlyConfigured(f"OTOMAT_K8S_IMAGE: {error}") from None
    api_client = api_client or api_client_from_settings()
    common: dict[str, Any] = {
        "api_client": api_client,
        "namespace": settings.K8S_NAMESPACE,
        "on_change": on_change,
        "image": settings.K8S_IMAGE,
        "image_pull_secret": settings.K8S_IMAGE_PULL_SECRET,
        "cpu_limit": settings.K8S_CPU_LIMIT,
        "crash_loop_restarts": settings.RUNTIME_CRASH_LOOP_EXITS,
    }
    return {
        "process": KubernetesBackend(
            runtime="process",
            data_size=settings.K8S_DATA_SIZE,
            storage_class=settings.K8S_STORAGE_CLASS,
            **common,
        ),
        "shared": KubernetesBackend(
            runtime="shared",
            instances_per_host=settings.SHARED_INSTANCES_PER_HOST,
            host_memory_mb=settings.K8S_HOST_MEMORY_MB,
            **common,
        ),
    }
