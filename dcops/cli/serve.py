"""``dcops serve``: the tenant HTTP API (token auth, per-tenant limits, audit).

The web framework (Starlette, uvicorn) is imported only here, when the command
runs, so ``dcops --help`` stays instant. Tenants and their tokens come from the
state store (``dcops tenant ...``); jobs go through the scheduler bridge to
``--backend``. See docs/api.md.

Exit codes: 0 stopped cleanly (SIGINT/SIGTERM); 2 bad option (e.g. a public
``--host`` without TLS); 3 the store or the backend cannot be opened.
"""

from __future__ import annotations

import click

from dcops.cli.common import get_config
from dcops.errors import DcopsError


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="TCP port."
)
@click.option(
    "--backend",
    default="slurm-cli",
    show_default=True,
    help="Scheduler backend: slurm-cli, slurm-rest, or recording (in memory); slurm-pyslurm "
    "is UNTESTED (PyPI's pyslurm matches only Slurm 25.11): see `dcops jobs backends`.",
)
@click.option(
    "--service",
    type=click.Choice(["bridge", "direct"]),
    default="bridge",
    show_default=True,
    help="bridge: jobs table, quota across backends; direct: the backend alone (no job table).",
)
@click.option("--workers", default=8, show_default=True, type=click.IntRange(1, 256))
@click.option(
    "--max-body-bytes",
    default=256 * 1024,
    show_default=True,
    type=click.IntRange(1024, 64 * 1024 * 1024),
    help="Larger request bodies get 413.",
)
@click.option(
    "--requests-per-minute",
    default=600.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Per-tenant budget of all calls (submissions also obey the contract's rate).",
)
@click.option(
    "--max-concurrent-per-tenant",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Requests of one tenant in progress at once (more wait, then get 429).",
)
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True), help="PEM certificate.")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True), help="PEM private key.")
@click.option(
    "--insecure-http",
    is_flag=True,
    help="Allow plain HTTP on a non-loopback --host (only behind a TLS-terminating proxy).",
)
@click.option(
    "--proxy-headers",
    is_flag=True,
    help="Trust X-Forwarded-For from the proxy (client addresses in the audit log).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    backend: str,
    service: str,
    workers: int,
    max_body_bytes: int,
    requests_per_minute: float,
    max_concurrent_per_tenant: int,
    tls_cert: str | None,
    tls_key: str | None,
    insecure_http: bool,
    proxy_headers: bool,
) -> None:
    """Serve the tenant API: POST/GET /v1/jobs, /v1/jobs/{id}[/logs], DELETE, /healthz."""
    cfg = get_config(ctx)
    from scheduler.api.server import ServerOptions

    options = ServerOptions(
        host=host,
        port=port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        proxy_headers=proxy_headers,
        insecure_http=insecure_http,
    )
    options.check()
    try:
        from scheduler.api.app import ApiSettings, create_app
        from scheduler.api.server import serve as run_server
    except ImportError as exc:
        raise DcopsError(
            f"dcops serve needs Starlette and uvicorn ({exc.name} is missing): "
            "pip install 'dcops[api]'"
        ) from exc
    from dcops.cli.wiring import Mode, Where, Wiring, open_store

    open_store(cfg).close()  # fail now (exit 3) rather than on the first request
    from scheduler.api.assembly import context_factory

    shared = Wiring(cfg, Where(Mode.SSH)).job_backend(backend)
    settings = ApiSettings(
        max_body_bytes=max_body_bytes,
        requests_per_minute=requests_per_minute,
        workers=workers,
        max_concurrent_per_tenant=max_concurrent_per_tenant,
    )
    app = create_app(context_factory(cfg, backend, shared, service), settings)
    scheme = "https" if tls_cert else "http"
    click.echo(
        f"dcops: tenant API on {scheme}://{host}:{port} (backend {backend}, "
        f"store {cfg.state_path})",
        err=True,
    )
    run_server(app, options)
