"""What one nccl-tests run printed, as frozen dataclasses with a JSON form.

The pass/fail helpers are deliberately pessimistic: :attr:`NcclTestRun.passed` is
``True`` only when rows exist, every ``#wrong`` count was printed and is 0, the
footer was printed and says OK, and the tool reported no failure. Anything the
parser could not see is ``None`` (unknown), never a pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from dcops.measurements import BandwidthSample, CollectiveRow

Status = Literal["OK", "FAILED"]


def json_number(value: float | None) -> float | None:
    """A float JSON can hold: NaN and infinities (nccl-tests prints them) become null."""
    if value is None or not math.isfinite(value):
        return None
    return value


def sample_to_dict(sample: BandwidthSample | None) -> dict[str, Any] | None:
    if sample is None:
        return None
    return {
        "time_us": json_number(sample.time_us),
        "algbw_gbps": json_number(sample.algbw_gbps),
        "busbw_gbps": json_number(sample.busbw_gbps),
        "wrong": sample.wrong,
    }


def row_to_dict(row: CollectiveRow) -> dict[str, Any]:
    return {
        "size_bytes": row.size_bytes,
        "count": row.count,
        "dtype": row.dtype,
        "redop": row.redop,
        "root": row.root,
        "out_of_place": sample_to_dict(row.out_of_place),
        "in_place": sample_to_dict(row.in_place),
    }


@dataclass(frozen=True)
class NcclRank:
    """One ``#  Rank N Group G Pid P on HOST device D [BUS] NAME`` line."""

    rank: int
    host: str
    device: int
    pid: int | None = None
    group: int | None = None
    bus_id: str | None = None
    device_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "host": self.host,
            "device": self.device,
            "pid": self.pid,
            "group": self.group,
            "bus_id": self.bus_id,
            "device_name": self.device_name,
        }


@dataclass(frozen=True)
class NcclTestConfig:
    """The ``# nThread 1 nGpus 8 minBytes ... iters: 20 ...`` header; None = not printed."""

    n_threads: int | None = None
    n_gpus: int | None = None
    min_bytes: int | None = None
    max_bytes: int | None = None
    step_factor: int | None = None
    step_bytes: int | None = None
    warmup_iters: int | None = None
    iters: int | None = None
    agg_iters: int | None = None
    validation: int | None = None
    graph: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_threads": self.n_threads,
            "n_gpus": self.n_gpus,
            "min_bytes": self.min_bytes,
            "max_bytes": self.max_bytes,
            "step_factor": self.step_factor,
            "step_bytes": self.step_bytes,
            "warmup_iters": self.warmup_iters,
            "iters": self.iters,
            "agg_iters": self.agg_iters,
            "validation": self.validation,
            "graph": self.graph,
        }


@dataclass(frozen=True)
class NcclTestFooter:
    """``# Out of bounds values : N OK|FAILED`` and ``# Avg bus bandwidth : X [OK|FAILED]``.

    ``avg_busbw_status`` is None when nccl-tests printed no verdict (no
    ``NCCL_TESTS_MIN_BW`` set); ``avg_busbw_gbps`` is None when the line was absent.
    """

    out_of_bounds: int | None
    out_of_bounds_status: Status | None
    avg_busbw_gbps: float | None = None
    avg_busbw_status: Status | None = None

    @property
    def ok(self) -> bool | None:
        """True only when the out-of-bounds line says 0 OK and no bandwidth verdict failed."""
        if self.failed:
            return False
        if self.out_of_bounds != 0 or self.out_of_bounds_status != "OK":
            return None
        return True

    @property
    def failed(self) -> bool:
        return (
            self.out_of_bounds_status == "FAILED"
            or (self.out_of_bounds is not None and self.out_of_bounds > 0)
            or self.avg_busbw_status == "FAILED"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_of_bounds": self.out_of_bounds,
            "out_of_bounds_status": self.out_of_bounds_status,
            "avg_busbw_gbps": json_number(self.avg_busbw_gbps),
            "avg_busbw_status": self.avg_busbw_status,
        }


@dataclass(frozen=True)
class NcclTestRun:
    """One run of one nccl-tests binary, as found in a file that may hold several.

    ``index`` is the run's position in the file (0-based) and ``line`` the 1-based
    line where it starts (None for JSON input). ``failures`` holds the tool's own
    failure reports (``Test failure common.cu:1127``); ``messages`` holds ``NCCL WARN``
    and ``# error:`` lines; ``warnings`` says what the parser could not understand.
    """

    source: str
    index: int
    rows: tuple[CollectiveRow, ...]
    footer: NcclTestFooter | None
    line: int | None = None
    test: str | None = None
    op: str | None = None
    nccl_version: str | None = None
    nccl_tests_version: str | None = None
    config: NcclTestConfig | None = None
    ranks: tuple[NcclRank, ...] = ()
    failures: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    format: str = "text"

    @property
    def dtype(self) -> str | None:
        """The data type of the rows (comma-joined when a run mixed several)."""
        return _distinct(r.dtype for r in self.rows)

    @property
    def redop(self) -> str | None:
        return _distinct(r.redop for r in self.rows if r.redop is not None)

    @property
    def samples(self) -> tuple[BandwidthSample, ...]:
        out: list[BandwidthSample] = []
        for row in self.rows:
            out.append(row.out_of_place)
            if row.in_place is not None:
                out.append(row.in_place)
        return tuple(out)

    @property
    def wrong_total(self) -> int | None:
        """Sum of every ``#wrong`` count; None when any was not printed (``N/A``) or no rows."""
        samples = self.samples
        if not samples or any(s.wrong is None for s in samples):
            return None
        return sum(s.wrong for s in samples if s.wrong is not None)

    @property
    def validated(self) -> bool:
        """Rows exist, each carries a ``#wrong`` count, and the header did not say ``-c 0``."""
        if self.config is not None and self.config.validation == 0:
            return False
        return self.wrong_total is not None

    @property
    def failed(self) -> bool:
        """The output itself shows a failure: wrong values, a FAILED footer, a failure line."""
        if any(s.wrong is not None and s.wrong > 0 for s in self.samples):
            return True
        if self.footer is not None and self.footer.failed:
            return True
        return bool(self.failures)

    @property
    def passed(self) -> bool | None:
        """True: checked and clean. False: :attr:`failed`. None: not enough to say."""
        if self.failed:
            return False
        if not self.rows or not self.validated or self.wrong_total != 0:
            return None
        if self.footer is None or self.footer.ok is not True:
            return None
        return True

    @property
    def verdict(self) -> str:
        """``PASS``, ``FAIL`` or ``UNVERIFIED`` (not enough evidence for either)."""
        passed = self.passed
        if passed is True:
            return "PASS"
        if passed is False:
            return "FAIL"
        return "UNVERIFIED"

    @property
    def n_ranks(self) -> int | None:
        """How many ranks took part: the highest listed rank + 1 (listings may be partial)."""
        if not self.ranks:
            return None
        return max(r.rank for r in self.ranks) + 1

    @property
    def peak_busbw_gbps(self) -> float | None:
        values = [s.busbw_gbps for s in self.samples if math.isfinite(s.busbw_gbps)]
        return max(values) if values else None

    def row_at(self, size_bytes: int) -> CollectiveRow | None:
        """The first row measured at ``size_bytes``, or None."""
        return next((r for r in self.rows if r.size_bytes == size_bytes), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "index": self.index,
            "line": self.line,
            "format": self.format,
            "test": self.test,
            "op": self.op,
            "dtype": self.dtype,
            "redop": self.redop,
            "nccl_version": self.nccl_version,
            "nccl_tests_version": self.nccl_tests_version,
            "config": self.config.to_dict() if self.config is not None else None,
            "ranks": [r.to_dict() for r in self.ranks],
            "rows": [row_to_dict(r) for r in self.rows],
            "footer": self.footer.to_dict() if self.footer is not None else None,
            "wrong_total": self.wrong_total,
            "peak_busbw_gbps": json_number(self.peak_busbw_gbps),
            "passed": self.passed,
            "verdict": self.verdict,
            "failures": list(self.failures),
            "messages": list(self.messages),
            "warnings": list(self.warnings),
        }


def _distinct(values: Any) -> str | None:
    seen: list[str] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return ",".join(seen) if seen else None


def op_from_binary(name: str) -> str:
    """``all_reduce_perf`` (or ``/opt/.../all_reduce_perf_mpi``) -> ``all_reduce``."""
    base = name.rsplit("/", 1)[-1]
    for suffix in ("_mpi", "_perf"):
        base = base.removesuffix(suffix)
    return base


def nccl_version_from_code(code: int) -> str:
    """NCCL_VERSION_CODE (22703, or 2704 before 2.9) -> ``2.27.3``."""
    if code >= 10000:
        return f"{code // 10000}.{code % 10000 // 100}.{code % 100}"
    return f"{code // 1000}.{code % 1000 // 100}.{code % 100}"
