"""The one place dcops talks to a Kubernetes API server: the official client, raw JSON.

The scheduler bridge's Kubernetes backend (``scheduler.kubernetes``) and the Kubernetes
node actions (:mod:`dcops.node_actions.kubernetes`) both go through it.

:class:`KubeApi` wraps :mod:`kubernetes` (imported lazily) behind a handful of
generic calls on plain dicts — ``get``, ``list``, ``create``, ``patch``,
``delete``, ``watch``, ``pod_log`` — addressed by a :class:`Kind` (API
version, kind, plural, namespaced). Built-in kinds go through the typed APIs
(``CoreV1Api``, ``BatchV1Api``), CRDs through ``CustomObjectsApi``; every call
asks for the raw response (``_preload_content=False``) so the same code reads
the same JSON whatever version of the client is installed.

Errors: anything the client or the server refuses becomes
:class:`~dcops.errors.SchedulerError` (``raise ... from exc``, with the HTTP
status in :attr:`KubeApiError.status`); a 404 on ``get`` is ``None``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dcops.errors import SchedulerError

Obj = dict[str, Any]

#: Content type of every patch dcops sends (RFC 7386 JSON merge patch).
MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True)
class Kind:
    """A resource type: where it lives in the API and how it is spelled."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


NAMESPACE = Kind("v1", "Namespace", "namespaces", namespaced=False)
NODE = Kind("v1", "Node", "nodes", namespaced=False)
POD = Kind("v1", "Pod", "pods")
RESOURCE_QUOTA = Kind("v1", "ResourceQuota", "resourcequotas")
JOB = Kind("batch/v1", "Job", "jobs")
JOBSET = Kind("jobset.x-k8s.io/v1alpha2", "JobSet", "jobsets")
COMPUTE_DOMAIN = Kind("resource.nvidia.com/v1beta1", "ComputeDomain", "computedomains")
LOCAL_QUEUE = Kind("kueue.x-k8s.io/v1beta1", "LocalQueue", "localqueues")
CLUSTER_QUEUE = Kind("kueue.x-k8s.io/v1beta1", "ClusterQueue", "clusterqueues", namespaced=False)

KINDS: dict[tuple[str, str], Kind] = {
    (k.api_version, k.kind): k
    for k in (
        NAMESPACE,
        NODE,
        POD,
        RESOURCE_QUOTA,
        JOB,
        JOBSET,
        COMPUTE_DOMAIN,
        LOCAL_QUEUE,
        CLUSTER_QUEUE,
    )
}


def kind_of(manifest: Mapping[str, Any]) -> Kind:
    """The :class:`Kind` of a manifest dcops emits; any other kind is refused."""
    key = (str(manifest.get("apiVersion", "")), str(manifest.get("kind", "")))
    if key not in KINDS:
        raise SchedulerError(f"kind {key[1]!r} ({key[0]}) is not one dcops manages")
    return KINDS[key]


class KubeApiError(SchedulerError):
    """A Kubernetes API call failed; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def _status_message(exc: Any) -> tuple[int, str, str]:
    status = int(getattr(exc, "status", 0) or 0)
    reason = str(getattr(exc, "reason", "") or "")
    body = getattr(exc, "body", None)
    message = reason
    if body:
        try:
            doc = json.loads(body)
        except (TypeError, ValueError):
            message = str(body)[:300]
        else:
            if isinstance(doc, dict):
                message = str(doc.get("message") or reason)
                reason = str(doc.get("reason") or reason)
    return status, reason, message


class KubeApi:
    """Generic JSON access to one cluster through an official ``kubernetes.client.ApiClient``."""

    def __init__(self, api_client: Any, *, request_timeout_s: float = 30.0) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.request_timeout_s = request_timeout_s
        self._core = client.CoreV1Api(api_client)
        self._batch = client.BatchV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)

    @classmethod
    def from_kubeconfig(
        cls,
        path: str | None = None,
        context: str | None = None,
        *,
        request_timeout_s: float = 30.0,
    ) -> KubeApi:
        """A client from a kubeconfig file (``$KUBECONFIG`` / ``~/.kube/config`` by default)."""
        from kubernetes import config

        try:
            api_client = config.new_client_from_config(  # type: ignore[no-untyped-call,unused-ignore]
                config_file=path, context=context
            )
        except Exception as exc:
            raise SchedulerError(f"cannot load kubeconfig {path or '(default)'}: {exc}") from exc
        return cls(api_client, request_timeout_s=request_timeout_s)

    @classmethod
    def for_host(
        cls, host: str, *, token: str | None = None, request_timeout_s: float = 30.0
    ) -> KubeApi:
        """A client for ``host`` (e.g. ``http://127.0.0.1:PORT``) without a kubeconfig."""
        from kubernetes import client

        cfg = client.Configuration(host=host)
        if token is not None:
            cfg.api_key = {"authorization": token}
            cfg.api_key_prefix = {"authorization": "Bearer"}
        return cls(client.ApiClient(cfg), request_timeout_s=request_timeout_s)

    # --- calls -------------------------------------------------------------------------------

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        kwargs["_preload_content"] = False
        kwargs.setdefault("_request_timeout", self.request_timeout_s)
        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            status, reason, message = _status_message(exc)
            raise KubeApiError(f"{what}: {status} {reason}: {message}", status, reason) from exc
        except (HTTPError, OSError) as exc:
            raise KubeApiError(f"{what}: API server unreachable: {exc}") from exc
        except (ValueError, TypeError) as exc:  # the client's own model check (pydantic)
            first = " ".join(str(exc).split())[:300]
            raise KubeApiError(f"{what}: the client refused the request: {first}") from exc

    def _json(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Obj:
        resp = self._call(what, fn, *args, **kwargs)
        try:
            doc = json.loads(resp.data)
        except ValueError as exc:
            raise KubeApiError(f"{what}: the API server sent no JSON") from exc
        if not isinstance(doc, dict):
            raise KubeApiError(f"{what}: the API server sent {type(doc).__name__}, not an object")
        return doc

    @staticmethod
    def _ns(kind: Kind, namespace: str | None, *, all_namespaces: bool = False) -> str:
        if kind.namespaced and not namespace and not all_namespaces:
            raise SchedulerError(f"{kind.kind} is namespaced: a namespace is required")
        return namespace or ""

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> Obj | None:
        """The object, or ``None`` when the server has no such object."""
        ns = self._ns(kind, namespace)
        what = f"get {kind.kind} {ns + '/' if ns else ''}{name}"
        try:
            if kind is JOB:
                return self._json(what, self._batch.read_namespaced_job, name, ns)
            if kind.api_version == "v1":
                fn = getattr(self._core, f"read_{'namespaced_' if ns else ''}{_snake(kind.kind)}")
                return self._json(what, fn, name, *([ns] if ns else []))
            if ns:
                return self._json(
                    what,
                    self._custom.get_namespaced_custom_object,
                    kind.group,
                    kind.version,
                    ns,
                    kind.plural,
                    name,
                )
            return self._json(
                what,
                self._custom.get_cluster_custom_object,
                kind.group,
                kind.version,
                kind.plural,
                name,
            )
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    def _list_fn(self, kind: Kind, ns: str) -> tuple[Any, tuple[Any, ...]]:
        if kind is JOB:
            if not ns:
                return self._batch.list_job_for_all_namespaces, ()
            return self._batch.list_namespaced_job, (ns,)
        if kind.api_version == "v1":
            if kind.namespaced and not ns:
                return getattr(self._core, f"list_{_snake(kind.kind)}_for_all_namespaces"), ()
            scope = "namespaced_" if ns else ""
            return getattr(self._core, f"list_{scope}{_snake(kind.kind)}"), ((ns,) if ns else ())
        if ns:
            return self._custom.list_namespaced_custom_object, (
                kind.group,
                kind.version,
                ns,
                kind.plural,
            )
        return self._custom.list_cluster_custom_object, (kind.group, kind.version, kind.plural)

    def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        all_namespaces: bool = False,
    ) -> tuple[list[Obj], str]:
        """(items, the list's resourceVersion) — the point a watch resumes from.

        ``all_namespaces``: a namespaced kind in every namespace (no ``namespace``).
        """
        ns = self._ns(kind, namespace, all_namespaces=all_namespaces)
        fn, args = self._list_fn(kind, ns)
        kwargs: dict[str, Any] = {}
        if label_selector:
            kwargs["label_selector"] = label_selector
        if field_selector:
            kwargs["field_selector"] = field_selector
        doc = self._json(f"list {kind.plural} {ns}".rstrip(), fn, *args, **kwargs)
        items = [i for i in doc.get("items") or [] if isinstance(i, dict)]
        for item in items:  # list items carry no apiVersion/kind; put them back
            item.setdefault("apiVersion", kind.api_version)
            item.setdefault("kind", kind.kind)
        rv = str((doc.get("metadata") or {}).get("resourceVersion") or "")
        return items, rv

    def create(
        self, manifest: Mapping[str, Any], *, dry_run: bool = False, strict: bool = True
    ) -> Obj:
        """Create ``manifest`` (``dryRun=All`` / ``fieldValidation=Strict`` on request)."""
        kind = kind_of(manifest)
        meta = manifest.get("metadata") or {}
        ns = self._ns(kind, meta.get("namespace"))
        body = dict(manifest)
        what = f"create {kind.kind} {ns + '/' if ns else ''}{meta.get('name', '?')}"
        kwargs: dict[str, Any] = {}
        if dry_run:
            kwargs["dry_run"] = "All"
        if strict:
            kwargs["field_validation"] = "Strict"
        if kind is JOB:
            return self._json(what, self._batch.create_namespaced_job, ns, body, **kwargs)
        if kind.api_version == "v1":
            scope = "namespaced_" if ns else ""
            fn = getattr(self._core, f"create_{scope}{_snake(kind.kind)}")
            return self._json(what, fn, *([ns] if ns else []), body, **kwargs)
        if ns:
            return self._json(
                what,
                self._custom.create_namespaced_custom_object,
                kind.group,
                kind.version,
                ns,
                kind.plural,
                body,
                **kwargs,
            )
        return self._json(
            what,
            self._custom.create_cluster_custom_object,
            kind.group,
            kind.version,
            kind.plural,
            body,
            **kwargs,
        )

    def patch(
        self,
        kind: Kind,
        name: str,
        body: Mapping[str, Any],
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        strict: bool = True,
    ) -> Obj:
        """JSON-merge-patch an object (put ``metadata.resourceVersion`` in ``body`` to guard it)."""
        ns = self._ns(kind, namespace)
        what = f"patch {kind.kind} {ns + '/' if ns else ''}{name}"
        kwargs: dict[str, Any] = {"_content_type": MERGE_PATCH}
        if dry_run:
            kwargs["dry_run"] = "All"
        if strict:
            kwargs["field_validation"] = "Strict"
        payload = dict(body)
        if kind is JOB:
            return self._json(what, self._batch.patch_namespaced_job, name, ns, payload, **kwargs)
        if kind.api_version == "v1":
            scope = "namespaced_" if ns else ""
            fn = getattr(self._core, f"patch_{scope}{_snake(kind.kind)}")
            return self._json(what, fn, name, *([ns] if ns else []), payload, **kwargs)
        if ns:
            return self._json(
                what,
                self._custom.patch_namespaced_custom_object,
                kind.group,
                kind.version,
                ns,
                kind.plural,
                name,
                payload,
                **kwargs,
            )
        return self._json(
            what,
            self._custom.patch_cluster_custom_object,
            kind.group,
            kind.version,
            kind.plural,
            name,
            payload,
            **kwargs,
        )

    def delete(
        self,
        kind: Kind,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
        dry_run: bool = False,
    ) -> bool:
        """Delete an object; ``False`` when it was already gone."""
        ns = self._ns(kind, namespace)
        what = f"delete {kind.kind} {ns + '/' if ns else ''}{name}"
        kwargs: dict[str, Any] = {"propagation_policy": propagation}
        if dry_run:
            kwargs["dry_run"] = "All"
        try:
            if kind is JOB:
                self._call(what, self._batch.delete_namespaced_job, name, ns, **kwargs)
            elif kind.api_version == "v1":
                scope = "namespaced_" if ns else ""
                fn = getattr(self._core, f"delete_{scope}{_snake(kind.kind)}")
                self._call(what, fn, name, *([ns] if ns else []), **kwargs)
            elif ns:
                self._call(
                    what,
                    self._custom.delete_namespaced_custom_object,
                    kind.group,
                    kind.version,
                    ns,
                    kind.plural,
                    name,
                    **kwargs,
                )
            else:
                self._call(
                    what,
                    self._custom.delete_cluster_custom_object,
                    kind.group,
                    kind.version,
                    kind.plural,
                    name,
                    **kwargs,
                )
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def watch(
        self,
        kind: Kind,
        namespace: str | None,
        resource_version: str,
        *,
        label_selector: str | None = None,
        timeout_s: int = 60,
    ) -> Iterator[Obj]:
        """Raw watch events (``{"type", "object"}``) after ``resource_version``, until the
        server closes the stream. A ``410 Gone`` — as an HTTP status or an ``ERROR``
        event — raises :class:`KubeApiError` with ``status == 410``."""
        ns = self._ns(kind, namespace)
        fn, args = self._list_fn(kind, ns)
        kwargs: dict[str, Any] = {
            "watch": True,
            "resource_version": resource_version,
            "allow_watch_bookmarks": True,
            "timeout_seconds": int(timeout_s),
            "_request_timeout": timeout_s + self.request_timeout_s,
        }
        if label_selector:
            kwargs["label_selector"] = label_selector
        what = f"watch {kind.plural} {ns}".rstrip()
        from urllib3.exceptions import HTTPError

        resp = self._call(what, fn, *args, **kwargs)
        try:
            for line in _lines(resp):
                try:
                    event = json.loads(line)
                except ValueError as exc:
                    raise KubeApiError(f"{what}: malformed watch event") from exc
                if not isinstance(event, dict):
                    continue
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    code = int(status.get("code") or 0)
                    raise KubeApiError(
                        f"{what}: {code} {status.get('reason', '')}: {status.get('message', '')}",
                        code,
                        str(status.get("reason") or ""),
                    )
                yield event
        except (HTTPError, OSError) as exc:
            raise KubeApiError(f"{what}: the stream broke: {exc}") from exc
        finally:
            resp.close()
            resp.release_conn()

    def pod_log(self, name: str, namespace: str, *, tail_bytes: int) -> str:
        """The last ``tail_bytes`` (at most) of the pod's log, decoded leniently.

        The server has no "last N bytes"; asking for the last ``tail_bytes // 2 + 1``
        lines (a line is at least 2 bytes) always covers them, and the stream is
        read into a bounded buffer so a pod with huge lines cannot exhaust memory.
        """
        tail_bytes = max(1, tail_bytes)
        resp = self._call(
            f"log of pod {namespace}/{name}",
            self._core.read_namespaced_pod_log,
            name,
            namespace,
            tail_lines=tail_bytes // 2 + 1,
        )
        kept = b""
        try:
            for chunk in resp.stream(65536, decode_content=True):
                kept = (kept + chunk)[-tail_bytes:]
        finally:
            resp.close()
            resp.release_conn()
        return kept.decode("utf-8", errors="replace")


def _lines(resp: Any) -> Iterator[str]:
    """Lines of a streamed response, as they arrive."""
    pending = b""
    for chunk in resp.stream(8192, decode_content=True):
        pending += chunk
        *done, pending = pending.split(b"\n")
        for raw in done:
            if raw.strip():
                yield raw.decode("utf-8", errors="replace")
    if pending.strip():
        yield pending.decode("utf-8", errors="replace")


def _snake(kind: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(kind))
