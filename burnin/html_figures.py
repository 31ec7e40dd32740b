"""Per-tray heatmaps of a burn-in report as inline PNG data (matplotlib, Agg backend).

Racks are rows, trays columns; a tray that did not pass is outlined in its
status colour (the page draws the legend). matplotlib is imported lazily
(extra ``report``) and needs no display.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable
from typing import Any

#: Status colours shared by the figures and the page (outlines, GPU cells, badges).
COLORS = {
    "pass": "#1a7f37",
    "warn": "#b08800",
    "fail": "#cf222e",
    "error": "#8250df",
    "unknown": "#8c959f",
}

NodeValue = Callable[[dict[str, Any]], float]


def by_rack(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """rack -> its nodes in report (tray) order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for node in report["nodes"]:
        out.setdefault(node["rack"], []).append(node)
    return out


def heatmap_png(report: dict[str, Any], value_of: NodeValue, title: str, unit: str) -> str:
    """A base64 PNG of ``value_of(node)`` per tray; "" when no tray has a value."""
    racks = by_rack(report)
    width = max((len(v) for v in racks.values()), default=0)
    grid = [
        [value_of(n) for n in nodes] + [math.nan] * (width - len(nodes)) for nodes in racks.values()
    ]
    if not any(not math.isnan(v) for row in grid for v in row):
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=(max(6.0, width * 0.6), max(2.0, len(racks) * 0.6 + 1.2)))
    image = ax.imshow(grid, aspect="auto", cmap="viridis")
    ax.set_yticks(range(len(racks)), labels=list(racks))
    ax.set_xticks(range(width), labels=[str(i + 1) for i in range(width)])
    ax.set_xlabel("tray")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=unit)
    for row, nodes in enumerate(racks.values()):
        for col, node in enumerate(nodes):
            if node["status"] != "pass":
                ax.add_patch(
                    Rectangle(
                        (col - 0.5, row - 0.5),
                        1,
                        1,
                        fill=False,
                        edgecolor=COLORS.get(node["status"], "#000"),
                        linewidth=2.5,
                    )
                )
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def tray_tflops(node: dict[str, Any]) -> float:
    """Mean GEMM TFLOPS of a tray's measured GPUs; NaN when none was measured."""
    values = [g["tflops"] for g in node["gpus"] if g.get("tflops") is not None]
    return sum(values) / len(values) if values else math.nan
