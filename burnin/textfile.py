"""A burn-in run's results as node_exporter textfile-collector files, one per rack.

``dcops burnin run --textfile DIR`` writes ``DIR/dcops_burnin_<rack>.prom`` for
every rack the run touched, atomically; a later run of another rack leaves
those files alone, so the directory always holds the *last burn-in of each
rack*. Every series carries ``rack`` (files of different racks never hold the
same series, which node_exporter would refuse). Metrics (gauges)::

    dcops_burnin_last_run_timestamp_seconds{rack}      when the run finished (Unix time)
    dcops_burnin_duration_seconds{rack}                wall time of the run
    dcops_burnin_nodes{rack,verdict}                   nodes per verdict (pass/warn/fail/error)
    dcops_burnin_gpus{rack,verdict}                    GPUs per verdict
    dcops_burnin_node_passed{rack,node}                1 pass or warn, 0 fail or error
    dcops_burnin_gpu_gemm_tflops{rack,node,gpu}        measured GEMM throughput per GPU
    dcops_burnin_collective_busbw_gbps{rack,target}    all_reduce bus bandwidth, per node
                                                       and per NVLink domain (target "domain")
    dcops_burnin_circuit_breaker_tripped{rack}         1 when the breaker refused the drains

Alerting rules and the dashboard over them: ``telemetry/prometheus/``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from dcops.textfile import write_atomic

VERDICTS = ("pass", "warn", "fail", "error")
_RACK_FILE_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


def textfile_name(rack: str) -> str:
    return f"dcops_burnin_{_RACK_FILE_CHARS.sub('_', rack) or 'none'}.prom"


def _timestamp(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _collective_rack(target: str, rack_of: Mapping[str, str]) -> tuple[str, str] | None:
    """(rack, target label) of a ``collectives`` key: a node, or ``domain <rack>``."""
    if target.startswith("domain "):
        return target.removeprefix("domain "), "domain"
    node_rack = rack_of.get(target)
    return (node_rack, target) if node_rack is not None else None


def render_racks(report: Mapping[str, Any]) -> dict[str, str]:
    """rack -> exposition text of that rack's part of a burn-in report."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    nodes = [n for n in report.get("nodes") or [] if isinstance(n, Mapping)]
    rack_of = {str(n["node"]): str(n.get("rack") or "") for n in nodes}
    racks = sorted(set(rack_of.values()))
    finished = _timestamp(report.get("finished_at"))
    started = _timestamp(report.get("started_at"))
    refused = any(a.get("outcome") == "refused" for a in report.get("actions") or [])
    out: dict[str, str] = {}
    for rack in racks:
        registry = CollectorRegistry()

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, ["rack", *labels], registry=registry)  # noqa: B023

        last = gauge("dcops_burnin_last_run_timestamp_seconds", "When the last run finished.")
        took = gauge("dcops_burnin_duration_seconds", "Wall time of the last run.")
        node_count = gauge("dcops_burnin_nodes", "Nodes per verdict.", ("verdict",))
        gpu_count = gauge("dcops_burnin_gpus", "GPUs per verdict.", ("verdict",))
        passed = gauge("dcops_burnin_node_passed", "1 when the node passed (or warned).", ("node",))
        tflops = gauge("dcops_burnin_gpu_gemm_tflops", "Measured GEMM throughput.", ("node", "gpu"))
        busbw = gauge(
            "dcops_burnin_collective_busbw_gbps",
            "all_reduce bus bandwidth per node and per NVLink domain (target=domain).",
            ("target",),
        )
        breaker = gauge(
            "dcops_burnin_circuit_breaker_tripped", "1 when the breaker refused to drain."
        )
        if finished is not None:
            last.labels(rack=rack).set(finished)
            if started is not None:
                took.labels(rack=rack).set(max(0.0, finished - started))
        node_verdicts = dict.fromkeys(VERDICTS, 0)
        gpu_verdicts = dict.fromkeys(VERDICTS, 0)
        for node in (n for n in nodes if rack_of[str(n["node"])] == rack):
            name = str(node["node"])
            status = str(node.get("status"))
            node_verdicts[status] = node_verdicts.get(status, 0) + 1
            passed.labels(rack=rack, node=name).set(status in ("pass", "warn"))
            for gpu in node.get("gpus") or []:
                verdict = str(gpu.get("status"))
                gpu_verdicts[verdict] = gpu_verdicts.get(verdict, 0) + 1
                if isinstance(gpu.get("tflops"), int | float):
                    tflops.labels(rack=rack, node=name, gpu=str(gpu["index"])).set(gpu["tflops"])
        for verdict, count in node_verdicts.items():
            node_count.labels(rack=rack, verdict=verdict).set(count)
        for verdict, count in gpu_verdicts.items():
            gpu_count.labels(rack=rack, verdict=verdict).set(count)
        for target, value in (report.get("collectives") or {}).items():
            where = _collective_rack(str(target), rack_of)
            if where is not None and where[0] == rack and isinstance(value, int | float):
                busbw.labels(rack=rack, target=where[1]).set(value)
        breaker.labels(rack=rack).set(refused)
        out[rack] = generate_latest(registry).decode()
    return out


def write(directory: Path | str, report: Mapping[str, Any]) -> list[Path]:
    """Write one file per rack of ``report`` into ``directory``; their paths."""
    return [
        write_atomic(directory, textfile_name(rack), text)
        for rack, text in render_racks(report).items()
    ]
