"""``dcops sim``: load a fleet-simulator scenario and look at what it measures.

This shows raw measurements only; judging them is burn-in's and the sweeps' job.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import click

from dcops.cli.common import emit, json_option

if TYPE_CHECKING:
    from rich.console import Console


@click.group()
def sim() -> None:
    """Load fleet-simulator scenarios and show their measurements."""


@sim.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@json_option
def check(scenario: str, as_json: bool) -> None:
    """Validate a scenario file and summarize its fleet and faults."""
    from dcops.sim import load_scenario

    sc = load_scenario(scenario)
    data: dict[str, Any] = {
        "scenario": scenario,
        "sku": sc.sku,
        "seed": sc.seed,
        "noise": sc.noise,
        "racks": len(sc.site.racks),
        "nodes": len(sc.site.nodes()),
        "gpus": len(sc.site.all_gpus()),
        "faults": [
            {k: v for k, v in dataclasses.asdict(f).items() if v not in (None, "", 0, False)}
            | {"node": f.node, "kind": f.kind}
            for f in sc.faults
        ],
    }

    def render(console: Console) -> None:
        console.print(
            f"{scenario}: {data['racks']} rack(s) of {sc.sku}, {data['nodes']} nodes, "
            f"{data['gpus']} GPUs, seed {sc.seed}, noise {sc.noise:.1%}, "
            f"{len(sc.faults)} fault(s)"
        )
        for fault in sc.faults:
            gpus = "" if fault.gpus is None else f" gpu {','.join(map(str, fault.gpus))}"
            console.print(f"  {fault.node}{gpus}: {fault.kind}")

    emit(data, as_json, render)


@sim.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--nodes", "hostlist", help="Only these nodes (hostlist). Default: all.")
@click.option("--dtype", default="bf16", show_default=True, help="GEMM data type.")
@click.option(
    "--seed", "gemm_seed", type=int, default=1, show_default=True, help="Seed of the GEMM problem."
)
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=2.0,
    show_default=True,
    help="Seconds to wait for a node (hung nodes take this long).",
)
@json_option
def measure(
    scenario: str,
    hostlist: str | None,
    dtype: str,
    gemm_seed: int,
    timeout_s: float,
    as_json: bool,
) -> None:
    """Probe readings and one GEMM burn per GPU, as the simulator measures them."""
    from dcops.errors import RemoteError
    from dcops.sim import SimFleet

    with SimFleet.from_file(scenario) as fleet:
        nodes = fleet.site.select(hostlist) if hostlist else fleet.site.nodes()
        readings = fleet.probe.read_many(nodes, timeout_s=timeout_s)
        rows: list[dict[str, Any]] = []
        for node, reading in zip(nodes, readings, strict=True):
            if isinstance(reading, RemoteError):
                rows.append({"node": node, "error": str(reading)})
                continue
            gemm = {
                r.gpu.index: r
                for r in fleet.gemm.run(
                    [g.gpu for g in reading.gpus if not g.lost],
                    dtype=dtype,
                    duration_s=1.0,
                    seed=gemm_seed,
                    timeout_s=timeout_s + 1.0,
                )
            }
            gpus = []
            for g in reading.gpus:
                res = gemm.get(g.gpu.index)
                gpus.append(
                    {
                        "index": g.gpu.index,
                        "lost": g.lost,
                        "temperature_c": g.temperature_c,
                        "power_w": g.power_w,
                        "sm_clock_mhz": g.sm_clock_mhz,
                        "clocks_event_reasons": int(g.clocks_event_reasons),
                        "ecc_uncorrectable": g.ecc_uncorrectable,
                        "xids": [x.code for x in g.xids],
                        "gemm_tflops": res.tflops if res else None,
                        "gemm_checksum": res.checksum if res else None,
                    }
                )
            rows.append({"node": node, "gpus": gpus})

    def render(console: Console) -> None:
        from rich.table import Table

        table = Table()
        for col in ("node", "gpu", "TFLOPS", "temp C", "clock MHz", "ECC unc.", "XIDs", "checksum"):
            table.add_column(col)
        for row in rows:
            if "error" in row:
                table.add_row(row["node"], "-", f"[red]{row['error']}[/red]", "", "", "", "", "")
                continue
            for g in row["gpus"]:
                tflops = f"{g['gemm_tflops']:.0f}" if g["gemm_tflops"] is not None else "-"
                table.add_row(
                    row["node"],
                    str(g["index"]),
                    tflops,
                    f"{g['temperature_c'] or 0:.0f}",
                    f"{g['sm_clock_mhz'] or 0:.0f}",
                    str(g["ecc_uncorrectable"]),
                    ",".join(map(str, g["xids"])) or "-",
                    (g["gemm_checksum"] or "-")[:12],
                )
        console.print(table)

    emit({"scenario": scenario, "dtype": dtype, "nodes": rows}, as_json, render)
