"""``dcops jobs``: tenant jobs through the scheduler bridge (operator side).

``submit`` admits a spec against a stored tenant's contract and quota and
submits it as that tenant; ``list``/``status``/``logs``/``cancel`` act on jobs
of the state store; ``render`` prints what would be submitted.

Exit codes: 0 done; 2 the spec/tenant breaks a rule, over quota, or an unknown
tenant/job (one line on stderr, via the main handler); 3 scheduler or store
failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dcops.cli.common import emit, json_option, open_store
from dcops.cli.jobs_client import api_options, client_from_options
from dcops.errors import InputError

if TYPE_CHECKING:
    from rich.console import Console

    from dcops.store import Store
    from scheduler.bridge import Bridge

#: The tested backends first; slurm-pyslurm (untested: no rig runs the Slurm its PyPI
#: release needs) last, and marked so in --help and ``dcops jobs backends``.
BACKEND_CHOICES = ["slurm-cli", "slurm-rest", "kubernetes", "slurm-pyslurm"]
BACKEND_HELP = (
    "Scheduler backend: slurm-cli, slurm-rest, kubernetes; slurm-pyslurm is UNTESTED "
    "(PyPI's pyslurm matches only Slurm 25.11): see `dcops jobs backends`."
)


def _bridge(ctx: click.Context, store: Store) -> Bridge:
    from dcops.cli.wiring import Mode, Where, Wiring
    from dcops.store import AuditLog
    from scheduler.bridge import Bridge

    wiring = Wiring.of(ctx, Where(Mode.SSH))
    audit = AuditLog(store, actor=wiring.cfg.actor)
    return Bridge(store, audit, backend_options=wiring.job_backend_options())


@click.group("jobs")
def jobs() -> None:
    """Tenant jobs: submit, list, status, logs, cancel, render (Slurm or Kubernetes)."""


@jobs.command("submit")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tenant", "tenant_name", help="Tenant (from the state store; operators).")
@click.option(
    "--backend",
    default="slurm-cli",
    show_default=True,
    type=click.Choice(BACKEND_CHOICES),
    help=BACKEND_HELP,
)
@api_options
@json_option
@click.pass_context
def submit(
    ctx: click.Context,
    spec: Path,
    tenant_name: str | None,
    backend: str,
    api_url: str | None,
    token_file: Path | None,
    as_json: bool,
) -> None:
    """Submit SPEC: as a tenant through the API (--api, token), or as an operator (--tenant).

    Admission and quota come first, then the scheduler; every submission is audited.
    """
    from scheduler.tenants.store import get_tenant

    client = client_from_options(api_url, token_file)
    if client is not None:
        from dcops.cli.jobs_client import submit_command

        submit_command(client, spec, as_json)
        return
    if not tenant_name:
        raise InputError("give --tenant NAME (operator) or --api URL with a tenant token")

    with open_store(ctx) as store:
        tenant = get_tenant(store, tenant_name)
        record = _bridge(ctx, store).submit(tenant, spec, backend)
    emit(
        record.to_dict(),
        as_json,
        render=lambda c: c.print(
            f"submitted {record.job_id} ({record.backend} job {record.backend_job_id}, "
            f"{record.gpus} GPUs) for tenant {record.tenant}"
        ),
    )


@jobs.command("backends")
@json_option
def backends(as_json: bool) -> None:
    """The scheduler backends: how each is tested, and whether it can be used here.

    A backend that is not tested (slurm-pyslurm) says so; it is kept for sites whose
    Slurm matches a pyslurm release, never offered as a peer of the tested ones.
    """
    from scheduler.backends.base import TESTED_BY, UNTESTED_WHY, availability

    result = {
        "backends": [
            {
                "name": name,
                "tested": name in TESTED_BY,
                "how": TESTED_BY.get(name) or UNTESTED_WHY.get(name, "untested"),
                "available": available,
            }
            for name, available in availability(_availability_checks()).items()
        ]
    }
    emit(result, as_json, render=lambda c: _render_backends(c, result))


def _availability_checks() -> dict[str, Any]:
    """name -> a check that says why the backend cannot be used here (None: it can)."""
    from scheduler.backends import pyslurm_backend, slurm_cli, slurm_rest
    from scheduler.kubernetes.backend import kubernetes_availability

    return {
        "slurm-cli": slurm_cli.check_available,
        "slurm-rest": slurm_rest.check_available,
        "kubernetes": kubernetes_availability,
        "slurm-pyslurm": pyslurm_backend.check_available,
    }


def _render_backends(console: Console, result: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table("backend", "tested", "available here")
    for b in result["backends"]:
        how = escape(b["how"])
        tested = how if b["tested"] else f"[yellow]UNTESTED[/yellow]: {how}"
        table.add_row(b["name"], tested, escape(b["available"]))
    console.print(table)


@jobs.command("list")
@click.option("--tenant", "tenant_name", help="Only this tenant's jobs (refreshed live).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10000))
@api_options
@json_option
@click.pass_context
def list_(
    ctx: click.Context,
    tenant_name: str | None,
    limit: int,
    api_url: str | None,
    token_file: Path | None,
    as_json: bool,
) -> None:
    """Jobs submitted through the bridge, newest first (a tenant sees only its own)."""
    from scheduler.tenants.store import get_tenant

    client = client_from_options(api_url, token_file)
    if client is not None:
        from dcops.cli.jobs_client import list_command

        list_command(client, False, as_json)
        return

    with open_store(ctx) as store:
        tenant = get_tenant(store, tenant_name) if tenant_name else None
        rows = [r.to_dict() for r in _bridge(ctx, store).list(tenant, limit=limit)]

    def render(console: Console) -> None:
        from rich.table import Table

        table = Table("job", "tenant", "backend", "backend id", "gpus", "state", "submitted")
        for r in rows:
            table.add_row(
                r["job_id"],
                r["tenant"],
                r["backend"],
                str(r["backend_job_id"] or ""),
                str(r["gpus"]),
                r["state"],
                r["submitted_at"][:19],
            )
        console.print(table)

    emit(rows, as_json, render=render)


@jobs.command("status")
@click.argument("job_id")
@api_options
@json_option
@click.pass_context
def status(
    ctx: click.Context, job_id: str, api_url: str | None, token_file: Path | None, as_json: bool
) -> None:
    """Live status of bridge job JOB_ID."""
    client = client_from_options(api_url, token_file)
    if client is not None:
        from dcops.cli.jobs_client import status_command

        status_command(client, job_id, as_json)
        return
    with open_store(ctx) as store:
        bridge = _bridge(ctx, store)
        record = bridge.status(bridge.tenant_of(job_id), job_id)
    data = record.to_dict()

    def render(console: Console) -> None:
        from dcops.cli.jobs_client import show_value

        for key, value in data.items():
            click.echo(f"{key:16} {show_value(value)}".rstrip())

    emit(data, as_json, render=render)


@jobs.command("logs")
@click.argument("job_id")
@click.option(
    "--tail-bytes",
    default=65536,
    show_default=True,
    type=click.IntRange(1, 16 * 1024 * 1024),
    help="Last bytes of each output file.",
)
@api_options
@click.pass_context
def logs(
    ctx: click.Context, job_id: str, tail_bytes: int, api_url: str | None, token_file: Path | None
) -> None:
    """Print the end of JOB_ID's stdout/stderr (read as the tenant's user)."""
    client = client_from_options(api_url, token_file)
    if client is not None:
        from dcops.cli.jobs_client import logs_command

        logs_command(client, job_id, tail_bytes)
        return
    with open_store(ctx) as store:
        bridge = _bridge(ctx, store)
        text = bridge.logs(bridge.tenant_of(job_id), job_id, tail_bytes=tail_bytes)
    click.echo(text, nl=False)


@jobs.command("cancel")
@click.argument("job_id")
@api_options
@json_option
@click.pass_context
def cancel(
    ctx: click.Context, job_id: str, api_url: str | None, token_file: Path | None, as_json: bool
) -> None:
    """Cancel JOB_ID (as its tenant's user; audited)."""
    client = client_from_options(api_url, token_file)
    if client is not None:
        from dcops.cli.jobs_client import cancel_command

        cancel_command(client, job_id, as_json)
        return
    with open_store(ctx) as store:
        bridge = _bridge(ctx, store)
        record = bridge.cancel(bridge.tenant_of(job_id), job_id)
    emit(record.to_dict(), as_json, render=lambda c: c.print(f"cancelled {job_id}"))


@jobs.command("render")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tenant", "tenant_name", help="Tenant from the state store.")
@click.option(
    "--tenant-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Tenant contract (YAML/JSON) whose identity and limits apply.",
)
@click.option(
    "--backend",
    required=True,
    type=click.Choice(["slurm", "kubernetes"]),
    help="Render a Slurm batch script or Kubernetes manifests.",
)
@click.option(
    "--gpus-in-use",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="GPUs the tenant already holds (counted against its quota).",
)
@click.option(
    "--slurm-version",
    default="24.11",
    show_default=True,
    help="Slurm release of the site (MAJOR.MINOR); --segment needs 24.05 or later.",
)
@click.option(
    "--pyxis/--no-pyxis", default=True, show_default=True, help="The Slurm site runs pyxis."
)
@click.option(
    "--check",
    is_flag=True,
    help="Kubernetes: validate every manifest offline (core API schemas, upstream CRDs); "
    "exit 2 if one is invalid. What was checked goes to stderr.",
)
@click.pass_context
def render(
    ctx: click.Context,
    spec: Path,
    tenant_name: str | None,
    tenant_file: Path | None,
    backend: str,
    gpus_in_use: int,
    slurm_version: str,
    pyxis: bool,
    check: bool,
) -> None:
    """Print exactly what would be submitted for SPEC: the script, or multi-doc YAML."""
    from scheduler.render import render_for
    from scheduler.slurm.render import SlurmSite
    from scheduler.tenants.contract import load_tenant_file
    from scheduler.tenants.store import get_tenant

    if (tenant_name is None) == (tenant_file is None):
        raise InputError("give exactly one of --tenant NAME or --tenant-file FILE")
    site = SlurmSite.parse_version(slurm_version, pyxis=pyxis)
    if tenant_file is not None:
        tenant = load_tenant_file(tenant_file)
    else:
        assert tenant_name is not None
        with open_store(ctx) as store:
            tenant = get_tenant(store, tenant_name)
    notes: list[str] = []
    text = render_for(
        spec, tenant, backend, gpus_in_use=gpus_in_use, slurm_site=site, check=check, notes=notes
    )
    click.echo(text, nl=False)
    for line in notes:
        click.echo(line, err=True)
