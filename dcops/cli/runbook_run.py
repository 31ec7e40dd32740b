"""``dcops runbook run|status|resume|abort|history|suggest``: durable runs of runbooks.

Exit codes: 0 the run is done or waits for an approval (or nothing to do),
1 a run failed, escalated or was aborted, 2 bad input, 3 internal or backend
error, 4 another run holds the node, 5 a rack/fleet limit refused the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from dcops.cli.common import emit, get_config, json_option, open_store
from dcops.errors import ExitCode, InputError

if TYPE_CHECKING:
    from rich.console import Console

_BAD = ("failed", "escalated", "aborted")


def _render_run(console: Console, run: dict[str, Any]) -> None:
    from rich.markup import escape

    console.print(
        f"[bold]{run['run_id']}[/] {run['runbook']} on {run['node']}: [bold]{run['status']}[/]"
    )
    if run.get("message"):
        console.print(f"  {escape(str(run['message']))}")
    for s in run["steps"]:
        mark = {"done": "ok", "failed": "FAIL", "waiting_approval": "WAIT"}.get(
            s["status"], s["status"]
        )
        console.print(
            f"  {mark:<8} {s['name']:<16} {s['kind']:<9} {escape(str(s['outcome']))[:150]}"
        )


def _emit_runs(
    ctx: click.Context, runs: list[dict[str, Any]], as_json: bool, *, many: bool = False
) -> None:
    """One run as an object; runs of several nodes (``many``) as a list."""
    from runbooks.engine import view

    views = [view(r) for r in runs]
    data: Any = views if many else views[0]

    def render(console: Console) -> None:
        for v in views:
            _render_run(console, v)

    emit(data, as_json, render=render)
    if any(v["status"] in _BAD for v in views):
        ctx.exit(ExitCode.UNHEALTHY)


def _with_engine(
    ctx: click.Context,
    scenario: str | None,
    work: Callable[[Any], Any],
    *,
    site_path: str | None = None,
) -> Any:
    """Run ``work`` with the runbook engine's ports (the composition root's), then close."""
    from dcops.cli.wiring import Where, Wiring

    with Wiring.of(ctx, Where.choose(scenario=scenario, site_path=site_path)) as wiring:
        return work(wiring.runbook_context())


def _params(values: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--param expects KEY=VALUE, got {item!r}")
        out[key] = int(value) if value.isdigit() else value
    return out


@click.command()
@click.argument("name")
@click.option("--nodes", required=True, help="Hostlist of the nodes to run it on (one run each).")
@click.option("--apply", is_flag=True, help="Run it. Without: print the plan, change nothing.")
@click.option("--sim", "scenario", type=click.Path(dir_okay=False), help="On the fleet simulator.")
@click.option("--site", "site_path", type=click.Path(dir_okay=False), help="Site file.")
@click.option("--param", "params", multiple=True, help="KEY=VALUE parameter (repeatable).")
@click.option(
    "--autonomy",
    type=click.Choice(["observe", "recommend", "approve", "act"]),
    default="act",
    show_default=True,
    help="The run's ceiling; each action still passes the actuator's level ([actions]).",
)
@click.option("--why", help="Why the run was opened (recorded with it).")
@json_option
@click.pass_context
def run(
    ctx: click.Context,
    name: str,
    nodes: str,
    apply: bool,
    scenario: str | None,
    site_path: str | None,
    params: tuple[str, ...],
    autonomy: str,
    why: str | None,
    as_json: bool,
) -> None:
    """Run runbook NAME on each node (dry-run unless --apply); durable, resumable."""
    from dcops.cli.runbook_ports import check_commands
    from dcops.hostlist import expand
    from runbooks.library import get_runbook
    from runbooks.plan import plan as make_plan

    book = get_runbook(name, get_config(ctx).runbooks.library_dirs)
    given = _params(params)
    targets = expand(nodes)
    if not apply:
        data = [
            {
                "node": n,
                "runbook": book.name,
                "status": "planned",
                "steps": make_plan(book, n, given, check_commands),
            }
            for n in targets
        ]
        emit(data[0] if len(data) == 1 else data, as_json, render=lambda c: _render_plan(c, data))
        return
    from dcops.errors import DcopsError
    from runbooks.engine import start

    errors: list[DcopsError] = []

    def work(engine: Any) -> list[dict[str, Any]]:
        out = []
        extra = _extra(scenario)
        for node in targets:
            try:
                out.append(
                    start(engine, book, node, values=given, autonomy=autonomy, why=why, extra=extra)
                )
            except DcopsError as exc:
                if len(targets) == 1:
                    raise
                errors.append(exc)  # one node held or refused: the others still run
        return out

    runs = _with_engine(ctx, scenario, work, site_path=site_path)
    for exc in errors:
        click.echo(f"dcops: error: {exc}", err=True)
    if runs:
        _emit_runs(ctx, runs, as_json, many=len(targets) > 1)
    if errors:
        ctx.exit(int(errors[0].exit_code))


def _render_plan(console: Console, data: list[dict[str, Any]]) -> None:
    from dcops.cli.runbook import _render_line

    for item in data:
        console.print(f"[bold]{item['runbook']}[/] on {item['node']} (plan; --apply runs it)")
        steps: list[dict[str, Any]] = item["steps"]
        for i, line in enumerate(steps, 1):
            console.print(f" {i:>2}. \\[{line['phase']}] {line['name']} ({line['kind']})")
            _render_line(console, line)


def _extra(scenario: str | None) -> dict[str, Any]:
    from pathlib import Path

    return {"sim": str(Path(scenario).resolve())} if scenario else {}


@click.command()
@click.argument("run_id")
@json_option
@click.pass_context
def status(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Where a run stands, step by step."""
    from runbooks.runs import get_run

    with open_store(ctx) as store:
        found = get_run(store, run_id)
    _emit_runs(ctx, [found], as_json)


@click.command()
@click.argument("run_id")
@json_option
@click.pass_context
def resume(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Continue a run (after an approval, a crash, kill -9); a no-op on a finished one."""
    from runbooks.engine import drive
    from runbooks.runs import TERMINAL, get_run

    with open_store(ctx) as store:
        found = get_run(store, run_id)
    if found["status"] in TERMINAL:
        _emit_runs(ctx, [found], as_json)
        return
    scenario = found["params"].get("sim")
    done = _with_engine(ctx, scenario, lambda engine: drive(engine, run_id))
    _emit_runs(ctx, [done], as_json)


@click.command()
@click.argument("run_id")
@click.option("--reason", default="aborted by an operator", help="Why (recorded).")
@json_option
@click.pass_context
def abort(ctx: click.Context, run_id: str, reason: str, as_json: bool) -> None:
    """Stop a run; its pending approvals are denied. Nothing already done is undone."""
    from runbooks.engine import abort as abort_run
    from runbooks.runs import get_run

    with open_store(ctx) as store:
        found = get_run(store, run_id)
    scenario = found["params"].get("sim")
    done = _with_engine(ctx, scenario, lambda engine: abort_run(engine, run_id, reason))
    _emit_runs(ctx, [done], as_json)


@click.command()
@click.option("--node", help="Only runs on this node.")
@click.option("--last", "limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
@click.pass_context
def history(ctx: click.Context, node: str | None, limit: int, as_json: bool) -> None:
    """Runbook runs, newest first."""
    from runbooks.runs import history as load_history

    with open_store(ctx) as store:
        rows = load_history(store, node=node, limit=limit)

    def render(console: Console) -> None:
        from rich.table import Table

        if not rows:
            console.print("no runbook runs")
            return
        table = Table()
        for col in ("run", "runbook", "node", "status", "created (UTC)", "message"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                r["run_id"],
                r["runbook"],
                r["node"],
                r["status"],
                r["created_at"][:19],
                (r["message"] or "")[:80],
            )
        console.print(table)

    emit(rows, as_json, render=render)


@click.command()
@click.option("--from-sweep", "sweep_run", help="A sweep run id.")
@click.option("--from-burnin", "burnin_run", help="A burn-in run id.")
@json_option
@click.pass_context
def suggest(
    ctx: click.Context, sweep_run: str | None, burnin_run: str | None, as_json: bool
) -> None:
    """The runbook each node of a sweep or burn-in needs, and why (nothing is run)."""
    from runbooks.library import load_library
    from runbooks.suggest import load_findings
    from runbooks.suggest import suggest as make

    if bool(sweep_run) == bool(burnin_run):
        raise InputError("give one of --from-sweep RUN or --from-burnin RUN")
    kind, run_id = ("sweep", sweep_run) if sweep_run else ("burnin", burnin_run)
    assert run_id is not None
    with open_store(ctx) as store:
        findings = load_findings(store, run_id, kind)
    found, notes = make(findings, load_library(get_config(ctx).runbooks.library_dirs).values())
    data = [s.to_dict() for s in found]

    def render(console: Console) -> None:
        if not data:
            console.print("no runbook to suggest")
        for s in data:
            params = " ".join(f"--param {k}={v}" for k, v in s["params"].items())
            console.print(f"{s['node']}: [bold]{s['runbook']}[/] ({s['why']})")
            console.print(
                f"    dcops runbook run {s['runbook']} --nodes {s['node']} {params}".rstrip()
            )
        for note in notes:
            console.print(f"note: {note}")

    emit(data, as_json, render=render)


def remediate(
    ctx: click.Context,
    sweep_run: str,
    autonomy: str,
    scenario: str | None,
    site_path: str | None,
) -> list[dict[str, Any]]:
    """Open a runbook run at ``autonomy`` for each node a sweep found needing one.

    ``recommend`` (the default of ``dcops sweep --remediate``) stores the run and
    runs nothing; ``approve``/``act`` run it, every action still through the
    actuator's levels. A node another run holds is reported, not retried.
    """
    from dcops.errors import DcopsError
    from runbooks.engine import start
    from runbooks.library import load_library
    from runbooks.suggest import load_findings
    from runbooks.suggest import suggest as make

    books = load_library(get_config(ctx).runbooks.library_dirs)
    with open_store(ctx) as store:
        findings = load_findings(store, sweep_run, "sweep")
    found, _notes = make(findings, books.values())
    if not found:
        return []

    def work(engine: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for s in found:
            values = {"gpu": s.gpu} if s.gpu is not None else {}
            why = f"sweep {sweep_run}: {s.why}"
            try:
                run = start(
                    engine, books[s.runbook], s.node, values=values, autonomy=autonomy,
                    why=why, extra=_extra(scenario),
                )  # fmt: skip
            except DcopsError as exc:
                out.append({"node": s.node, "runbook": s.runbook, "error": str(exc)})
                continue
            out.append(
                {"node": s.node, "runbook": s.runbook, "run_id": run["run_id"],
                 "status": run["status"], "why": s.why}
            )  # fmt: skip
        return out

    result: list[dict[str, Any]] = _with_engine(ctx, scenario, work, site_path=site_path)
    return result
