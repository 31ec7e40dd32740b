"""The burn-in report: the JSON contract of ``dcops burnin run --json`` and its summary.

Contract (keys kept stable; more may be added)::

    {"run_id", "sku", "status", "started_at", "finished_at", "params",
     "summary": {"pass", "warn", "fail", "error"},          # nodes by status
     "gpu_summary": {"pass", "warn", "fail", "error", "unknown"},  # GPUs by status
     "racks": [{"rack", "status", "reasons": [...]}],
     "nodes": [{"node", "rack", "status", "reasons": [...],
                "gpus": [{"index", "status", "reasons": [{"check", "metric", "value",
                # a GPU of a node that could not be measured (unreachable, hung) is
                # "unknown", never "pass"; its node carries the error and the reason
                                                           "threshold", "message", ...}],
                          "tflops"}]}],
     "localization": [{"target", "kind", "domain", "method", "stages", "tests",
                       "gpu_seconds", "evidence"}],   # stages/tests/GPU-s: the domain's search
     "unresolved": [{"domain", "group", "method", "stages", "tests", "gpu_seconds"}],
     "collectives": {"<group>": peak busbw GB/s},
     "actions": [...]}                                       # filled by the service
"""

from __future__ import annotations

from typing import Any

from burnin.suite import SuiteRun
from burnin.verdicts import Status, Verdict

STATUSES = ("pass", "warn", "fail", "error")
#: A GPU that was not measured because its node could not be (unreachable, hung, crashed).
UNKNOWN = "unknown"


def _reasons(verdict: Verdict) -> list[dict[str, Any]]:
    return [f.to_dict() for f in verdict.findings if f.status is not Status.PASS]


def build_report(
    run: SuiteRun, *, run_id: str, sku: str, started_at: str, finished_at: str
) -> dict[str, Any]:
    """The report dict of one suite run (pure)."""
    summary = dict.fromkeys(STATUSES, 0)
    gpu_summary = dict.fromkeys((*STATUSES, UNKNOWN), 0)
    racks: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    tflops_of = {str(g): t for g, t in run.gemm_tflops.items()}
    for rack in run.verdict.children:
        racks.append({"rack": rack.target, "status": rack.status.value, "reasons": _reasons(rack)})
        for node in rack.children:
            summary[node.status.value] += 1
            gpus = []
            node_error = any(f.status is Status.ERROR for f in node.findings)
            for gpu in node.children:
                measured = gpu.findings or not node_error
                gpu_status = gpu.status.value if measured else UNKNOWN
                gpu_summary[gpu_status] += 1
                index = int(gpu.target.rpartition(":gpu")[2])
                tflops = tflops_of.get(gpu.target)
                gpus.append(
                    {
                        "index": index,
                        "status": gpu_status,
                        "reasons": _reasons(gpu),
                        "tflops": round(tflops, 3) if tflops is not None else None,
                    }
                )
            nodes.append(
                {
                    "node": node.target,
                    "rack": rack.target,
                    "status": node.status.value,
                    "reasons": _reasons(node),
                    "gpus": gpus,
                }
            )
    localization = [
        {**rec, "domain": domain}
        for domain, loc in run.localizations.items()
        for rec in loc.records()
    ]
    unresolved = [
        {"domain": domain, "group": list(group), **loc.cost()}
        for domain, loc in run.localizations.items()
        for group in loc.unresolved
    ]
    return {
        "run_id": run_id,
        "sku": sku,
        "status": run.verdict.status.value,
        "started_at": started_at,
        "finished_at": finished_at,
        "params": run.params,
        "summary": summary,
        "gpu_summary": gpu_summary,
        "run_reasons": _reasons(run.verdict),
        "racks": racks,
        "nodes": nodes,
        "localization": localization,
        "unresolved": unresolved,
        "collectives": {k: round(v, 3) for k, v in run.busbw_gbps.items()},
        "actions": [],
    }


def failing_nodes(
    report: dict[str, Any], statuses: tuple[str, ...] = ("fail", "error")
) -> list[str]:
    return [n["node"] for n in report["nodes"] if n["status"] in statuses]


def passing_nodes(report: dict[str, Any]) -> list[str]:
    return [n["node"] for n in report["nodes"] if n["status"] == "pass"]


def node_evidence(report: dict[str, Any], node: str, limit: int = 3) -> list[dict[str, Any]]:
    """The first few non-pass reasons of a node and its GPUs: what a drain carries."""
    for entry in report["nodes"]:
        if entry["node"] != node:
            continue
        reasons = list(entry["reasons"])
        for gpu in entry["gpus"]:
            reasons += gpu["reasons"]
        order = {"fail": 0, "error": 1, "warn": 2}
        reasons.sort(key=lambda r: order.get(r.get("status", ""), 3))
        return reasons[:limit]
    return []
