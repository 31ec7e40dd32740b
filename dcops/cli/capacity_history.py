"""``dcops capacity import-failures | availability | forecast | slo``: failures over time.

See ``docs/capacity.md`` for the CSV columns and the definitions of MTBF,
MTTR, the binomial spares model and the segment SLO.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dcops.cli.capacity import NEEDS_SITE, fleet_wiring, now_s
from dcops.cli.common import emit, json_option
from dcops.errors import InputError

if TYPE_CHECKING:
    from rich.console import Console

    from dcops.cli.wiring import Wiring
    from dcops.inventory import Site

_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_when(text: str | None, flag: str, now: float) -> float | None:
    """``30d``/``12h``/``90m`` ago, or an ISO-8601 time (UTC when no zone)."""
    if text is None:
        return None
    m = _AGO.match(text.strip())
    if m:
        return now - float(m.group(1)) * _UNIT_S[m.group(2)]
    from capacity.failures import parse_time

    try:
        return parse_time(text)
    except ValueError:
        raise InputError(f"{flag} {text!r}: want e.g. 30d, 12h or an ISO-8601 time") from None


def _live(wiring: Wiring, site: Site) -> tuple[Any, str]:
    """The scheduler's states for the trays out now (as ``capacity report`` reads them), and
    a note: ``scheduler`` when read, else why not (then only recorded outages count)."""
    from dcops.errors import DcopsError

    try:
        states = wiring.scheduler_states(site)
    except DcopsError as exc:
        return None, f"scheduler not readable ({exc}); trays out now counted from records only"
    return states, "scheduler" if states is not None else "no scheduler configured"


def _site_options(func: Any) -> Any:
    func = click.option(
        "--sim", "scenario", type=click.Path(dir_okay=False), help="A simulated fleet (scenario)."
    )(func)
    return click.option(
        "--site",
        "site_path",
        type=click.Path(dir_okay=False),
        help="Site file: node names must be in it; racks are reported.",
    )(func)


@click.command("import-failures")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@_site_options
@json_option
@click.pass_context
def import_failures(
    ctx: click.Context, path: Path, site_path: str | None, scenario: str | None, as_json: bool
) -> None:
    """Import failure events from a CSV: node,failed_at,repaired_at,cause.

    Re-importing a file of the same name replaces its rows. Any bad row: exit 2,
    nothing written.
    """
    from capacity.service import import_failures as run_import

    with fleet_wiring(ctx, site_path, scenario) as wiring:
        site = wiring.configured_site() if site_path or scenario else None
        result = run_import(wiring.store(), path, site)
    emit(
        result,
        as_json,
        render=lambda c: c.print(
            f"imported {result['records']} record(s) from {result['source']} "
            f"({result['nodes']} nodes, {result['outages']} outages after merging "
            f"{result['merged']} overlapping record(s); replaced {result['replaced']})"
        ),
    )


@click.command("availability")
@_site_options
@click.option("--since", help="Window start: 30d, 12h or ISO-8601 [first event].")
@click.option("--until", help="Window end: ISO-8601 or 0d [last event].")
@click.option("--no-lifecycle", is_flag=True, help="Only imported failures, not dcops' own drains.")
@json_option
@click.pass_context
def availability_cmd(
    ctx: click.Context,
    site_path: str | None,
    scenario: str | None,
    since: str | None,
    until: str | None,
    no_lifecycle: bool,
    as_json: bool,
) -> None:
    """Failures, MTBF and MTTR per node, rack (with a site) and fleet."""
    from capacity.service import availability_report

    now = now_s()
    with fleet_wiring(ctx, site_path, scenario) as wiring:
        site = wiring.configured_site() if site_path or scenario else None
        states = None
        if site is not None and not no_lifecycle:  # the trays out now, as the report has them
            states, live = _live(wiring, site)
        result = availability_report(
            wiring.store(),
            site,
            since_s=parse_when(since, "--since", now),
            until_s=parse_when(until, "--until", now),
            include_lifecycle=not no_lifecycle,
            scheduler=states,
            now_s=now,
        )
        if site is not None and not no_lifecycle:
            result["live"] = live
    emit(result, as_json, render=lambda c: _render_availability(c, result))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _render_availability(console: Console, result: dict[str, Any]) -> None:
    from rich.table import Table

    f = result["fleet"]
    console.print(
        f"window {result['window']['hours']:,.1f} h, {result['records']} record(s), "
        f"{result['merged']} merged as overlapping"
    )
    table = Table()
    for col in ("scope", "failures", "MTBF h", "MTTR h", "down h", "availability"):
        table.add_column(col, justify="left" if col == "scope" else "right")
    rows = [("fleet", f)] + [(r["rack"], r) for r in result.get("racks", [])]
    worst = sorted(result["nodes"], key=lambda n: -n["failures"])[:10]
    rows += [(n["node"], n) for n in worst]
    for name, r in rows:
        avail = "-" if r["availability"] is None else f"{r['availability']:.5f}"
        table.add_row(
            name,
            str(r["failures"]),
            _fmt(r["mtbf_h"]),
            _fmt(r["mttr_h"]),
            _fmt(r["downtime_h"]),
            avail,
        )
    console.print(table)


@click.command("forecast")
@_site_options
@click.option("--segment", type=int, required=True, help="Segment size in trays (e.g. 16).")
@click.option("--target", type=float, required=True, help="Wanted probability (e.g. 0.99).")
@click.option("--mtbf-h", type=float, help="Tray MTBF in hours [from the failure history].")
@click.option("--mttr-h", type=float, help="Tray MTTR in hours [from the failure history].")
@click.option("--since", help="History window start for MTBF/MTTR: 30d or ISO-8601.")
@click.option("--trays", type=int, help="Trays per rack [the site's smallest rack, else 18].")
@click.option("--racks", type=int, help="Racks that must all hold [the site's racks, else 1].")
@click.option("--spares", type=int, help="Spare trays on the shelf [site capacity.spare_trays].")
@json_option
@click.pass_context
def forecast_cmd(
    ctx: click.Context,
    site_path: str | None,
    scenario: str | None,
    segment: int,
    target: float,
    mtbf_h: float | None,
    mttr_h: float | None,
    since: str | None,
    trays: int | None,
    racks: int | None,
    spares: int | None,
    as_json: bool,
) -> None:
    """Probability a rack holds its segment, and the spare trays a target needs (binomial).

    MTBF and MTTR come from the failure history (imported failures and dcops' own
    records, as ``capacity availability``) unless given; the site gives the trays
    per rack, the racks and the spare trays on the shelf.
    """
    from capacity.forecast import forecast, with_site_spares

    source = "given"
    with fleet_wiring(ctx, site_path, scenario) as wiring:
        site = wiring.configured_site() if site_path or scenario else None
        if mtbf_h is None or mttr_h is None:
            from capacity.service import availability_report

            now = now_s()
            hist = availability_report(
                wiring.store(), site, since_s=parse_when(since, "--since", now), until_s=None
            )
    if mtbf_h is None or mttr_h is None:
        fleet = hist["fleet"]
        if fleet.get("mtbf_h") is None or fleet.get("mttr_h") is None:
            raise InputError(
                "no failure history to forecast from (capacity import-failures, or dcops' "
                "own drains): give --mtbf-h and --mttr-h"
            )
        mtbf_h = fleet["mtbf_h"] if mtbf_h is None else mtbf_h
        mttr_h = fleet["mttr_h"] if mttr_h is None else mttr_h
        source = f"history: {fleet['failures']} failure(s) over {hist['window']['hours']:.1f} h"
    if site is not None:
        trays = trays or min(len(r.nodes) for r in site.racks)
        racks = racks or len(site.racks)
        spares = spares if spares is not None else site.capacity.spare_trays
    assert mtbf_h is not None and mttr_h is not None
    result = forecast(
        segment=segment, target=target, mtbf_h=mtbf_h, mttr_h=mttr_h,
        trays=trays or 18, racks=racks or 1,
    )  # fmt: skip
    result = with_site_spares(result, spares)
    result["mtbf_source"] = source
    emit(result, as_json, render=lambda c: _render_forecast(c, result))


def _render_forecast(console: Console, r: dict[str, Any]) -> None:
    console.print(
        f"tray availability {r['tray_availability']:.6f}; a rack of {r['trays']} holds a "
        f"{r['segment']}-tray segment with probability {r['probability']:.6f} "
        f"({'meets' if r['meets_target'] else 'misses'} {r['target']})"
    )
    spares = r["spares_needed"]
    where = "fits in the rack" if r["fits_in_rack"] else "more than the rack holds"
    console.print(f"spare trays needed for {r['target']}: {spares} ({where})")
    if r["racks"] > 1:
        console.print(f"all {r['racks']} racks at once: {r['probability_all_racks']:.6f}")
    console.print(f"MTBF {r['mtbf_h']:,.1f} h, MTTR {r['mttr_h']:,.1f} h ({r['mtbf_source']})")
    if r["shelf_needed"]:
        hand = "unknown" if r["spares_on_hand"] is None else str(r["spares_on_hand"])
        console.print(
            f"beyond each rack's slack of {r['rack_slack']}: {r['shelf_needed']} spare tray(s) "
            f"from the shelf (on hand: {hand}; short: {r['shelf_short']})"
        )


@click.command("slo")
@_site_options
@click.option("--since", default="30d", show_default=True, help="Window start: 30d or ISO-8601.")
@click.option("--until", help="Window end (ISO-8601) [now].")
@click.option("--segment", type=int, help="Segment size [site promised_segment, else 16].")
@json_option
@click.pass_context
def slo_cmd(
    ctx: click.Context,
    site_path: str | None,
    scenario: str | None,
    since: str,
    until: str | None,
    segment: int | None,
    as_json: bool,
) -> None:
    """Per rack: share of time the promised segment was available; GPU-hours lost."""
    from capacity.service import slo_report

    now = now_s()
    since_s = parse_when(since, "--since", now)
    until_s = parse_when(until, "--until", now) or now
    assert since_s is not None
    if until_s <= since_s:
        raise InputError("--until must be after --since")
    with fleet_wiring(ctx, site_path, scenario) as wiring:
        site = wiring.site(required=NEEDS_SITE)
        states, live = _live(wiring, site)
        result = slo_report(
            wiring.store(), site, since_s=since_s, until_s=until_s, segment=segment,
            scheduler=states, now_s=now,
        )  # fmt: skip
        result["live"] = live
    emit(result, as_json, render=lambda c: _render_slo(c, result))


def _render_slo(console: Console, result: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"{result['segment']}-tray segment SLO, {result['site']}")
    for col in ("rack", "available", "unavailable h", "GPU-h lost"):
        table.add_column(col, justify="left" if col == "rack" else "right")
    for r in result["racks"]:
        table.add_row(
            r["rack"],
            f"{r['available_share']:.4%}",
            f"{r['unavailable_h']:.2f}",
            f"{r['gpu_hours_lost']:.1f}",
        )
    f = result["fleet"]
    share = "-" if f["available_share"] is None else f"{f['available_share']:.4%}"
    table.add_row("fleet", share, "", f"{f['gpu_hours_lost']:.1f}", style="bold")
    console.print(table)
