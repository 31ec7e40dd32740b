"""An HTML burn-in report an operator can hang on the wall, in one self-contained file.

``write_report(report, directory)`` writes ``<run_id>.html``: no other file, no
script, no network; the per-tray heatmaps (mean GEMM TFLOPS per tray, tray
busbw) are inline PNG data. The page holds, in order: the verdict and counts;
a per-GPU grid (one cell per GPU, 72 per GB200 NVL72 rack, coloured by status,
its value and reasons on hover) beside the per-tray heatmaps with a legend for
their outline colours; the findings with units; localization; the actions
(planned, done, refused or failed); and the run parameters.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from burnin.html_figures import COLORS, heatmap_png, tray_tflops
from burnin.html_parts import (
    action_sections,
    badge,
    esc,
    finding_rows,
    gpu_grid,
    legend,
    param_rows,
    table,
    text,
)
from dcops.errors import InputError

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#1f2328}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #d0d7de;padding:3px 8px;font-size:13px;text-align:left;vertical-align:top}
.node{white-space:nowrap}
.views{display:flex;flex-wrap:wrap;gap:2em;align-items:flex-start}
.rack{display:flex;align-items:center;gap:.5em;margin:.3em 0}
.rn{width:4em;font-weight:bold;font-size:13px}
.trays{display:flex;gap:3px}
.tray{display:grid;grid-template-columns:repeat(2,12px);gap:2px;padding:2px;
border:1px solid #d0d7de;border-radius:3px}
.tn{grid-column:1/3;font-size:9px;text-align:center;color:#57606a}
.gpu{width:12px;height:12px;border-radius:2px;display:block}
.legend{font-size:13px}
.sw{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
img{max-width:100%}
"""


def write_report(report: dict[str, Any], directory: str | Path) -> Path:
    """Write the self-contained HTML report; returns its path."""
    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--report {out}: cannot create: {exc.strerror or exc}") from exc
    path = out / f"{report['run_id']}.html"
    path.write_text(render_page(report), encoding="utf-8")
    return path


def render_page(report: dict[str, Any]) -> str:
    """The whole page as one string (pure apart from drawing the heatmaps)."""
    run_id = str(report["run_id"])
    busbw = report.get("collectives") or {}
    op = (report.get("params") or {}).get("collective_op") or "all_reduce"
    figures = [
        (
            heatmap_png(report, tray_tflops, "GEMM TFLOPS per tray (mean of its GPUs)", "TFLOPS"),
            "GEMM TFLOPS per tray",
        ),
        (
            heatmap_png(
                report, lambda n: float(busbw.get(n["node"], "nan")), f"tray {op} busbw", "GB/s"
            ),
            f"tray {op} busbw",
        ),
    ]
    images = (
        "".join(
            f'<figure><img src="data:image/png;base64,{png}" alt="{html.escape(alt)}">'
            f"<figcaption>{html.escape(alt)}</figcaption></figure>"
            for png, alt in figures
            if png
        )
        or "<p>No tray was measured (no GEMM or collective result).</p>"
    )
    s = report["summary"]
    g = report.get("gpu_summary") or {}
    gpu_counts = ", ".join(f"{g[k]} {k}" for k in COLORS if g.get(k))
    localization = "".join(
        f"<li>{esc(loc.get('kind'))} <span class='node'>{esc(loc.get('target'))}</span> "
        f"(domain {esc(loc.get('domain'))}): {esc(loc.get('stages'))} stages, "
        f"{esc(loc.get('tests'))} collective tests, {esc(_gpu_s(loc.get('gpu_seconds')))}</li>"
        for loc in report.get("localization") or []
    )
    findings = table(
        ("node", "rack", "status", "GPU", "check", "metric", "value", "threshold", "why"),
        finding_rows(report),
        "everything passed",
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>dcops burn-in {html.escape(run_id)}</title><style>{_CSS}</style></head><body>
<h1>Burn-in {html.escape(run_id)}: {badge(str(report["status"]), upper=True)}</h1>
<p>SKU {esc(report.get("sku"))}, targets <span class="node">{esc(report.get("targets"))}</span>,
started {esc(report.get("started_at"))} UTC.
Nodes: {text(s.get("pass", 0))} pass, {text(s.get("warn", 0))} warn, {text(s.get("fail", 0))}
fail, {text(s.get("error", 0))} error. GPUs: {html.escape(gpu_counts or "none")}.</p>
<h2>GPUs and trays</h2>
<div class="views">
<section><h3>Per GPU</h3>
<p>One cell per GPU, trays left to right; hover a cell for its TFLOPS and reasons.</p>
{gpu_grid(report)}
{legend(COLORS, "fill")}
<p class="legend">unknown: not measured, its node could not be (unreachable, hung).</p>
</section>
<section><h3>Per tray</h3>{images}
{legend([k for k in COLORS if k not in ("pass", "unknown")], "outline")}
<p class="legend">Outline: the tray's status when it did not pass.</p>
</section></div>
<h2>Findings</h2>{findings}
<h2>Localization</h2><ul>{localization or "<li>none</li>"}</ul>
<h2>Actions</h2>{action_sections(report.get("actions") or [])}
<h2>Run parameters</h2>{table(("parameter", "value"), param_rows(report), "none")}
</body></html>
"""


def _gpu_s(value: object) -> str:
    return f"{value:.1f} GPU-s" if isinstance(value, int | float) else "GPU-s unmeasured"
