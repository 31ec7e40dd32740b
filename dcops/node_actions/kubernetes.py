"""Kubernetes node actions: cordon + taint with a reason, and undo only what dcops did.

``drain`` = cordon (``spec.unschedulable: true``) plus the taint
``dcops.dev/unhealthy=<check>:NoSchedule`` and annotations holding the reason
(always ``dcops:``-prefixed), when it was set, and whether dcops made the cordon
(a node an operator had already cordoned stays cordoned after ``resume``)::

    actions = KubernetesNodeActions(kubeconfig="~/.kube/config")
    actions.drain("gb200-r01-t[03-04]", "dcops: nvlink 612 GB/s < 760")
    actions.resume("gb200-r01-t03")      # only if dcops' annotation is there

``resume`` removes dcops' taint and annotations and uncordons only when the
annotation shows dcops cordoned it; other taints (an operator's, the GPU
operator's) are never touched. Every patch carries the node's
``resourceVersion`` and is retried on a conflict. ``states`` maps Node objects to
:class:`SchedulerNodeState`: ``Ready`` True -> ``IDLE``/``MIXED`` (running
non-DaemonSet pods), False -> ``DOWN``, Unknown -> ``DOWN`` + ``NOT_RESPONDING``;
cordoned -> flag ``DRAIN``.

The client is dcops' one Kubernetes client (:class:`dcops.kube.KubeApi`); errors are
:class:`~dcops.errors.SchedulerError` (``raise ... from``), unknown nodes
:class:`~dcops.errors.UnknownNodeError` before anything changes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from dcops.errors import SchedulerError, UnknownNodeError
from dcops.hostlist import compress
from dcops.kube import NODE, POD, KubeApi
from dcops.node_actions.base import (
    NodeActionFeature,
    SchedulerNodeState,
    check_reason,
    dcops_reason,
    is_dcops_reason,
    node_names,
    register,
)

TAINT_KEY = "dcops.dev/unhealthy"
REASON_ANNOTATION = "dcops.dev/reason"
TIME_ANNOTATION = "dcops.dev/reason-time"
CORDONED_ANNOTATION = "dcops.dev/cordoned-by-dcops"
_LABEL_VALUE_BAD = re.compile(r"[^A-Za-z0-9._-]+")

Obj = dict[str, Any]


def taint_value(reason: str) -> str:
    """The check named by a dcops reason, as a taint value (a label value, <= 63 chars).

    ``"dcops: nvlink-errors gpu2 ..."`` -> ``"nvlink-errors"``.
    """
    detail = reason.strip().removeprefix("dcops:").strip()
    first = detail.split()[0] if detail else ""
    value = _LABEL_VALUE_BAD.sub("-", first)[:63].strip("._-")
    return value or "unhealthy"


class _Nodes:
    """Node access through the one Kubernetes client, :class:`dcops.kube.KubeApi`."""

    def __init__(self, api: KubeApi) -> None:
        self.api = api

    def get(self, name: str) -> Obj | None:
        return self.api.get(NODE, name)

    def list(self) -> list[Obj]:
        return self.api.list(NODE)[0]

    def running_pods_by_node(self) -> dict[str, int]:
        pods, _ = self.api.list(POD, field_selector="status.phase=Running", all_namespaces=True)
        out: dict[str, int] = {}
        for pod in pods:
            meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
            if any(r.get("kind") == "DaemonSet" for r in meta.get("ownerReferences") or []):
                continue
            node = spec.get("nodeName")
            if node:
                out[node] = out.get(node, 0) + 1
        return out

    def patch(self, name: str, body: Obj) -> Obj:
        return self.api.patch(NODE, name, body, strict=False)


@register("kubernetes")
class KubernetesNodeActions:
    """NodeActions for Kubernetes: cordon + dcops taint + reason annotations."""

    name = "kubernetes"
    features = frozenset(
        {
            NodeActionFeature.DRAIN,
            NodeActionFeature.RESUME,
            NodeActionFeature.STATES,
            NodeActionFeature.REASON_TIME,
        }
    )

    def __init__(
        self,
        *,
        api_client: Any = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        host: str | None = None,
        count_pods: bool = True,
        request_timeout_s: float = 30.0,
        conflict_retries: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``api_client``: a ready ``kubernetes.client.ApiClient``; else ``host`` (no auth,
        tests), else the kubeconfig (``$KUBECONFIG`` / ``~/.kube/config``), on first use."""
        self._api_client = api_client
        self.kubeconfig = kubeconfig
        self.context = context
        self.host = host
        self.count_pods = count_pods
        self.request_timeout_s = request_timeout_s
        self.conflict_retries = conflict_retries
        self.clock = clock
        self._nodes: _Nodes | None = None

    @property
    def nodes_api(self) -> _Nodes:
        if self._nodes is None:
            timeout = self.request_timeout_s
            if self._api_client is not None:
                api = KubeApi(self._api_client, request_timeout_s=timeout)
            elif self.host is not None:
                api = KubeApi.for_host(self.host, request_timeout_s=timeout)
            else:
                api = KubeApi.from_kubeconfig(
                    self.kubeconfig, self.context, request_timeout_s=timeout
                )
            self._nodes = _Nodes(api)
        return self._nodes

    def _fetch(self, names: list[str]) -> dict[str, Obj]:
        found = {n: self.nodes_api.get(n) for n in names}
        missing = [n for n, obj in found.items() if obj is None]
        if missing:
            raise UnknownNodeError(f"unknown to Kubernetes: {compress(missing)}")
        return {n: obj for n, obj in found.items() if obj is not None}

    def _patch_with_retry(self, name: str, node: Obj, build: Callable[[Obj], Obj | None]) -> bool:
        """Patch ``build(node)`` guarded by resourceVersion; refetch and rebuild on 409."""
        for _ in range(self.conflict_retries + 1):
            body = build(node)
            if body is None:
                return False
            body.setdefault("metadata", {})["resourceVersion"] = (node.get("metadata") or {}).get(
                "resourceVersion"
            )
            try:
                self.nodes_api.patch(name, body)
            except SchedulerError as exc:
                if getattr(exc, "status", None) != 409:
                    raise
                fresh = self.nodes_api.get(name)
                if fresh is None:
                    raise UnknownNodeError(f"unknown to Kubernetes: {name}") from exc
                node = fresh
                continue
            return True
        raise SchedulerError(f"patch node {name}: kept conflicting with other writers")

    def drain(self, nodes: str | Iterable[str], reason: str) -> list[str]:
        names = node_names(nodes)
        text = dcops_reason(check_reason(reason))
        taint = {"key": TAINT_KEY, "value": taint_value(text), "effect": "NoSchedule"}
        now = f"{self.clock():.0f}"

        def build(node: Obj) -> Obj:
            spec, annotations = (
                node.get("spec") or {},
                (node.get("metadata") or {}).get("annotations") or {},
            )
            already_ours = is_dcops_reason(annotations.get(REASON_ANNOTATION))
            if already_ours:
                cordoned_by_us = annotations.get(CORDONED_ANNOTATION, "false")
            else:
                cordoned_by_us = "false" if spec.get("unschedulable") else "true"
            taints = [t for t in spec.get("taints") or [] if t.get("key") != TAINT_KEY]
            return {
                "metadata": {
                    "annotations": {
                        REASON_ANNOTATION: text,
                        TIME_ANNOTATION: now,
                        CORDONED_ANNOTATION: cordoned_by_us,
                    }
                },
                "spec": {"unschedulable": True, "taints": [*taints, taint]},
            }

        for name, node in self._fetch(names).items():
            self._patch_with_retry(name, node, build)
        return names

    def resume(self, nodes: str | Iterable[str]) -> list[str]:
        names = node_names(nodes)

        def build(node: Obj) -> Obj | None:
            spec = node.get("spec") or {}
            annotations = (node.get("metadata") or {}).get("annotations") or {}
            if not is_dcops_reason(annotations.get(REASON_ANNOTATION)):
                return None  # not ours: leave the operator's cordon and taints alone
            body: Obj = {
                "metadata": {
                    "annotations": {
                        REASON_ANNOTATION: None,
                        TIME_ANNOTATION: None,
                        CORDONED_ANNOTATION: None,
                    }
                },
                "spec": {
                    "taints": [t for t in spec.get("taints") or [] if t.get("key") != TAINT_KEY]
                },
            }
            if annotations.get(CORDONED_ANNOTATION) == "true":
                body["spec"]["unschedulable"] = None
            return body

        return [
            name
            for name, node in self._fetch(names).items()
            if self._patch_with_retry(name, node, build)
        ]

    def states(self, nodes: str | Iterable[str] | None = None) -> dict[str, SchedulerNodeState]:
        if nodes is None:
            objs = {str(n["metadata"]["name"]): n for n in self.nodes_api.list()}
        else:
            objs = self._fetch(node_names(nodes))
        busy = self.nodes_api.running_pods_by_node() if self.count_pods and objs else {}
        return {name: node_state(obj, busy.get(name, 0)) for name, obj in objs.items()}


def node_state(node: Obj, running_pods: int = 0) -> SchedulerNodeState:
    """A Node object (and how many workload pods run on it) as a SchedulerNodeState."""
    meta, spec, status = (
        node.get("metadata") or {},
        node.get("spec") or {},
        node.get("status") or {},
    )
    ready = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"),
        {"status": "Unknown"},
    )
    flags: list[str] = []
    if ready.get("status") == "True":
        base = "MIXED" if running_pods else "IDLE"
    else:
        base = "DOWN"
        if ready.get("status") != "False":
            flags.append("NOT_RESPONDING")
    annotations = meta.get("annotations") or {}
    reason = str(annotations.get(REASON_ANNOTATION) or "")
    if spec.get("unschedulable"):
        flags.insert(0, "DRAIN")
        if not reason:
            reason = "cordoned (not by dcops)"
    elif base == "DOWN" and not reason:
        reason = str(ready.get("reason") or "NotReady")
    when = annotations.get(TIME_ANNOTATION)
    try:
        reason_time_s = float(when) if when else None
    except ValueError:
        reason_time_s = None
    return SchedulerNodeState(
        node=str(meta.get("name", "")),
        states=(base, *flags),
        reason=reason,
        reason_time_s=reason_time_s,
    )
