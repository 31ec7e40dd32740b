"""The sweep's metrics as a node_exporter textfile-collector file, written atomically.

Metrics (gauges; names follow Prometheus conventions, units in the name)::

    dcops_node_health{node,check}                 1 healthy (ok/warn), 0 not (fail/error)
    dcops_sweep_nodes{state}                      nodes per status (ok/warn/suspect/fail/error)
    dcops_sweep_duration_seconds                  wall time of the sweep
    dcops_sweep_last_success_timestamp_seconds    Unix time the sweep completed
    dcops_sweep_circuit_breaker_tripped           1 when the breaker refused drains

The file is written only when the sweep completed; a failed sweep leaves the
previous file, so ``time() - dcops_sweep_last_success_timestamp_seconds`` is
the alert for "sweeps stopped". It is rendered by prometheus_client, written
to a hidden temporary file in the same directory (node_exporter reads
``*.prom`` only), flushed to disk and renamed over the target.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dcops.errors import DcopsError, InputError

#: The file name inside ``--textfile DIR``.
TEXTFILE_NAME = "dcops_sweep.prom"

NODE_STATUSES = ("ok", "warn", "suspect", "fail", "error")


def render(report: Mapping[str, Any]) -> str:
    """The exposition text for a sweep report (see :mod:`dcops.health.sweep`)."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry()
    health = Gauge(
        "dcops_node_health",
        "1 when the node passed the check in the last sweep (ok or warn), 0 when not.",
        ["node", "check"],
        registry=registry,
    )
    nodes = Gauge(
        "dcops_sweep_nodes",
        "Nodes per status in the last sweep.",
        ["state"],
        registry=registry,
    )
    duration = Gauge(
        "dcops_sweep_duration_seconds", "Wall time of the last sweep.", registry=registry
    )
    success = Gauge(
        "dcops_sweep_last_success_timestamp_seconds",
        "Unix time the last sweep completed.",
        registry=registry,
    )
    breaker = Gauge(
        "dcops_sweep_circuit_breaker_tripped",
        "1 when the last sweep's circuit breaker refused to drain.",
        registry=registry,
    )
    counts = dict.fromkeys(NODE_STATUSES, 0)
    for node in report["nodes"]:
        counts[node["status"]] = counts.get(node["status"], 0) + 1
        per_check: dict[str, bool] = {}
        for finding in node["checks"]:
            good = finding["status"] in ("ok", "warn")
            per_check[finding["check"]] = per_check.get(finding["check"], True) and good
        for check, good in per_check.items():
            health.labels(node=node["node"], check=check).set(1 if good else 0)
    for state, count in counts.items():
        nodes.labels(state=state).set(count)
    duration.set(float(report["duration_s"]))
    success.set(float(report["finished_at_s"]))
    breaker.set(1 if report.get("circuit_breaker") else 0)
    return generate_latest(registry).decode()


def write(directory: Path | str, report: Mapping[str, Any]) -> Path:
    """Write the report's metrics to ``directory/dcops_sweep.prom`` atomically; its path."""
    folder = Path(directory)
    if not folder.is_dir():
        raise InputError(f"--textfile {folder}: not a directory")
    target = folder / TEXTFILE_NAME
    text = render(report)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{TEXTFILE_NAME}.", dir=folder)
    except OSError as exc:
        raise DcopsError(f"--textfile {folder}: cannot write: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise DcopsError(f"--textfile {target}: cannot write: {exc.strerror or exc}") from exc
        raise
    return target
