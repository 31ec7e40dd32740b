"""A small Kubernetes API server on loopback, for testing dcops through the real client.

It speaks the part of the REST API dcops uses, with the server behaviour that
matters to an adapter:

* create / get / list / merge-patch / delete for Namespaces, Nodes, Pods (+ log),
  ResourceQuotas, batch/v1 Jobs and the CRDs dcops emits (JobSet, ComputeDomain,
  Kueue LocalQueue and ClusterQueue), namespaced objects refused (404) in a
  namespace that does not exist, 409 on a name taken or a stale
  ``metadata.resourceVersion`` in a patch;
* ``labelSelector`` (``k=v``, ``k!=v``, ``k``, ``!k``), ``dryRun=All`` (nothing
  stored), ``fieldValidation=Strict`` (the body is checked by an injectable
  ``strict_validator``; a failure is a 400 like the real server's; with
  ``validate_every_write`` every create and patch result is checked, so a test
  proves that what a client writes is valid whatever it asks for);
* ``propagationPolicy`` on delete (pods of a deleted Job/JobSet go with it unless
  ``Orphan``);
* JSON Patch bodies must be lists (a dict sent as ``json-patch+json`` is a 400);
* ``watch=true`` with ``resourceVersion``: chunked ``ADDED``/``MODIFIED``/
  ``DELETED`` events; :meth:`FakeKubeServer.compact` forgets history and closes
  open watches, so a client resuming from an older version gets ``410 Gone`` (as
  an ``ERROR`` event, or as an HTTP 410 with ``gone_as_http=True``).

Every request is recorded in :attr:`FakeKubeServer.requests` (method, path,
query) so tests can check what the client sent.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Obj = dict[str, Any]
StrictValidator = Callable[[Obj], "str | None"]

#: (api prefix, plural) -> (apiVersion, kind, namespaced)
RESOURCES: dict[tuple[str, str], tuple[str, str, bool]] = {
    ("/api/v1", "namespaces"): ("v1", "Namespace", False),
    ("/api/v1", "nodes"): ("v1", "Node", False),
    ("/api/v1", "pods"): ("v1", "Pod", True),
    ("/api/v1", "resourcequotas"): ("v1", "ResourceQuota", True),
    ("/apis/batch/v1", "jobs"): ("batch/v1", "Job", True),
    ("/apis/jobset.x-k8s.io/v1alpha2", "jobsets"): ("jobset.x-k8s.io/v1alpha2", "JobSet", True),
    ("/apis/resource.nvidia.com/v1beta1", "computedomains"): (
        "resource.nvidia.com/v1beta1",
        "ComputeDomain",
        True,
    ),
    ("/apis/kueue.x-k8s.io/v1beta1", "localqueues"): ("kueue.x-k8s.io/v1beta1", "LocalQueue", True),
    ("/apis/kueue.x-k8s.io/v1beta1", "clusterqueues"): (
        "kueue.x-k8s.io/v1beta1",
        "ClusterQueue",
        False,
    ),
}
_PATH = re.compile(
    r"^(?P<prefix>/api/v1|/apis/[^/]+/[^/]+)"
    r"(?:/namespaces/(?P<ns>[^/]+)(?=/))?"
    r"/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>log))?$"
)
#: Labels a Job/JobSet controller puts on its pods.
OWNER_LABELS = ("batch.kubernetes.io/job-name", "jobset.sigs.k8s.io/jobset-name")


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> Obj:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any = None
    content_type: str = ""


@dataclass
class _Event:
    rv: int
    key: tuple[str, str]  # (apiVersion, kind)
    namespace: str
    type: str
    obj: Obj


def _selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k.rstrip("=")) != v.lstrip("="):
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _fields_match(selector: str, obj: Obj) -> bool:
    """``a.b=v`` / ``a.b!=v`` terms on dotted paths (what the real server allows per kind)."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        negate = "!=" in term
        path, want = term.split("!=" if negate else "=", 1)
        val: Any = obj
        for part in path.lstrip("=").split("."):
            val = val.get(part) if isinstance(val, dict) else None
        if (str(val) == want.lstrip("=")) == negate:
            return False
    return True


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, val in patch.items():
        if val is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), val)
    return out


@dataclass
class FakeKubeServer:
    """The store and behaviour; :meth:`start` serves it on 127.0.0.1 in a thread."""

    strict_validator: StrictValidator | None = None
    validate_every_write: bool = False
    gone_as_http: bool = False
    watch_timeout_cap_s: float = 5.0
    objects: dict[tuple[str, str, str, str], Obj] = field(default_factory=dict)
    pod_logs: dict[tuple[str, str], str] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    _rv: int = 100
    _floor: int = 0
    _epoch: int = 0
    _open_watches: int = 0
    _events: list[_Event] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _httpd: ThreadingHTTPServer | None = None

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        assert isinstance(host, str)  # bound to 127.0.0.1
        return f"http://{host}:{port}"

    def start(self) -> FakeKubeServer:
        server = self

        class Handler(_Handler):
            fake = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.close_watches()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> FakeKubeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test controls ----------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def compact(self) -> None:
        """Forget all history (etcd compaction) and end open watches: resuming -> 410."""
        with self._cond:
            self._rv += 1  # writes elsewhere moved the store on; our history is gone
            self._floor = self._rv
            self._events.clear()
        self.close_watches()

    def close_watches(self, wait_s: float = 5.0) -> None:
        """End every open watch stream; return once they have all ended."""
        deadline = time.monotonic() + wait_s
        with self._cond:
            self._epoch += 1
            self._cond.notify_all()
            while self._open_watches and time.monotonic() < deadline:
                self._cond.wait(0.05)

    def put(self, obj: Obj) -> Obj:
        """Store (create or replace) an object as a controller would, emitting an event."""
        meta = obj.setdefault("metadata", {})
        key = (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])
        with self._cond:
            kind = "MODIFIED" if key in self.objects else "ADDED"
            return self._store(key, obj, kind)

    def set_status(self, api_version: str, kind: str, ns: str, name: str, status: Obj) -> Obj:
        with self._cond:
            key = (api_version, kind, ns, name)
            obj = copy.deepcopy(self.objects[key])
            obj["status"] = status
            return self._store(key, obj, "MODIFIED")

    def remove(self, api_version: str, kind: str, ns: str, name: str) -> None:
        with self._cond:
            self._delete_key((api_version, kind, ns, name))

    def get(self, api_version: str, kind: str, ns: str, name: str) -> Obj | None:
        return self.objects.get((api_version, kind, ns, name))

    def queries(self, method: str, path_part: str) -> list[dict[str, str]]:
        return [r.query for r in self.requests if r.method == method and path_part in r.path]

    # --- store (callers hold self._cond) ----------------------------------------------------

    def _store(self, key: tuple[str, str, str, str], obj: Obj, event: str) -> Obj:
        self._rv += 1
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(self._rv)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        meta.setdefault("generation", 1)
        self.objects[key] = obj
        self._events.append(_Event(self._rv, key[:2], key[2], event, copy.deepcopy(obj)))
        self._cond.notify_all()
        return copy.deepcopy(obj)

    def _delete_key(self, key: tuple[str, str, str, str]) -> Obj:
        obj = self.objects.pop(key)
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._events.append(_Event(self._rv, key[:2], key[2], "DELETED", copy.deepcopy(obj)))
        self._cond.notify_all()
        return obj

    # --- REST -------------------------------------------------------------------------------

    def handle(self, req: Request) -> tuple[int, Obj | str]:
        self.requests.append(req)
        match = _PATH.match(req.path)
        if match is None:
            raise ApiError(404, "NotFound", f"the server could not find {req.path}")
        prefix, ns, plural = match["prefix"], match["ns"] or "", match["plural"]
        name, sub = match["name"], match["sub"]
        if (prefix, plural) not in RESOURCES:
            raise ApiError(404, "NotFound", f"the server could not find {req.path}")
        api_version, kind, namespaced = RESOURCES[(prefix, plural)]
        if namespaced != bool(ns) and not (req.method == "GET" and name is None):
            raise ApiError(404, "NotFound", f"{kind} scope mismatch")
        dry = req.query.get("dryRun") == "All"
        with self._cond:
            if sub == "log":
                return self._log(ns, name, req.query)
            if req.method == "GET" and name is None:
                return 200, self._list(api_version, kind, ns, req.query)
            if req.method == "GET":
                return 200, copy.deepcopy(self._must(api_version, kind, ns, name))
            if req.method == "POST" and name is None:
                return 201, self._create(api_version, kind, ns, req, dry)
            if req.method == "PATCH" and name:
                return 200, self._patch(api_version, kind, ns, name, req, dry)
            if req.method == "DELETE" and name:
                return 200, self._delete(api_version, kind, ns, name, req, dry)
        raise ApiError(405, "MethodNotAllowed", f"{req.method} {req.path}")

    def _must(self, api_version: str, kind: str, ns: str, name: str) -> Obj:
        obj = self.objects.get((api_version, kind, ns, name))
        if obj is None:
            raise ApiError(404, "NotFound", f'{kind.lower()}s "{name}" not found')
        return obj

    def _list(self, api_version: str, kind: str, ns: str, query: dict[str, str]) -> Obj:
        selector = query.get("labelSelector", "")
        items = [
            copy.deepcopy(obj)
            for (av, k, ons, _), obj in sorted(self.objects.items())
            if (av, k) == (api_version, kind)
            and (not ns or ons == ns)
            and _selector_matches(selector, obj["metadata"].get("labels") or {})
            and _fields_match(query.get("fieldSelector", ""), obj)
        ]
        for item in items:  # as the real server, items carry no apiVersion/kind
            item.pop("apiVersion", None)
            item.pop("kind", None)
        return {
            "apiVersion": api_version,
            "kind": f"{kind}List",
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    def _check_strict(self, obj: Obj, req: Request) -> None:
        strict = req.query.get("fieldValidation") == "Strict" or self.validate_every_write
        if strict and self.strict_validator is not None:
            problem = self.strict_validator(obj)
            if problem:
                raise ApiError(400, "BadRequest", f"strict decoding error: {problem}")

    def _create(self, api_version: str, kind: str, ns: str, req: Request, dry: bool) -> Obj:
        body = req.body
        if not isinstance(body, dict) or (body.get("apiVersion"), body.get("kind")) != (
            api_version,
            kind,
        ):
            raise ApiError(400, "BadRequest", f"the body is not a {kind} ({api_version})")
        meta = body.get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise ApiError(422, "Invalid", "metadata.name: Required value")
        if meta.get("namespace", ns) != ns:
            raise ApiError(400, "BadRequest", "the namespace of the object does not match")
        if ns and ("v1", "Namespace", "", ns) not in self.objects:
            raise ApiError(404, "NotFound", f'namespaces "{ns}" not found')
        key = (api_version, kind, ns, name)
        if key in self.objects:
            raise ApiError(409, "AlreadyExists", f'{kind.lower()}s "{name}" already exists')
        self._check_strict(body, req)
        obj = copy.deepcopy(body)
        if ns:
            obj["metadata"]["namespace"] = ns
        if dry:
            obj["metadata"].setdefault("uid", str(uuid.uuid4()))
            return obj
        return self._store(key, obj, "ADDED")

    def _patch(
        self, api_version: str, kind: str, ns: str, name: str, req: Request, dry: bool
    ) -> Obj:
        current = self._must(api_version, kind, ns, name)
        if req.content_type.startswith("application/json-patch+json"):
            if not isinstance(req.body, list):
                raise ApiError(400, "BadRequest", "json patch: the body must be a list")
            raise ApiError(415, "UnsupportedMediaType", "this fake speaks merge patches only")
        if not isinstance(req.body, dict):
            raise ApiError(400, "BadRequest", "a merge patch must be an object")
        want_rv = (req.body.get("metadata") or {}).get("resourceVersion")
        if want_rv is not None and want_rv != current["metadata"]["resourceVersion"]:
            raise ApiError(
                409, "Conflict", "the object has been modified; please apply your changes"
            )
        merged: Obj = _merge_patch(current, req.body)
        merged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        self._check_strict(merged, req)
        if dry:
            return merged
        return self._store((api_version, kind, ns, name), merged, "MODIFIED")

    def _delete(
        self, api_version: str, kind: str, ns: str, name: str, req: Request, dry: bool
    ) -> Obj:
        obj = copy.deepcopy(self._must(api_version, kind, ns, name))
        body = req.body if isinstance(req.body, dict) else {}
        policy = req.query.get("propagationPolicy") or body.get("propagationPolicy") or ""
        if dry:
            return obj
        self._delete_key((api_version, kind, ns, name))
        if kind in ("Job", "JobSet") and policy != "Orphan":
            for key, pod in list(self.objects.items()):
                labels = pod["metadata"].get("labels") or {}
                if key[:3] == ("v1", "Pod", ns) and any(
                    labels.get(k) == name for k in OWNER_LABELS
                ):
                    self._delete_key(key)
        if kind == "Namespace":
            for key in [k for k in self.objects if k[2] == name]:
                self._delete_key(key)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Success",
            "details": {"name": name},
        }

    def _log(self, ns: str, name: str, query: dict[str, str]) -> tuple[int, str]:
        self._must("v1", "Pod", ns, name)
        text = self.pod_logs.get((ns, name), "")
        if "tailLines" in query:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(query["tailLines"]) :]) if int(query["tailLines"]) else ""
        if "limitBytes" in query:
            text = text.encode()[: int(query["limitBytes"])].decode(errors="replace")
        return 200, text

    def watch_events(
        self, api_version: str, kind: str, ns: str, query: dict[str, str]
    ) -> Iterator[Obj]:
        """The events a watch request gets, blocking until timeout or :meth:`close_watches`."""
        timeout = min(float(query.get("timeoutSeconds") or 60), self.watch_timeout_cap_s)
        deadline = time.monotonic() + timeout
        selector = query.get("labelSelector", "")
        since = int(query.get("resourceVersion") or self._rv)
        with self._cond:
            epoch = self._epoch
            if since < self._floor:
                yield {"type": "ERROR", "object": _gone(since)}
                return
            self._open_watches += 1
        try:
            yield from self._stream(api_version, kind, ns, selector, since, epoch, deadline)
        finally:
            with self._cond:
                self._open_watches -= 1
                self._cond.notify_all()

    def _stream(
        self,
        api_version: str,
        kind: str,
        ns: str,
        selector: str,
        since: int,
        epoch: int,
        deadline: float,
    ) -> Iterator[Obj]:
        while True:
            with self._cond:
                fresh = [
                    e
                    for e in self._events
                    if e.rv > since
                    and e.key == (api_version, kind)
                    and (not ns or e.namespace == ns)
                    and _selector_matches(selector, e.obj["metadata"].get("labels") or {})
                ]
                if not fresh:
                    if self._epoch != epoch:
                        return
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    self._cond.wait(min(left, 0.2))
                    continue
            for event in fresh:
                since = event.rv
                yield {"type": event.type, "object": copy.deepcopy(event.obj)}


def _gone(rv: int) -> Obj:
    return ApiError(410, "Expired", f"too old resource version: {rv}").status()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeKubeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, payload: Obj | str) -> None:
        if isinstance(payload, str):
            data, ctype = payload.encode(), "text/plain"
        else:
            data, ctype = json.dumps(payload).encode(), "application/json"
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._send(400, ApiError(400, "BadRequest", "body is not JSON").status())
            return
        req = Request(self.command, parts.path, query, body, self.headers.get("Content-Type") or "")
        try:
            if self.command == "GET" and query.get("watch") in ("true", "1", "True"):
                self._watch(req)
                return
            code, payload = self.fake.handle(req)
        except ApiError as exc:
            self._send(exc.code, exc.status())
            return
        self._send(code, payload)

    def _watch(self, req: Request) -> None:
        self.fake.requests.append(req)
        match = _PATH.match(req.path)
        if match is None or (match["prefix"], match["plural"]) not in RESOURCES:
            raise ApiError(404, "NotFound", req.path)
        api_version, kind, _ = RESOURCES[(match["prefix"], match["plural"])]
        since = int(req.query.get("resourceVersion") or self.fake.resource_version)
        if self.fake.gone_as_http and since < self.fake._floor:
            raise ApiError(410, "Expired", f"too old resource version: {since}")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in self.fake.watch_events(api_version, kind, match["ns"] or "", req.query):
                line = json.dumps(event).encode() + b"\n"
                self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _dispatch  # noqa: N815
