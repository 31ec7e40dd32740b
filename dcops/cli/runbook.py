"""``dcops runbook``: list, show and plan codified remediations (``runbooks/``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from dcops.cli.common import emit, get_config, json_option

if TYPE_CHECKING:
    from rich.console import Console


def _dirs(ctx: click.Context) -> tuple[str, ...]:
    return get_config(ctx).runbooks.library_dirs


@click.group()
def runbook() -> None:
    """Runbooks: the same fix every time, dry-run first, destructive steps behind approval."""


@runbook.command("list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Every runbook of the library (built-in and the site's directories)."""
    from runbooks.library import load_library

    books = load_library(_dirs(ctx))
    data: list[dict[str, Any]] = [
        {
            "name": b.name,
            "description": b.description,
            "triggers": b.triggers,
            "steps": [s.name for s in b.steps],
            "path": b.path,
        }
        for b in sorted(books.values(), key=lambda b: b.name)
    ]

    def render(console: Console) -> None:
        from rich.table import Table

        table = Table()
        for col in ("name", "triggers", "steps"):
            table.add_column(col)
        for item in data:
            trig = item["triggers"]
            what = [f"xid {','.join(map(str, trig['xids']))}"] if trig.get("xids") else []
            what += [
                f"{k} {','.join(trig[k])}" for k in ("buckets", "checks", "burnin") if trig.get(k)
            ]
            table.add_row(item["name"], "; ".join(what) or "manual", " > ".join(item["steps"]))
        console.print(table)

    emit(data, as_json, render=render)


@runbook.command()
@click.argument("name")
@json_option
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """One runbook: triggers, parameters, steps, on_failure."""
    from runbooks.library import get_runbook

    book = get_runbook(name, _dirs(ctx))
    data = book.to_dict()

    def render(console: Console) -> None:
        console.print(f"[bold]{book.name}[/] ({book.path})")
        console.print(book.description)
        console.print(f"triggers: {book.triggers}")
        for step in (*book.preconditions, *book.steps):
            console.print(f"  {step.name:<16} {step.kind:<9} {_step_words(step)}")
        rollback = ", ".join(s.name for s in book.rollback) or "none"
        console.print(f"on failure: rollback {rollback}; escalate {book.escalate_on_failure}")

    emit(data, as_json, render=render)


def _step_words(step: Any) -> str:
    spec = step.spec
    for key in ("argv", "action", "checks", "condition", "items", "to", "prompt"):
        if key in spec:
            value = spec[key]
            return " ".join(map(str, value)) if isinstance(value, list) else str(value)
    return ""


def _params(values: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--param")
        out[key] = int(value) if value.isdigit() else value
    return out


@runbook.command()
@click.argument("name")
@click.option("--nodes", required=True, help="Hostlist of the nodes to plan for.")
@click.option("--param", "params", multiple=True, help="KEY=VALUE parameter (repeatable).")
@json_option
@click.pass_context
def plan(ctx: click.Context, name: str, nodes: str, params: tuple[str, ...], as_json: bool) -> None:
    """Exactly the commands and actions a run would make, in order (nothing is run)."""
    from dcops.cli.runbook_ports import check_commands
    from dcops.hostlist import expand
    from runbooks.library import get_runbook
    from runbooks.plan import plan as make_plan

    book = get_runbook(name, _dirs(ctx))
    given = _params(params)
    data: list[dict[str, Any]] = [
        {"node": n, "runbook": book.name, "steps": make_plan(book, n, given, check_commands)}
        for n in expand(nodes)
    ]

    def render(console: Console) -> None:
        for item in data:
            console.print(f"[bold]{item['runbook']}[/] on {item['node']}")
            steps: list[dict[str, Any]] = item["steps"]
            for i, line in enumerate(steps, 1):
                console.print(f" {i:>2}. \\[{line['phase']}] {line['name']} ({line['kind']})")
                _render_line(console, line)

    emit(data, as_json, render=render)


def _render_line(console: Console, line: dict[str, Any]) -> None:
    from rich.markup import escape

    if "action" in line:
        a = line["action"]
        extra = f" reason={a['reason']!r}" if "reason" in a else ""
        console.print(f"      action {a['kind']} {a['targets']} (autonomy {a['autonomy']}){extra}")
    for cmd in line.get("commands", []):
        console.print(f"      {cmd['host']}: {escape(' '.join(cmd['argv']))}")
    for key in ("checks", "condition", "scope", "to", "prompt"):
        if key in line:
            console.print(f"      {key}: {line[key]}")


def _add_run_commands() -> None:
    from dcops.cli import runbook_run

    for command in (
        runbook_run.run,
        runbook_run.status,
        runbook_run.resume,
        runbook_run.abort,
        runbook_run.history,
        runbook_run.suggest,
    ):
        runbook.add_command(command)


_add_run_commands()
