"""The nccl-tests stdout parser (see :mod:`burnin.parsers.nccl_tests` for the public API).

The parser reads line by line and never trusts position: launchers prefix lines
(``srun -l`` ``0: ``, Open MPI ``[1,0]<stdout>:``, pdsh ``host: ``, timestamps), NCCL
interleaves ``NCCL INFO`` lines, documents wrap runs in markdown. Comment lines are
found by their ``#`` marker anywhere on the line; result rows by their
``size count type`` triple anywhere on the line. Column positions come from the
printed column header when its width matches the row, else from the row's width
(12 = old layout without root, 13 = with root, 14 = with ``#iters``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from burnin.parsers.nccl_types import (
    NcclRank,
    NcclTestConfig,
    NcclTestFooter,
    NcclTestRun,
    Status,
    nccl_version_from_code,
    op_from_binary,
)
from dcops.measurements import BandwidthSample, CollectiveRow

_NCCL_LOG = re.compile(r"\bNCCL (?:INFO|WARN|TRACE|ERROR|ABORT)\b")
_NCCL_VERSION_LOG = re.compile(r"\bNCCL INFO NCCL version (\S+)")
_STARTING = re.compile(r"#\s*Collective test starting:\s*(\S+)")
_CONCLUDED = re.compile(r"#\s*Collective test concluded:\s*(\S+)")
_TESTS_VERSION = re.compile(
    r"#\s*nccl-tests version\s+(\S+)(?:\s+nccl-headers=(\d+))?(?:\s+nccl-library=(\d+))?"
)
_NTHREAD = re.compile(r"#\s*nThread\s+\d+")
_USING = re.compile(r"#\s*Using devices")
_RANK = re.compile(
    r"#\s*Rank\s+(\d+)\s+(?:Group\s+(\d+)\s+)?Pid\s+(\d+)\s+on\s+(\S+)\s+device\s+(\d+)"
    r"(?:\s+\[([^\]]*)\])?\s*(.*?)\s*$"
)
_OOB = re.compile(r"#\s*Out of bounds values\s*:\s*(\d+)\s*(OK|FAILED)?")
_AVG = re.compile(r"#\s*Avg bus bandwidth\s*:\s*(\S+)\s*(OK|FAILED)?")
_ERROR = re.compile(r"#\s*error:\s*(.*\S)")
_FAILURE = re.compile(r"\bTest (?:\w+ )?failure\b")
_BINARY = re.compile(r"\b([a-z][a-z0-9_]*_perf)(?:_mpi)?\b")
_DTYPE = re.compile(
    r"^(?:u?int(?:8|16|32|64)?|char|half|float(?:16|32|64)?|double|bfloat16|bf16"
    r"|fp(?:8|16|32|64)\w*|f8e\dm\d)$"
)
_INT = re.compile(r"^-?\d+$")
_CONFIG_FIELDS = {
    "n_threads": re.compile(r"\bnThread\s+(\d+)"),
    "n_gpus": re.compile(r"\bnGpus\s+(\d+)"),
    "min_bytes": re.compile(r"\bminBytes\s+(\d+)"),
    "max_bytes": re.compile(r"\bmaxBytes\s+(\d+)"),
    "warmup_iters": re.compile(r"\bwarmup iters:\s*(\d+)"),
    "iters": re.compile(r"(?<!warmup )(?<!agg )\biters:\s*(\d+)"),
    "agg_iters": re.compile(r"\bagg iters:\s*(\d+)"),
    "validation": re.compile(r"\bvalidation:\s*(\d+)"),
    "graph": re.compile(r"\bgraph:\s*(\d+)"),
}
_STEP = re.compile(r"\bstep:\s*(\d+)\((factor|bytes)\)")
_TIME_NAMES = ("time", "cputime")
_WRONG_NAMES = ("#wrong", "wrong", "error", "errors", "#errors")


@dataclass(frozen=True)
class _Layout:
    """Where each field sits in a row's tokens (indices from the ``size`` token)."""

    width: int
    root: int | None
    groups: tuple[tuple[int, int, int, int | None], ...]  # (time, algbw, busbw, wrong)
    timestamp: bool = False


#: Layouts by row width when no usable header was printed.
_LAYOUT_BY_WIDTH = {
    12: _Layout(12, None, ((4, 5, 6, 7), (8, 9, 10, 11))),
    13: _Layout(13, 4, ((5, 6, 7, 8), (9, 10, 11, 12))),
    14: _Layout(14, 4, ((5, 6, 7, 8), (9, 10, 11, 12))),
}


def _layout_from_header(names: list[str]) -> _Layout | None:
    """The layout a ``#  size  count  type ...`` header describes, or None if it is odd."""
    if names[:3] != ["size", "count", "type"]:
        return None
    starts = [i for i, n in enumerate(names) if n in _TIME_NAMES]
    if not starts:
        return None
    groups: list[tuple[int, int, int, int | None]] = []
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(names)
        part = names[start:end]
        if "algbw" not in part or "busbw" not in part:
            return None
        wrong = next((start + part.index(w) for w in _WRONG_NAMES if w in part), None)
        groups.append((start, start + part.index("algbw"), start + part.index("busbw"), wrong))
    root = names.index("root") if "root" in names[: starts[0]] else None
    stamp = names[-1] == "timestamp"
    # The timestamp value is "%Y-%m-%d %H:%M:%S": two tokens under one label.
    width = len(names) + (1 if stamp else 0)
    return _Layout(width, root, tuple(groups[:2]), stamp)


@dataclass
class _Builder:
    """A run being read; turned into an immutable :class:`NcclTestRun` at its end."""

    index: int
    line: int
    test: str | None = None
    nccl_version: str | None = None
    nccl_tests_version: str | None = None
    config: NcclTestConfig | None = None
    ranks: list[NcclRank] = field(default_factory=list)
    layout: _Layout | None = None
    header_width: int | None = None
    rows: list[CollectiveRow] = field(default_factory=list)
    oob: tuple[int, Status | None] | None = None
    avg: tuple[float, Status | None] | None = None
    failures: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    inferred_layout_warned: bool = False

    @property
    def has_footer(self) -> bool:
        return self.oob is not None or self.avg is not None

    @property
    def has_table(self) -> bool:
        return self.layout is not None or bool(self.rows) or self.has_footer

    @property
    def substantial(self) -> bool:
        return bool(self.rows) or self.config is not None or self.layout is not None

    def build(self, source: str) -> NcclTestRun:
        warnings = list(self.warnings)
        footer: NcclTestFooter | None = None
        if self.has_footer:
            oob_count, oob_status = self.oob if self.oob is not None else (None, None)
            avg_value, avg_status = self.avg if self.avg is not None else (None, None)
            if self.oob is None:
                warnings.append("footer has no '# Out of bounds values' line")
            if self.avg is None:
                warnings.append("footer has no '# Avg bus bandwidth' line")
            footer = NcclTestFooter(oob_count, oob_status, avg_value, avg_status)
        elif self.rows:
            warnings.append(
                "no footer ('# Out of bounds values' / '# Avg bus bandwidth'): "
                "the run was cut short or the output truncated"
            )
        if not self.rows:
            warnings.append("the run printed no result rows (crashed or killed before any?)")
        elif any(
            s.wrong is None
            for r in self.rows
            for s in (r.out_of_place, r.in_place)
            if s is not None
        ):
            warnings.append("#wrong printed as N/A: results were not validated")
        return NcclTestRun(
            source=source,
            index=self.index,
            line=self.line,
            rows=tuple(self.rows),
            footer=footer,
            test=self.test,
            op=op_from_binary(self.test) if self.test else None,
            nccl_version=self.nccl_version,
            nccl_tests_version=self.nccl_tests_version,
            config=self.config,
            ranks=tuple(self.ranks),
            failures=tuple(self.failures),
            messages=tuple(self.messages),
            warnings=tuple(warnings),
            format="text",
        )


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.runs: list[NcclTestRun] = []
        self.current: _Builder | None = None
        self.pending_test: str | None = None
        self.pending_version: str | None = None
        self.pending_failures: list[str] = []

    # -- run boundaries -------------------------------------------------------------

    def finish(self) -> None:
        cur = self.current
        self.current = None
        if cur is not None and (cur.substantial or cur.failures):
            self.runs.append(cur.build(self.source))

    def start(self, lineno: int) -> _Builder:
        self.finish()
        cur = _Builder(index=len(self.runs), line=lineno)
        cur.test, self.pending_test = self.pending_test, None
        cur.nccl_version, self.pending_version = self.pending_version, None
        cur.failures, self.pending_failures = self.pending_failures, []
        self.current = cur
        return cur

    def ensure(self, lineno: int, *, new_if: bool) -> _Builder:
        """The current run, or a fresh one when there is none or ``new_if`` holds."""
        if self.current is None or new_if:
            return self.start(lineno)
        return self.current

    # -- lines ------------------------------------------------------------------------

    def feed(self, lineno: int, line: str) -> None:
        if _NCCL_LOG.search(line):
            self.nccl_log_line(line)
            return
        if _FAILURE.search(line):
            text = line.strip()
            if self.current is not None:
                self.current.failures.append(text)
            else:
                self.pending_failures.append(text)
            return
        if self.comment_line(lineno, line):
            return
        if self.row_line(lineno, line):
            return
        if "#" not in line and (m := _BINARY.search(line)):
            if self.current is not None and self.current.test is None and not self.current.rows:
                self.current.test = m.group(1)
            else:
                self.pending_test = m.group(1)

    def nccl_log_line(self, line: str) -> None:
        if m := _NCCL_VERSION_LOG.search(line):
            if self.current is not None and not self.current.rows:
                self.current.nccl_version = self.current.nccl_version or m.group(1)
            else:
                self.pending_version = m.group(1)
        elif "NCCL WARN" in line and self.current is not None:
            self.current.messages.append(line.strip())

    def comment_line(self, lineno: int, line: str) -> bool:
        hash_at = line.find("#")
        if hash_at < 0:
            return False
        text = line[hash_at:]
        cur = self.current
        if m := _TESTS_VERSION.match(text):
            busy = cur is not None and (cur.has_table or cur.config is not None)
            cur = self.ensure(lineno, new_if=busy)
            cur.nccl_tests_version = m.group(1)
            library = m.group(3) or m.group(2)
            if library:
                cur.nccl_version = nccl_version_from_code(int(library))
        elif m := _STARTING.match(text):
            substantial = cur is not None and (cur.substantial or cur.has_footer)
            # "starting" follows the version line of the same run.
            cur = self.ensure(lineno, new_if=substantial)
            cur.test = m.group(1)
        elif m := _CONCLUDED.match(text):
            if cur is not None and cur.test is None:
                cur.test = m.group(1)
        elif _NTHREAD.match(text):
            cur = self.ensure(
                lineno, new_if=cur is not None and (cur.has_table or cur.config is not None)
            )
            cur.config = _parse_config(text)
        elif _USING.match(text):
            self.ensure(lineno, new_if=cur is not None and (cur.has_table or bool(cur.ranks)))
        elif m := _RANK.match(text):
            cur = self.ensure(lineno, new_if=cur is not None and cur.has_table)
            cur.ranks.append(
                NcclRank(
                    rank=int(m.group(1)),
                    group=int(m.group(2)) if m.group(2) else None,
                    pid=int(m.group(3)),
                    host=m.group(4),
                    device=int(m.group(5)),
                    bus_id=m.group(6),
                    device_name=m.group(7) or None,
                )
            )
        elif m := _OOB.match(text):
            if cur is None or not cur.rows or cur.oob is not None:
                return True  # a footer with no rows before it belongs to no run we can see
            cur.oob = (int(m.group(1)), _status(m.group(2)))
        elif m := _AVG.match(text):
            if cur is None or not cur.rows or cur.avg is not None:
                return True
            value = _float(m.group(1))
            if value is None:
                cur.warnings.append(f"line {lineno}: unreadable average bus bandwidth")
            else:
                cur.avg = (value, _status(m.group(2)))
        elif m := _ERROR.match(text):
            if cur is not None:
                cur.messages.append(m.group(1))
        else:
            names = text.lstrip("#").split()
            if len(names) >= 8 and names[:2] == ["size", "count"]:
                layout = _layout_from_header(names)
                busy = cur is not None and (bool(cur.rows) or cur.has_footer)
                cur = self.ensure(lineno, new_if=busy)
                cur.layout = layout
                cur.header_width = len(names)
                if layout is None:
                    cur.warnings.append(f"line {lineno}: column header not understood")
            else:
                return False
        return True

    def row_line(self, lineno: int, line: str) -> bool:
        tokens = line.split()
        start = _row_start(tokens)
        if start is None:
            return False
        tokens = tokens[start:]
        cur = self.current
        if cur is None or cur.has_footer:
            cur = self.start(lineno)
        layout = cur.layout
        if layout is None or not _fits(layout, len(tokens)):
            inferred = _LAYOUT_BY_WIDTH.get(len(tokens))
            if inferred is None:
                cur.warnings.append(
                    f"line {lineno}: result row with {len(tokens)} columns not understood: "
                    f"{line.strip()!r}"
                )
                return True
            if not cur.inferred_layout_warned:
                why = (
                    "no column header before the rows"
                    if layout is None
                    else f"rows have {len(tokens)} columns, the header {cur.header_width}"
                )
                cur.warnings.append(f"line {lineno}: {why}; layout inferred from the row width")
                cur.inferred_layout_warned = True
            layout = inferred
        row = _parse_row(tokens, layout)
        if row is None:
            cur.warnings.append(f"line {lineno}: result row not understood: {line.strip()!r}")
        else:
            cur.rows.append(row)
        return True


def _fits(layout: _Layout, width: int) -> bool:
    return width == layout.width


def _row_start(tokens: list[str]) -> int | None:
    """Index of a row's ``size`` token (after any launcher prefix), or None if not a row."""
    for i in range(len(tokens) - 2):
        if (
            _DTYPE.match(tokens[i + 2])
            and tokens[i].isdigit()
            and tokens[i + 1].isdigit()
            and len(tokens) - i >= 12
        ):
            return i
    return None


def _parse_row(tokens: list[str], layout: _Layout) -> CollectiveRow | None:
    samples: list[BandwidthSample] = []
    for time_i, algbw_i, busbw_i, wrong_i in layout.groups:
        time_us = _float(tokens[time_i])
        algbw = _float(tokens[algbw_i])
        busbw = _float(tokens[busbw_i])
        if time_us is None or algbw is None or busbw is None:
            return None
        wrong: int | None = None
        if wrong_i is not None:
            raw = tokens[wrong_i]
            if raw.upper() != "N/A":
                value = _float(raw)
                if value is None or not math.isfinite(value) or value < 0:
                    return None
                wrong = int(value)
        samples.append(BandwidthSample(time_us, algbw, busbw, wrong))
    if not samples:
        return None
    root: int | None = None
    if layout.root is not None:
        if not _INT.match(tokens[layout.root]):
            return None
        root = int(tokens[layout.root])
        root = None if root < 0 else root
    redop = tokens[3]
    return CollectiveRow(
        size_bytes=int(tokens[0]),
        count=int(tokens[1]),
        dtype=tokens[2],
        redop=None if redop == "none" else redop,
        root=root,
        out_of_place=samples[0],
        in_place=samples[1] if len(samples) > 1 else None,
    )


def _parse_config(text: str) -> NcclTestConfig:
    values: dict[str, int | None] = {}
    for name, pattern in _CONFIG_FIELDS.items():
        m = pattern.search(text)
        values[name] = int(m.group(1)) if m else None
    step_factor = step_bytes = None
    if m := _STEP.search(text):
        if m.group(2) == "factor":
            step_factor = int(m.group(1))
        else:
            step_bytes = int(m.group(1))
    return NcclTestConfig(step_factor=step_factor, step_bytes=step_bytes, **values)


def _status(raw: str | None) -> Status | None:
    if raw == "OK":
        return "OK"
    if raw == "FAILED":
        return "FAILED"
    return None


def _float(raw: str) -> float | None:
    try:
        return float(raw)
    except ValueError:
        return None


def parse_text(text: str, source: str) -> list[NcclTestRun]:
    """Every run in nccl-tests stdout; runs without rows only when something else has rows."""
    parser = _Parser(source)
    for lineno, line in enumerate(text.splitlines(), start=1):
        parser.feed(lineno, line)
    parser.finish()
    return parser.runs
