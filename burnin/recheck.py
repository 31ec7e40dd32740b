"""Why a rechecked node was not resumed: one reason per node, for the table and the JSON.

A ``burnin run --recheck`` re-tests the nodes dcops drained and resumes those that
pass. Every other rechecked node gets its reason in ``not_resumed``::

    {"sim-r01-t04": "recheck fail: gemm: gpu3 median 612 TFLOPS < 650 (threshold)",
     "sim-r01-t07": "skipped: someone else (admin: keep out, RMA 4711) drained it",
     "sim-r01-t09": "dry run: --apply resumes it"}

Its own verdict first (a node that did not pass is never resumed), else what the
actuator said about its resume (ownership re-read, levels, the breaker, the backend).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dcops.actions import ActionResult, Status


def _first_reason(entry: Mapping[str, Any]) -> str:
    reasons = list(entry.get("reasons", []))
    for gpu in entry.get("gpus", []):
        reasons += [{**r, "gpu": gpu.get("index")} for r in gpu.get("reasons", [])]
    order = {"fail": 0, "error": 1, "warn": 2}
    reasons.sort(key=lambda r: order.get(str(r.get("status", "")), 3))
    if not reasons:
        return "no result"
    r = reasons[0]
    gpu = f" gpu{r['gpu']}" if r.get("gpu") is not None else ""
    return f"{r.get('check', '?')}:{gpu} {r.get('message', '')}".rstrip()


def _own_words(result: ActionResult, node: str) -> str:
    """What the actuator said about ``node`` without the node's name repeated."""
    if node in result.skipped:
        return result.skipped[node]
    return result.message.removeprefix(f"{node}: ")


def not_resumed(report: Mapping[str, Any], results: Sequence[ActionResult]) -> dict[str, str]:
    """``{node: why}`` for every rechecked node that was not resumed (``{}`` for a burn-in)."""
    if report.get("kind") != "recheck":
        return {}
    out: dict[str, str] = {}
    for entry in report["nodes"]:
        if entry["status"] != "pass":
            out[entry["node"]] = f"recheck {entry['status']}: {_first_reason(entry)}"
    for result in results:
        if result.request.kind != "resume":
            continue
        if result.status is Status.DONE:  # all done but the nodes it left alone
            out.update({n: f"skipped: {why}" for n, why in result.skipped.items()})
            continue
        for node in result.request.targets:
            if result.status is Status.DRY_RUN:
                out[node] = "dry run: --apply resumes it"
            else:
                out[node] = f"{result.status.value}: {_own_words(result, node)}".rstrip(": ")
    return out
