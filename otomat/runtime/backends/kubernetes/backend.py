"""The ``kubernetes`` backend: instances run as Deployments in a cluster.

``KubernetesBackend(runtime="process")`` runs each instance as a Secret + Deployment of its own;
``KubernetesBackend(runtime="shared")`` packs instances of one product version into host
Deployments (``instances_per_host`` each) whose Secret lists them. Both:

* **apply** with server-side apply under one field manager (``otomat``). A 409 conflict (a person
  or another tool took over a field the backend sets, e.g. ``kubectl scale``) is logged with the
  fields and their owner, and the apply is repeated with ``force`` — the runner's desired state
  wins, as a controller's should;
* **observe** by one watch on the pods carrying their ``otomat.io/runtime`` label (re-listed on
  410 Gone or a dropped connection): pod readiness → RUNNING, a container that exited →
  BACKOFF with its exit code and ``restartCount`` → ``restarts``; a permanent exit code (78
  invalid token, 3 broken entry point) or ``crash_loop_restarts`` restarts → FAILED with the
  previous container's last log lines, and the Deployment is scaled to 0 so the cluster stops
  restarting it until the next ``ensure_running``;
* **logs**: every ``log_poll_seconds`` the logs of up to ``log_reads_per_poll`` running pods
  (in turn; ``timestamps=true``) are read back and appended to the instance's ``log_path``
  (scrubbed of its secrets), so the instance page and the API read them as for the other
  backends; a crash also copies the previous container's log at once;
* **clean up by label**: ``ensure_stopped`` deletes every Deployment and Secret labelled
  ``otomat.io/instance=<id>`` (a host's Secret drops the instance's key, and the host goes when
  its last instance does); ``purge()`` deletes everything labelled ``otomat.io/managed-by=otomat``
  of this runtime.

The cluster keeps running bots while the runner restarts: ``open()`` adopts the Deployments it
finds (their generation label) and ``close()`` leaves them running unless ``stop_on_close``.
Every call of the (synchronous) client runs in a worker thread; the watch runs in its own.
A backend never touches the database.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from otomat.runtime.backends.base import ActualState, InstanceSpec, OnChange, Phase
from otomat.runtime.backends.kubernetes import manifests as m
from otomat.runtime.logs import LogWriter, secret_values

log = logging.getLogger("otomat.runtime.kubernetes")

APPLY = "application/apply-patch+yaml"
PERMANENT_EXIT_CODES = {78: "the bot token was refused", 3: "the entry point cannot be loaded"}
FAILED_LOG_LINES = 20
FATAL_MARK = "[otomat] fatal:"  # podmain's line for a shared host's per-instance fatal event


class KubernetesError(RuntimeError):
    """An API call failed; the message carries no response body."""


def _now() -> datetime:
    return datetime.now(UTC)


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class _Inst:
    instance_id: str
    state: ActualState
    spec: InstanceSpec | None = None  # None for an adopted instance until ensure_running
    wanted: bool = True
    given_up: bool = False  # FAILED: scaled to 0 until the next ensure_running
    host: str | None = None  # shared runtime: the host Deployment carrying it
    log_marks: dict[str, str] = field(default_factory=dict)  # pod/restart → last timestamp
    writer: LogWriter | None = None


@dataclass
class _Host:
    name: str
    key: tuple[str, str, str]  # product slug, version, entry
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → its add command
    template: InstanceSpec | None = None  # the last member's spec: image, entry, product
    labels: dict[str, str] = field(default_factory=dict)  # an adopted host's, until a template
    given_up: bool = False


class KubernetesBackend:
    """Instances as Deployments in one namespace (see the module docstring)."""

    name = "kubernetes"

    def __init__(
        self,
        *,
        api_client: Any,
        namespace: str,
        on_change: OnChange | None = None,
        runtime: str = "process",
        image: str = "otomat-product:{slug}-{version}",
        image_pull_secret: str = "",
        cpu_limit: str = "1",
        instances_per_host: int = 500,
        host_memory_mb: int = 2048,
        crash_loop_restarts: int = 5,
        heartbeat_seconds: float = 5.0,
        log_poll_seconds: float = 10.0,
        log_reads_per_poll: int = 50,
        watch_timeout: int = 30,
        stop_on_close: bool = False,
        data_size: str = "1Gi",
        storage_class: str = "",
        health_check: Callable[[InstanceSpec], str] | None = None,
    ) -> None:
        if runtime not in ("process", "shared"):
            raise ValueError(f"runtime must be process or shared, not {runtime!r}")
        if not m.NAMESPACE_RE.match(namespace or ""):
            raise ValueError(
                f"namespace {namespace!r} is not a valid Kubernetes namespace name "
                "(lower-case letters, digits and '-', at most 63)"
            )
        m.check_image_template(image)
        from kubernetes import client

        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.namespace = namespace
        self.runtime = runtime
        self.image = image
        self.image_pull_secret = image_pull_secret
        self.cpu_limit = cpu_limit
        self.instances_per_host = instances_per_host
        self.host_memory_mb = host_memory_mb
        self.crash_loop_restarts = crash_loop_restarts
        self.heartbeat_seconds = heartbeat_seconds
        self.log_poll_seconds = log_poll_seconds
        self.log_reads_per_poll = log_reads_per_poll
        self._log_cursor = ""  # the pod whose log the previous poll read last
        self.watch_timeout = watch_timeout
        self.stop_on_close = stop_on_close
        self.data_size = data_size
        self.storage_class = storage_class
        self._claimed: set[str] = set()  # instances whose data claim this backend applied
        self.health_check = health_check or manifest_health_check
        self._on_change = on_change
        self._instances: dict[str, _Inst] = {}
        self._hosts: dict[str, _Host] = {}
        self._pods: dict[str, dict[str, dict[str, Any]]] = {}  # owner (instance/host) → pods
        self._locks: dict[str, asyncio.Lock] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()
        self._watch_thread: threading.Thread | None = None
        self._watch_response: Any = None
        self._tasks: set[asyncio.Task] = set()
        self._opened = False
        self.conflicts: list[str] = []  # the conflicts the backend forced through (for people)

    @property
    def selector(self) -> str:
        return f"{m.MANAGED_BY}={m.MANAGER},{m.RUNTIME}={self.runtime}"

    # -- the client, in threads -------------------------------------------------------------

    async def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a client method in a thread; the answer as parsed JSON (or text for logs)."""

        def run() -> Any:
            response = method(*args, _preload_content=False, **kwargs)
            data = response.data
            if not data:
                return None
            text = data.decode("utf-8", "replace")
            try:
                return json.loads(text)
            except ValueError:
                return text

        return await asyncio.to_thread(run)

    async def _apply(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply ``body`` under our field manager; on a conflict, log who owns
        what and apply again with ``force``."""
        from kubernetes.client.rest import ApiException

        patch = {
            "Secret": self.core.patch_namespaced_secret,
            "PersistentVolumeClaim": self.core.patch_namespaced_persistent_volume_claim,
            "Deployment": self.apps.patch_namespaced_deployment,
        }[kind]
        name = body["metadata"]["name"]
        kwargs = {"field_manager": m.MANAGER, "_content_type": APPLY}
        try:
            return await self._call(patch, name, self.namespace, body, **kwargs)
        except ApiException as error:
            if error.status != 409:
                if kind == "Secret":  # never let an error body that may echo it reach a log
                    raise KubernetesError(
                        f"applying Secret/{name} failed: {error.status} {error.reason}"
                    ) from None
                raise
            message = _status_message(error)
            self.conflicts.append(f"{kind}/{name}: {message}")
            log.warning("%s/%s: %s; forcing the runner's desired state", kind, name, message)
            return await self._call(patch, name, self.namespace, body, force=True, **kwargs)

    async def _delete_by_label(self, selector: str) -> None:
        await self._call(
            self.apps.delete_collection_namespaced_deployment,
            self.namespace,
            label_selector=selector,
            propagation_policy="Background",
        )
        await self._call(
            self.core.delete_collection_namespaced_secret, self.namespace, label_selector=selector
        )

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        """Adopt what runs in the namespace (its generation label) and start watching pods.
        Raises KubernetesError, naming the API server, when it cannot be reached or refuses."""
        from kubernetes.client.rest import ApiException

        self._loop = asyncio.get_running_loop()
        server = self.api_client.configuration.host
        try:
            deployments = await self._call(
                self.apps.list_namespaced_deployment, self.namespace, label_selector=self.selector
            )
        except ApiException as error:
            raise KubernetesError(
                f"the Kubernetes API at {server} refused to list Deployments in namespace "
                f"{self.namespace!r}: {error.status} {error.reason}"
            ) from None
        except Exception as error:
            raise KubernetesError(
                f"cannot reach the Kubernetes API at {server}: {type(error).__name__}"
            ) from error
        for item in deployments.get("items", []):
            await self._adopt(item)
        pods = await self._call(
            self.core.list_namespaced_pod, self.namespace, label_selector=self.selector
        )
        for pod in pods.get("items", []):
            self._pod_event("ADDED", pod)
        self._stopping.clear()
        rv = pods.get("metadata", {}).get("resourceVersion", "")
        self._watch_thread = threading.Thread(
            target=self._watch_loop, args=(rv,), name=f"k8s-watch-{self.runtime}", daemon=True
        )
        self._watch_thread.start()
        self._background(self._poll_logs())
        self._opened = True

    async def _adopt(self, deployment: dict[str, Any]) -> None:
        labels = deployment["metadata"].get("labels", {})
        template = deployment["spec"]["template"]["metadata"].get("labels", {})
        replicas = deployment["spec"].get("replicas", 1)
        if self.runtime == "process":
            iid = labels.get(m.INSTANCE)
            if not iid:
                return
            generation = int(template.get(m.GENERATION, "0") or 0)
            inst = _Inst(iid, ActualState(iid, Phase.STARTING, generation=generation))
            inst.given_up = replicas == 0
            inst.wanted = replicas > 0
            if inst.given_up:
                inst.state.phase = Phase.FAILED
            self._instances[iid] = inst
            log.info("adopted %s (generation %s)", iid, generation)
            return
        name = deployment["metadata"]["name"]
        secret = await self._call_quiet(self.core.read_namespaced_secret, name, self.namespace)
        host = _Host(name, ("", "", ""), labels=m.host_labels_of(labels))
        host.given_up = replicas == 0
        self._hosts[name] = host
        for key, value in ((secret or {}).get("data") or {}).items():
            try:
                command = json.loads(base64.b64decode(value))
            except ValueError:
                continue
            iid = key.removesuffix(".json")
            host.members[iid] = command  # re-applied as it is until the runner confirms it
            inst = _Inst(
                iid,
                ActualState(iid, Phase.STARTING, generation=int(command.get("generation", 0))),
                host=name,
            )
            self._instances[iid] = inst
        log.info("adopted shared host %s", name)

    async def _call_quiet(self, method: Callable[..., Any], *args: Any) -> Any:
        from kubernetes.client.rest import ApiException

        try:
            return await self._call(method, *args)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def close(self) -> None:
        """Stop watching; the workloads keep running (unless ``stop_on_close``)."""
        if self.stop_on_close and self._opened:
            await self.purge()
        self._stopping.set()
        response = self._watch_response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._watch_thread is not None:
            await asyncio.to_thread(self._watch_thread.join, self.watch_timeout + 2)
        self._opened = False

    async def purge(self) -> None:
        """Delete every Deployment and Secret of this runtime that carries our label."""
        await self._delete_by_label(self.selector)
        for inst in self._instances.values():
            inst.wanted = False
            if inst.state.phase != Phase.STOPPED:
                self._set(inst, phase=Phase.STOPPED)
        self._hosts.clear()

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the interface ----------------------------------------------------------------------

    async def ensure_running(self, spec: InstanceSpec) -> None:
        if self.runtime == "shared":
            await self._ensure_running_shared(spec)
            return
        async with self._lock(spec.instance_id):
            inst = self._instances.get(spec.instance_id)
            if (
                inst is not None
                and inst.wanted
                and not inst.given_up
                and inst.state.generation == spec.generation
            ):
                self._remember(inst, spec)  # the same generation runs: nothing to apply
                return
            restarted = _now().isoformat() if inst is not None and inst.given_up else ""
            await self._claim_data(spec)
            await self._apply(
                "Secret", m.instance_secret(spec, self.namespace, self.heartbeat_seconds)
            )
            await self._apply("Deployment", self._deployment(spec, restarted_at=restarted))
            if inst is None:
                inst = _Inst(spec.instance_id, ActualState(spec.instance_id, Phase.STARTING))
                self._instances[spec.instance_id] = inst
            self._remember(inst, spec)
            inst.wanted, inst.given_up = True, False
            self._set(
                inst,
                phase=Phase.STARTING,
                generation=spec.generation,
                restarts=0,
                last_exit_code=None,
                started_at=None,
                ready_at=None,
                message="",
            )
            self._observe(spec.instance_id)

    def _deployment(
        self, spec: InstanceSpec, *, replicas: int = 1, restarted_at: str = ""
    ) -> dict[str, Any]:
        return m.instance_deployment(
            spec,
            self.namespace,
            image=m.image_for(self.image, spec),
            cpu_limit=self.cpu_limit,
            health_check=self.health_check(spec),
            replicas=replicas,
            restarted_at=restarted_at,
            image_pull_secret=self.image_pull_secret,
            data_claim=m.data_claim_name(spec.instance_id) if self.data_size else "",
        )

    async def _claim_data(self, spec: InstanceSpec) -> None:
        """Apply the instance's data volume claim once per runner (its spec is immutable once
        bound: a changed size setting is logged, not forced)."""
        from kubernetes.client.rest import ApiException

        if not self.data_size or spec.instance_id in self._claimed:
            return
        claim = m.data_claim(spec, self.namespace, self.data_size, self.storage_class)
        try:
            await self._apply("PersistentVolumeClaim", claim)
        except ApiException as error:
            if error.status != 422:
                raise
            log.warning("the data claim of %s was not changed: %s", spec.instance_id, error.reason)
        self._claimed.add(spec.instance_id)

    async def delete_data(self, instance_id: str) -> None:
        """Delete the instance's data volume (for the end of a terminated instance's grace
        period; ``ensure_stopped`` keeps it)."""
        await self._call(
            self.core.delete_collection_namespaced_persistent_volume_claim,
            self.namespace,
            label_selector=f"{m.DATA_OF}={m.label_value(instance_id)}",
        )
        self._claimed.discard(instance_id)

    def _remember(self, inst: _Inst, spec: InstanceSpec) -> None:
        inst.spec = spec
        secrets = secret_values(spec.config)
        if inst.writer is None or inst.writer.path != Path(spec.log_path):
            inst.writer = LogWriter(Path(spec.log_path), secrets=secrets) if spec.log_path else None
        elif inst.writer is not None:
            inst.writer.set_secrets(secrets)

    async def ensure_stopped(self, instance_id: str) -> None:
        if self.runtime == "shared":
            await self._ensure_stopped_shared(instance_id)
            return
        async with self._lock(instance_id):
            inst = self._instances.get(instance_id)
            if inst is None:
                return
            inst.wanted = False
            await self._delete_by_label(f"{m.INSTANCE}={m.label_value(instance_id)}")
            if not self._pods.get(instance_id) and inst.state.phase != Phase.STOPPED:
                self._set(inst, phase=Phase.STOPPED, message="")

    def actual(self) -> dict[str, ActualState]:
        return {iid: dataclasses.replace(inst.state) for iid, inst in self._instances.items()}

    async def prepare(self, specs: list[InstanceSpec]) -> None:
        """Nothing: the cluster pulls images itself (pre-pull them with a DaemonSet if a first
        start must be fast, see docs/kubernetes.md)."""

    # -- the shared runtime -----------------------------------------------------------------

    def _pick_host(self, spec: InstanceSpec) -> _Host:
        key = (spec.product_slug, spec.version, spec.entry or "")
        index = 0
        while True:
            name = m.host_name(spec.product_slug, spec.version, index)
            host = self._hosts.get(name)
            if host is None:
                host = self._hosts[name] = _Host(name, key)
                return host
            if host.key in (key, ("", "", "")) and len(host.members) < self.instances_per_host:
                host.key = key
                return host
            index += 1

    async def _ensure_running_shared(self, spec: InstanceSpec) -> None:
        iid = spec.instance_id
        inst = self._instances.get(iid)
        if inst is not None and inst.host is not None:
            host = self._hosts.get(inst.host) or self._pick_host(spec)
            if host.key not in ((spec.product_slug, spec.version, spec.entry or ""), ("", "", "")):
                await self._ensure_stopped_shared(iid)  # an upgrade moves it to its version's host
                host = self._pick_host(spec)
        else:
            host = self._pick_host(spec)
        async with self._lock(host.name):
            current = host.members.get(iid)
            if (
                inst is not None
                and inst.wanted
                and current is not None
                and current.get("generation") == spec.generation
                and not host.given_up
            ):
                self._remember(inst, spec)
                return
            if inst is not None and inst.host is not None and inst.host not in self._hosts:
                inst.host = None
            host.members[iid] = m.add_command(spec)
            host.template = spec
            restarted = _now().isoformat() if host.given_up else ""
            host.given_up = False
            await self._apply_host(host, restarted_at=restarted)
            if inst is None:
                inst = _Inst(iid, ActualState(iid, Phase.STARTING))
                self._instances[iid] = inst
            inst.host, inst.wanted, inst.given_up = host.name, True, False
            self._remember(inst, spec)
            self._set(inst, phase=Phase.STARTING, generation=spec.generation, message="")
            self._observe(host.name)

    async def _apply_host(self, host: _Host, *, restarted_at: str = "", replicas: int = 1) -> None:
        labels = m.host_labels(host.name, host.template) if host.template else host.labels
        await self._apply("Secret", m.host_secret(host.name, self.namespace, host.members, labels))
        if host.template is None:  # adopted, no member started by this runner yet: the
            return  # Deployment stays as it is
        await self._apply(
            "Deployment",
            m.host_deployment(
                host.name,
                self.namespace,
                host.template,
                image=m.image_for(self.image, host.template),
                cpu_limit=self.cpu_limit,
                memory_mb=self.host_memory_mb,
                replicas=replicas,
                restarted_at=restarted_at,
                image_pull_secret=self.image_pull_secret,
            ),
        )

    async def _ensure_stopped_shared(self, instance_id: str) -> None:
        inst = self._instances.get(instance_id)
        if inst is None:
            return
        host = self._hosts.get(inst.host or "")
        inst.wanted = False
        if host is not None:
            async with self._lock(host.name):
                host.members.pop(instance_id, None)
                if host.members:
                    await self._apply_host(host)
                else:  # the last one: the host goes (clean-up by its label)
                    await self._delete_by_label(f"{m.HOST}={host.name}")
                    self._hosts.pop(host.name, None)
        elif inst.host:
            await self._delete_by_label(f"{m.HOST}={inst.host}")
        inst.host = None
        if inst.state.phase != Phase.STOPPED:
            self._set(inst, phase=Phase.STOPPED, message="")

    # -- observing --------------------------------------------------------------------------

    def _watch_loop(self, resource_version: str) -> None:
        """Runs in its own thread: watch the pods (the client's ``watch=true`` list, read line
        by line), hand every event to the event loop; re-list on 410 Gone or a broken stream.
        ``close()`` shuts the open response down, so it never waits for the server's timeout."""
        from kubernetes.client.rest import ApiException

        rv = resource_version
        while not self._stopping.is_set():
            try:
                response = self.core.list_namespaced_pod(
                    self.namespace,
                    label_selector=self.selector,
                    resource_version=rv or None,
                    timeout_seconds=self.watch_timeout,
                    watch=True,
                    _preload_content=False,
                )
                self._watch_response = response
                try:
                    for event in _json_lines(response):
                        raw = event.get("object") or {}
                        if event.get("type") == "ERROR":
                            raise ApiException(
                                status=raw.get("code", 500), reason=raw.get("reason")
                            )
                        rv = raw.get("metadata", {}).get("resourceVersion", rv)
                        if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                            self._hand_over(self._pod_event, event["type"], raw)
                finally:
                    self._watch_response = None
                    response.release_conn()
            except ApiException as error:
                if self._stopping.is_set():
                    return
                if error.status != 410:  # 410: too old; list again and go on from there
                    log.warning("watching pods failed (%s); retrying", error.status)
                    self._stopping.wait(1.0)
                rv = self._relist()
            except Exception:
                if self._stopping.is_set():
                    return
                log.warning("the pod watch broke; listing again", exc_info=True)
                self._stopping.wait(1.0)
                rv = self._relist()

    def _relist(self) -> str:
        try:
            response = self.core.list_namespaced_pod(
                self.namespace, label_selector=self.selector, _preload_content=False
            )
            listed = json.loads(response.data)
        except Exception:
            log.warning("listing pods failed", exc_info=True)
            return ""
        self._hand_over(self._resync, listed.get("items", []))
        return listed.get("metadata", {}).get("resourceVersion", "")

    def _hand_over(self, function: Callable[..., None], *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(function, *args)

    def _owner(self, pod: dict[str, Any]) -> str | None:
        labels = pod.get("metadata", {}).get("labels", {})
        return labels.get(m.INSTANCE) if self.runtime == "process" else labels.get(m.HOST)

    def _resync(self, pods: list[dict[str, Any]]) -> None:
        seen = {name for owner in self._pods.values() for name in owner}
        listed = {pod["metadata"]["name"] for pod in pods}
        for owned in list(self._pods.values()):
            for name in list(owned):
                if name not in listed:
                    self._pod_event("DELETED", owned[name])
        for pod in pods:
            self._pod_event("MODIFIED" if pod["metadata"]["name"] in seen else "ADDED", pod)

    def _pod_event(self, kind: str, pod: dict[str, Any]) -> None:
        owner = self._owner(pod)
        if owner is None:
            return
        name = pod["metadata"]["name"]
        owned = self._pods.setdefault(owner, {})
        if kind == "DELETED":
            owned.pop(name, None)
            if not owned:
                self._pods.pop(owner, None)
        else:
            owned[name] = pod
        self._observe(owner)

    def _observe(self, owner: str) -> None:
        """Recompute the phase of the instance (or of every instance of the host) ``owner``."""
        if self.runtime == "process":
            inst = self._instances.get(owner)
            if inst is not None:
                self._observe_instance(inst, list(self._pods.get(owner, {}).values()), None)
            return
        host = self._hosts.get(owner)
        pods = list(self._pods.get(owner, {}).values())
        for inst in list(self._instances.values()):
            if inst.host == owner:
                self._observe_instance(inst, pods, host)

    def _observe_instance(
        self, inst: _Inst, pods: list[dict[str, Any]], host: _Host | None
    ) -> None:
        if not inst.wanted:
            if not pods and inst.state.phase != Phase.STOPPED:
                self._set(inst, phase=Phase.STOPPED, message="")
            return
        if inst.given_up:
            return
        if self.runtime == "process":
            pods = [
                p
                for p in pods
                if p["metadata"].get("labels", {}).get(m.GENERATION) == str(inst.state.generation)
            ]
        if not pods:
            return  # the old generation's pod is going; the new one is not there yet
        pod = max(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""))
        status = pod.get("status", {})
        container = next(
            (c for c in status.get("containerStatuses") or [] if c.get("name") == m.CONTAINER),
            (status.get("containerStatuses") or [{}])[0],
        )
        restarts = int(container.get("restartCount", 0))
        terminated = (container.get("lastState") or {}).get("terminated") or {}
        exit_code = terminated.get("exitCode")
        state = container.get("state") or {}
        pod_name = pod["metadata"]["name"]
        changes: dict[str, Any] = {"restarts": restarts, "last_exit_code": exit_code}
        running = state.get("running") or {}
        if container.get("ready"):
            ready = next((c for c in status.get("conditions", []) if c.get("type") == "Ready"), {})
            changes.update(
                phase=Phase.RUNNING,
                started_at=_parse_time(running.get("startedAt")),
                ready_at=_parse_time(ready.get("lastTransitionTime")) or _now(),
                last_heartbeat=_now(),
                message=f"pod {pod_name} is ready",
            )
        elif restarts > 0 and not running:
            permanent = PERMANENT_EXIT_CODES.get(exit_code)
            if permanent or restarts >= self.crash_loop_restarts:
                why = permanent or f"{restarts} restarts (crash loop)"
                self._give_up(inst, host, pod, restarts, exit_code, why)
                return
            reason = (state.get("waiting") or {}).get("reason", "restarting")
            changes.update(
                phase=Phase.BACKOFF,
                message=f"container exited (code {exit_code}); restart #{restarts} ({reason})",
            )
            self._background(self._copy_previous_log(inst, pod_name, restarts))
        else:
            changes.update(phase=Phase.STARTING)
        if any(getattr(inst.state, k) != v for k, v in changes.items() if k != "last_heartbeat"):
            self._set(inst, **changes)

    def _give_up(self, inst, host, pod, restarts, exit_code, why: str) -> None:
        """FAILED: the cluster would restart it for ever; scale it to 0 until a person starts
        it again (``ensure_running``), with the previous container's last lines as the reason."""
        targets = [i for i in self._instances.values() if host and i.host == host.name and i.wanted]
        targets = targets or [inst]
        for target in targets:
            target.given_up = True
        if host is not None:
            host.given_up = True
        self._background(
            self._scale_down_failed(
                targets, host, pod["metadata"]["name"], restarts, exit_code, why
            )
        )

    async def _scale_down_failed(self, targets, host, pod_name, restarts, exit_code, why) -> None:
        lines = await self._copy_previous_log(targets[0], pod_name, restarts)
        message = why + ("\n" + "\n".join(lines[-FAILED_LOG_LINES:]) if lines else "")
        for target in targets:
            if target.writer is not None:
                message = target.writer.scrub(message)
            self._set(
                target,
                phase=Phase.FAILED,
                restarts=restarts,
                last_exit_code=exit_code,
                message=message,
            )
        try:
            if host is not None:
                await self._apply_host(host, replicas=0)
            elif targets[0].spec is not None:
                await self._apply("Deployment", self._deployment(targets[0].spec, replicas=0))
        except Exception:
            log.exception("scaling the failed %s down did not work", targets[0].instance_id)

    def _set(self, inst: _Inst, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(inst.state, key, value)
        if self._on_change is not None:
            try:
                self._on_change(dataclasses.replace(inst.state))
            except Exception:
                log.exception("on_change callback failed for %s", inst.instance_id)

    # -- logs -------------------------------------------------------------------------------

    async def _read_log(self, pod: str, *, previous: bool = False) -> list[tuple[str, str]]:
        from kubernetes.client.rest import ApiException

        try:
            text = await self._call(
                self.core.read_namespaced_pod_log,
                pod,
                self.namespace,
                container=m.CONTAINER,
                timestamps=True,
                previous=previous,
                tail_lines=1000,
            )
        except ApiException as error:
            if error.status in (400, 404):  # no such pod / no previous container
                return []
            raise
        if not isinstance(text, str):
            text = "" if text is None else json.dumps(text)
        lines = []
        for line in text.splitlines():
            stamp, _, rest = line.partition(" ")
            lines.append((_stamp_key(stamp), rest))
        return lines

    def _write(self, inst: _Inst, mark: str, lines: list[tuple[str, str]]) -> list[str]:
        last = inst.log_marks.get(mark, "")
        fresh = [(ts, text) for ts, text in lines if ts > last]
        if not fresh:
            return []
        inst.log_marks[mark] = fresh[-1][0]
        texts = [text for _, text in fresh]
        if self.runtime == "shared":  # a host's log: "[<instance id>] line" per instance
            prefix = f"[{inst.instance_id}] "
            texts = [t.removeprefix(prefix) for t in texts if t.startswith(prefix)]
        if inst.writer is not None and texts:
            inst.writer.write(texts)
        return texts

    async def _copy_previous_log(self, inst: _Inst, pod: str, restarts: int) -> list[str]:
        lines = await self._read_log(pod, previous=True)
        return self._write(inst, f"{pod}#{restarts - 1}", lines)

    async def _poll_logs(self) -> None:
        while True:
            await asyncio.sleep(self.log_poll_seconds)
            with contextlib.suppress(Exception):
                await self.poll_logs_once()

    async def poll_logs_once(self) -> None:
        """Read the current container's log of up to ``log_reads_per_poll`` running pods (in
        turn, by name, from where the previous poll stopped) into their instances' logs — a
        bounded load on the API server however many pods there are."""
        by_host: dict[str, list[_Inst]] = {}
        for inst in self._instances.values():
            if inst.host is not None and inst.wanted:
                by_host.setdefault(inst.host, []).append(inst)
        candidates: list[tuple[str, dict[str, Any], list[_Inst]]] = []
        for owner, pods in self._pods.items():
            if self.runtime == "process":
                inst = self._instances.get(owner)
                insts = [inst] if inst is not None and inst.wanted else []
            else:
                insts = by_host.get(owner, [])
            for name, pod in pods.items():
                statuses = pod.get("status", {}).get("containerStatuses") or [{}]
                if insts and (statuses[0].get("state") or {}).get("running"):
                    candidates.append((name, pod, insts))
        candidates.sort(key=lambda c: c[0])
        later = [c for c in candidates if c[0] > self._log_cursor]
        turn = (later + [c for c in candidates if c[0] <= self._log_cursor])[
            : self.log_reads_per_poll
        ]
        for name, pod, insts in turn:
            self._log_cursor = name
            statuses = pod.get("status", {}).get("containerStatuses") or [{}]
            restarts = int(statuses[0].get("restartCount", 0))
            lines = await self._read_log(name)
            for inst in insts:
                written = self._write(inst, f"{name}#{restarts}", lines)
                fatal = [t for t in written if t.startswith(FATAL_MARK)]
                if fatal and self.runtime == "shared":
                    await self._fail_member(inst, fatal[-1].removeprefix(FATAL_MARK).strip())

    async def _fail_member(self, inst: _Inst, reason: str) -> None:
        """A shared host dropped one instance (``fatal``: a refused token, a broken router):
        FAILED for it alone, and out of the host's Secret so a host restart does not retry it."""
        host = self._hosts.get(inst.host or "")
        inst.given_up = True
        why = {"invalid_token": PERMANENT_EXIT_CODES[78]}.get(reason, reason or "fatal")
        self._set(inst, phase=Phase.FAILED, message=why)
        if host is not None:
            async with self._lock(host.name):
                if host.members.pop(inst.instance_id, None) is not None and host.members:
                    await self._apply_host(host)
                elif not host.members:
                    await self._delete_by_label(f"{m.HOST}={host.name}")
                    self._hosts.pop(host.name, None)


def _json_lines(response: Any):
    """The JSON objects of a streamed watch response, one per line."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)
    if buffer.strip():
        yield json.loads(buffer)


def _stamp_key(stamp: str) -> str:
    """An RFC 3339 timestamp that sorts as text: the kubelet trims trailing zeros of the
    nanoseconds (``.5Z`` comes after ``.49Z``), so pad the fraction to nine digits."""
    seconds, _, fraction = stamp.rstrip("Z").partition(".")
    return f"{seconds}.{fraction.ljust(9, '0')[:9]}"


def _status_message(error: Any) -> str:
    try:
        return json.loads(error.body).get("message", str(error))
    except (TypeError, ValueError):
        return str(error.reason)


def manifest_health_check(spec: InstanceSpec) -> str:
    """The product version's ``[health].check`` from its manifest (``process`` when absent or
    unreadable)."""
    return _health_check(str(spec.source_dir))


@functools.lru_cache(maxsize=256)
def _health_check(source_dir: str) -> str:
    from otomat.catalog.manifest import DEFAULT_HEALTH_CHECK, parse_manifest

    try:
        return parse_manifest(Path(source_dir)).health_check
    except Exception:
        return DEFAULT_HEALTH_CHECK
