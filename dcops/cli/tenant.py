"""``dcops tenant``: tenant contracts, API tokens and their Slurm/Kubernetes side.

Exit codes: 0 done (``sync``: in sync, or fixed with --apply); 1 ``sync``
found drift (without --apply); 2 bad input or unknown tenant/token; 3 store
or Slurm failure. The secret of a token is printed once, by ``token``, and
nowhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from dcops.cli.common import emit, get_config, json_option, open_store
from dcops.errors import ExitCode

if TYPE_CHECKING:
    from rich.console import Console

    from dcops.store import AuditLog, Store


def _store_and_audit(ctx: click.Context) -> tuple[Store, AuditLog]:
    from dcops.store import AuditLog

    store = open_store(ctx)
    return store, AuditLog(store, actor=get_config(ctx).actor)


@click.group("tenant")
def tenant() -> None:
    """Tenants of the scheduler bridge: contracts, quotas, API tokens, Slurm/Kueue sync."""


@tenant.command("create")
@click.argument("name")
@click.option(
    "--gpu-quota",
    required=True,
    type=click.IntRange(min=0),
    help="GPUs the tenant may hold at once.",
)
@click.option(
    "--output-root",
    "output_roots",
    required=True,
    multiple=True,
    help="Absolute directory the tenant may write under (repeatable).",
)
@click.option("--slurm-account", help="Slurm account (default: NAME).")
@click.option(
    "--slurm-user",
    "slurm_users",
    multiple=True,
    help="Unix user the tenant's Slurm jobs run as (repeatable; default: NAME).",
)
@click.option(
    "--partition", "partitions", multiple=True, help="Slurm partition (repeatable; default: batch)."
)
@click.option("--qos", default="normal", show_default=True, help="Slurm QOS.")
@click.option("--namespace", help="Kubernetes namespace (default: tenant-NAME).")
@click.option("--local-queue", help="Kueue LocalQueue (default: NAME).")
@click.option(
    "--max-pending-jobs",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Jobs not yet started the tenant may have at once.",
)
@click.option(
    "--cpu-node-quota",
    type=click.IntRange(min=0),
    help="Nodes the tenant's jobs without GPUs may hold at once (default: gpu-quota / 4, >= 1).",
)
@click.option(
    "--backends",
    default="slurm,kubernetes",
    show_default=True,
    help="Allowed scheduler families, comma-separated.",
)
@json_option
@click.pass_context
def create(
    ctx: click.Context,
    name: str,
    gpu_quota: int,
    output_roots: tuple[str, ...],
    slurm_account: str | None,
    slurm_users: tuple[str, ...],
    partitions: tuple[str, ...],
    qos: str,
    namespace: str | None,
    local_queue: str | None,
    max_pending_jobs: int,
    cpu_node_quota: int | None,
    backends: str,
    as_json: bool,
) -> None:
    """Create tenant NAME in the state store (audited). Run `tenant sync` to tell Slurm."""
    from scheduler.tenants.contract import TenantContract
    from scheduler.tenants.store import contract_to_dict, create_tenant

    contract = TenantContract(
        name=name,
        slurm_account=slurm_account or name,
        slurm_qos=qos,
        slurm_partitions=partitions or ("batch",),
        unix_users=slurm_users or (name,),
        k8s_namespace=namespace or f"tenant-{name}",
        k8s_local_queue=local_queue or name,
        gpu_quota=gpu_quota,
        output_roots=tuple(output_roots),
        allowed_backends=frozenset(b.strip() for b in backends.split(",") if b.strip()),
        max_pending_jobs=max_pending_jobs,
        cpu_node_quota=cpu_node_quota,
    )
    store, audit = _store_and_audit(ctx)
    with store:
        create_tenant(store, contract, audit)
    emit(contract_to_dict(contract), as_json, render=lambda c: c.print(f"created tenant {name}"))


def _render_contract(data: dict[str, Any]) -> Any:
    def render(console: Console) -> None:
        for key, value in data.items():
            shown = ", ".join(str(v) for v in value) if isinstance(value, list) else value
            console.print(f"{key:28} {shown}")

    return render


@tenant.command("list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List tenants with their quota and bindings."""
    from scheduler.tenants.store import contract_to_dict, list_tenants

    with open_store(ctx) as store:
        rows = [contract_to_dict(c) for c in list_tenants(store)]

    def render(console: Console) -> None:
        from rich.table import Table

        table = Table("tenant", "gpu quota", "slurm account", "unix users", "namespace", "backends")
        for r in rows:
            table.add_row(
                r["name"],
                str(r["gpu_quota"]),
                r["slurm_account"],
                ",".join(r["unix_users"]),
                r["k8s_namespace"],
                ",".join(r["allowed_backends"]),
            )
        console.print(table)

    emit(rows, as_json, render=render)


@tenant.command("show")
@click.argument("name")
@json_option
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show tenant NAME's contract and its tokens (ids only)."""
    from scheduler.tenants.store import contract_to_dict, get_tenant
    from scheduler.tenants.tokens import list_tokens

    with open_store(ctx) as store:
        data = contract_to_dict(get_tenant(store, name))
        tokens = [t.to_dict() for t in list_tokens(store, name)]
    emit(
        {**data, "tokens": tokens},
        as_json,
        render=_render_contract(
            {**data, "tokens": [f"{t['token_id']} ({t['state']})" for t in tokens]}
        ),
    )


@tenant.command("quota")
@click.argument("name")
@click.argument("gpus", type=click.IntRange(min=0))
@json_option
@click.pass_context
def quota(ctx: click.Context, name: str, gpus: int, as_json: bool) -> None:
    """Set tenant NAME's GPU quota (audited; run `tenant sync --apply` for Slurm/Kueue)."""
    from scheduler.tenants.store import set_quota

    store, audit = _store_and_audit(ctx)
    with store:
        set_quota(store, name, gpus, audit)
    emit(
        {"tenant": name, "gpu_quota": gpus},
        as_json,
        render=lambda c: c.print(f"tenant {name}: gpu quota {gpus}"),
    )


@tenant.command("output-root")
@click.argument("name")
@click.option("--add", "add", multiple=True, help="Absolute directory to allow (repeatable).")
@click.option("--remove", "remove", multiple=True, help="Output root to take away (repeatable).")
@json_option
@click.pass_context
def output_root(
    ctx: click.Context, name: str, add: tuple[str, ...], remove: tuple[str, ...], as_json: bool
) -> None:
    """Add or remove directories tenant NAME may write under (audited).

    Jobs submitted after the change see it; running jobs keep the roots they
    were rendered with. A tenant keeps at least one root.
    """
    from dcops.errors import InputError
    from scheduler.tenants.store import set_output_roots

    if not add and not remove:
        raise InputError("tenant output-root: give --add PATH and/or --remove PATH")
    store, audit = _store_and_audit(ctx)
    with store:
        contract = set_output_roots(store, name, audit, add=add, remove=remove)
    roots = list(contract.output_roots)
    emit(
        {"tenant": name, "output_roots": roots},
        as_json,
        render=lambda c: c.print(f"tenant {name}: output roots {', '.join(roots)}"),
    )


@tenant.command("token")
@click.argument("name")
@click.option(
    "--expires-days",
    type=click.FloatRange(min=0, min_open=True),
    default=90,
    show_default=True,
    help="Lifetime of the token in days.",
)
@json_option
@click.pass_context
def token(ctx: click.Context, name: str, expires_days: float, as_json: bool) -> None:
    """Issue an API token for NAME; the secret is printed this once and never stored."""
    from scheduler.tenants.tokens import issue_token

    store, audit = _store_and_audit(ctx)
    with store:
        issued = issue_token(store, name, audit, expires_days=expires_days)
    data = {
        "token_id": issued.token_id,
        "tenant": issued.tenant,
        "token": issued.token,
        "expires_at": issued.expires_at,
    }

    def render(console: Console) -> None:
        console.print(f"token id:   {issued.token_id}\nexpires at: {issued.expires_at}")
        console.print("token (shown once, store it now):", style="bold")
        click.echo(issued.token)

    emit(data, as_json, render=render)


@tenant.command("revoke")
@click.argument("token_id")
@json_option
@click.pass_context
def revoke(ctx: click.Context, token_id: str, as_json: bool) -> None:
    """Revoke an API token by its id (audited)."""
    from scheduler.tenants.tokens import revoke_token

    store, audit = _store_and_audit(ctx)
    with store:
        info = revoke_token(store, token_id, audit)
    emit(info.to_dict(), as_json, render=lambda c: c.print(f"revoked {token_id} ({info.tenant})"))


@tenant.command("sync")
@click.argument("name", required=False)
@click.option("--apply", is_flag=True, help="Run the sacctmgr fixes (default: only report).")
@click.option("--cluster", help="Slurm cluster of the associations (default: all / slurm.conf's).")
@json_option
@click.pass_context
def sync(
    ctx: click.Context, name: str | None, apply: bool, cluster: str | None, as_json: bool
) -> None:
    """Compare tenants (all, or NAME) with Slurm and Kueue; --apply fixes Slurm.

    Prints the drift between each contract and `sacctmgr show assoc`, the
    sacctmgr commands that fix it, and the Kubernetes manifests (Namespace,
    ClusterQueue with the GPU nominalQuota, LocalQueue) to apply.
    """
    from scheduler.slurm.sync import sync_slurm
    from scheduler.tenants.kubernetes import render_tenant_kubernetes
    from scheduler.tenants.store import get_tenant, list_tenants

    store, audit = _store_and_audit(ctx)
    with store:
        contracts = [get_tenant(store, name)] if name else list_tenants(store)
        reports = []
        for contract in contracts:
            report = sync_slurm(
                contract, apply=apply, audit=audit if apply else None, cluster=cluster
            )
            reports.append({**report.to_dict(), "kubernetes": render_tenant_kubernetes(contract)})
        if not apply:
            for rep in reports:
                audit.record(
                    "tenant.sync.check",
                    f"tenant:{rep['tenant']}",
                    outcome="in-sync" if rep["in_sync"] else "drift",
                    evidence={"drift": rep["drift"]},
                )

    def render(console: Console) -> None:
        import yaml

        for rep in reports:
            state = "in sync" if rep["in_sync"] else f"{len(rep['drift'])} difference(s)"
            console.print(f"[bold]tenant {rep['tenant']}[/]: Slurm {state}")
            for d in rep["drift"]:
                console.print(f"  {d['what']:18} {d['target']}: want {d['want']}, have {d['have']}")
                for cmd in d["fix"]:
                    console.print(f"    {'ran' if apply else 'fix'}: {cmd}", markup=False)
            for a in rep["applied"]:
                console.print(
                    f"  applied: {a['command']} -> {'ok' if a['ok'] else a['message']}",
                    markup=False,
                )
            console.print("  Kubernetes manifests:")
            click.echo(yaml.safe_dump_all(rep["kubernetes"], sort_keys=False))

    emit(reports, as_json, render=render)
    if not all(r["in_sync"] for r in reports):
        ctx.exit(ExitCode.UNHEALTHY)
