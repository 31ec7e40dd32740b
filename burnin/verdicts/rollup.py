"""Roll findings up into per-GPU, per-node, per-rack and per-run verdicts (worst-of).

The layout (rack -> node -> GPUs) comes from the inventory
(:func:`layout_from_site`). A finding on one GPU lands on that GPU; on one node
(no single GPU), on the node; on several nodes (a collective over a rack), on
every rack those nodes sit in; on nodes the layout does not know, on the run.

Missing results are never a pass: for every GPU, each check in
``required_gpu_checks`` must have produced a finding on it (or on its node);
for every node, each check in ``required_node_checks`` a finding on it or its
GPUs. Otherwise an ``error`` finding "no <check> result" is added. A node that
already carries an ``error`` finding of its own (unreachable, hung) is not
given these duplicates.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from burnin.verdicts.status import Finding, Reason, Status, gpu_finding, node_finding, worst
from dcops.inventory import Site
from dcops.measurements import GpuRef

Layout = Mapping[str, Mapping[str, Sequence[GpuRef]]]


@dataclass(frozen=True)
class Verdict:
    """The status of one target with the findings on it and its children's verdicts."""

    target: str
    kind: str  # gpu | node | rack | run
    status: Status
    findings: tuple[Finding, ...] = ()
    children: tuple[Verdict, ...] = ()

    def walk(self) -> Iterable[Verdict]:
        yield self
        for child in self.children:
            yield from child.walk()

    def failing(self, kind: str) -> list[str]:
        """Targets of ``kind`` whose status is not pass."""
        return [v.target for v in self.walk() if v.kind == kind and v.status is not Status.PASS]

    def to_dict(self, *, include_passing: bool = False) -> dict[str, Any]:
        """The JSON shape: ``{target, kind, status, reasons: [...], <children>: [...]}``."""
        reasons = [
            f.to_dict() for f in self.findings if include_passing or f.status is not Status.PASS
        ]
        out: dict[str, Any] = {
            "target": self.target,
            "kind": self.kind,
            "status": self.status.value,
            "reasons": reasons,
        }
        if self.children:
            key = {"run": "racks", "rack": "nodes", "node": "gpus"}[self.kind]
            out[key] = [c.to_dict(include_passing=include_passing) for c in self.children]
        return out


def layout_from_site(
    site: Site, nodes: Collection[str] | None = None
) -> dict[str, dict[str, list[GpuRef]]]:
    """rack -> node -> GPUs of ``site`` (only ``nodes`` when given), in tray order."""
    out: dict[str, dict[str, list[GpuRef]]] = {}
    for rack in site.racks:
        for node in rack.nodes:
            if nodes is None or node in nodes:
                out.setdefault(rack.name, {})[node] = site.gpus(node)
    return out


def rollup(
    findings: Iterable[Finding],
    layout: Layout,
    *,
    required_gpu_checks: Collection[str] = (),
    required_node_checks: Collection[str] = (),
    name: str = "run",
) -> Verdict:
    """The run's verdict tree (see the module docstring)."""
    rack_of = {node: rack for rack, nodes in layout.items() for node in nodes}
    on_gpu: dict[GpuRef, list[Finding]] = {}
    on_node: dict[str, list[Finding]] = {}
    on_rack: dict[str, list[Finding]] = {}
    on_run: list[Finding] = []
    all_findings = list(findings)
    for f in all_findings:
        known = [n for n in f.nodes if n in rack_of]
        if not known:
            on_run.append(f)  # nodes outside the layout (or none): keep it, at run level
        elif len(f.gpus) == 1:
            on_gpu.setdefault(f.gpus[0], []).append(f)
        elif len(f.nodes) == 1:
            on_node.setdefault(f.nodes[0], []).append(f)
        else:
            for rack in sorted({rack_of[n] for n in known}):
                on_rack.setdefault(rack, []).append(f)

    rack_verdicts: list[Verdict] = []
    for rack, nodes in layout.items():
        node_verdicts: list[Verdict] = []
        for node, gpus in nodes.items():
            own = list(on_node.get(node, []))
            gpu_found = {g: list(on_gpu.get(g, [])) for g in gpus}
            # GPUs the inventory does not list but findings name (extra GPUs on the node).
            for g, fs in on_gpu.items():
                if g.node == node and g not in gpu_found:
                    gpu_found[g] = list(fs)
            if not any(f.status is Status.ERROR for f in own):
                _cover(node, own, gpu_found, required_gpu_checks, required_node_checks)
            gpu_verdicts = tuple(
                Verdict(str(g), "gpu", worst(f.status for f in fs), tuple(fs))
                for g, fs in sorted(gpu_found.items())
            )
            status = worst([*(f.status for f in own), *(v.status for v in gpu_verdicts)])
            node_verdicts.append(Verdict(node, "node", status, tuple(own), gpu_verdicts))
        own_rack = on_rack.get(rack, [])
        status = worst([*(f.status for f in own_rack), *(v.status for v in node_verdicts)])
        rack_verdicts.append(Verdict(rack, "rack", status, tuple(own_rack), tuple(node_verdicts)))
    status = worst([*(f.status for f in on_run), *(v.status for v in rack_verdicts)])
    return Verdict(name, "run", status, tuple(on_run), tuple(rack_verdicts))


def _cover(
    node: str,
    own: list[Finding],
    gpu_found: dict[GpuRef, list[Finding]],
    gpu_checks: Collection[str],
    node_checks: Collection[str],
) -> None:
    node_has = {f.check for f in own}
    for check in gpu_checks:
        if check in node_has:
            continue
        for gpu, fs in gpu_found.items():
            if not any(f.check == check for f in fs):
                reason = Reason(check, "result", None, None, f"no {check} result for this GPU")
                fs.append(gpu_finding(gpu, Status.ERROR, reason))
    for check in node_checks:
        if check in node_has or any(f.check == check for fs in gpu_found.values() for f in fs):
            continue
        reason = Reason(check, "result", None, None, f"no {check} result for this node")
        own.append(node_finding(node, Status.ERROR, reason))
