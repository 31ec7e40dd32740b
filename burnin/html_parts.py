"""Pieces of the HTML burn-in report: numbers with units, the per-GPU grid, tables.

Everything returned is HTML-escaped text; no value is ever printed as ``None``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from burnin.html_figures import COLORS, by_rack

#: metric name -> unit; metric names ending in a unit suffix are matched below.
_UNITS = {
    "tflops": "TFLOPS",
    "busbw": "GB/s",
    "localized": "GB/s",
}
_SUFFIXES = (
    ("_gbps", "GB/s"),
    ("_tflops", "TFLOPS"),
    ("_c", "°C"),
    ("_w", "W"),
    ("_kwh", "kWh"),
    ("_s", "s"),
    ("_bytes", "bytes"),
)
#: Action outcomes by the section they belong to.
_PLANNED = {"dry-run", "planned", "pending", "recommend", "recommended", "observed", "would"}
_DONE = {"ok", "done", "approved"}
_REFUSED = {"refused", "denied", "skipped", "failed", "error", "expired"}


def esc(value: Any) -> str:
    return html.escape(text(value))


def text(value: Any) -> str:
    """A value for people: a dash for none, numbers grouped and not cut, lists joined."""
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:,.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return ", ".join(text(v) for v in value) or "–"
    return str(value)


def size_text(n: Any) -> str:
    """A byte count in binary units (8 MiB, 16 GiB); other values as :func:`text`."""
    if not isinstance(n, int) or isinstance(n, bool):
        return text(n)
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale:,} {unit}"
    return f"{n:,} bytes"


def unit_of(metric: str) -> str:
    """The unit of a metric's values ("tflops_vs_peers" compares TFLOPS: TFLOPS)."""
    metric = metric.removesuffix("_vs_peers")
    if metric in _UNITS:
        return _UNITS[metric]
    for suffix, unit in _SUFFIXES:
        if metric.endswith(suffix):
            return unit
    return ""


def with_unit(value: Any, metric: str) -> str:
    """``value`` formatted, with the metric's unit when it is a number."""
    shown = text(value)
    unit = unit_of(metric)
    if unit and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{shown} {unit}"
    return shown


def gpu_grid(report: dict[str, Any]) -> str:
    """One block per rack: trays as columns, each with its GPUs; colour by status.

    Hovering a cell shows the GPU, its status, its GEMM TFLOPS and its reasons.
    """
    out: list[str] = []
    for rack, nodes in by_rack(report).items():
        cells = sum(len(n["gpus"]) for n in nodes)
        trays: list[str] = []
        for tray, node in enumerate(nodes, start=1):
            gpus = []
            for gpu in node["gpus"]:
                status = str(gpu["status"])
                why = "; ".join(
                    f"{r.get('check', '')}: {r.get('message', '')}" for r in gpu["reasons"]
                )
                tip = (
                    f"{node['node']} GPU {gpu['index']}: {status}, "
                    f"{with_unit(gpu.get('tflops'), 'tflops')}" + (f" ({why})" if why else "")
                )
                gpus.append(
                    f'<span class="gpu {html.escape(status)}" title="{html.escape(tip)}" '
                    f'style="background:{COLORS.get(status, "#000")}"></span>'
                )
            trays.append(
                f'<div class="tray" title="{html.escape(node["node"])}: {esc(node["status"])}">'
                f'<div class="tn">{tray}</div>{"".join(gpus)}</div>'
            )
        out.append(
            f'<div class="rack"><div class="rn">{esc(rack)}<br><small>{cells} GPUs</small></div>'
            f'<div class="trays">{"".join(trays)}</div></div>'
        )
    return "".join(out)


def legend(statuses: Iterable[str], kind: str) -> str:
    """A colour legend: ``kind`` is "outline" (tray heatmaps) or "fill" (GPU cells)."""
    items = []
    for status in statuses:
        color = COLORS[status]
        swatch = (
            f"border:3px solid {color};background:transparent"
            if kind == "outline"
            else f"background:{color}"
        )
        items.append(f'<span class="sw" style="{swatch}"></span>{html.escape(status)}')
    return '<p class="legend">' + " ".join(items) + "</p>"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> str:
    """An HTML table of already-escaped cells (``rows``), or ``empty`` in one cell."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if not rows:
        body = f'<tr><td colspan="{len(headers)}">{html.escape(empty)}</td></tr>'
    return f"<table><tr>{head}</tr>{body}</table>"


def finding_rows(report: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    for node in report["nodes"]:
        if node["status"] == "pass":
            continue
        reasons = [{**r, "gpu": None} for r in node["reasons"]] + [
            {**r, "gpu": g["index"]} for g in node["gpus"] for r in g["reasons"]
        ]
        for r in reasons:
            metric = str(r.get("metric") or "")
            rows.append(
                [
                    f'<span class="node">{esc(node["node"])}</span>',
                    esc(node["rack"]),
                    badge(node["status"]),
                    esc(r.get("gpu")),
                    esc(r.get("check")),
                    esc(metric),
                    html.escape(with_unit(r.get("value"), metric)),
                    html.escape(with_unit(r.get("threshold"), metric)),
                    esc(r.get("message")),
                ]
            )
    return rows


def badge(status: str, *, upper: bool = False) -> str:
    color = COLORS.get(status, "#000")
    shown = status.upper() if upper else status
    return f'<b style="color:{color}">{html.escape(shown)}</b>'


def action_sections(actions: Sequence[Mapping[str, Any]]) -> str:
    """Actions grouped as planned (dry run), done, and refused or failed."""
    groups: dict[str, list[list[str]]] = {"planned": [], "done": [], "refused or failed": []}
    for a in actions:
        outcome = str(a.get("outcome") or a.get("status") or "")
        group = (
            "done"
            if outcome in _DONE
            else "refused or failed"
            if outcome in _REFUSED
            else "planned"
        )
        groups[group].append(
            [
                esc(a.get("action") or a.get("kind")),
                f'<span class="node">{esc(a.get("nodes") or a.get("targets"))}</span>',
                esc(outcome),
                esc(a.get("reason") or a.get("message")),
            ]
        )
    out = []
    for title, rows in groups.items():
        out.append(f"<h3>{html.escape(title.capitalize())}</h3>")
        out.append(table(("action", "nodes", "outcome", "reason / message"), rows, "none"))
    return "".join(out)


_PARAMS = (
    ("backend", "backend", ""),
    ("dtype", "GEMM dtype", ""),
    ("gemm_rounds", "GEMM rounds", ""),
    ("gemm_fixed_rounds", "GEMM rounds for every GPU", ""),
    ("gemm_remeasure_rounds", "GEMM re-measurement rounds", ""),
    ("gemm_remeasured_gpus", "GPUs re-measured", ""),
    ("gemm_duration_s", "GEMM round duration", "s"),
    ("gpu_seconds", "GPU-time", "GPU-s"),
    ("collective_op", "collective", ""),
    ("collective_sizes_bytes", "collective sizes", "size"),
    ("collectives", "collectives run", ""),
    ("probe", "GPU readings (probe)", ""),
    ("seed", "seed", ""),
)


def param_rows(report: dict[str, Any]) -> list[list[str]]:
    """Run parameters, known ones first with their units, then any others."""
    params = dict(report.get("params") or {})
    rows: list[list[str]] = []
    for key, label, unit in _PARAMS:
        if key in params:
            value = params.pop(key)
            if unit == "size" and isinstance(value, list | tuple):
                shown = " · ".join(size_text(v) for v in value) or "–"
            else:
                shown = text(value) + (f" {unit}" if unit and value is not None else "")
            rows.append([esc(label), esc(shown)])
    for key, value in params.items():
        if isinstance(value, dict):
            shown = " · ".join(f"{k.replace('_', ' ')} {text(v)}" for k, v in value.items())
            rows.append([esc(key.replace("_", " ")), esc(shown or "–")])
        else:
            rows.append([esc(key.replace("_", " ")), esc(value)])
    started, finished = report.get("started_at"), report.get("finished_at")
    rows.append([esc("started (UTC)"), esc(started)])
    rows.append([esc("finished (UTC)"), esc(finished)])
    return rows
