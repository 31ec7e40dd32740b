"""``dcops capacity``: what the fleet can promise (report, plan) and the commands around it.

Exit codes: 0 ok (a plan that fits now), 1 a plan that does not fit now,
2 usage or input error (nothing written), 3 a backend or the store failed.
See ``docs/capacity.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from dcops.cli.common import emit, json_option
from dcops.errors import ExitCode, InputError

if TYPE_CHECKING:
    from rich.console import Console

    from dcops.cli.wiring import Wiring


_STATE_STYLE = {"available": "green", "running": "cyan", "degraded": "yellow", "down": "red"}


class _CapacityGroup(click.Group):
    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        # The other subcommands live in their own modules (imported on first use).
        import importlib

        extra = {
            "import-failures": ("dcops.cli.capacity_history", "import_failures"),
            "availability": ("dcops.cli.capacity_history", "availability_cmd"),
            "forecast": ("dcops.cli.capacity_history", "forecast_cmd"),
            "slo": ("dcops.cli.capacity_history", "slo_cmd"),
            "topology": ("dcops.cli.capacity_topology", "topology"),
            "power": ("dcops.cli.capacity_power", "power"),
            "metrics": ("dcops.cli.capacity_power", "metrics"),
        }
        if cmd_name in extra:
            module, attr = extra[cmd_name]
            command = getattr(importlib.import_module(module), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(
            {
                *super().list_commands(ctx),
                "import-failures",
                "availability",
                "forecast",
                "slo",
                "topology",
                "power",
                "metrics",
            }
        )


@click.group(cls=_CapacityGroup)
def capacity() -> None:
    """Healthy capacity, NVL72 segments, repairs, topology, power, spares and SLO."""


def source_options(func: Any) -> Any:
    func = click.option(
        "--node-actions",
        "backend",
        help="Scheduler backend to read node states from [recording with --sim, else config].",
    )(func)
    func = click.option(
        "--sim", "scenario", type=click.Path(dir_okay=False), help="A simulated fleet (scenario)."
    )(func)
    return click.option(
        "--site", "site_path", type=click.Path(dir_okay=False), help="Site file (YAML)."
    )(func)


def fleet_wiring(
    ctx: click.Context, site_path: str | None, scenario: str | None, backend: str | None = None
) -> Wiring:
    """The composition root for ``--site`` or ``--sim`` (else config ``site``)."""
    from dcops.cli.wiring import Where, Wiring

    if site_path and scenario:
        raise InputError("choose one of --site or --sim")
    return Wiring.of(
        ctx, Where.choose(scenario=scenario, site_path=site_path, node_actions=backend)
    )


NEEDS_SITE = "capacity needs a site: --site FILE, --sim SCENARIO or config 'site'"


def parse_at(text: str | None) -> float | None:
    if text is None:
        return None
    from capacity.failures import parse_time

    try:
        return parse_time(text)
    except ValueError:
        raise InputError(f"--at {text!r}: want an ISO-8601 time (UTC if no zone)") from None


def now_s() -> float:
    import time

    return time.time()


@capacity.command("report")
@source_options
@click.option("--at", "at", help="Report from the records as they stood at this time (ISO-8601).")
@json_option
@click.pass_context
def report_cmd(
    ctx: click.Context,
    site_path: str | None,
    scenario: str | None,
    backend: str | None,
    at: str | None,
    as_json: bool,
) -> None:
    """Per rack: trays healthy/degraded/out (with owners), domain state, segments by size."""
    from capacity.service import report

    at_s = parse_at(at)
    with fleet_wiring(ctx, site_path, scenario, backend) as wiring:
        site = wiring.site(required=NEEDS_SITE)
        states = None if at_s is not None else wiring.scheduler_states(site)
        result = report(site, wiring.store(), states, now_s=now_s(), at_s=at_s)
    emit(result, as_json, render=lambda c: _render_report(c, result))


def _render_report(console: Console, result: dict[str, Any]) -> None:
    from rich.table import Table

    sizes = [str(s) for s in result["segment_sizes"]]
    table = Table(title=f"capacity of {result['site']} at {result['at']}")
    for col in ("rack", "state", "healthy", "degraded", "out", "free", "GPUs"):
        table.add_column(col, justify="right" if col not in ("rack", "state") else "left")
    for s in sizes:
        table.add_column(f"S={s}", justify="right")
    for r in result["racks"]:
        style = _STATE_STYLE.get(r["state"], "")
        segs = [f"{r['segments'][s]['promisable']}/{r['segments'][s]['free_now']}" for s in sizes]
        table.add_row(
            r["rack"],
            f"[{style}]{r['state']}[/{style}]",
            str(r["trays_healthy"]),
            str(r["trays_degraded"]),
            str(len(r["trays_out"])),
            str(r["trays_free"]),
            str(r["gpus_healthy"]),
            *segs,
        )
    f = result["fleet"]
    fsegs = [f"{f['segments'][s]['promisable']}/{f['segments'][s]['free_now']}" for s in sizes]
    table.add_row(
        "fleet",
        "",
        str(f["trays_healthy"]),
        str(f["trays_degraded"]),
        str(f["trays_out"]),
        str(f["trays_free"]),
        str(f["gpus_healthy"]),
        *fsegs,
        style="bold",
    )
    console.print(table)
    console.print("segments: promisable/free now")
    out = [(r["rack"], t) for r in result["racks"] for t in r["trays_out"]]
    if out:
        trays = Table(title="trays out")
        for col in ("node", "owner", "since", "reason"):
            trays.add_column(col)
        for _, t in out:
            trays.add_row(t["node"], t["owner"], t["since"] or "", t["reason"])
        console.print(trays)


@capacity.command("plan")
@source_options
@click.option("--gpus", type=int, help="GPUs wanted (rounded up to whole trays).")
@click.option("--trays", type=int, help="Trays wanted.")
@click.option("--segment", type=int, help="Trays per segment; each segment in one rack [1].")
@click.option("--same-domain", is_flag=True, help="All trays in one NVLink domain (rack).")
@json_option
@click.pass_context
def plan_cmd(
    ctx: click.Context,
    site_path: str | None,
    scenario: str | None,
    backend: str | None,
    gpus: int | None,
    trays: int | None,
    segment: int | None,
    same_domain: bool,
    as_json: bool,
) -> None:
    """Can the fleet place a request now? If not, the fewest repairs that make it fit.

    Exit 0 when it fits now, 1 when it does not.
    """
    from capacity.plan import make_request
    from capacity.service import plan_request

    with fleet_wiring(ctx, site_path, scenario, backend) as wiring:
        site = wiring.site(required=NEEDS_SITE)
        request = make_request(
            gpus=gpus,
            trays=trays,
            segment=segment,
            same_domain=same_domain,
            gpus_per_tray=min(r.gpus_per_node for r in site.racks),
            rack_size=min(len(r.nodes) for r in site.racks),
        )
        states = wiring.scheduler_states(site)
        result = plan_request(site, wiring.store(), states, request, now_s=now_s())
    emit(result, as_json, render=lambda c: _render_plan(c, result))
    if not result["fits_now"]:
        ctx.exit(ExitCode.UNHEALTHY)


def _render_plan(console: Console, result: dict[str, Any]) -> None:
    req = result["request"]
    what = f"{req['trays']} trays in {req['segments']} segment(s) of {req['segment']}"
    if result["fits_now"]:
        console.print(f"[green]fits now[/green]: {what}")
    else:
        console.print(f"[red]does not fit now[/red]: {what}")
        if result["repairs"]:
            verdict = "fits" if result["fits_after_repairs"] else "still short"
            console.print(f"after {len(result['repairs'])} repair(s) it {verdict}:")
            for r in result["repairs"]:
                console.print(f"  {r['node']} ({r['rack']}, owner {r['owner']}): {r['reason']}")
        if result["short_segments"]:
            console.print(f"short by {result['short_segments']} segment(s) even after repairs")
    for p in result["placement"]:
        console.print(f"  {p['rack']}: {p['segments']} segment(s), {p['trays']} trays")
    frag = result["fragmentation"]
    if frag:
        console.print(
            f"left: {frag['free_trays']} free trays, {frag['stranded_trays']} stranded "
            f"(in no segment of {req['segment']})"
        )
