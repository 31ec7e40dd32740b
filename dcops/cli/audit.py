"""``dcops audit``: read and verify the hash-chained audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from dcops.cli.common import emit, json_option, open_audit
from dcops.errors import ExitCode

if TYPE_CHECKING:
    from rich.console import Console


@click.group()
def audit() -> None:
    """Show and verify the audit log of every action dcops took."""


@audit.command()
@click.option("--last", "limit", type=click.IntRange(min=1), help="Only the last N records.")
@click.option("--action", help="Only records of this action (drain, resume, submit ...).")
@click.option("--target", help="Only records for this target.")
@json_option
@click.pass_context
def show(
    ctx: click.Context, limit: int | None, action: str | None, target: str | None, as_json: bool
) -> None:
    """List audit records, oldest first."""
    log = open_audit(ctx)
    records = log.records(action=action, target=target, limit=limit)
    data = [r.to_dict() for r in records]

    def render(console: Console) -> None:
        from rich.markup import escape
        from rich.table import Table

        if not records:
            console.print("no audit records")
            return
        table = Table()
        for col in ("seq", "time (UTC)", "actor", "action", "target", "outcome", "evidence"):
            table.add_column(col, overflow="fold")
        for r in records:
            evidence = ", ".join(f"{k}={v}" for k, v in r.evidence.items())
            table.add_row(
                str(r.seq),
                r.ts[:19],
                escape(r.actor),
                r.action,
                escape(r.target),
                r.outcome,
                escape(evidence),
            )
        console.print(table)

    emit(data, as_json, render)


@audit.command()
@click.option(
    "--anchor",
    help="A head hash recorded elsewhere (dcops audit head); it must be in the chain.",
)
@json_option
@click.pass_context
def verify(ctx: click.Context, anchor: str | None, as_json: bool) -> None:
    """Check the keyed chain, its triggers and the exported head; exit 1 if tampered.

    Also checks that every API token's row and every tenant contract agrees with
    its audited history.
    """
    from scheduler.tenants.store import tenant_audit_problems
    from scheduler.tenants.tokens import token_audit_problems

    log = open_audit(ctx)
    result = log.verify(anchor=anchor)
    tokens = token_audit_problems(log.store)
    tenants = tenant_audit_problems(log.store)
    notes = list(result.notes)
    if log.store.seal.key_path.parent.resolve() == log.store.path.parent.resolve():
        notes.append(
            f"the audit key {log.store.seal.key_path} lies beside the state store: whoever can "
            "write that directory can replace it; set audit_key (docs/state-and-audit.md)"
        )
    data = {
        **result.to_dict(),
        "notes": notes,
        "token_problems": tokens,
        "tenant_problems": tenants,
    }
    ok = result.ok and not tokens and not tenants

    def render(console: Console) -> None:
        if result.ok:
            console.print(f"audit log intact: {result.records} record(s), head {result.head}")
        else:
            console.print(f"[red]audit log TAMPERED[/red]: {result.problem}")
        for note in notes:
            console.print(f"note: {note}")
        for problem in tokens:
            console.print(f"[red]token row TAMPERED[/red]: {problem}")
        for problem in tenants:
            console.print(f"[red]tenant row TAMPERED[/red]: {problem}")

    emit(data, as_json, render)
    if not ok:
        ctx.exit(ExitCode.UNHEALTHY)


@audit.command()
@json_option
@click.pass_context
def head(ctx: click.Context, as_json: bool) -> None:
    """Print the chain's head (seq and hash): record it elsewhere to anchor later checks."""
    seq, digest = open_audit(ctx).head()
    emit({"seq": seq, "hash": digest}, as_json, lambda console: click.echo(f"{seq} {digest}"))
