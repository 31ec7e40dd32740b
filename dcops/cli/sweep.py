"""``dcops sweep``: cheap health checks on many nodes, the node lifecycle, drains and resumes.

Exit codes: 0 all healthy, 1 unhealthy nodes found, 2 usage or input error,
3 the sweep itself (or an action) failed, 4 another sweep holds the lock,
5 the circuit breaker refused drains. See ``docs/sweeps.md``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import click

from dcops.cli.common import (
    emit,
    get_config,
    json_option,
    progress_bar,
    site_option,
    stderr_console,
)
from dcops.errors import InputError

if TYPE_CHECKING:
    from rich.console import Console

    from dcops.cli.wiring import Wiring
    from dcops.config import Config
    from dcops.inventory import Site
    from health.sweep import SweepOptions

_STYLE = {
    "ok": "green",
    "warn": "yellow",
    "skip": "dim",
    "suspect": "dark_orange",
    "fail": "red",
    "error": "magenta",
}
#: What a dry run would do, by the lifecycle state it decided (nothing was changed).
_WOULD = {"drained": "would drain", "ok": "would return to ok", "repair": "would send to repair"}
#: Defaults, overridden by a config ``[sweep]`` section when dcops.config has one, then flags.
_DEFAULTS: dict[str, Any] = {
    "concurrency": 64,
    "timeout_s": 60.0,
    "deadline_s": None,
    "drain_after_failures": 2,
    "resume_after_passes": 2,
    "textfile_dir": None,
}


def _setting(cfg: Config, key: str, flag: Any) -> Any:
    if flag is not None:
        return flag
    section = getattr(cfg, "sweep", None)
    value = getattr(section, key, None) if section is not None else None
    return value if value is not None else _DEFAULTS[key]


@click.command()
@click.option("--nodes", "hostlist", help="Sweep these nodes (hostlist expression).")
@click.option("--rack", "rack_name", help="Sweep every node of this rack.")
@click.option("--partition", help="Sweep the nodes of this Slurm partition.")
@click.option("--all", "everything", is_flag=True, help="Sweep every node of the site.")
@click.option("--checks", "check_list", help="Comma-separated checks (default: all).")
@click.option("--apply", is_flag=True, help="Drain and resume nodes (default: only report).")
@click.option("--local", is_flag=True, help="Check this machine (cron, Slurm HealthCheckProgram).")
@click.option("--sim", "scenario", type=click.Path(dir_okay=False), help="Sweep a simulated fleet.")
@site_option
@click.option(
    "--remote-dcops",
    "remote_dcops",
    is_flag=False,
    flag_value="dcops",
    default=None,
    metavar="[CMD]",
    help="Run 'CMD sweep --local --json' on each node over SSH and merge (default CMD: dcops).",
)
@click.option("--concurrency", type=click.IntRange(1, 4096), help="Nodes at once [64].")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.1), help="Seconds per node [60].")
@click.option("--deadline", "deadline_s", type=click.FloatRange(0.1), help="Seconds in all.")
@click.option(
    "--textfile",
    "textfile_dir",
    type=click.Path(file_okay=False),
    help="Write node_exporter textfile metrics (dcops_sweep.prom) into this directory.",
)
@click.option(
    "--node-actions",
    "backend",
    help="Node-actions backend: slurm-cli, kubernetes, recording, none "
    "[recording with --sim, else config slurm.node_actions].",
)
@click.option("--drain-after", type=click.IntRange(1), help="Failures in a row that drain [2].")
@click.option("--resume-after", type=click.IntRange(1), help="Clean sweeps that resume [2].")
@click.option(
    "--max-drain-fleet",
    type=click.FloatRange(0, 1),
    help="Breaker: fleet share [config actions.max_drain_fleet, 0.25].",
)
@click.option(
    "--max-drain-rack",
    type=click.FloatRange(0, 1),
    help="Breaker: rack share [config actions.max_drain_rack, 0.34].",
)
@click.option(
    "--expected-gpus", type=click.IntRange(0), help="--local: GPUs this node should have."
)
@click.option("--no-lock", is_flag=True, help="Do not take the sweep lock (read-only runs only).")
@click.option(
    "--remediate",
    type=click.Choice(["observe", "recommend", "approve", "act"]),
    is_flag=False,
    flag_value="recommend",
    default=None,
    help="Open a runbook run for each node that needs one, at this autonomy [recommend].",
)
@json_option
@click.pass_context
def sweep(
    ctx: click.Context,
    hostlist: str | None,
    rack_name: str | None,
    partition: str | None,
    everything: bool,
    check_list: str | None,
    apply: bool,
    local: bool,
    scenario: str | None,
    site_path: str | None,
    remote_dcops: str | None,
    concurrency: int | None,
    timeout_s: float | None,
    deadline_s: float | None,
    textfile_dir: str | None,
    backend: str | None,
    drain_after: int | None,
    resume_after: int | None,
    max_drain_fleet: float | None,
    max_drain_rack: float | None,
    expected_gpus: int | None,
    no_lock: bool,
    remediate: str | None,
    as_json: bool,
) -> None:
    """Run health checks on nodes; drain failing ones and resume repaired ones (--apply).

    A first non-fatal failure makes a node suspect, a second in a row (or any
    fatal finding) drains it; nodes drained by dcops are resumed after clean
    sweeps; drains by operators are never touched.
    """
    from dcops.cli.wiring import action_settings
    from health.lifecycle import LifecyclePolicy
    from health.lock import RunLock
    from health.sweep import SweepOptions

    if local and scenario:
        raise InputError("choose one of --local or --sim")
    if remote_dcops and (local or scenario):
        raise InputError("--remote-dcops sweeps nodes over SSH; it does not go with --local/--sim")
    if no_lock and apply:
        raise InputError("--no-lock is for read-only sweeps; it does not go with --apply")
    if local and (hostlist or rack_name or partition or everything):
        raise InputError("--local checks this machine only; drop --nodes/--rack/--partition/--all")
    if expected_gpus is not None and not local:
        raise InputError("--expected-gpus goes with --local (the site file says it otherwise)")
    cfg = get_config(ctx)
    textfile = _setting(cfg, "textfile_dir", textfile_dir)
    deadline = _setting(cfg, "deadline_s", deadline_s)
    options = SweepOptions(
        concurrency=int(_setting(cfg, "concurrency", concurrency)),
        timeout_s=float(_setting(cfg, "timeout_s", timeout_s)),
        deadline_s=float(deadline) if deadline is not None else None,
        apply=apply,
        lifecycle=LifecyclePolicy(
            drain_after_failures=int(_setting(cfg, "drain_after_failures", drain_after)),
            resume_after_passes=int(_setting(cfg, "resume_after_passes", resume_after)),
        ),
        action_settings=action_settings(
            cfg, max_drain_fleet=max_drain_fleet, max_drain_rack=max_drain_rack
        ),
        remote_dcops=remote_dcops,
        mode="sim" if scenario else "local" if local else "ssh",
    )
    if textfile:  # acting comes last: every input is checked before anything changes
        _check_textfile_dir(textfile)
    lock = RunLock(cfg.data_dir / "sweep.lock")
    if not no_lock:
        lock.acquire()
    try:
        report = _run(
            ctx,
            options,
            scenario=scenario,
            local=local,
            site_path=site_path,
            selectors=(hostlist, rack_name, partition, everything),
            check_list=check_list,
            backend=backend,
            expected_gpus=expected_gpus,
            progress_on=not as_json,
        )
    finally:
        recovered = lock.recovered
        lock.release()
    if recovered:
        from health.lock import describe

        report["lock"] = {"recovered": recovered}
        stderr_console().print(
            f"[yellow]dcops: note: took over the sweep lock left by a run that died "
            f"({describe(recovered)})[/]"
        )
    if textfile:
        from health.textfile import write

        report["textfile"] = str(write(textfile, report))
    if remediate:
        from dcops.cli.runbook_run import remediate as open_runs

        report["remediation"] = open_runs(ctx, report["run_id"], remediate, scenario, site_path)
    if report["circuit_breaker"]:
        stderr_console().print(f"[bold red]dcops: ALERT: {report['circuit_breaker']}[/]")
    emit(report, as_json, lambda console: _render(console, report))
    from health.sweep import exit_status

    code = exit_status(report)
    if code:
        ctx.exit(code)


def _run(
    ctx: click.Context,
    options: SweepOptions,
    *,
    scenario: str | None,
    local: bool,
    site_path: str | None,
    selectors: tuple[str | None, str | None, str | None, bool],
    check_list: str | None,
    backend: str | None,
    expected_gpus: int | None,
    progress_on: bool,
) -> dict[str, Any]:
    from dcops.cli.waiting import Waiting
    from dcops.cli.wiring import Where, Wiring
    from health.base import get_checks
    from health.sweep import SweepPorts, run_sweep

    names = [c.strip() for c in check_list.split(",") if c.strip()] if check_list else None
    checks = get_checks(names)
    if not checks:
        raise InputError("no health checks are installed (health.checks)")
    where = Where.choose(scenario=scenario, local=local, site_path=site_path, node_actions=backend)
    with Wiring.of(ctx, where) as wiring:
        audit = wiring.audit()
        site, nodes = _where(wiring, selectors, expected_gpus)
        actions = wiring.node_actions(site)  # read for the consistency report, written on --apply
        actuator = wiring.actuator(
            actions,
            max_drain_fleet=options.action_settings.max_drain_fleet,
            max_drain_rack=options.action_settings.max_drain_rack,
        )
        ports = SweepPorts(
            runner=wiring.runner(),
            site=site,
            checks=checks,
            store=audit.store,
            audit=audit,
            actions=actions,
            actuator=actuator,
        )
        waiting = Waiting(
            nodes,
            timeout_s=options.timeout_s,
            concurrency=options.concurrency,
            deadline_s=options.deadline_s,
        )

        def on_node(node: str, done: int, total: int) -> None:
            waiting.done(node)
            progress("sweep", done, total)

        with progress_bar(progress_on, status=waiting.line) as progress:
            progress("sweep", 0, len(nodes))  # the bar from the start: every node may hang
            return run_sweep(ports, nodes, options, on_node=on_node)


def _check_textfile_dir(path: str) -> None:
    import os
    from pathlib import Path

    where = Path(path)
    if not where.is_dir():
        raise InputError(f"--textfile {path}: no such directory; nothing was swept or changed")
    if not os.access(where, os.W_OK | os.X_OK):
        raise InputError(f"--textfile {path}: not writable; nothing was swept or changed")


def _where(
    wiring: Wiring,
    selectors: tuple[str | None, str | None, str | None, bool],
    expected_gpus: int | None,
) -> tuple[Site, list[str]]:
    """The site (adjusted by ``--expected-gpus`` on this machine) and the nodes to sweep."""
    from dcops.cli.wiring import Mode
    from health.sweep_targets import partition_nodes, select_targets

    hostlist, rack_name, partition, everything = selectors
    if wiring.simulated:
        wiring.use_site(wiring.fleet().site)  # the fleet as runbooks left it
    site = wiring.site()
    if wiring.where.mode is Mode.LOCAL:
        from dcops.skus import cpu_only

        if expected_gpus is not None:
            # The operator says how many NVIDIA GPUs this node has: on a host where NVML
            # finds none (the `cpu` SKU) they are missing, so the GPU checks run and say
            # so (the generic profile, as for an NVIDIA GPU of unknown name).
            sku = "h100" if expected_gpus and cpu_only(site.sku) else None
            racks = tuple(
                dataclasses.replace(r, gpus_per_node=expected_gpus, sku=sku or r.sku)
                for r in site.racks
            )
            site = dataclasses.replace(site, racks=racks, sku=sku or site.sku)
            wiring.use_site(site)
        return site, site.nodes()
    if wiring.simulated and not (hostlist or rack_name or partition):
        everything = True
    members = partition_nodes(partition, wiring.slurm()) if partition else None
    nodes = select_targets(
        site, hostlist=hostlist, rack=rack_name, partition_members=members, everything=everything
    )
    return site, nodes


def _render(console: Console, report: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    s = report["summary"]
    mode = "APPLY" if report["apply"] else "dry run"
    style = "green" if report["status"] == "ok" else "red"
    console.print(
        f"[bold]sweep {report['run_id']}[/bold] ({report['mode']}, {mode}, "
        f"{len(report['nodes'])} nodes, {len(report['checks'])} checks, "
        f"{report['duration_s']:.1f}s): [{style}]{report['status'].upper()}[/] — "
        + ", ".join(
            f"[{_STYLE[k]}]{s.get(k, 0)} {k}[/]" for k in ("ok", "warn", "suspect", "fail", "error")
        )
        + (f", [dim]{n} checks skipped[/]" if (n := report.get("skipped_checks")) else "")
    )
    shown = [
        n for n in report["nodes"] if n["status"] != "ok" or any(_notable(f) for f in n["checks"])
    ]
    if shown:
        table = Table()
        for col in ("node", "status", "state", "check", "GPU", "why"):
            table.add_column(col, overflow="fold")
        for node in shown:
            rows = [f for f in node["checks"] if _notable(f)]
            state = _state(node, report["apply"])
            if node["error"] or not rows:
                error = escape(node["error"] or "")
                table.add_row(node["node"], _status(node), state, "", "", error)
            for f in rows:
                gpu = "" if f["gpu"] is None else str(f["gpu"])
                why = escape(f["message"]) + (" [bold](fatal)[/]" if f["fatal"] else "")
                table.add_row(
                    node["node"],
                    _status(node),
                    state,
                    f"[{_STYLE.get(f['status'], '')}]{f['check']}[/]",
                    gpu,
                    why,
                )
        console.print(table)
    for a in report["actions"]:
        console.print(escape(_action_line(a)), highlight=False)
    for c in report["consistency"]:
        console.print(f"[yellow]scheduler[/] {c['node']}: {c['kind']}: {c['message']}")
    if report["scheduler"]["error"]:
        console.print(f"[yellow]scheduler not read:[/] {report['scheduler']['error']}")
    if report["circuit_breaker"]:
        console.print(f"[bold red]{report['circuit_breaker']}[/]")
    if report.get("run_error"):
        console.print(f"[bold magenta]run error:[/] {escape(report['run_error'])}")


def _action_line(a: dict[str, Any]) -> str:
    """``drain N: ok (reason)``; a resume's reason is the old drain's: not repeated."""
    line = f"{a['action']} {a['node']}: {a['outcome']}"
    reason = a.get("reason") or ""
    if a["action"] == "drain" and reason and reason not in a["outcome"]:
        line += f" ({reason})"
    return line


def _notable(finding: dict[str, Any]) -> bool:
    """Every finding that is not a plain pass is a row: warnings and skips included."""
    return bool(finding["status"] != "ok")


def _state(node: dict[str, Any], applied: bool) -> str:
    """The lifecycle state; in a dry run a change is shown as what would happen."""
    if applied or node["state"] == node["previous_state"]:
        return str(node["state"])
    return _WOULD.get(node["state"], f"would be {node['state']}")


def _status(node: dict[str, Any]) -> str:
    return f"[{_STYLE[node['status']]}]{node['status']}[/]"
