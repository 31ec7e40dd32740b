"""Capacity as Prometheus gauges: the text exposition (for the node_exporter textfile
collector) and a prometheus-client collector (for an HTTP exporter), from the same families.

Metrics (labels; all gauges):

* ``dcops_capacity_trays{rack, standing}``: trays healthy / degraded / out;
* ``dcops_capacity_trays_out{rack, owner}``: out trays by who must act;
* ``dcops_capacity_segments{rack, size, kind}``: segments of ``size`` trays,
  ``kind`` = ``promisable`` (healthy) or ``free_now`` (healthy and idle);
* ``dcops_capacity_gpus_healthy{rack}``;
* ``dcops_capacity_domain_state{rack, state}``: 1 for the rack's state
  (available / running / degraded / down), 0 for the others;
* ``dcops_capacity_power_budget_watts{rack}``, ``..._power_draw_watts{rack}``
  (the planning draw), ``..._power_headroom_watts{rack}`` when power was computed.

The Grafana dashboard ``telemetry/prometheus/dashboard.json`` plots
``dcops_capacity_segments`` by size per rack over time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from capacity.report import DOMAIN_STATES
from capacity.trays import OWNER_ORDER
from dcops.atomic import write_atomic
from dcops.errors import StoreError

Family = tuple[str, str, list[tuple[dict[str, str], float]]]  # name, help, samples

TEXTFILE_NAME = "dcops_capacity.prom"


def families(report: Mapping[str, Any], power: Mapping[str, Any] | None = None) -> list[Family]:
    trays: list[tuple[dict[str, str], float]] = []
    owners: list[tuple[dict[str, str], float]] = []
    segs: list[tuple[dict[str, str], float]] = []
    gpus: list[tuple[dict[str, str], float]] = []
    states: list[tuple[dict[str, str], float]] = []
    for r in report["racks"]:
        rack = r["rack"]
        out = len(r["trays_out"])
        for standing, n in (
            ("healthy", r["trays_healthy"]),
            ("degraded", r["trays_degraded"]),
            ("out", out),
        ):
            trays.append(({"rack": rack, "standing": standing}, float(n)))
        counts = {o: 0 for o in OWNER_ORDER}
        for t in r["trays_out"]:
            counts[t["owner"]] = counts.get(t["owner"], 0) + 1
        owners += [({"rack": rack, "owner": o}, float(n)) for o, n in counts.items()]
        for size, v in r["segments"].items():
            for kind in ("promisable", "free_now"):
                segs.append(({"rack": rack, "size": size, "kind": kind}, float(v[kind])))
        gpus.append(({"rack": rack}, float(r["gpus_healthy"])))
        states += [
            ({"rack": rack, "state": s}, 1.0 if r["state"] == s else 0.0) for s in DOMAIN_STATES
        ]
    out_families: list[Family] = [
        ("dcops_capacity_trays", "Compute trays by standing.", trays),
        ("dcops_capacity_trays_out", "Out trays by owner (who must act).", owners),
        ("dcops_capacity_segments", "Disjoint segments of size trays per rack.", segs),
        ("dcops_capacity_gpus_healthy", "GPUs on healthy trays.", gpus),
        ("dcops_capacity_domain_state", "1 for the NVLink domain's state.", states),
    ]
    if power:
        for key, name, doc in (
            ("budget_kw", "dcops_capacity_power_budget_watts", "Rack power budget (redundant)."),
            ("planning_draw_kw", "dcops_capacity_power_draw_watts", "Planning draw (p95/model)."),
            ("headroom_kw", "dcops_capacity_power_headroom_watts", "Budget minus planning draw."),
        ):
            samples = [({"rack": r["rack"]}, r[key] * 1000.0) for r in power["racks"]]
            out_families.append((name, doc, samples))
    return out_families


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(fams: list[Family]) -> str:
    """Prometheus text format 0.0.4."""
    lines: list[str] = []
    for name, doc, samples in fams:
        lines.append(f"# HELP {name} {doc}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{body}}} {value:g}")
    return "\n".join(lines) + "\n"


def write_textfile(directory: Path, text: str) -> Path:
    """Atomically replace ``directory/dcops_capacity.prom`` (tmp file + rename)."""
    target = directory / TEXTFILE_NAME
    try:
        directory.mkdir(parents=True, exist_ok=True)
        write_atomic(target, text, mode=0o644)  # node_exporter reads it
    except OSError as exc:
        raise StoreError(f"textfile {target}: {exc.strerror or exc}") from exc
    return target


class CapacityCollector:
    """prometheus-client collector: calls ``build()`` -> families at each scrape."""

    def __init__(self, build: Any) -> None:
        self.build = build

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        for name, doc, samples in self.build():
            keys = list(samples[0][0]) if samples else []
            family = GaugeMetricFamily(name, doc, labels=keys)
            for labels, value in samples:
                family.add_metric([labels[k] for k in keys], value)
            yield family
