"""``dcops capacity power | metrics``: power headroom and caps; Prometheus gauges.

``metrics --textfile DIR`` writes ``DIR/dcops_capacity.prom`` for node_exporter's
textfile collector (cron); ``metrics --serve`` is an HTTP exporter that rebuilds
the gauges from the store and scheduler at each scrape (at most every
``--min-interval`` seconds).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dcops.cli.capacity import NEEDS_SITE, fleet_wiring, now_s, source_options
from dcops.cli.common import emit, json_option, stderr_console

if TYPE_CHECKING:
    from rich.console import Console


def _power(
    ctx: click.Context,
    site_path: str | None,
    scenario: str | None,
    backend: str | None,
    since: str,
    cap_w: float | None,
    until: str | None = None,
    row_budget_kw: float | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(capacity report, power report) from one read of the store and scheduler."""
    from capacity.power_service import power_report
    from capacity.service import report, verdicts
    from dcops.cli.capacity_history import parse_when

    now = now_s()
    since_s = parse_when(since, "--since", now)
    until_s = parse_when(until, "--until", now) or now
    assert since_s is not None
    with fleet_wiring(ctx, site_path, scenario, backend) as wiring:
        site = wiring.site(required=NEEDS_SITE)
        samples = wiring.cfg.data_dir / "telemetry" / "samples"
        states = wiring.scheduler_states(site)
        vs, _ = verdicts(site, wiring.store(), states, now_s=now)
        rep = report(site, wiring.store(), states, now_s=now)
    power = power_report(
        site, vs, samples_dir=samples, since_s=since_s, until_s=until_s, cap_w=cap_w,
        row_budget_kw=row_budget_kw,
    )  # fmt: skip
    return rep, power


@click.command("power")
@source_options
@click.option("--since", default="24h", show_default=True, help="Telemetry window: 24h, 7d...")
@click.option("--until", help="Telemetry window end (ISO-8601) [now].")
@click.option(
    "--cap-w", type=click.FloatRange(min=0, min_open=True), help="What-if: per-GPU power cap."
)
@click.option(
    "--row-budget-kw",
    type=click.FloatRange(min=0, min_open=True),
    help="Row power budget for the what-if [site capacity.row_power_budget_kw].",
)
@json_option
@click.pass_context
def power(
    ctx: click.Context,
    site_path: str | None,
    scenario: str | None,
    backend: str | None,
    since: str,
    until: str | None,
    cap_w: float | None,
    row_budget_kw: float | None,
    as_json: bool,
) -> None:
    """Per rack: power budget (PSU redundancy kept), draw (telemetry or model), headroom."""
    from dcops.errors import InputError

    try:
        _, result = _power(ctx, site_path, scenario, backend, since, cap_w, until, row_budget_kw)
    except ValueError as exc:  # a cap below idle
        raise InputError(f"--cap-w: {exc}") from exc
    emit(result, as_json, render=lambda c: _render_power(c, result))


def _render_power(console: Console, result: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"power, {result['site']}")
    cols = ["rack", "budget kW", "draw kW", "source", "headroom kW"]
    capped = any("cap" in r for r in result["racks"])
    if capped:
        cols += ["capped kW", "capped headroom", "throughput"]
    for col in cols:
        table.add_column(col, justify="left" if col in ("rack", "source") else "right")
    for r in result["racks"]:
        row = [
            r["rack"],
            f"{r['budget_kw']:.1f}",
            f"{r['planning_draw_kw']:.1f}",
            r["draw"]["source"],
            f"{r['headroom_kw']:.1f}",
        ]
        if capped:
            c = r["cap"]
            row += [f"{c['draw_kw']:.1f}", f"{c['headroom_kw']:.1f}", f"{c['throughput']:.1%}"]
        table.add_row(*row)
    console.print(table)
    row = result["row"]
    if row:
        line = f"row budget {row['row_budget_kw']:.0f} kW holds {row['racks_fit']} such racks"
        if "racks_fit_capped" in row:
            line += f", {row['racks_fit_capped']} capped"
        console.print(line + f" (now {row['racks_now']})")


def cached_collector(build: Callable[[], list[Any]], min_interval: float) -> Any:
    """A capacity collector rebuilding its gauges at most every ``min_interval`` seconds;
    built once now, so bad inputs fail before serving."""
    from capacity.metrics import CapacityCollector

    lock = threading.Lock()
    cache: dict[str, Any] = {"at": 0.0, "families": []}

    def cached() -> list[Any]:
        with lock:
            if time.monotonic() - cache["at"] >= min_interval:
                cache["families"] = build()
                cache["at"] = time.monotonic()
            return list(cache["families"])

    cached()
    return CapacityCollector(cached)


def capacity_collector(
    ctx: click.Context, scenario: str | None, site_path: str | None, min_interval: float = 30.0
) -> Any:
    """The capacity gauges (with power) as a collector, for an exporter that serves them."""
    from capacity.metrics import families

    def build() -> list[Any]:
        rep, pw = _power(ctx, site_path, scenario, None, "1h", None)
        return families(rep, pw)

    return cached_collector(build, min_interval)


@click.command("metrics")
@source_options
@click.option("--textfile", type=click.Path(file_okay=False), help="Write DIR/dcops_capacity.prom.")
@click.option("--serve", is_flag=True, help="Serve /metrics over HTTP until interrupted.")
@click.option("--port", type=click.IntRange(0, 65535), default=9402, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True)
@click.option("--min-interval", type=float, default=30.0, show_default=True, help="Seconds.")
@click.option("--no-power", is_flag=True, help="Leave out the power gauges.")
@click.pass_context
def metrics(
    ctx: click.Context,
    site_path: str | None,
    scenario: str | None,
    backend: str | None,
    textfile: str | None,
    serve: bool,
    port: int,
    address: str,
    min_interval: float,
    no_power: bool,
) -> None:
    """Capacity gauges for Prometheus (printed, written as a textfile, or served)."""
    from capacity.metrics import exposition, families, write_textfile

    def build() -> list[Any]:
        rep, pw = _power(ctx, site_path, scenario, backend, "1h", None)
        return families(rep, None if no_power else pw)

    if not serve:
        text = exposition(build())
        if textfile:
            path = write_textfile(Path(textfile), text)
            stderr_console().print(f"wrote {path}")
        else:
            click.echo(text, nl=False)
        return
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(cached_collector(build, min_interval))
    server, _ = start_http_server(port, addr=address, registry=registry)
    stderr_console().print(
        f"dcops: serving capacity on http://{address}:{server.server_port}/metrics"
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
