"""``dcops jobs``: tenant jobs through the scheduler bridge (render for now).

Exit codes: 0 rendered; 2 the spec or tenant file breaks a rule (one line on
stderr, via the main handler); 3 internal failure.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.group("jobs")
def jobs() -> None:
    """Tenant jobs: render what the bridge would submit to Slurm or Kubernetes."""


@jobs.command("render")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--tenant-file",
    required=True,
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
def render(
    spec: Path,
    tenant_file: Path,
    backend: str,
    gpus_in_use: int,
    slurm_version: str,
    pyxis: bool,
) -> None:
    """Print exactly what would be submitted for SPEC: the script, or multi-doc YAML."""
    from scheduler.bridge import render_for
    from scheduler.slurm.render import SlurmSite
    from scheduler.tenancy import load_tenant_file

    site = SlurmSite.parse_version(slurm_version, pyxis=pyxis)
    tenant = load_tenant_file(tenant_file)
    text = render_for(spec, tenant, backend, gpus_in_use=gpus_in_use, slurm_site=site)
    click.echo(text, nl=False)
