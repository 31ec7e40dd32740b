"""The ``dcops`` command: global options, lazy subcommands, and the one error handler.

Subcommand modules are imported only when invoked, so ``dcops --help`` and
``dcops --version`` never import pandas, torch, paramiko or kubernetes.

Exit codes (see README): 0 ok, 1 unhealthy/failed result, 2 usage or input
error, 3 internal or backend error, 4 busy (another run holds the lock),
5 refused by the circuit breaker, 130 interrupted. ``dcops`` or a group
(``dcops jobs``) without a subcommand prints its help on stdout and exits 0
(click 8.1's behaviour; click >= 8.2 would raise a usage error, exit 2).
"""

from __future__ import annotations

import importlib
import logging
import sys
import traceback
from typing import Any

import click

from dcops import __version__
from dcops.errors import DcopsError, ExitCode

#: name -> (module, attribute, one-line help). Add a domain's group here.
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "capacity": (
        "dcops.cli.capacity",
        "capacity",
        "Capacity: healthy NVL72 segments, repair plans, topology, power, spares, SLO.",
    ),
    "actions": (
        "dcops.cli.actions",
        "actions",
        "The actuator's actions: approval queue, approve/deny, undo.",
    ),
    "inventory": ("dcops.cli.inventory", "inventory", "Show and check the site inventory."),
    "node": ("dcops.cli.node", "node", "Drain, resume and show nodes (through the actuator)."),
    "audit": ("dcops.cli.audit", "audit", "Show and verify the audit log."),
    "burnin": ("dcops.cli.burnin", "burnin", "Burn-in suites and burn-in tool output parsers."),
    "config": ("dcops.cli.config", "config", "Show the effective configuration."),
    "jobs": ("dcops.cli.jobs", "jobs", "Submit, list, inspect and cancel tenant jobs."),
    "serve": ("dcops.cli.serve", "serve", "Serve the tenant HTTP API (token auth, limits, audit)."),
    "runbook": (
        "dcops.cli.runbook",
        "runbook",
        "Runbooks: plan, run (dry-run first), resume and audit codified remediations.",
    ),
    "sim": ("dcops.cli.sim", "sim", "Load fleet-simulator scenarios and show measurements."),
    "sweep": (
        "dcops.cli.sweep",
        "sweep",
        "Health sweeps: check, drain and resume nodes with evidence.",
    ),
    "tenant": (
        "dcops.cli.tenant",
        "tenant",
        "Tenants: contracts, quotas, API tokens, Slurm/Kueue sync.",
    ),
    "xid": ("dcops.cli.xid", "xid", "Explain XID lines by NVIDIA's catalog (NVLink5 decode)."),
    "telemetry": (
        "dcops.cli.telemetry",
        "telemetry",
        "GPU telemetry: collect, export to Prometheus, job records, stability and energy.",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*SUBCOMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in SUBCOMMANDS:
            module_name, attr, _ = SUBCOMMANDS[cmd_name]
            command = getattr(importlib.import_module(module_name), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = click.utils.make_str(args[0]) if args else ""
        if args and self.get_command(ctx, name) is None and not name.startswith("-"):
            import difflib

            close = difflib.get_close_matches(name, self.list_commands(ctx), n=2)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise click.UsageError(f"No such command {name!r}.{hint}", ctx)
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help comes from the table, so listing commands imports nothing.
        rows = [(name, SUBCOMMANDS[name][2]) for name in sorted(SUBCOMMANDS)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="dcops")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Config file (TOML). Default: $DCOPS_CONFIG, then $XDG_CONFIG_HOME/dcops/config.toml.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Where state.db and telemetry live (default: $XDG_DATA_HOME/dcops).",
)
@click.option("--state-db", type=click.Path(dir_okay=False), help="State store file.")
@click.option("--actor", help="Who to record in the audit log (default: your user name).")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: str | None,
    data_dir: str | None,
    state_db: str | None,
    actor: str | None,
    debug: bool,
) -> None:
    """Operate GPU data centers built from NVIDIA GB200 NVL72 racks.

    Every reporting command takes --json. Exit codes: 0 ok, 1 unhealthy or
    failed result, 2 usage or input error, 3 internal or backend error,
    4 busy (another run holds the lock), 5 refused by the circuit breaker.
    A command group given no subcommand prints its help and exits 0.
    """
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    ctx.obj["overrides"] = {"data_dir": data_dir, "state_db": state_db, "actor": actor}
    ctx.obj["debug"] = debug
    if not debug:
        # paramiko logs a traceback for every failed handshake: normal for a dead node.
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)


#: click >= 8.2 raises this for a group called without a subcommand (8.1 printed the
#: help and exited 0 itself); an empty tuple catches nothing on 8.1.
_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _usage_line(exc: click.ClickException) -> str:
    """click's own error as one line, keeping its hint ("Did you mean ...?")."""
    text = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        text += f" (see '{ctx.command_path} --help')"
    return text


def _fail(message: str, code: int, debug: bool) -> None:
    """Print the one-line error (after the traceback with --debug) and exit with ``code``."""
    if debug:
        traceback.print_exc()
    click.echo(message, err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: run the CLI, map every error to one line and an exit code.

    ``--debug`` adds the traceback above that line; the exit code stays the same.
    """
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        code: Any = cli.main(args=args, prog_name="dcops", standalone_mode=False)
    except DcopsError as exc:
        _fail(f"dcops: error: {exc}", int(exc.exit_code), debug)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except _NO_ARGS_IS_HELP as exc:  # a group alone: its help, as asked for
        click.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
        sys.exit(ExitCode.OK)
    except click.ClickException as exc:
        _fail(f"dcops: error: {_usage_line(exc)}", ExitCode.INPUT, debug)
    except click.exceptions.Abort:
        click.echo("dcops: interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("dcops: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(ExitCode.OK)
    except Exception as exc:  # noqa: BLE001 - the last resort: one line, exit 3
        _fail(
            f"dcops: internal error: {type(exc).__name__}: {' '.join(str(exc).split())} "
            "(this is a bug; rerun with --debug for the traceback)",
            ExitCode.INTERNAL,
            debug,
        )
    sys.exit(int(code) if isinstance(code, int) else ExitCode.OK)


if __name__ == "__main__":  # pragma: no cover
    main()
