"""The tenant side of ``dcops jobs``: the ``--api``/``--token-file`` options and the output.

When ``--api URL`` (or ``DCOPS_API_URL``) is given, ``dcops jobs
submit|list|status|logs|cancel`` act as the tenant the token belongs to, over
HTTP (:class:`scheduler.api.client.ApiClient`), instead of as the operator on
the store.

Errors map to the CLI's exit codes: 4xx -> 2 (input: invalid spec, quota,
unknown job, bad token), 429 -> 4 (busy: retry after the given seconds),
5xx and connection failures -> 3.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from scheduler.api.client import API_URL_ENV, DEFAULT_TIMEOUT_S, TOKEN_ENV, ApiClient
from scheduler.api.client import client_from_options as _client

F = TypeVar("F", bound=Callable[..., Any])


def _warn(message: str) -> None:
    click.echo(f"dcops: warning: {message}", err=True)


def client_from_options(
    api: str | None, token_file: Path | None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> ApiClient | None:
    """The tenant client when an API URL is given (flag, then DCOPS_API_URL), else None."""
    return _client(api, token_file, timeout_s, warn=_warn)


def api_options(func: F) -> F:
    """Add ``--api URL`` and ``--token-file FILE`` to a ``dcops jobs`` command."""
    func = click.option(
        "--token-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"File holding the tenant API token (default: ${TOKEN_ENV}).",
    )(func)
    return click.option(
        "--api",
        "api_url",
        metavar="URL",
        help=f"Act as a tenant through the API at URL (default: ${API_URL_ENV}).",
    )(func)


# -- what each command prints -------------------------------------------------------------------


def _echo_json(data: object) -> None:
    from dcops.cli.common import dump_json

    click.echo(dump_json(data))


def submit_command(client: ApiClient, spec: Path, as_json: bool) -> None:
    result = client.submit(spec)
    if as_json:
        _echo_json(result)
        return
    click.echo(f"submitted {result['job_id']} (backend job {result['backend_job_id']})")
    click.echo(f"spec sha256 {result['spec_hash']}", err=True)


def list_command(client: ApiClient, active_only: bool, as_json: bool) -> None:
    jobs = client.list_jobs(active_only=active_only)
    if as_json:
        _echo_json({"jobs": jobs})
        return
    if not jobs:
        click.echo("no jobs")
        return
    click.echo(f"{'JOB':<18} {'BACKEND JOB':<12} {'STATE':<13} {'GPUS':>5}  NAME")
    for job in jobs:
        click.echo(
            f"{job.get('job_id', ''):<18} {job.get('backend_job_id') or '':<12} "
            f"{job.get('state', ''):<13} {job.get('gpus', ''):>5}  {job.get('name', '')}"
        )


def status_command(client: ApiClient, job_id: str, as_json: bool) -> None:
    job = client.status(job_id)
    if as_json:
        _echo_json(job)
        return
    for key, value in job.items():
        click.echo(f"{key:16} {show_value(value)}".rstrip())


def show_value(value: object) -> str:
    """A status field for people: nothing for none (never "None"), lists comma-joined."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def logs_command(client: ApiClient, job_id: str, tail_bytes: int) -> None:
    click.echo(client.logs(job_id, tail_bytes=tail_bytes), nl=False)


def cancel_command(client: ApiClient, job_id: str, as_json: bool) -> None:
    result = client.cancel(job_id)
    if as_json:
        _echo_json(result)
        return
    click.echo(f"cancelled {result.get('job_id', job_id)}")
