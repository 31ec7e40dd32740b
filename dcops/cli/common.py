"""What every CLI command shares: the --json flag, rendering, config access.

Commands follow one shape::

    @click.command()
    @json_option
    @click.pass_context
    def show(ctx: click.Context, as_json: bool) -> None:
        cfg = get_config(ctx)
        result = library_call(cfg, ...)          # plain data, may raise DcopsError
        emit(result_as_dict, as_json, render=render_table)
        ctx.exit(ExitCode.UNHEALTHY) if bad else None

Errors are never caught here: :func:`dcops.cli.main.main` maps every
``DcopsError`` to a one-line message and its exit code.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console

    from dcops.config import Config
    from dcops.inventory import Site
    from dcops.store import AuditLog, Store

F = TypeVar("F", bound=Callable[..., Any])


def json_option(func: F) -> F:
    """Add ``--json``: print machine-readable JSON on stdout instead of tables."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON on stdout instead of a table."
    )(func)


def stdout_console() -> Console:
    from rich.console import Console

    # Piped output (cron mail, less, files) gets wide tables instead of 80 columns.
    return Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def _default(obj: object) -> object:
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


def dump_json(data: object) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=_default)


def emit(data: object, as_json: bool, render: Callable[[Console], None] | None = None) -> None:
    """Print ``data`` as JSON, or call ``render`` with a console for people."""
    if as_json or render is None:
        sys.stdout.write(dump_json(data) + "\n")
        return
    render(stdout_console())


def get_config(ctx: click.Context) -> Config:
    """The effective config (defaults < file < env < flags), loaded once per run."""
    from dcops.config import Config

    root = ctx.find_root()
    obj = root.obj
    if not isinstance(obj, dict):
        obj = {}
        root.obj = obj
    cfg = obj.get("config")
    if not isinstance(cfg, Config):
        from dcops.config import load_config

        cfg = load_config(obj.get("config_path"), overrides=obj.get("overrides", {}))
        obj["config"] = cfg
    return cfg


def site_option(func: F) -> F:
    """Add ``--site FILE`` (default: config ``site``, else this machine alone)."""
    return click.option(
        "--site",
        "site_path",
        type=click.Path(dir_okay=False),
        help="Site file (YAML). Default: config 'site', else this machine alone.",
    )(func)


def load_current_site(ctx: click.Context, site_path: str | None) -> Site:
    """The site named by --site, else by config, else the embedded local default."""
    from dcops.cli.wiring import Mode, Where, Wiring

    with Wiring.of(ctx, Where(Mode.SSH, site_path=site_path)) as wiring:
        return wiring.site()


def open_store(ctx: click.Context) -> Store:
    """Open (creating and migrating if needed) the state store named by config."""
    from dcops.cli.wiring import open_store as open_configured

    return open_configured(get_config(ctx))


def open_audit(ctx: click.Context) -> AuditLog:
    from dcops.cli.wiring import open_audit as open_configured

    return open_configured(get_config(ctx))


@contextlib.contextmanager
def progress_bar(
    enabled: bool = True, status: Callable[[], str] | None = None
) -> Iterator[Callable[[str, int, int], None]]:
    """A ``progress(stage, done, total)`` callback drawing a rich bar on stderr.

    ``status()``, read at every refresh, is shown on a line below the bar: what a long
    wait waits for (:class:`dcops.cli.waiting.Waiting`). Silent when stderr is not a terminal
    (cron, pipes) or when disabled.
    """
    if not enabled or not sys.stderr.isatty():
        yield lambda stage, done, total: None
        return
    from rich.console import RenderableType
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.text import Text

    class WithStatus(Progress):
        def get_renderables(self) -> Iterable[RenderableType]:
            yield self.make_tasks_table(self.tasks)
            line = status() if status is not None else ""
            if line:  # a line of its own, wrapped on a narrow terminal, never cut
                yield Text(line, style="yellow")

    with WithStatus(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr_console(),
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update
