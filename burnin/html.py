"""An HTML burn-in report an operator can hang on the wall: per-tray heatmaps and the findings.

``write_report(report, directory)`` writes ``<run_id>.html`` and two PNG
heatmaps (mean GEMM TFLOPS per tray, tray all_reduce busbw), racks as rows and
trays as columns; failing trays are outlined. matplotlib is imported lazily
(extra ``report``) and drawn with the Agg backend (no display needed).
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from dcops.errors import InputError

_COLORS = {"pass": "#1a7f37", "warn": "#b08800", "fail": "#cf222e", "error": "#8250df"}


def _grid(report: dict[str, Any], value_of: Any) -> tuple[list[str], int, list[list[float]]]:
    racks: list[str] = []
    by_rack: dict[str, list[dict[str, Any]]] = {}
    for node in report["nodes"]:
        if node["rack"] not in by_rack:
            racks.append(node["rack"])
        by_rack.setdefault(node["rack"], []).append(node)
    width = max((len(v) for v in by_rack.values()), default=0)
    grid = [
        [value_of(n) for n in by_rack[r]] + [math.nan] * (width - len(by_rack[r])) for r in racks
    ]
    return racks, width, grid


def _heatmap(report: dict[str, Any], value_of: Any, title: str, unit: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    racks, width, grid = _grid(report, value_of)
    fig, ax = plt.subplots(figsize=(max(6.0, width * 0.6), max(2.0, len(racks) * 0.6 + 1.2)))
    image = ax.imshow(grid, aspect="auto", cmap="viridis")
    ax.set_yticks(range(len(racks)), labels=racks)
    ax.set_xticks(range(width), labels=[str(i + 1) for i in range(width)])
    ax.set_xlabel("tray")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=unit)
    by_rack: dict[str, list[dict[str, Any]]] = {}
    for node in report["nodes"]:
        by_rack.setdefault(node["rack"], []).append(node)
    for row, rack in enumerate(racks):
        for col, node in enumerate(by_rack[rack]):
            if node["status"] != "pass":
                ax.add_patch(
                    Rectangle(
                        (col - 0.5, row - 0.5),
                        1,
                        1,
                        fill=False,
                        edgecolor=_COLORS[node["status"]],
                        linewidth=2.5,
                    )
                )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _tray_tflops(node: dict[str, Any]) -> float:
    values = [g["tflops"] for g in node["gpus"] if g.get("tflops") is not None]
    return sum(values) / len(values) if values else math.nan


def write_report(report: dict[str, Any], directory: str | Path) -> Path:
    """Write the HTML report and its heatmaps; returns the HTML file's path."""
    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--report {out}: cannot create: {exc.strerror or exc}") from exc
    run_id = report["run_id"]
    busbw = report.get("collectives", {})
    _heatmap(
        report,
        _tray_tflops,
        f"GEMM TFLOPS per tray (mean of GPUs) — {run_id}",
        "TFLOPS",
        out / f"{run_id}-tflops.png",
    )
    _heatmap(
        report,
        lambda n: busbw.get(n["node"], math.nan),
        f"tray {report['params'].get('collective_op', 'all_reduce')} busbw — {run_id}",
        "GB/s",
        out / f"{run_id}-busbw.png",
    )
    rows = []
    for node in report["nodes"]:
        if node["status"] == "pass":
            continue
        reasons = list(node["reasons"]) + [
            {**r, "gpu": g["index"]} for g in node["gpus"] for r in g["reasons"]
        ]
        for r in reasons:
            rows.append(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(str(c))}</td>"
                    for c in (
                        node["node"],
                        node["rack"],
                        node["status"],
                        r.get("gpu", "-"),
                        r.get("check", ""),
                        r.get("metric", ""),
                        r.get("value", ""),
                        r.get("threshold", ""),
                        r.get("message", ""),
                    )
                )
                + "</tr>"
            )
    s = report["summary"]
    color = _COLORS.get(report["status"], "#000")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>dcops burn-in {html.escape(run_id)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px}}</style></head><body>
<h1>Burn-in {html.escape(run_id)}: <span style="color:{color}">{
        report["status"].upper()
    }</span></h1>
<p>SKU {html.escape(report["sku"])}, targets {html.escape(report.get("targets", ""))},
started {html.escape(report["started_at"])}. Nodes: {s["pass"]} pass, {s["warn"]} warn,
{s["fail"]} fail, {s["error"]} error.</p>
<img src="{html.escape(run_id)}-tflops.png" alt="GEMM TFLOPS per tray">
<img src="{html.escape(run_id)}-busbw.png" alt="busbw per tray">
<h2>Findings</h2>
<table><tr><th>node</th><th>rack</th><th>status</th><th>GPU</th><th>check</th><th>metric</th>
<th>value</th><th>threshold</th><th>why</th></tr>
{"".join(rows) or '<tr><td colspan="9">everything passed</td></tr>'}
</table>
<h2>Localization</h2><ul>
{
        "".join(
            f"<li>{html.escape(loc['kind'])} {html.escape(loc['target'])} (domain "
            f"{html.escape(loc['domain'])}): {loc['domain_rounds']} rounds, all-pairs "
            f"{loc['all_pairs_rounds']}</li>"
            for loc in report["localization"]
        )
        or "<li>none</li>"
    }
</ul></body></html>
"""
    path = out / f"{run_id}.html"
    path.write_text(page, encoding="utf-8")
    return path
