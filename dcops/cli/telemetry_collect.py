"""``dcops telemetry collect | serve | map-jobs``: GPU samples, the exporter, job mapping.

Heavy imports (pyarrow, prometheus-client, NVML) happen inside the commands.

Exit codes: 0 ok; 1 some node could not be read (``collect``; the others'
samples are stored); 2 bad option or input; 3 NVML, Slurm or the store failed.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dcops.cli.common import emit, get_config, json_option, progress_bar
from dcops.errors import ExitCode, InputError

if TYPE_CHECKING:
    from dcops.ports import GpuProbe
    from telemetry.collect import Sampler, SamplerClock
    from telemetry.jobmap import Allocation


def _sim_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--sim",
        "scenario",
        type=click.Path(dir_okay=False, exists=True),
        help="Sample a simulated fleet from this scenario file instead of this machine's NVML.",
    )(func)


def _nodes_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--nodes",
        "hostlist",
        help="With --sim: the nodes to sample (hostlist; default all). Without: this "
        "node's name (default: the short host name).",
    )(func)


def _interval_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--interval",
        "interval_s",
        type=click.FloatRange(min=0.1),
        default=10.0,
        show_default=True,
        help="Seconds between samples.",
    )(func)


@contextmanager
def _source(
    ctx: click.Context, scenario: str | None, hostlist: str | None, *, virtual: bool
) -> Iterator[tuple[GpuProbe, list[str], dict[str, str], SamplerClock]]:
    """(probe, nodes, node -> rack, clock): a simulated fleet, or this machine's NVML."""
    from dcops.cli.wiring import Where, Wiring
    from telemetry.collect import SimClock, SystemClock

    with Wiring.of(ctx, Where.choose(scenario=scenario, local=not scenario)) as wiring:
        if scenario is not None:
            from dcops.sim import WallClock

            fleet = wiring.fleet(fresh=True, clock=None if virtual else WallClock())
            site = fleet.site
            nodes = site.select(hostlist) if hostlist else site.nodes()
            racks = {n: site.rack_of(n).name for n in nodes}
            clock: SamplerClock = SimClock(fleet) if virtual else SystemClock()
            yield fleet.probe, nodes, racks, clock
            return
        node = hostlist or socket.gethostname().split(".")[0]
        with wiring.gpu_probe(node, warn=lambda line: click.echo(line, err=True)) as probe:
            yield probe, [node], {}, SystemClock()


def _slurm(ctx: click.Context) -> Callable[[Sequence[str], Mapping[str, str]], str]:
    """Slurm's client commands here (argv list, no shell; config ``[slurm] conf``)."""
    from dcops.cli.wiring import Mode, Where, Wiring

    with Wiring.of(ctx, Where(Mode.LOCAL)) as wiring:  # SlurmCommands hold nothing open
        slurm = wiring.slurm(timeout_s=60.0)
    return lambda argv, env: slurm.output(argv, env=env)


@contextmanager
def _stop_on_signals(sampler: Sampler) -> Iterator[None]:
    """SIGTERM / SIGINT end the loop cleanly (the buffer is flushed) instead of killing it."""
    previous = {}

    def handler(signum: int, frame: object) -> None:
        sampler.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with suppress(ValueError):  # not the main thread (tests): no handler
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@click.command()
@_interval_option
@click.option("--once", is_flag=True, help="Take one sample, store it and exit (for cron).")
@click.option(
    "--duration",
    "duration_s",
    type=click.FloatRange(min=0),
    help="Stop after this many seconds (default: run until SIGTERM).",
)
@_sim_option
@_nodes_option
@click.option(
    "--flush-every",
    "flush_every_s",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="Write buffered samples at least this often (seconds).",
)
@json_option
@click.pass_context
def collect(
    ctx: click.Context,
    *,
    interval_s: float,
    once: bool,
    duration_s: float | None,
    scenario: str | None,
    hostlist: str | None,
    flush_every_s: float,
    as_json: bool,
) -> None:
    """Sample this node's GPUs into <data_dir>/telemetry/samples (Parquet, one folder per day).

    Runs as a daemon until SIGTERM (then writes what it buffered), for
    --duration seconds, or once (--once, for cron). With --sim the simulated
    fleet's virtual clock is used: a --duration run finishes at once.
    """
    from dcops.cli.waiting import Waiting
    from telemetry.collect import Sampler, sample_store

    store = sample_store(get_config(ctx).data_dir)
    with _source(ctx, scenario, hostlist, virtual=True) as (probe, nodes, racks, clock):
        sampler = Sampler(
            probe, nodes, interval_s, clock, store=store, racks=racks, flush_every_s=flush_every_s
        )
        # One tick on a terminal: a bar, and the nodes a long wait waits for. A daemon's
        # ticks would redraw it forever: it says nothing until it stops.
        waiting = Waiting(nodes, timeout_s=sampler.timeout_s, concurrency=sampler.concurrency)
        with progress_bar(once and not as_json, status=waiting.line) as progress:

            def on_answer(node: str) -> None:
                waiting.done(node)
                progress("sample", len(nodes) - len(waiting.pending), len(nodes))

            if once:
                sampler.on_answer = on_answer
                progress("sample", 0, len(nodes))
            with _stop_on_signals(sampler):
                result = sampler.run(max_ticks=1 if once else None, duration_s=duration_s)
    data = {"store": str(store.root), "nodes": list(nodes), **result.as_dict()}

    def render(console: Any) -> None:
        console.print(
            f"{result.rows:,} samples from {result.ticks:,} tick(s) of {len(nodes)} node(s) "
            f"in {len(result.files)} file(s) under {store.root}"
        )
        for node, error in result.errors.items():
            console.print(f"[red]{node}: {error}[/red]")

    emit(data, as_json, render)
    if result.errors:
        ctx.exit(ExitCode.UNHEALTHY)


def _load_tenants(path: Path | None) -> dict[str, str]:
    """account (or namespace) -> tenant, from a JSON or YAML mapping file."""
    if path is None:
        return {}
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the tenant map ({exc.strerror})") from exc
    try:
        from dcops.docload import load_json, load_yaml

        if path.suffix in (".yaml", ".yml"):
            data = load_yaml(text, source=str(path))
        else:
            data = load_json(text, source=str(path))
    except InputError as exc:
        raise InputError(f"{path}: not a JSON/YAML mapping ({exc})") from exc
    if not isinstance(data, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise InputError(f"{path}: the tenant map must map account names to tenant names")
    return dict(data)


def _tenants_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--tenants",
        "tenants_path",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="JSON/YAML file mapping Slurm account (or Kubernetes namespace) -> tenant.",
    )(func)


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=9400, show_default=True)
@click.option(
    "--address",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 0.0.0.0 lets a Prometheus on another host scrape.",
)
@_interval_option
@_sim_option
@_nodes_option
@click.option(
    "--jobs",
    "jobs_from",
    type=click.Choice(["none", "slurm"]),
    default="none",
    show_default=True,
    help="Where to learn which job holds which GPU (job/tenant labels).",
)
@click.option(
    "--jobs-interval",
    "jobs_interval_s",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds between scheduler polls (keep slurmctld's load low).",
)
@_tenants_option
@click.option("--store/--no-store", default=False, help="Also store the samples (as collect).")
@click.option(
    "--capacity",
    "with_capacity",
    is_flag=True,
    help="Also serve the capacity gauges (docs/capacity.md) of the --sim fleet or the site.",
)
@click.option(
    "--site", "site_path", type=click.Path(dir_okay=False), help="Site file for --capacity."
)
@click.pass_context
def serve(
    ctx: click.Context,
    *,
    port: int,
    address: str,
    interval_s: float,
    scenario: str | None,
    hostlist: str | None,
    jobs_from: str,
    jobs_interval_s: float,
    tenants_path: Path | None,
    store: bool,
    with_capacity: bool,
    site_path: str | None,
) -> None:
    """Serve the latest GPU samples as Prometheus metrics on http://ADDRESS:PORT/metrics.

    Samples every --interval seconds in the background; a scrape renders the
    latest samples and never waits on the GPUs. With --capacity the same
    endpoint serves the capacity gauges (rebuilt at most every 30 s). Stops on SIGTERM.
    """
    import threading

    from telemetry.collect import Sampler, sample_store
    from telemetry.exporter import AllocationCache, GpuCollector, start_server
    from telemetry.jobmap import poll

    tenants = _load_tenants(tenants_path)
    cache = None
    if jobs_from == "slurm":
        run_slurm = _slurm(ctx)
        cache = AllocationCache(lambda: poll(run_slurm, tenants), every_s=jobs_interval_s)
    samples = sample_store(get_config(ctx).data_dir) if store else None
    extra = []
    if with_capacity:
        from dcops.cli.capacity_power import capacity_collector

        extra.append(capacity_collector(ctx, scenario, site_path))
    with _source(ctx, scenario, hostlist, virtual=False) as (probe, nodes, racks, clock):
        sampler = Sampler(
            probe,
            nodes,
            interval_s,
            clock,
            store=samples,
            racks=racks,
            on_tick=(lambda _tick: cache.refresh()) if cache is not None else None,
        )
        collector = GpuCollector(sampler.snapshot, cache.current if cache is not None else None)
        try:
            server, _thread = start_server(collector, port=port, address=address, extra=extra)
        except OSError as exc:
            raise InputError(f"cannot listen on {address}:{port} ({exc.strerror})") from exc
        click.echo(
            f"dcops: serving {len(nodes)} node(s) on http://{address}:{server.server_port}/metrics",
            err=True,
        )
        loop = threading.Thread(target=sampler.run, name="dcops-sampler", daemon=True)
        with _stop_on_signals(sampler):
            loop.start()
            while loop.is_alive():
                loop.join(0.5)
        server.shutdown()
        server.server_close()


@click.command("map-jobs")
@click.option(
    "--from",
    "source",
    type=click.Choice(["slurm", "slurm-json", "scontrol", "pods"]),
    default="slurm",
    show_default=True,
    help="slurm: poll this cluster (squeue --json, else scontrol show job -d); "
    "slurm-json / scontrol / pods: read FILE (squeue/scontrol/slurmrestd JSON, "
    "scontrol show job -d text, kubectl get pods -A -o json).",
)
@click.argument(
    "file", required=False, type=click.Path(dir_okay=False, exists=True, path_type=Path)
)
@_tenants_option
@json_option
@click.pass_context
def map_jobs(
    ctx: click.Context,
    *,
    source: str,
    file: Path | None,
    tenants_path: Path | None,
    as_json: bool,
) -> None:
    """Record which job (and tenant) holds which GPU now, beside the samples.

    Appends one snapshot to <data_dir>/telemetry/allocations; run it from cron
    (every minute or so) or read captured output from FILE.
    """
    import time

    from telemetry.jobmap import allocation_store, allocations_table, poll
    from telemetry.jobmap.captured import allocations_from_text

    tenants = _load_tenants(tenants_path)
    if (source == "slurm") != (file is None):
        raise click.UsageError("FILE is required with --from slurm-json/scontrol/pods, else not")
    allocations: list[Allocation]
    if file is None:
        allocations = poll(_slurm(ctx), tenants)
    else:
        allocations = allocations_from_text(source, _read_text(file), tenants, name=str(file))
    store = allocation_store(get_config(ctx).data_dir)
    files = store.append(allocations_table(allocations, time.time()))
    rows = [
        {
            "node": a.node,
            "gpu": a.gpu,
            "gpus": a.gpus,
            "job_id": a.job_id,
            "tenant": a.tenant,
            "account": a.account,
            "start_s": a.start_s,
            "end_s": a.end_s,
            "source": a.source,
        }
        for a in allocations
    ]

    def render(console: Any) -> None:
        jobs = {a.job_id for a in allocations}
        console.print(
            f"{len(allocations)} allocation(s) of {len(jobs)} job(s) stored under {store.root}"
        )

    emit(
        {"store": str(store.root), "files": [str(f) for f in files], "allocations": rows},
        as_json,
        render,
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from exc
