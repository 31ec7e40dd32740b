"""Parse ``dcgmi diag`` output into a :class:`DcgmDiagResult`.

::

    result = parse_dcgm_diag(text, source="node17-diag.json")
    result.overall            # "pass" | "warn" | "fail" | "skip" | "error"
    result.test("software").status_of_gpu(0)

Accepted: DCGM 4.x JSON (``"DCGM Diagnostic"`` + ``entity_groups`` + ``metadata``),
DCGM 3.x/2.x JSON (``"DCGM GPU Diagnostic"``, ``gpu_ids``), with or without a line
printed before the JSON, and the human table of both generations. Per test: name,
category, normalised and raw status, per-GPU results with warnings (error codes
where DCGM printed them) and info. Unknown statuses are ``error``. Input with
neither a diagnostic report nor a dcgmi error raises :class:`~dcops.errors.InputError`.
"""

from __future__ import annotations

from dcops.dcgm._json import find_json_doc, is_dcgm_doc, parse_json_doc
from dcops.dcgm._text import parse_text
from dcops.dcgm.types import (
    DcgmDiagResult,
    DcgmEntityResult,
    DcgmGpu,
    DcgmMessage,
    DcgmTest,
    DiagStatus,
    normalize_status,
)
from dcops.errors import InputError

__all__ = [
    "DcgmDiagResult",
    "DcgmEntityResult",
    "DcgmGpu",
    "DcgmMessage",
    "DcgmTest",
    "DiagStatus",
    "normalize_status",
    "parse_dcgm_diag",
]


def parse_dcgm_diag(text: str, source: str = "<text>") -> DcgmDiagResult:
    """The ``dcgmi diag`` report in ``text`` (``-j`` JSON of DCGM 3.x/4.x, or the table)."""
    doc = find_json_doc(text)
    if doc is not None and is_dcgm_doc(doc):
        return parse_json_doc(doc, source)
    result = parse_text(text, source)
    if result is None:
        what = "JSON without a DCGM diagnostic" if doc is not None else "no dcgmi diag result found"
        raise InputError(f"{source}: {what}")
    return result
