"""Parse nccl-tests output (``all_reduce_perf`` and friends) into :class:`NcclTestRun` s.

::

    runs = parse_nccl_tests(text, source="rack07.log")
    for run in runs:
        run.op, run.row_at(8 << 30).out_of_place.busbw_gbps, run.footer, run.passed

Accepted: stdout of every nccl-tests layout seen in the field (old ``error`` column
printed as ``N/A`` and no ``root``; ``root`` + ``#wrong``; ``#iters``; per-iteration
and timestamp columns), with ``NCCL INFO``/``WARN`` lines and launcher prefixes mixed
in, several runs in one file (one :class:`NcclTestRun` each), truncated runs (rows
kept, ``footer`` None, a warning), and the ``-J`` JSON file. Input with no result
row at all raises :class:`~dcops.errors.InputError`.
"""

from __future__ import annotations

import json

from burnin.parsers._nccl_json import looks_like_nccl_json, parse_json_doc
from burnin.parsers._nccl_text import parse_text
from burnin.parsers.nccl_types import (
    NcclRank,
    NcclTestConfig,
    NcclTestFooter,
    NcclTestRun,
    nccl_version_from_code,
    op_from_binary,
)
from dcops.errors import InputError

__all__ = [
    "NcclRank",
    "NcclTestConfig",
    "NcclTestFooter",
    "NcclTestRun",
    "nccl_version_from_code",
    "op_from_binary",
    "parse_nccl_tests",
]


def parse_nccl_tests(text: str, source: str = "<text>") -> list[NcclTestRun]:
    """Every nccl-tests run in ``text`` (stdout or ``-J`` JSON), in file order.

    Raises :class:`InputError` ``"<source>: no nccl-tests result found"`` when no run
    holds a single result row.
    """
    runs: list[NcclTestRun]
    stripped = text.lstrip()
    doc: object = None
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
        except ValueError:
            doc = None
    if doc is not None:
        if not looks_like_nccl_json(doc):
            raise InputError(f"{source}: JSON without 'results': no nccl-tests result found")
        assert isinstance(doc, dict)
        runs = [parse_json_doc(doc, source)]
    else:
        runs = parse_text(text, source)
    if not any(run.rows for run in runs):
        raise InputError(f"{source}: no nccl-tests result found")
    return runs
