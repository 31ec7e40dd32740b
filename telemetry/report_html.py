"""Self-contained HTML reports (stability, energy) with matplotlib plots.

One file, no external assets: plots are PNGs embedded as base64, tables are
plain HTML. matplotlib is imported lazily with the ``Agg`` backend, so this
works on headless servers and costs nothing until a report is written.
Pure rendering: the figures come in computed (:mod:`telemetry.stability`,
:mod:`telemetry.energy`); the only I/O is :func:`write_html`.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcops.errors import InputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from telemetry.energy import EnergyAccount, FacilityRates
    from telemetry.stability import Badput, EttrSummary, LemonNode, StabilityReport

_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px}
td.n{text-align:right}h2{margin-top:1.6em}img{max-width:100%}"""


def _figure() -> Figure:
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    return Figure(figsize=(8, 3.6), dpi=100)


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for v in row:
            if isinstance(v, float):
                cells.append(f'<td class="n">{v:,.3f}</td>')
            elif isinstance(v, int):
                cells.append(f'<td class="n">{v:,}</td>')
            else:
                cells.append(f"<td>{html.escape('-' if v is None else str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def outcome_plot(report: StabilityReport) -> str:
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    rows = [r for r in report.outcomes.by_state if r.jobs]
    names = [r.state for r in rows]
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r.share for r in rows], width=0.4, label="jobs")
    ax.bar([i + 0.2 for i in x], [r.gpu_hours_share for r in rows], width=0.4, label="GPU-hours")
    ax.set_xticks(list(x), names, rotation=20)
    ax.set_ylabel("share")
    ax.set_title("Outcome shares")
    ax.legend()
    return _png(fig)


def mttf_plot(report: StabilityReport) -> str:
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    rows = [b for b in report.mttf if b.mttf_hours is not None]
    ax.bar([b.bucket for b in rows], [b.mttf_hours or 0.0 for b in rows])
    if rows:
        ax.set_yscale("log")
    ax.set_xlabel("GPUs requested")
    ax.set_ylabel("MTTF (hours)")
    ax.set_title("MTTF vs job size")
    return _png(fig)


def tenant_energy_plot(account: EnergyAccount) -> str:
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    t = account.tenants.copy()
    t["tenant"] = t["tenant"].fillna("(none)")
    pivot = t.pivot_table(
        index="period", columns="tenant", values="energy_mj", aggfunc="sum", fill_value=0
    )
    bottom = [0.0] * len(pivot.index)
    labels = [str(p) for p in pivot.index]
    for tenant in pivot.columns:
        values = [v / 3.6e9 for v in pivot[tenant]]
        ax.bar(labels, values, bottom=bottom, label=str(tenant))
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    idle = account.periods.set_index("period")["idle_mj"].reindex(pivot.index).fillna(0)
    ax.bar(labels, [v / 3.6e9 for v in idle], bottom=bottom, label="idle", color="#bbb")
    ax.set_ylabel("IT energy (kWh)")
    ax.set_title("Energy per tenant over time")
    if len(pivot.columns):
        ax.legend(fontsize="small")
    return _png(fig)


def energy_section(account: EnergyAccount, rates: FacilityRates) -> str:
    data = account.as_dict(rates)
    parts = [
        "<h2>Energy</h2>",
        tenant_energy_plot(account),
        _table(
            [
                "",
                "energy kWh",
                "measured mJ",
                "estimated mJ",
                "provenance",
                "facility kWh",
                "kg CO2",
                f"cost {rates.currency}",
            ],
            [
                [
                    k,
                    data[k]["energy_kwh"],
                    data[k]["measured_mj"],
                    data[k]["estimated_mj"],
                    data[k]["provenance"],
                    data[k]["facility_kwh"],
                    data[k]["co2_kg"],
                    data[k]["cost"],
                ]
                for k in ("metered", "allocated", "idle")
            ],
        ),
        f"<p>allocated + idle = metered: {data['reconciliation']['exact']} "
        f"(PUE {rates.pue}, {rates.carbon_g_per_kwh} gCO2/kWh). Counter resets "
        f"{account.resets}, wraps {account.wraps}; estimated GPUs: "
        f"{html.escape(', '.join(data['estimated_gpus']) or 'none')}.</p>",
        "<h3>Per tenant and period</h3>",
        _table(
            ["tenant", "period", "jobs", "GPU-hours", "kWh", "provenance", "kg CO2", "cost"],
            [
                [
                    r["tenant"],
                    r["period"],
                    r["jobs"],
                    r["gpu_hours"],
                    r["energy_kwh"],
                    r["provenance"],
                    r["co2_kg"],
                    r["cost"],
                ]
                for r in data["tenants"]
            ],
        ),
    ]
    return "".join(parts)


def stability_html(
    report: StabilityReport,
    *,
    ettr: EttrSummary | None = None,
    lemons: Sequence[LemonNode] = (),
    badput: Badput | None = None,
    energy: EnergyAccount | None = None,
    rates: FacilityRates | None = None,
    title: str = "dcops stability report",
) -> str:
    """The stability report (and energy, when given) as one HTML page."""
    out = report.outcomes
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
        f"<p>{out.jobs:,} jobs from {html.escape(', '.join(report.sources) or 'no sources')}; "
        f"{out.gpu_hours:,.1f} GPU-hours.</p>",
        "<h2>Outcomes</h2>",
        outcome_plot(report),
        _table(
            ["state", "jobs", "share", "GPU-hours", "share"],
            [[r.state, r.jobs, r.share, r.gpu_hours, r.gpu_hours_share] for r in out.by_state],
        ),
        "<h2>MTTF by job size</h2>",
        mttf_plot(report),
        _table(
            ["GPUs", "jobs", "runtime h", "failures", "MTTF h"],
            [[b.bucket, b.jobs, b.runtime_hours, b.failures, b.mttf_hours] for b in report.mttf],
        ),
    ]
    if ettr is not None:
        parts += [
            "<h2>ETTR (restart chains)</h2>",
            f"<p>{len(ettr.chains):,} chains; overall ETTR "
            f"{'-' if ettr.ettr is None else f'{ettr.ettr:.3f}'}.</p>",
            _table(
                ["first job", "last job", "attempts", "interruptions", "state", "ETTR"],
                [
                    [c.first_job_id, c.last_job_id, c.attempts, c.interruptions, c.state, c.ettr]
                    for c in sorted(ettr.chains, key=lambda c: -c.attempts)[:50]
                ],
            ),
        ]
    if lemons:
        parts += [
            "<h2>Lemon nodes</h2>",
            _table(
                [
                    "rank",
                    "node",
                    "interruptions",
                    "node_fail",
                    "xid",
                    "jobs",
                    "per 1,000 node-days",
                ],
                [
                    [
                        n.rank,
                        n.node,
                        n.interruptions,
                        n.node_fail,
                        n.xid,
                        n.jobs,
                        n.per_1000_node_days,
                    ]
                    for n in lemons
                ],
            ),
        ]
    if badput is not None:
        parts += [
            "<h2>Badput</h2>",
            f"<p>{badput.badput_gpu_hours:,.1f} of {badput.gpu_hours:,.1f} GPU-hours "
            f"({100 * badput.gpu_hours_share:.1f}%) went to jobs that did not complete.</p>",
        ]
    if energy is not None:
        from telemetry.energy import FacilityRates as _Rates

        parts.append(energy_section(energy, rates or _Rates()))
    parts.append("</body></html>")
    return "".join(parts)


def energy_html(
    account: EnergyAccount, rates: FacilityRates, title: str = "dcops energy report"
) -> str:
    """The energy report as one HTML page."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"{energy_section(account, rates)}</body></html>"
    )


def write_html(path: Path, text: str) -> None:
    """Write ``text`` to ``path``; InputError when it cannot be written."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot write the HTML report ({exc.strerror or exc})") from exc
