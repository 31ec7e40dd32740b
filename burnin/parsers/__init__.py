"""Parsers of external burn-in tools' output: pure ``parse(text) -> result`` functions.

* :func:`burnin.parsers.nccl_tests.parse_nccl_tests` -- nccl-tests stdout (every layout
  since the ``N/A`` column) and its ``-J`` JSON file, one :class:`NcclTestRun` per run.
* :func:`dcops.dcgm.diag.parse_dcgm_diag` -- ``dcgmi diag`` as DCGM 3.x / 4.x JSON
  (``-j``) or as the human text table.

No parser reads files or runs anything; callers hand in the text. Input that holds no
recognisable result raises :class:`dcops.errors.InputError`. A result that is missing,
unknown or unparsable never reads as a pass.
"""

from __future__ import annotations
