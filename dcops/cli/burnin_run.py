"""``dcops burnin run|history|show``: certify hardware, store the verdict, act on it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dcops.cli.common import emit, json_option, open_audit, progress_bar
from dcops.errors import ExitCode, InputError

if TYPE_CHECKING:
    from rich.console import Console

    from dcops.node_actions import NodeActions

_STYLE = {"pass": "green", "warn": "yellow", "fail": "red", "error": "magenta"}


@click.command("run")
@click.option(
    "--sim",
    "scenario",
    type=click.Path(dir_okay=False),
    help="Run on the fleet simulator with this scenario.",
)
@click.option("--local", is_flag=True, help="Run on this machine (its GPUs, or CPU ranks).")
@click.option("--nodes", "hostlist", help="Only these nodes (hostlist).")
@click.option("--rack", "rack_name", help="Only this rack.")
@click.option(
    "--site",
    "site_path",
    type=click.Path(dir_okay=False),
    help="--nodes/--rack without --sim/--local: the site file (default: config 'site').",
)
@click.option(
    "--launcher",
    type=click.Choice(["auto", "slurm", "ssh"]),
    default="auto",
    show_default=True,
    help="Across nodes: Slurm job steps, or SSH (auto: slurm when a slurmctld answers).",
)
@click.option(
    "--remote-python",
    default="python3",
    show_default=True,
    help="Python on the nodes (dcops and torch installed there).",
)
@click.option("--partition", help="--launcher slurm: the partition to allocate from.")
@click.option("--exclusive", is_flag=True, help="--launcher slurm: allocate nodes exclusively.")
@click.option(
    "--thresholds",
    "thresholds_file",
    type=click.Path(dir_okay=False),
    help="Site threshold overrides (YAML) on top of the SKU profile.",
)
@click.option("--rounds", type=click.IntRange(1, 100), help="GEMM rounds (default: profile).")
@click.option("--duration", type=click.FloatRange(0.01), help="Seconds per GEMM round.")
@click.option("--dtype", help="GEMM dtype: bf16, fp16, fp8, tf32, fp32 (default: profile).")
@click.option(
    "--ranks",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="--local without GPUs: CPU ranks standing in for GPUs.",
)
@click.option("--no-collectives", is_flag=True, help="Skip collective sweeps.")
@click.option(
    "--probe-timeout",
    type=click.FloatRange(0.01),
    default=10.0,
    show_default=True,
    help="Seconds to wait for a node's readings (hung nodes take this long).",
)
@click.option("--apply", is_flag=True, help="Drain failing nodes (and resume with --recheck).")
@click.option(
    "--recheck",
    is_flag=True,
    help="Re-test nodes dcops drained; resume those that pass (with --apply).",
)
@click.option("--force", is_flag=True, help="Override the drain circuit breaker.")
@click.option(
    "--node-actions",
    "node_actions",
    help="Node-actions backend for --apply/--recheck: slurm-cli, kubernetes, recording, none "
    "(default: the in-memory 'recording' scheduler with --sim, else config slurm.node_actions).",
)
@click.option(
    "--max-drain-rack",
    type=click.FloatRange(0, 1),
    help="Circuit breaker: largest share of a rack out of service by dcops "
    "[config actions.max_drain_rack, 0.34].",
)
@click.option(
    "--max-drain-fleet",
    type=click.FloatRange(0, 1),
    help="Circuit breaker: largest share of the fleet out of service by dcops "
    "[config actions.max_drain_fleet, 0.25].",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False),
    help="Write an HTML report with per-tray heatmaps to this directory.",
)
@click.option(
    "--textfile",
    "textfile_dir",
    type=click.Path(file_okay=False),
    help="Write node_exporter textfile metrics (dcops_burnin_<rack>.prom) into this directory.",
)
@json_option
@click.pass_context
def run(
    ctx: click.Context,
    scenario: str | None,
    local: bool,
    hostlist: str | None,
    rack_name: str | None,
    site_path: str | None,
    launcher: str,
    remote_python: str,
    partition: str | None,
    exclusive: bool,
    thresholds_file: str | None,
    rounds: int | None,
    duration: float | None,
    dtype: str | None,
    ranks: int,
    no_collectives: bool,
    probe_timeout: float,
    apply: bool,
    recheck: bool,
    force: bool,
    node_actions: str | None,
    max_drain_rack: float | None,
    max_drain_fleet: float | None,
    report_dir: str | None,
    textfile_dir: str | None,
    as_json: bool,
) -> None:
    """Burn in GPUs, trays and racks; judge every GPU, tray and rack; localize culprits.

    Failing nodes are drained (and, with --recheck, passing ones resumed) through
    the actuator (docs/actions.md); an error (unreachable, dcops or its backend
    failing) never drains. Exit 0 when everything passes, 1 when anything is
    warn/fail/error, 2 for bad input, 3 when most nodes could not be tested
    (a run-level error) or an action failed, 4 when another burn-in holds one of
    the nodes, 5 when the circuit breaker refused drains.
    """
    from burnin.profiles import load_thresholds
    from burnin.service import ActionPolicy, execute
    from burnin.suite import SuiteOptions
    from dcops.actions import TargetLock
    from dcops.cli.waiting import StageWatch
    from dcops.cli.wiring import NEEDS_SITE, Mode, RemoteBurnin, Where, Wiring

    if textfile_dir is not None and not Path(textfile_dir).is_dir():
        raise InputError(f"--textfile {textfile_dir}: not a directory")
    remote = not scenario and not local and bool(hostlist or rack_name)
    if bool(scenario) == bool(local) and not remote:
        raise InputError("choose one of --sim SCENARIO, --local, or --nodes/--rack with a site")
    where = Where.choose(
        scenario=scenario,
        local=local,
        site_path=site_path,
        node_actions=node_actions,
        remote=Mode.SLURM if launcher == "slurm" else Mode.SSH,
    )
    lock: TargetLock | None = None
    with Wiring.of(ctx, where) as wiring:
        try:
            if remote:
                choice = RemoteBurnin(
                    launcher, remote_python, partition, exclusive, rounds, duration
                )
                chosen = _targets(wiring.site(required=NEEDS_SITE), hostlist, rack_name)
                ports = wiring.burnin_ports(nodes=chosen, remote=choice)
            else:
                ports = wiring.burnin_ports(ranks=ranks)
            site = ports.site
            nodes = _targets(site, hostlist, rack_name)
            thresholds = load_thresholds(site.sku, override=thresholds_file)
            audit = wiring.audit()
            wants_backend = apply or recheck or node_actions or ports.backend == "sim"
            actions = wiring.node_actions(site) if wants_backend else None
            if recheck:
                nodes = _recheck_targets(actions, nodes)
                if not nodes:
                    emit(
                        {
                            "kind": "recheck",
                            "nodes": [],
                            "actions": [],
                            "message": "no node drained by dcops to recheck",
                        },
                        as_json,
                        lambda c: c.print("no node drained by dcops to recheck"),
                    )
                    return
            options = SuiteOptions(
                nodes=tuple(nodes),
                gemm_rounds=rounds,
                gemm_duration_s=duration,
                gemm_dtype=dtype,
                collectives=not no_collectives,
                probe_timeout_s=probe_timeout,
            )
            actuator = wiring.actuator(
                actions, max_drain_rack=max_drain_rack, max_drain_fleet=max_drain_fleet
            )
            policy = ActionPolicy(
                apply=apply, force=force, recheck=recheck, requested_by=audit.actor
            )
            if apply:  # two burn-ins never act on the same nodes at once
                lock = TargetLock(wiring.cfg.data_dir / "locks", "burnin", nodes).acquire()
            watch = StageWatch()
            with progress_bar(not as_json, status=watch.line) as progress:
                report = execute(
                    ports,
                    thresholds,
                    options,
                    store=audit.store,
                    actuator=actuator,
                    policy=policy,
                    progress=progress,
                    watch=watch,
                )
        finally:
            if lock is not None:
                lock.release()
    _outputs(report, remote=remote, report_dir=report_dir, textfile_dir=textfile_dir)
    emit(report, as_json, lambda console: _render(console, report))
    ctx.exit(exit_status(report))


def _outputs(
    report: dict[str, Any], *, remote: bool, report_dir: str | None, textfile_dir: str | None
) -> None:
    """The probe note, the HTML report and the textfiles, added to ``report``."""
    if remote and not report["params"].get("probe"):
        from burnin.remote.ports import PROBE_NOTE

        report["params"]["probe_note"] = PROBE_NOTE
    if report_dir:
        from burnin.html import write_report

        report["report_file"] = str(write_report(report, report_dir))
    if textfile_dir:
        from burnin.textfile import write as write_textfile

        report["textfiles"] = [str(p) for p in write_textfile(textfile_dir, report)]


def exit_status(report: dict[str, Any]) -> int:
    """5 breaker refused, 3 run-level error or a failed action, 1 not all pass, else 0."""
    from dcops.actions import Status

    statuses = {a.get("status") for a in report["actions"]}
    if Status.REFUSED in statuses and report.get("apply"):
        return ExitCode.REFUSED
    if report.get("run_error") or Status.FAILED in statuses:
        return ExitCode.INTERNAL
    return ExitCode.UNHEALTHY if report["status"] != "pass" else ExitCode.OK


def _recheck_targets(actions: NodeActions | None, nodes: list[str]) -> list[str]:
    from burnin.service import dcops_drained

    if actions is None:
        raise InputError("--recheck needs a node-actions backend")
    return dcops_drained(actions, nodes)


def _targets(site: Any, hostlist: str | None, rack_name: str | None) -> list[str]:
    nodes: list[str] = site.nodes()
    if rack_name:
        rack_nodes = set(site.rack(rack_name).nodes)
        nodes = [n for n in nodes if n in rack_nodes]
    if hostlist:
        chosen = set(site.select(hostlist))
        nodes = [n for n in nodes if n in chosen]
    if not nodes:
        raise InputError("no node selected")
    return nodes


def _render(console: Console, report: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    s = report["summary"]
    console.print(
        f"[bold]{report['kind']} {report['run_id']}[/bold] ({report['sku']}, "
        f"{report['params'].get('backend')}): [{_STYLE[report['status']]}]"
        f"{report['status'].upper()}[/] — nodes: {s['pass']} pass, {s['warn']} warn, "
        f"{s['fail']} fail, {s['error']} error"
    )
    reference = report["params"].get("gemm_reference")
    if reference == "baseline":
        base = report["params"].get("gemm_baseline") or {}
        console.print(
            "too few peers: GEMM judged against the fleet baseline in the store "
            f"(median {base.get('median_tflops')} TFLOPS over {base.get('gpus')} GPUs)"
        )
    elif reference == "floors":
        console.print(
            "too few peers and no fleet baseline stored: GEMM judged against the absolute "
            "floors only (a burn-in with enough peers records one)"
        )
    table = Table(show_lines=False)
    for col in ("node", "rack", "status", "GPU", "check", "metric", "value", "threshold", "why"):
        table.add_column(col, overflow="fold")
    for node in report["nodes"]:
        if node["status"] == "pass":
            continue
        rows = [("-", r) for r in node["reasons"]] + [
            (str(g["index"]), r) for g in node["gpus"] for r in g["reasons"]
        ]
        for gpu, r in rows or [("-", {"check": "-", "message": ""})]:
            table.add_row(
                node["node"],
                node["rack"],
                f"[{_STYLE[node['status']]}]{node['status']}[/]",
                gpu,
                str(r.get("check", "")),
                str(r.get("metric", "")),
                _num(r.get("value")),
                _num(r.get("threshold")),
                escape(str(r.get("message", ""))),
            )
    if table.row_count:
        console.print(table)
    for loc in report["localization"]:
        if "stages" in loc:
            cost = (
                f"{loc['stages']} stages of concurrent tests ({loc['tests']} collective tests, "
                f"{loc['gpu_seconds']:.1f} GPU-s)"
            )
        else:  # a run stored before localization by stages
            cost = f"{loc.get('domain_rounds', '?')} collective tests, one at a time"
        console.print(f"localized {loc['kind']} {loc['target']} in domain {loc['domain']}: {cost}")
    for action in report["actions"]:
        console.print(f"{action['action']} {action['nodes']}: {action['outcome']}")
        if action.get("outcome") == "dry-run" and action.get("call"):
            console.print("  would run: " + " ".join(action["call"]), highlight=False)
    for node, why in report.get("not_resumed", {}).items():
        console.print(f"[yellow]not resumed[/] {node}: {escape(why)}")
    if report.get("run_error"):
        console.print(f"[bold magenta]run error:[/] {report['run_error']}")


def _num(value: Any) -> str:
    """A number in full (never cut or turned into an exponent); "" for none."""
    if isinstance(value, float):
        text = f"{value:.4g}"
        return f"{value:.1f}" if "e" in text else text
    return "" if value is None else str(value)


@click.command("history")
@click.option("--last", "limit", type=click.IntRange(1), default=20, show_default=True)
@json_option
@click.pass_context
def history(ctx: click.Context, limit: int, as_json: bool) -> None:
    """List recent burn-in runs, newest first."""
    from burnin.service import history as list_runs

    runs = list_runs(open_audit(ctx).store, limit)

    def render(console: Console) -> None:
        from rich.table import Table

        if not runs:
            console.print("no burn-in runs yet")
            return
        table = Table()
        for col in (
            "run",
            "kind",
            "started (UTC)",
            "status",
            "sku",
            "targets",
            "pass/warn/fail/error",
        ):
            table.add_column(col)
        for r in runs:
            s = r["summary"]
            table.add_row(
                r["run_id"],
                r["kind"],
                r["started_at"][:19],
                f"[{_STYLE.get(r['status'], 'white')}]{r['status']}[/]",
                r["sku"] or "",
                r["targets"],
                f"{s.get('pass', 0)}/{s.get('warn', 0)}/{s.get('fail', 0)}/{s.get('error', 0)}",
            )
        console.print(table)

    emit(runs, as_json, render)


@click.command("show")
@click.argument("run_id")
@json_option
@click.pass_context
def show(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Show a stored burn-in run (the same report as when it ran)."""
    from burnin.service import load_run

    report = load_run(open_audit(ctx).store, run_id)
    emit(report, as_json, lambda console: _render(console, report))
