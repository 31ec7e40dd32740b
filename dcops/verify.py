"""Ports through which a runbook asks "is this node good now?" without importing a domain.

A runbook's ``check`` and ``wait_for check_passes`` steps call a
:class:`NodeChecker` (the health checks behind it), its ``burnin`` step a
:class:`Recertifier` (a burn-in behind it). The composition root
(``dcops.cli``) builds both from the health and burn-in domains; tests may
pass their own. A verifier that could not run says so in ``error``: that is
never evidence against the node (neither pass nor fail).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Verification:
    passed: bool
    summary: str
    findings: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)
    error: str | None = None  # the verifier itself failed: no verdict on the node

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "summary": self.summary,
            "findings": [dict(f) for f in self.findings],
            "error": self.error,
        }


@runtime_checkable
class NodeChecker(Protocol):
    def check(self, node: str, checks: Sequence[str], *, timeout_s: float) -> Verification:
        """Run the named health checks on ``node``; passed when none fails or warns."""
        ...


@runtime_checkable
class Recertifier(Protocol):
    def recertify(
        self, node: str, *, timeout_s: float, rounds: int | None = None,
        duration_s: float | None = None,
    ) -> Verification:  # fmt: skip
        """Burn ``node`` in again (GEMM ``rounds`` of ``duration_s``, None: the SKU profile's);
        passed when every GPU and the node pass."""
        ...
