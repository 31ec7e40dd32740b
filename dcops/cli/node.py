"""``dcops node drain|resume|status``: an operator's changes, through the same actuator.

An operator's ``drain`` passes the same policy as dcops' own (levels, the one
circuit breaker, audit, undo); draining a node dcops drained takes it over
(the reason becomes the operator's, and no dcops run returns it). Exit codes:
0 done (or dry-run), 2 bad input, 3 the backend failed, 5 the breaker refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from dcops.cli.acting import scheduler_options, where_of
from dcops.cli.common import emit, json_option
from dcops.cli.wiring import Where, Wiring
from dcops.errors import InputError

if TYPE_CHECKING:
    from rich.console import Console

    from dcops.actions import ActionResult


@click.group()
def node() -> None:
    """Drain, resume and show nodes (through the actuator, audited)."""


def _submit(
    ctx: click.Context,
    kind: str,
    hostlist: str,
    reason: str,
    *,
    apply: bool,
    force: bool,
    where: Where,
) -> list[ActionResult]:
    from dcops.actions import ActionRequest, Source

    with Wiring.of(ctx, where) as wiring:
        audit = wiring.audit()
        site = wiring.configured_site()
        actions = wiring.node_actions()
        if actions is None:
            raise InputError("no node-actions backend (--node-actions none): nothing to act on")
        names = list(site.select(hostlist)) if site is not None else hostlist
        request = ActionRequest.make(
            kind,
            names,
            reason=reason,
            source=Source("operator"),
            requested_by=audit.actor,
            evidence=[{"check": "operator", "message": reason, "by": audit.actor}],
        )
        actions.states(list(request.targets))  # every node known to the scheduler, or exit 2
        return wiring.actuator(actions).submit([request], apply=apply, force=force)


def _finish(
    ctx: click.Context, results: list[ActionResult], as_json: bool, *, applied: bool
) -> None:
    from dcops.actions import exit_code

    data = [r.to_dict() for r in results]
    emit(data, as_json, lambda c: render_results(c, data))
    ctx.exit(int(exit_code(results, applied=applied)))


def render_results(console: Console, data: list[dict[str, Any]]) -> None:
    for a in data:
        ident = f" {a['id']}" if a.get("id") else ""
        console.print(
            f"{a['kind']} {a['targets']}:{ident} [bold]{a['status']}[/] {a['message']}".rstrip(),
            highlight=False,
        )
        for node, why in a.get("skipped", {}).items():
            console.print(f"  left alone: {node}: {why}", highlight=False)
        if a["status"] == "dry-run":
            console.print("  would run: " + " ".join(a["call"]), highlight=False)


@node.command("drain")
@click.argument("hostlist")
@click.option("--reason", required=True, help="Why (one line; recorded in the scheduler).")
@click.option("--apply", is_flag=True, help="Drain (default: show the exact call only).")
@click.option("--force", is_flag=True, help="Override the circuit breaker.")
@scheduler_options
@json_option
@click.pass_context
def drain(
    ctx: click.Context,
    hostlist: str,
    reason: str,
    apply: bool,
    force: bool,
    scenario: str | None,
    site_path: str | None,
    backend: str | None,
    as_json: bool,
) -> None:
    """Take HOSTLIST out of service with your reason (takes over a dcops drain)."""
    from dcops.node_actions import is_dcops_reason

    text = " ".join(reason.split())
    if not text:
        raise InputError("--reason must not be empty")
    if is_dcops_reason(text):
        raise InputError("reasons starting with 'dcops:' are dcops' own; write your own reason")
    where = where_of(scenario, site_path, backend)
    results = _submit(ctx, "drain", hostlist, text, apply=apply, force=force, where=where)
    _finish(ctx, results, as_json, applied=apply)


@node.command("resume")
@click.argument("hostlist")
@click.option("--reason", default="resumed by an operator", show_default=True)
@click.option("--apply", is_flag=True, help="Resume (default: show the exact call only).")
@scheduler_options
@json_option
@click.pass_context
def resume(
    ctx: click.Context,
    hostlist: str,
    reason: str,
    apply: bool,
    scenario: str | None,
    site_path: str | None,
    backend: str | None,
    as_json: bool,
) -> None:
    """Return HOSTLIST to service (any drain: you are the operator)."""
    where = where_of(scenario, site_path, backend)
    results = _submit(ctx, "resume", hostlist, reason, apply=apply, force=False, where=where)
    _finish(ctx, results, as_json, applied=apply)


@node.command("status")
@click.argument("hostlist")
@scheduler_options
@json_option
@click.pass_context
def status(
    ctx: click.Context,
    hostlist: str,
    scenario: str | None,
    site_path: str | None,
    backend: str | None,
    as_json: bool,
) -> None:
    """Per node: the scheduler's state and reason, who drained it, dcops' lifecycle, evidence."""
    from dcops.cli.node_status import node_status

    with Wiring.of(ctx, where_of(scenario, site_path, backend)) as wiring:
        site = wiring.configured_site()
        actions = wiring.node_actions()
        if actions is None:
            raise InputError("no node-actions backend (--node-actions none): no scheduler to read")
        names = list(site.select(hostlist)) if site is not None else hostlist
        rows = node_status(wiring.store(), actions, names)

    def render(console: Console) -> None:
        from rich.table import Table

        table = Table()
        for col in ("node", "state", "reason", "by dcops", "lifecycle", "last action"):
            table.add_column(col, overflow="fold")
        for r in rows:
            last = r["last_action"]
            table.add_row(
                r["node"],
                r["state"],
                r["reason"],
                "yes" if r["by_dcops"] else "no",
                r["lifecycle"] or "-",
                f"{last['kind']} {last['status']} ({last['source']})" if last else "-",
            )
        console.print(table)

    emit(rows, as_json, render)
