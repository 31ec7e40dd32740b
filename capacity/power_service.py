"""``dcops capacity power`` as a library call: budgets, telemetry samples, the model.

Telemetry samples are read from the documented Parquet layout
(``<data_dir>/telemetry/samples/date=YYYY-MM-DD/*.parquet``, columns ``time``,
``node``, ``gpu``, ``power_w``; see docs/telemetry-collection.md) with pyarrow,
not through the telemetry package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from capacity.power import PROFILES, TrayLoad, measured_draw_kw, rack_power, row_fit
from capacity.trays import Standing, TrayVerdict
from dcops.errors import LocatedInputError, StoreError
from dcops.inventory import Rack, Site

#: Per-GPU power is averaged per minute, then summed over the rack's GPUs.
BUCKET_S = 60


def _rack_line(site: Site, index: int) -> int | None:
    if not site.source or site.source in ("local", "simulated"):
        return None
    from dcops.yamlfile import YamlFileError, load_located

    try:
        _, locs = load_located(Path(site.source))
    except (OSError, YamlFileError):
        return None
    return locs.line(("racks", index))


def _check_power_data(site: Site) -> None:
    for i, rack in enumerate(site.racks):
        if rack.sku not in PROFILES:
            need = (
                "no power model"
                if rack.power_capacity_kw is not None
                else "no power_capacity_kw and no power model"
            )
            raise LocatedInputError(
                site.source or site.name,
                f"rack {rack.name!r} ({rack.sku}) has {need} for its SKU "
                f"(known: {', '.join(sorted(PROFILES))})",
                line=_rack_line(site, i),
            )


def gpu_power_per_minute(
    samples_dir: Path, since_s: float, until_s: float, nodes: Mapping[str, str]
) -> dict[str, dict[int, float]]:
    """rack -> minute -> summed GPU watts (each GPU's mean over the minute)."""
    if not samples_dir.is_dir():
        return {}
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    try:
        dataset = ds.dataset(str(samples_dir), format="parquet", partitioning="hive")
        start = pa.scalar(int(since_s * 1000), type=pa.timestamp("ms", tz="UTC"))
        end = pa.scalar(int(until_s * 1000), type=pa.timestamp("ms", tz="UTC"))
        table = dataset.to_table(
            columns=["time", "node", "gpu", "power_w"],
            filter=(pc.field("time") >= start) & (pc.field("time") <= end),
        )
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"telemetry samples {samples_dir}: {exc}") from exc
    times = table.column("time").cast(pa.int64()).to_pylist()
    per_gpu: dict[tuple[str, int, str, int], list[float]] = {}
    for t, node, gpu, watts in zip(
        times,
        table.column("node").to_pylist(),
        table.column("gpu").to_pylist(),
        table.column("power_w").to_pylist(),
        strict=True,
    ):
        rack = nodes.get(node)
        if rack is None or watts is None:
            continue
        minute = int(t // 1000 // BUCKET_S)
        per_gpu.setdefault((rack, minute, node, int(gpu)), []).append(float(watts))
    out: dict[str, dict[int, float]] = {}
    for (rack, minute, _, _), values in per_gpu.items():
        series = out.setdefault(rack, {})
        series[minute] = series.get(minute, 0.0) + sum(values) / len(values)
    return out


def power_report(
    site: Site,
    verdicts: Sequence[TrayVerdict],
    *,
    samples_dir: Path | None,
    since_s: float,
    until_s: float,
    cap_w: float | None,
    row_budget_kw: float | None = None,
) -> dict[str, Any]:
    """``row_budget_kw`` overrides the site's ``capacity.row_power_budget_kw`` (a simulated
    site has none: ``capacity power --sim ... --row-budget-kw``)."""
    _check_power_data(site)
    by_rack: dict[str, list[TrayVerdict]] = {}
    for v in verdicts:
        by_rack.setdefault(v.rack, []).append(v)
    node_rack = {n: site.node(n).rack for n in site.nodes()}
    measured = gpu_power_per_minute(samples_dir, since_s, until_s, node_rack) if samples_dir else {}
    rows = []
    for rack in site.racks:
        rows.append(_rack_row(rack, by_rack.get(rack.name, []), measured.get(rack.name), cap_w))
    return {
        "site": site.name,
        "window": {"since_s": since_s, "until_s": until_s},
        "racks": rows,
        "fleet": {
            "budget_kw": sum(r["budget_kw"] for r in rows),
            "planning_draw_kw": sum(r["planning_draw_kw"] for r in rows),
            "headroom_kw": sum(r["headroom_kw"] for r in rows),
        },
        "row": row_fit(
            rows, row_budget_kw if row_budget_kw is not None else site.capacity.row_power_budget_kw
        ),
    }


def _rack_row(
    rack: Rack,
    verdicts: Sequence[TrayVerdict],
    series: dict[int, float] | None,
    cap_w: float | None,
) -> dict[str, Any]:
    profile = PROFILES[rack.sku]
    loads = [
        TrayLoad(
            gpus=v.gpus,
            busy=v.standing is not Standing.OUT and not v.free,
            in_service=v.standing is not Standing.OUT,
        )
        for v in verdicts
    ]
    budget = rack.power_capacity_kw if rack.power_capacity_kw is not None else profile.budget_kw
    source = "site" if rack.power_capacity_kw is not None else f"sku {rack.sku} (N+N)"
    measured = measured_draw_kw(series, len(rack.nodes), profile) if series else None
    return rack_power(
        rack.name,
        loads,
        profile,
        budget_kw=budget,
        budget_source=source,
        measured=measured,
        cap_w=cap_w,
    )
