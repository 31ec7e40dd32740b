"""What a launched worker returned -> records or one error (the same for Slurm and SSH).

* a JSON document on stdout is the answer: results, or the worker's own error
  (``timed_out`` -> :class:`~dcops.errors.CommandTimeout`);
* else exit 124 is a timeout, any other failure a :class:`~dcops.errors.BackendError`
  with the last meaningful stderr line (srun's, ssh's or the worker's).
"""

from __future__ import annotations

from collections.abc import Sequence

from burnin.engines.collective_worker import FORMAT as COLLECTIVE_FORMAT
from burnin.engines.collective_worker import parse_worker_json
from burnin.engines.gemm_worker import EXIT_TIMEOUT, find_document, parse_gemm_json
from burnin.engines.gemm_worker import FORMAT as GEMM_FORMAT
from dcops.errors import BackendError, CommandTimeout
from dcops.measurements import CollectiveResult, CommandResult, GemmResult, GpuRef

#: stderr lines that say nothing about why (srun's chatter around a failure).
_NOISE = ("srun: Job step aborted", "srun: Force Terminated", "slurmstepd: error: *** STEP")


def last_error_line(stderr: str) -> str:
    """The most telling stderr line: the last worker error, else the last line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in reversed(lines):
        if "collective_worker rank" in line or "gemm_worker" in line:
            return line
    useful = [ln for ln in lines if not ln.startswith(_NOISE)]
    return (useful or lines or ["no output"])[-1][:300]


def gemm_results(node: str, result: CommandResult) -> list[GemmResult]:
    """One node's GEMM worker result -> GemmResults, or the node's error."""
    doc = find_document(result.stdout, GEMM_FORMAT)
    if doc is not None:
        return parse_gemm_json(doc, node)
    if result.returncode == EXIT_TIMEOUT:
        raise CommandTimeout(node, "GEMM worker timed out")
    if result.returncode != 0:
        raise BackendError(
            f"{node}: GEMM worker exited {result.returncode}: {last_error_line(result.stderr)}"
        )
    raise BackendError(f"{node}: GEMM worker printed no JSON result")


def collective_results(
    host: str, what: str, result: CommandResult, members: Sequence[GpuRef]
) -> list[CollectiveResult]:
    """Rank 0's output -> results whose members are the GPUs that ran each rank."""
    doc = find_document(result.stdout, COLLECTIVE_FORMAT) if result.returncode == 0 else None
    if doc is None:
        if result.returncode == EXIT_TIMEOUT:
            raise CommandTimeout(host, f"{what} over {len(members)} ranks timed out")
        raise BackendError(
            f"{what} over {len(members)} ranks failed (exit {result.returncode}): "
            f"{last_error_line(result.stderr)}"
        )
    results = parse_worker_json(doc)
    ran = {m for r in results for m in r.members}
    if ran != set(members):
        extra = sorted(str(g) for g in ran - set(members))
        missing = sorted(str(g) for g in set(members) - ran)
        raise BackendError(
            f"{what}: the ranks ran on other GPUs than asked (extra: {extra}, missing: {missing})"
        )
    return results
