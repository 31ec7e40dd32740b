"""``dcops burnin``: certify hardware; ``dcops burnin parse`` reads external tools' output.

Commands here parse and render; the parsers in :mod:`burnin.parsers` decide.

Exit codes (as every dcops command): 0 the file parsed and shows a pass;
1 it parsed and shows a failure -- or not enough to call it a pass (an nccl-tests
run without footer or with ``#wrong`` printed as ``N/A``, a DCGM report whose tests
were all skipped); 2 the file cannot be read or holds no result.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dcops.cli.common import emit, json_option
from dcops.errors import ExitCode, InputError

if TYPE_CHECKING:
    from rich.console import Console

    from burnin.parsers.nccl_tests import NcclTestRun
    from dcops.dcgm.diag import DcgmDiagResult, DcgmEntityResult
    from dcops.measurements import BandwidthSample

_STYLE = {
    "pass": "green",
    "PASS": "green",
    "OK": "green",
    "warn": "yellow",
    "skip": "dim",
    "UNVERIFIED": "yellow",
    "fail": "bold red",
    "FAIL": "bold red",
    "FAILED": "bold red",
    "error": "bold red",
}


@click.group("burnin")
def burnin() -> None:
    """Burn-in: certify GPUs, trays and racks, and read burn-in tools' results."""


@burnin.group("parse")
def parse() -> None:
    """Parse output of external burn-in tools (nccl-tests, dcgmi diag) from a file.

    Exit 0: a pass. Exit 1: a failure, or not enough evidence for a pass.
    Exit 2: unreadable file or no result in it.
    """


def read_text(file: str) -> str:
    """The file's text (``-`` = stdin); unreadable -> InputError. Bad bytes are replaced."""
    if file == "-":
        return sys.stdin.read()
    try:
        return Path(file).read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"{file}: cannot read: {exc.strerror or exc}") from exc


@parse.command("nccl-tests")
@click.argument("file", metavar="FILE")
@json_option
@click.pass_context
def parse_nccl_tests_cmd(ctx: click.Context, file: str, as_json: bool) -> None:
    """Parse nccl-tests output (stdout log or -J JSON); one entry per run in FILE."""
    from burnin.parsers.nccl_tests import parse_nccl_tests

    source = "<stdin>" if file == "-" else file
    runs = parse_nccl_tests(read_text(file), source=source)
    verdict = _overall_nccl(runs)
    data = {"source": source, "verdict": verdict, "runs": [r.to_dict() for r in runs]}
    emit(data, as_json, render=lambda console: _render_nccl(console, runs, verdict))
    if verdict != "PASS":
        ctx.exit(ExitCode.UNHEALTHY)


@parse.command("dcgm")
@click.argument("file", metavar="FILE")
@json_option
@click.pass_context
def parse_dcgm_cmd(ctx: click.Context, file: str, as_json: bool) -> None:
    """Parse `dcgmi diag` output (-j JSON of DCGM 3.x/4.x, or the text table)."""
    from dcops.dcgm.diag import parse_dcgm_diag

    source = "<stdin>" if file == "-" else file
    result = parse_dcgm_diag(read_text(file), source=source)
    emit(result.to_dict(), as_json, render=lambda console: _render_dcgm(console, result))
    if result.overall not in ("pass", "warn"):
        ctx.exit(ExitCode.UNHEALTHY)


def _overall_nccl(runs: list[NcclTestRun]) -> str:
    verdicts = {r.verdict for r in runs}
    for verdict in ("FAIL", "UNVERIFIED"):
        if verdict in verdicts:
            return verdict
    return "PASS"


def _styled(word: str) -> str:
    style = _STYLE.get(word)
    return f"[{style}]{word}[/]" if style else word


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} B"


def _sample_cells(sample: BandwidthSample | None) -> list[str]:
    if sample is None:
        return ["", "", "", ""]
    wrong = "N/A" if sample.wrong is None else str(sample.wrong)
    if sample.wrong:
        wrong = f"[bold red]{wrong}[/]"
    return [
        f"{sample.time_us:g}",
        f"{sample.algbw_gbps:.2f}",
        f"{sample.busbw_gbps:.2f}",
        wrong,
    ]


def _render_nccl(console: Console, runs: list[NcclTestRun], verdict: str) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    for run in runs:
        facts = [run.op or run.test or "collective", f"line {run.line}" if run.line else run.format]
        if run.n_ranks:
            facts.append(f"{run.n_ranks} ranks")
        if run.nccl_version:
            facts.append(f"NCCL {run.nccl_version}")
        facts += [v for v in (run.dtype, run.redop) if v and "," not in v]
        varying = {
            "type": len({r.dtype for r in run.rows}) > 1,
            "redop": len({r.redop for r in run.rows}) > 1,
            "root": any(r.root is not None for r in run.rows),
        }
        table = Table(
            title=escape(f"{run.source} run {run.index + 1}/{len(runs)}: " + ", ".join(facts)),
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        table.add_column("size", justify="right", no_wrap=True)
        for name, shown in varying.items():
            if shown:
                table.add_column(name)
        for where in ("oop", "ip"):  # out-of-place, in-place
            for name in ("us", "algbw", "busbw", "wrong"):
                table.add_column(f"{where}\n{name}", justify="right", no_wrap=True)
        for row in run.rows:
            extra = {
                "type": escape(row.dtype),
                "redop": escape(row.redop or ""),
                "root": "" if row.root is None else str(row.root),
            }
            table.add_row(
                _size(row.size_bytes),
                *(extra[name] for name, shown in varying.items() if shown),
                *_sample_cells(row.out_of_place),
                *_sample_cells(row.in_place),
            )
        console.print(table)
        footer = run.footer
        if footer is None:
            console.print("footer: [yellow]none (truncated run)[/]")
        else:
            oob = f"{footer.out_of_bounds} {_styled(footer.out_of_bounds_status or '?')}"
            avg = "not printed"
            if footer.avg_busbw_gbps is not None:
                avg = f"{footer.avg_busbw_gbps:g} GB/s"
                if footer.avg_busbw_status:
                    avg += " " + _styled(footer.avg_busbw_status)
            console.print(f"out of bounds values: {oob}; avg bus bandwidth: {avg}")
        for line in run.failures:
            console.print(f"[bold red]failure:[/] {escape(line)}", highlight=False)
        for line in run.messages:
            console.print(f"[yellow]message:[/] {escape(line)}", highlight=False)
        for line in run.warnings:
            console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False)
        console.print(f"run verdict: {_styled(run.verdict)}\n")
    console.print(f"{len(runs)} run(s), verdict: {_styled(verdict)}")


def _entity(result: DcgmEntityResult) -> str:
    if result.gpu is None:
        return "all"
    return f"{result.entity_group or 'GPU'}{result.gpu}"


def _render_dcgm(console: Console, result: DcgmDiagResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    facts = [f"format {result.format}"]
    if result.dcgm_version:
        facts.append(f"DCGM {result.dcgm_version}")
    if result.driver_version:
        facts.append(f"driver {result.driver_version}")
    if result.gpu_indices:
        facts.append("GPUs " + ",".join(str(g) for g in result.gpu_indices))
    table = Table(title=escape(f"{result.source}: " + ", ".join(facts)), title_justify="left")
    table.add_column("category")
    table.add_column("test")
    table.add_column("status")
    table.add_column("per GPU")
    table.add_column("warnings / info")
    for test in result.tests:
        per_gpu = ", ".join(f"{_entity(r)} {_styled(r.status)}" for r in test.results)
        notes = [
            escape(f"{_entity(r)}: {w.text}")
            + (f" (error {w.error_id})" if w.error_id is not None else "")
            for r in test.results
            for w in r.warnings
        ]
        notes += [escape(w.text) for w in test.warnings]
        notes += [f"[dim]{escape(i)}[/]" for i in test.info]
        notes += [f"[dim]{escape(i)}[/]" for r in test.results for i in r.info]
        table.add_row(
            escape(test.category or ""),
            escape(test.name),
            _styled(test.status),
            per_gpu,
            "\n".join(notes),
        )
    console.print(table)
    if result.runtime_error:
        console.print(f"[bold red]dcgmi error:[/] {escape(result.runtime_error)}", highlight=False)
    for line in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False)
    console.print(f"overall: {_styled(result.overall)}")


def _add_run_commands() -> None:
    from dcops.cli.burnin_run import history, run, show

    for command in (run, history, show):
        burnin.add_command(command)


_add_run_commands()
