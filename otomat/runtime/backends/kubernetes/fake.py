"""A small fake Kubernetes API server that speaks the real REST protocol, for tests.

It serves, over plain HTTP on 127.0.0.1, the part of the API the Kubernetes backend uses —
Secrets, Pods (with ``/log``) and PersistentVolumeClaims in ``/api/v1`` and Deployments in ``/apis/apps/v1`` — so the
official ``kubernetes`` client talks to it exactly as it would to a cluster:

* **create** (POST; 409 ``AlreadyExists``), **read** (GET; 404 ``NotFound`` as a ``Status``),
  **replace** (PUT; 409 ``Conflict`` when ``metadata.resourceVersion`` is stale), **merge patch**
  (``application/merge-patch+json``; ``strategic-merge-patch+json`` is treated the same),
  **delete** and **delete collection** (with ``labelSelector``), **list** (``labelSelector``:
  ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, comma-separated; ``fieldSelector`` on
  ``metadata.name``).
* **server-side apply** (PATCH ``application/apply-patch+yaml`` with ``fieldManager``, ``force``):
  creates a missing object; tracks which manager owns which field (``metadata.managedFields``,
  ``FieldsV1``); refuses with 409 (``Apply failed with N conflict(s): conflict with "kubectl":
  .spec.replicas``) a change to a field another manager owns unless ``force=true``, which takes
  it over; removes fields the manager applied before and no longer applies. Lists are atomic (a
  simplification: the real server merges ``containers`` by name).
* **resource versions**: one counter for the whole store, bumped on every change (a no-op apply
  changes nothing); ``metadata.generation`` follows spec changes.
* **watch** (``?watch=true``): chunked JSON lines ``{"type": ADDED|MODIFIED|DELETED, "object"}``,
  from ``resourceVersion`` (410 ``Expired`` as an ``ERROR`` event if it was compacted away) or,
  without one, the current objects as ADDED first; ends after ``timeoutSeconds``.

A minimal **Deployment controller** runs inside: pods are owned directly by their Deployment
(no ReplicaSet objects), named ``<deployment>-<template hash>-<suffix>``, carry the template's
labels plus ``pod-template-hash``; a template change rolls them (``maxSurge: 0`` deletes the old
pod first, otherwise the old one goes once the new one is ready); ``replicas`` is honoured;
deleting a Deployment deletes its pods; the Deployment's ``status`` follows its pods.

There is no kubelet: tests play it with :meth:`FakeKubernetes.start_pod` (Running and Ready),
:meth:`FakeKubernetes.crash_pod` (the container exits, ``restartCount`` + 1, CrashLoopBackOff,
its log moved to ``previous``) and :meth:`FakeKubernetes.write_log`; ``auto_start=True`` makes
every new pod Running and Ready at once.

Not modelled (see docs/kubernetes.md): authentication, admission and validation beyond names,
ReplicaSets, scheduling, graceful termination, finalizers, quotas, the strategic merge of lists.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

RESOURCES = {
    # plural: (apiVersion, kind, path prefix)
    "secrets": ("v1", "Secret", "/api/v1"),
    "pods": ("v1", "Pod", "/api/v1"),
    "persistentvolumeclaims": ("v1", "PersistentVolumeClaim", "/api/v1"),
    "deployments": ("apps/v1", "Deployment", "/apis/apps/v1"),
}
_PATH = re.compile(
    r"^(?P<prefix>/api/v1|/apis/apps/v1)/namespaces/(?P<ns>[a-z0-9-]+)/(?P<res>secrets|pods|persistentvolumeclaims|deployments)"
    r"(?:/(?P<name>[a-z0-9.-]+)(?:/(?P<sub>log))?)?$"
)
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_NOT_SPEC = ("apiVersion", "kind", "status")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, causes: list | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.causes = code, reason, message, causes or []

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.causes:
            body["details"] = {"causes": self.causes}
        return body


# --- label selectors -------------------------------------------------------------------------


def parse_selector(text: str) -> list[tuple[str, str, str | None]]:
    """``a=b,c!=d,e,!f`` → [(op, key, value)]. Set-based selectors (``in``) are refused."""
    terms: list[tuple[str, str, str | None]] = []
    for raw in filter(None, (part.strip() for part in (text or "").split(","))):
        if " in " in raw or " notin " in raw or "(" in raw:
            raise ApiError(400, "BadRequest", f"unsupported selector {raw!r} in the fake")
        if "!=" in raw:
            key, value = raw.split("!=", 1)
            terms.append(("!=", key.strip(), value.strip()))
        elif "==" in raw or "=" in raw:
            key, value = re.split("==?", raw, maxsplit=1)
            terms.append(("=", key.strip(), value.strip()))
        elif raw.startswith("!"):
            terms.append(("!", raw[1:].strip(), None))
        else:
            terms.append(("exists", raw, None))
    return terms


def selector_matches(terms: list[tuple[str, str, str | None]], labels: dict[str, str]) -> bool:
    for op, key, value in terms:
        if op == "=" and labels.get(key) != value:
            return False
        if op == "!=" and labels.get(key) == value:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "!" and key in labels:
            return False
    return True


# --- field ownership (server-side apply) -----------------------------------------------------


def leaf_paths(obj: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every leaf of ``obj`` (dicts recurse; lists and scalars are leaves) with its value."""
    if isinstance(obj, dict) and obj:
        out: dict[tuple[str, ...], Any] = {}
        for key, value in obj.items():
            out.update(leaf_paths(value, (*prefix, key)))
        return out
    return {prefix: obj} if prefix else {}


def _applied_fields(body: dict[str, Any]) -> dict[tuple[str, ...], Any]:
    fields = leaf_paths({k: v for k, v in body.items() if k not in _NOT_SPEC})
    for identity in ("name", "namespace", "resourceVersion", "managedFields", "uid"):
        fields.pop(("metadata", identity), None)
    return fields


def _get(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


def _set(obj: dict, path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        if not isinstance(obj.get(key), dict):
            obj[key] = {}
        obj = obj[key]
    obj[path[-1]] = copy.deepcopy(value)


def _remove(obj: dict, path: tuple[str, ...]) -> None:
    parents = []
    for key in path[:-1]:
        if not isinstance(obj.get(key), dict):
            return
        parents.append((obj, key))
        obj = obj[key]
    obj.pop(path[-1], None)
    for parent, key in reversed(parents):  # prune emptied maps
        if parent[key] == {}:
            del parent[key]


def _fields_v1(paths: set[tuple[str, ...]]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return tree


def _dotted(path: tuple[str, ...]) -> str:
    return "." + ".".join(path)


_MISSING = object()


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- the store -------------------------------------------------------------------------------


class FakeKubernetes:
    """The fake API server. ``with FakeKubernetes() as kube: kube.url …``."""

    def __init__(self, *, auto_start: bool = False) -> None:
        self.auto_start = auto_start
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.owners: dict[tuple[str, str, str], dict[str, set[tuple[str, ...]]]] = {}
        self.operations: dict[tuple[str, str, str], dict[str, str]] = {}
        self.logs: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.previous_logs: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.events: list[tuple[int, str, str, str, dict[str, Any]]] = []
        self.compacted_before = 0  # watch from an older resourceVersion → 410
        self.requests: list[tuple[str, str, str]] = []  # (method, path, content type)
        self.bodies: list[tuple[str, str, bytes]] = []  # (method, path, raw request body)
        self.rv = 0
        self.cond = threading.Condition(threading.RLock())
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.stopping = False
        self._reconciling = False

    # lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeKubernetes:
        fake = self

        class Handler(_Handler):
            kube = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeKubernetes:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self):
        """An official ``kubernetes.client.ApiClient`` pointed at this server."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)

    # helpers for tests ---------------------------------------------------------------------

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.cond:
            obj = self.objects.get((resource, namespace, name))
            return self._render(resource, namespace, name) if obj else None

    def list(self, resource: str, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        terms = parse_selector(selector)
        with self.cond:
            return [
                self._render(*key)
                for key, obj in sorted(self.objects.items())
                if key[0] == resource
                and key[1] == namespace
                and selector_matches(terms, obj["metadata"].get("labels", {}))
            ]

    def everything(self, namespace: str, selector: str) -> list[str]:
        """``kind/name`` of every object in ``namespace`` matching ``selector``."""
        return [
            f"{RESOURCES[res][1]}/{obj['metadata']['name']}"
            for res in RESOURCES
            for obj in self.list(res, namespace, selector)
        ]

    def start_pod(self, namespace: str, name: str, *, ready: bool = True) -> None:
        """Play the kubelet: the pod's container runs (and passes its readiness probe)."""
        with self.cond:
            pod = self._pod(namespace, name)
            stamp = now_iso()
            status = pod["status"]
            status["phase"] = "Running"
            status.setdefault("startTime", stamp)
            for cs in status["containerStatuses"]:
                cs["state"] = {"running": {"startedAt": stamp}}
                cs["ready"] = ready
                cs["started"] = True
            status["conditions"] = [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": stamp,
                }
            ]
            self._changed("pods", namespace, name)
            self._reconcile_owner(pod)

    def crash_pod(
        self, namespace: str, name: str, *, exit_code: int = 1, reason: str = "Error"
    ) -> None:
        """Play the kubelet: the container exits; it will be restarted (CrashLoopBackOff)."""
        with self.cond:
            pod = self._pod(namespace, name)
            stamp = now_iso()
            for cs in pod["status"]["containerStatuses"]:
                started = (cs.get("state", {}).get("running") or {}).get("startedAt", stamp)
                cs["lastState"] = {
                    "terminated": {
                        "exitCode": exit_code,
                        "reason": reason,
                        "startedAt": started,
                        "finishedAt": stamp,
                    }
                }
                cs["state"] = {
                    "waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting"}
                }
                cs["restartCount"] = cs.get("restartCount", 0) + 1
                cs["ready"] = False
            pod["status"]["conditions"] = [
                {"type": "Ready", "status": "False", "lastTransitionTime": stamp}
            ]
            key = (namespace, name)
            self.previous_logs[key] = self.logs.pop(key, [])
            self._changed("pods", namespace, name)
            self._reconcile_owner(pod)

    def write_log(self, namespace: str, pod: str, *lines: str) -> None:
        with self.cond:
            self._pod(namespace, pod)
            self.logs.setdefault((namespace, pod), []).extend(
                (datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), line) for line in lines
            )

    def pods_of(self, namespace: str, selector: str) -> list[str]:
        return [p["metadata"]["name"] for p in self.list("pods", namespace, selector)]

    def _pod(self, namespace: str, name: str) -> dict[str, Any]:
        pod = self.objects.get(("pods", namespace, name))
        if pod is None:
            raise KeyError(f"no pod {namespace}/{name}")
        return pod

    # the API -------------------------------------------------------------------------------

    def _bump(self, obj: dict[str, Any]) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)

    def _event(self, kind: str, resource: str, namespace: str, obj: dict[str, Any]) -> None:
        self.events.append((self.rv, kind, resource, namespace, obj))
        self.cond.notify_all()

    def _changed(self, resource: str, namespace: str, name: str) -> None:
        obj = self.objects[(resource, namespace, name)]
        self._bump(obj)
        self._event("MODIFIED", resource, namespace, self._render(resource, namespace, name))

    def _render(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        key = (resource, namespace, name)
        obj = copy.deepcopy(self.objects[key])
        managed = [
            {
                "manager": manager,
                "operation": self.operations.get(key, {}).get(manager, "Update"),
                "apiVersion": RESOURCES[resource][0],
                "fieldsType": "FieldsV1",
                "fieldsV1": _fields_v1(paths),
            }
            for manager, paths in sorted(self.owners.get(key, {}).items())
            if paths
        ]
        if managed:
            obj["metadata"]["managedFields"] = managed
        return obj

    def _check_body(self, resource: str, namespace: str, body: Any, name: str | None) -> str:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body is not an object")
        api_version, kind, _ = RESOURCES[resource]
        if body.get("kind", kind) != kind or body.get("apiVersion", api_version) != api_version:
            raise ApiError(400, "BadRequest", f"the body is not a {api_version} {kind}")
        meta = body.get("metadata") or {}
        body_name = meta.get("name") or name
        if not body_name or not NAME_RE.match(body_name):
            raise ApiError(422, "Invalid", f"{kind} name {body_name!r} is not a valid DNS name")
        if name is not None and body_name != name:
            raise ApiError(400, "BadRequest", "the name in the body does not match the URL")
        if meta.get("namespace", namespace) != namespace:
            raise ApiError(400, "BadRequest", "the namespace in the body does not match the URL")
        for key, value in (meta.get("labels") or {}).items():
            if not isinstance(value, str) or len(value) > 63 or len(key.split("/")[-1]) > 63:
                raise ApiError(422, "Invalid", f"label {key!r}: {value!r} is not valid")
        return body_name

    def _normalise(self, resource: str, obj: dict[str, Any]) -> None:
        api_version, kind, _ = RESOURCES[resource]
        obj["apiVersion"], obj["kind"] = api_version, kind
        if resource == "secrets":
            data = obj.setdefault("data", {}) or {}
            for key, value in (obj.pop("stringData", None) or {}).items():
                data[key] = base64.b64encode(value.encode()).decode()
            obj["data"] = data
            obj.setdefault("type", "Opaque")

    def create(self, resource: str, namespace: str, body: dict, manager: str = "") -> dict:
        name = self._check_body(resource, namespace, body, None)
        key = (resource, namespace, name)
        if key in self.objects:
            raise ApiError(
                409, "AlreadyExists", f'{resource} "{name}" already exists', [{"field": name}]
            )
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        meta.update(
            name=name,
            namespace=namespace,
            uid=str(uuid.uuid4()),
            creationTimestamp=now_iso(),
            generation=1,
        )
        meta.pop("managedFields", None)
        self._normalise(resource, obj)
        self.objects[key] = obj
        self.owners[key] = {manager or "unknown": set(_applied_fields(obj))}
        self.operations[key] = {manager or "unknown": "Update"}
        self._bump(obj)
        self._event("ADDED", resource, namespace, self._render(*key))
        self._after_change(resource, namespace, name)
        return self._render(*key)

    def replace(self, resource: str, namespace: str, name: str, body: dict, manager: str = ""):
        self._check_body(resource, namespace, body, name)
        key = (resource, namespace, name)
        current = self.objects.get(key)
        if current is None:
            raise ApiError(404, "NotFound", f'{resource} "{name}" not found')
        wanted_rv = (body.get("metadata") or {}).get("resourceVersion")
        if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {resource} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
            )
        obj = copy.deepcopy(body)
        obj.setdefault("metadata", {})
        for kept in ("name", "namespace", "uid", "creationTimestamp", "generation"):
            obj["metadata"][kept] = current["metadata"][kept]
        obj["metadata"].pop("managedFields", None)
        if "status" in current:
            obj["status"] = current["status"]
        self._normalise(resource, obj)
        fields = set(_applied_fields(obj))
        owners = self.owners.setdefault(key, {})
        for paths in owners.values():
            paths &= fields
        owners.setdefault(manager or "unknown", set()).update(
            path
            for path, value in _applied_fields(obj).items()
            if _get(current, path) != value or not any(path in p for p in owners.values())
        )
        self.operations.setdefault(key, {}).setdefault(manager or "unknown", "Update")
        return self._store(resource, namespace, name, current, obj)

    def patch(self, resource: str, namespace: str, name: str, patch: Any, manager: str = ""):
        key = (resource, namespace, name)
        current = self.objects.get(key)
        if current is None:
            raise ApiError(404, "NotFound", f'{resource} "{name}" not found')
        if not isinstance(patch, dict):
            raise ApiError(400, "BadRequest", "a merge patch must be an object")
        obj = merge_patch(current, patch)
        self._normalise(resource, obj)
        owners = self.owners.setdefault(key, {})
        touched = set(leaf_paths(patch))
        for paths in owners.values():
            paths -= touched
        owners.setdefault(manager or "unknown", set()).update(
            p for p in touched if _get(obj, p) is not _MISSING
        )
        self.operations.setdefault(key, {}).setdefault(manager or "unknown", "Update")
        return self._store(resource, namespace, name, current, obj)

    def apply(
        self, resource: str, namespace: str, name: str, body: Any, manager: str, force: bool
    ) -> dict[str, Any]:
        if not manager:
            raise ApiError(
                400,
                "BadRequest",
                "PATCH requests with apply content type require fieldManager",
            )
        self._check_body(resource, namespace, body, name)
        if not body.get("apiVersion") or not body.get("kind"):
            raise ApiError(400, "BadRequest", "apply needs apiVersion and kind")
        key = (resource, namespace, name)
        applied = _applied_fields(body)
        if resource == "secrets":  # stringData is write-only: own the data keys it becomes
            normalised = copy.deepcopy(body)
            self._normalise(resource, normalised)
            applied = _applied_fields(normalised)
        current = self.objects.get(key)
        if current is None:
            created = self.create(resource, namespace, body, manager)
            self.owners[key] = {manager: set(applied)}
            self.operations[key] = {manager: "Apply"}
            return created
        owners = self.owners.setdefault(key, {})
        conflicts = sorted(
            (path, other)
            for other, paths in owners.items()
            if other != manager
            for path in paths
            if path in applied and _get(current, path) != applied[path]
        )
        if conflicts and not force:
            names = ", ".join(f'conflict with "{o}": {_dotted(p)}' for p, o in conflicts)
            raise ApiError(
                409,
                "Conflict",
                f"Apply failed with {len(conflicts)} conflict(s): {names}",
                [
                    {
                        "reason": "FieldManagerConflict",
                        "message": f'conflict with "{o}"',
                        "field": _dotted(p),
                    }
                    for p, o in conflicts
                ],
            )
        obj = copy.deepcopy(current)
        previously = owners.get(manager, set())
        for path in previously - set(applied):
            if not any(path in paths for other, paths in owners.items() if other != manager):
                _remove(obj, path)
        for path, value in applied.items():
            _set(obj, path, value)
        for other, paths in owners.items():
            if other != manager:
                paths -= set(applied)
        owners[manager] = set(applied)
        self.operations.setdefault(key, {})[manager] = "Apply"
        return self._store(resource, namespace, name, current, obj)

    def _store(self, resource, namespace, name, current, obj) -> dict[str, Any]:
        key = (resource, namespace, name)
        obj["metadata"].pop("managedFields", None)
        strip = ("resourceVersion", "generation")
        before = {k: v for k, v in current.items()}
        before_meta = {k: v for k, v in current["metadata"].items() if k not in strip}
        after_meta = {k: v for k, v in obj["metadata"].items() if k not in strip}
        if {**before, "metadata": before_meta} == {**obj, "metadata": after_meta}:
            return self._render(*key)  # a no-op: no new resourceVersion, no event
        if current.get("spec") != obj.get("spec"):
            obj["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        self.objects[key] = obj
        self._bump(obj)
        self._event("MODIFIED", resource, namespace, self._render(*key))
        self._after_change(resource, namespace, name)
        return self._render(*key)

    def delete(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        key = (resource, namespace, name)
        obj = self.objects.get(key)
        if obj is None:
            raise ApiError(404, "NotFound", f'{resource} "{name}" not found')
        rendered = self._render(*key)
        del self.objects[key]
        self.owners.pop(key, None)
        self.operations.pop(key, None)
        self.rv += 1
        rendered["metadata"]["resourceVersion"] = str(self.rv)
        self._event("DELETED", resource, namespace, rendered)
        if resource == "deployments":  # the garbage collector: pods it owns go too
            uid = obj["metadata"]["uid"]
            for pod in self._owned_pods(namespace, uid):
                self.delete("pods", namespace, pod["metadata"]["name"])
        if resource == "pods":
            self.logs.pop((namespace, name), None)
            self.previous_logs.pop((namespace, name), None)
            self._reconcile_owner(obj)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}

    def delete_collection(self, resource: str, namespace: str, selector: str) -> dict[str, Any]:
        terms = parse_selector(selector)
        names = [
            key[2]
            for key, obj in list(self.objects.items())
            if key[0] == resource
            and key[1] == namespace
            and selector_matches(terms, obj["metadata"].get("labels", {}))
        ]
        for name in names:
            if (resource, namespace, name) in self.objects:
                self.delete(resource, namespace, name)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}

    def list_objects(self, resource: str, namespace: str, query: dict[str, str]) -> dict:
        terms = parse_selector(query.get("labelSelector", ""))
        field = query.get("fieldSelector", "")
        name_is = None
        if field:
            match = re.fullmatch(r"metadata\.name==?([a-z0-9.-]+)", field)
            if not match:
                raise ApiError(400, "BadRequest", f"unsupported field selector {field!r}")
            name_is = match.group(1)
        items = [
            self._render(*key)
            for key, obj in sorted(self.objects.items())
            if key[0] == resource
            and key[1] == namespace
            and (name_is is None or key[2] == name_is)
            and selector_matches(terms, obj["metadata"].get("labels", {}))
        ]
        api_version, kind, _ = RESOURCES[resource]
        return {
            "kind": f"{kind}List",
            "apiVersion": api_version,
            "metadata": {"resourceVersion": str(self.rv)},
            "items": items,
        }

    def pod_log(self, namespace: str, name: str, query: dict[str, str]) -> str:
        self._check_exists("pods", namespace, name)
        source = self.previous_logs if query.get("previous") in ("true", "1") else self.logs
        lines = list(source.get((namespace, name), []))
        if "sinceSeconds" in query:
            cutoff = time.time() - int(query["sinceSeconds"])
            lines = [
                (ts, text)
                for ts, text in lines
                if datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
                >= cutoff
            ]
        if "tailLines" in query:
            count = int(query["tailLines"])
            lines = lines[-count:] if count else []
        stamped = query.get("timestamps") in ("true", "1")
        return "".join(f"{ts} {text}\n" if stamped else f"{text}\n" for ts, text in lines)

    def _check_exists(self, resource: str, namespace: str, name: str) -> None:
        if (resource, namespace, name) not in self.objects:
            raise ApiError(404, "NotFound", f'{resource} "{name}" not found')

    # the deployment controller -------------------------------------------------------------

    def _after_change(self, resource: str, namespace: str, name: str) -> None:
        if resource == "deployments":
            self._reconcile(namespace, name)

    def _owned_pods(self, namespace: str, uid: str) -> list[dict[str, Any]]:
        return [
            pod
            for (res, ns, _), pod in sorted(self.objects.items())
            if res == "pods"
            and ns == namespace
            and any(ref.get("uid") == uid for ref in pod["metadata"].get("ownerReferences", []))
        ]

    def _reconcile_owner(self, pod: dict[str, Any]) -> None:
        for ref in pod["metadata"].get("ownerReferences", []):
            if ref.get("kind") == "Deployment":
                self._reconcile(pod["metadata"]["namespace"], ref["name"])

    def _reconcile(self, namespace: str, name: str) -> None:
        if self._reconciling:  # a pod the controller deletes must not re-enter it
            return
        self._reconciling = True
        try:
            self._reconcile_now(namespace, name)
        finally:
            self._reconciling = False

    def _reconcile_now(self, namespace: str, name: str) -> None:
        deployment = self.objects.get(("deployments", namespace, name))
        if deployment is None:
            return
        spec = deployment.get("spec", {})
        template = spec.get("template", {})
        template_hash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[
            :10
        ]
        replicas = int(spec.get("replicas", 1))
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        surge = str(rolling.get("maxSurge", "25%")) not in ("0", "0%")
        recreate = (spec.get("strategy") or {}).get("type") == "Recreate" or not surge
        pods = self._owned_pods(namespace, deployment["metadata"]["uid"])
        current = [
            p for p in pods if p["metadata"]["labels"].get("pod-template-hash") == template_hash
        ]
        old = [p for p in pods if p not in current]
        ready = [p for p in current if _pod_ready(p)]
        if recreate or len(ready) >= replicas or replicas == 0:
            for pod in old:
                self.delete("pods", namespace, pod["metadata"]["name"])
            old = []
        if not (recreate and old):
            for pod in current[replicas:]:
                self.delete("pods", namespace, pod["metadata"]["name"])
            for _ in range(replicas - len(current)):
                self._create_pod(deployment, template, template_hash)
        self._deployment_status(namespace, name, template_hash)

    def _create_pod(self, deployment: dict, template: dict, template_hash: str) -> None:
        meta = deployment["metadata"]
        namespace = meta["namespace"]
        name = f"{meta['name']}-{template_hash}-{secrets.token_hex(3)[:5]}"
        pod_spec = copy.deepcopy(template.get("spec", {}))
        labels = {**(template.get("metadata", {}).get("labels") or {})}
        labels["pod-template-hash"] = template_hash
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "annotations": copy.deepcopy(template.get("metadata", {}).get("annotations") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                    }
                ],
                "uid": str(uuid.uuid4()),
                "creationTimestamp": now_iso(),
                "generation": 1,
            },
            "spec": pod_spec,
            "status": {
                "phase": "Pending",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [
                    {
                        "name": c.get("name", "main"),
                        "image": c.get("image", ""),
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"waiting": {"reason": "ContainerCreating"}},
                    }
                    for c in pod_spec.get("containers", [])
                ],
            },
        }
        key = ("pods", namespace, name)
        self.objects[key] = pod
        self.owners[key] = {"kube-controller-manager": set()}
        self._bump(pod)
        self._event("ADDED", "pods", namespace, self._render(*key))
        if self.auto_start:
            self.start_pod(namespace, name)

    def _deployment_status(self, namespace: str, name: str, template_hash: str) -> None:
        deployment = self.objects.get(("deployments", namespace, name))
        if deployment is None:
            return
        pods = self._owned_pods(namespace, deployment["metadata"]["uid"])
        updated = [
            p for p in pods if p["metadata"]["labels"].get("pod-template-hash") == template_hash
        ]
        status = {
            "observedGeneration": deployment["metadata"].get("generation", 1),
            "replicas": len(pods),
            "updatedReplicas": len(updated),
            "readyReplicas": sum(1 for p in pods if _pod_ready(p)),
            "availableReplicas": sum(1 for p in pods if _pod_ready(p)),
        }
        if deployment.get("status") != status:
            deployment["status"] = status
            self._changed("deployments", namespace, name)

    # watch ---------------------------------------------------------------------------------

    def watch_events(self, resource, namespace, query, write) -> None:
        """Stream events to ``write`` (one JSON object each) until the timeout."""
        terms = parse_selector(query.get("labelSelector", ""))
        timeout = min(float(query.get("timeoutSeconds", 30)), 300.0)
        deadline = time.monotonic() + timeout
        since = query.get("resourceVersion", "")
        pending: list[dict[str, Any]] = []
        with self.cond:
            if since and since != "0":
                last = int(since)
                if last < self.compacted_before:
                    expired = ApiError(410, "Expired", f"too old resource version: {last}")
                    pending.append({"type": "ERROR", "object": expired.status()})
                    last = -1
            else:
                listed = self.list_objects(resource, namespace, query)["items"]
                last = self.rv
                pending = [{"type": "ADDED", "object": obj} for obj in listed]
        for event in pending:
            write(event)
        if last < 0:
            return
        while not self.stopping:
            with self.cond:
                batch = [
                    {"type": kind, "object": obj}
                    for rv, kind, res, ns, obj in self.events
                    if rv > last
                    and res == resource
                    and ns == namespace
                    and selector_matches(terms, obj["metadata"].get("labels", {}))
                ]
                newest = self.events[-1][0] if self.events else 0
                if not batch and newest <= last:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    self.cond.wait(min(remaining, 0.5))
                    continue
                last = max(last, newest)
            for event in batch:
                write(event)
            if time.monotonic() >= deadline:
                return


def _pod_ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions", [])
    )


class _Handler(BaseHTTPRequestHandler):
    kube: FakeKubernetes
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.kube.bodies.append((self.command, urlsplit(self.path).path, raw))
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            content_type = self.headers.get("Content-Type", "")
            if "yaml" in content_type:
                import yaml

                return yaml.safe_load(raw)
            raise ApiError(400, "BadRequest", "the request body is not valid JSON") from None

    def _route(self) -> tuple[re.Match, dict[str, str]]:
        parts = urlsplit(self.path)
        match = _PATH.match(parts.path)
        if not match or RESOURCES[match["res"]][2] != match["prefix"]:
            raise ApiError(404, "NotFound", f"the server could not find {parts.path}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return match, query

    def _handle(self, method: str) -> None:
        kube = self.kube
        try:
            match, query = self._route()
            body = self._body() if method in ("POST", "PUT", "PATCH") else None
            kube.requests.append(
                (method, urlsplit(self.path).path, self.headers.get("Content-Type", ""))
            )
            res, ns, name, sub = match["res"], match["ns"], match["name"], match["sub"]
            manager = query.get("fieldManager", "")
            if method == "GET" and name is None and query.get("watch") in ("true", "1"):
                self._watch(res, ns, query)
                return
            with kube.cond:
                if sub == "log":
                    if method != "GET" or res != "pods":
                        raise ApiError(405, "MethodNotAllowed", "method not allowed")
                    self._send(200, kube.pod_log(ns, name, query), "text/plain")
                    return
                if method == "GET":
                    if name is None:
                        result = kube.list_objects(res, ns, query)
                    else:
                        kube._check_exists(res, ns, name)
                        result = kube._render(res, ns, name)
                    self._send(200, result)
                elif method == "POST" and name is None:
                    self._send(201, kube.create(res, ns, body, manager))
                elif method == "PUT" and name is not None:
                    self._send(200, kube.replace(res, ns, name, body, manager))
                elif method == "PATCH" and name is not None:
                    content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
                    if content_type == "application/apply-patch+yaml":
                        force = query.get("force") in ("true", "1")
                        existed = (res, ns, name) in kube.objects
                        result = kube.apply(res, ns, name, body, manager, force)
                        self._send(200 if existed else 201, result)
                    elif content_type in (
                        "application/merge-patch+json",
                        "application/strategic-merge-patch+json",
                    ):
                        self._send(200, kube.patch(res, ns, name, body, manager))
                    else:
                        raise ApiError(
                            415, "UnsupportedMediaType", f"unsupported patch type {content_type!r}"
                        )
                elif method == "DELETE" and name is not None:
                    self._send(200, kube.delete(res, ns, name))
                elif method == "DELETE":
                    self._send(200, kube.delete_collection(res, ns, query.get("labelSelector", "")))
                else:
                    raise ApiError(405, "MethodNotAllowed", "method not allowed")
        except ApiError as error:
            self._send(error.code, error.status())
        except (ValueError, KeyError, TypeError) as error:
            self._send(400, ApiError(400, "BadRequest", str(error)).status())

    def _watch(self, res: str, ns: str, query: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def write(event: dict[str, Any]) -> None:
            data = (json.dumps(event) + "\n").encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        try:
            self.kube.watch_events(res, ns, query, write)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


__all__ = ["ApiError", "FakeKubernetes", "HTTPStatus"]
