"""``dcops actions list|show|approve|deny|undo``: the approval queue and what dcops did.

Every action the actuator stored (queued, done, failed, refused, undone...)
with its evidence. ``approve`` runs a pending action now (ownership and the
breaker are checked again); ``undo`` reverses a done drain or cordon. Exit
codes: 0 ok, 2 bad input (unknown id, not pending, expired), 3 the backend
failed, 5 the breaker refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from dcops.cli.acting import scheduler_options, where_of
from dcops.cli.common import emit, json_option
from dcops.cli.node import render_results
from dcops.cli.wiring import Mode, Where, Wiring

if TYPE_CHECKING:
    from rich.console import Console

    from dcops.actions import Actuator


@click.group()
def actions() -> None:
    """The actuator's actions: the approval queue, approve/deny, undo."""


def _actuator(wiring: Wiring, action_id: str) -> Actuator:
    """The actuator, acting with the backend the action was asked for (unless given)."""
    import dataclasses

    from dcops.actions import records

    where = wiring.where
    if not where.node_actions and not where.scenario:
        stored = records.get(wiring.store(), action_id).get("backend")
        wiring.where = dataclasses.replace(where, node_actions=stored or None)
    return wiring.actuator(wiring.node_actions())


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "kind", "targets", "status", "level", "source", "source_run", "requested_by",
            "reason", "message", "created_at", "expires_at", "decided_by", "undo_of", "undone_by",
            "evidence")  # fmt: skip
    return {k: row.get(k) for k in keys}


@actions.command("list")
@click.option("--pending", is_flag=True, help="Only actions waiting for an approval.")
@click.option("--last", "limit", type=click.IntRange(1), default=50, show_default=True)
@json_option
@click.pass_context
def list_(ctx: click.Context, pending: bool, limit: int, as_json: bool) -> None:
    """Stored actions, newest first (pending approvals expire; see docs/actions.md)."""

    with Wiring.of(ctx, Where(Mode.SSH)) as wiring:
        rows = [_brief(r) for r in wiring.action_queue().list_actions(
            pending=pending, limit=limit)]  # fmt: skip

    def render(console: Console) -> None:
        from rich.table import Table

        if not rows:
            console.print("no pending actions" if pending else "no actions yet")
            return
        table = Table()
        for col in ("id", "kind", "targets", "status", "source", "requested by", "reason"):
            table.add_column(col, overflow="fold")
        for r in rows:
            source = f"{r['source']}:{r['source_run']}" if r["source_run"] else r["source"]
            table.add_row(r["id"], r["kind"], r["targets"], r["status"], source,
                          r["requested_by"], r["reason"])  # fmt: skip
        console.print(table)

    emit(rows, as_json, render)


@actions.command("show")
@click.argument("action_id")
@json_option
@click.pass_context
def show(ctx: click.Context, action_id: str, as_json: bool) -> None:
    """One action with its evidence, policy steps and backend call."""

    with Wiring.of(ctx, Where(Mode.SSH)) as wiring:
        row = wiring.action_queue().show(action_id)

    def render(console: Console) -> None:
        for key in ("id", "kind", "targets", "status", "level", "source", "source_run",
                    "requested_by", "reason", "message", "created_at", "expires_at",
                    "decided_by", "undo_of", "undone_by"):  # fmt: skip
            if row.get(key):
                console.print(f"{key}: {row[key]}", highlight=False)
        if row["call"]:
            console.print("call: " + " ".join(row["call"]), highlight=False)
        for step in row["steps"]:
            console.print(f"step {step['step']}: {step['verdict']} {step['detail']}".rstrip())
        for item in row["evidence"]:
            console.print(f"evidence: {item}", highlight=False)

    emit(row, as_json, render)


@actions.command("approve")
@click.argument("action_id")
@scheduler_options
@json_option
@click.pass_context
def approve(
    ctx: click.Context,
    action_id: str,
    scenario: str | None,
    site_path: str | None,
    backend: str | None,
    as_json: bool,
) -> None:
    """Approve a pending action: it runs now (you are recorded as the approver)."""
    from dcops.actions import exit_code

    with Wiring.of(ctx, where_of(scenario, site_path, backend)) as wiring:
        actuator = _actuator(wiring, action_id)
        result = actuator.approve(action_id, actuator.audit.actor)
    data = [result.to_dict()]
    emit(data, as_json, lambda c: render_results(c, data))
    ctx.exit(int(exit_code([result])))


@actions.command("deny")
@click.argument("action_id")
@click.option("--reason", required=True, help="Why not (recorded).")
@json_option
@click.pass_context
def deny(ctx: click.Context, action_id: str, reason: str, as_json: bool) -> None:
    """Deny a pending action; it will not run."""

    with Wiring.of(ctx, Where(Mode.SSH)) as wiring:
        audit = wiring.audit()
        result = wiring.action_queue().deny(action_id, audit.actor, reason)
    data = [result.to_dict()]
    emit(data, as_json, lambda c: render_results(c, data))


@actions.command("undo")
@click.argument("action_id")
@click.option("--dry-run", is_flag=True, help="Show the call only.")
@scheduler_options
@json_option
@click.pass_context
def undo(
    ctx: click.Context,
    action_id: str,
    dry_run: bool,
    scenario: str | None,
    site_path: str | None,
    backend: str | None,
    as_json: bool,
) -> None:
    """Reverse a done action (drain -> resume, cordon -> uncordon) if dcops still owns it."""
    from dcops.actions import exit_code

    with Wiring.of(ctx, where_of(scenario, site_path, backend)) as wiring:
        actuator = _actuator(wiring, action_id)
        result = actuator.undo(action_id, actuator.audit.actor, apply=not dry_run)
    data = [result.to_dict()]
    emit(data, as_json, lambda c: render_results(c, data))
    ctx.exit(int(exit_code([result])))
