"""What ``dcgmi diag`` reported, as frozen dataclasses with a JSON form.

Statuses are normalised to ``pass | warn | fail | skip | error`` (the raw text is
kept beside). Anything DCGM printed that is not one of its known words -- an empty
status, a new word, a typo -- is ``error``: it never reads as a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

DiagStatus = Literal["pass", "warn", "fail", "skip", "error"]

#: Worst first: the overall status of several results is the first one present.
SEVERITY: tuple[DiagStatus, ...] = ("fail", "error", "warn", "pass", "skip")

_STATUS_WORDS: dict[str, DiagStatus] = {
    "pass": "pass",
    "passed": "pass",
    "warn": "warn",
    "warning": "warn",
    "fail": "fail",
    "failed": "fail",
    "failure": "fail",
    "skip": "skip",
    "skipped": "skip",
    "not run": "skip",
    "notrun": "skip",
    "not_run": "skip",
}


def normalize_status(raw: object) -> DiagStatus:
    """DCGM's status word (any case, 3.x ``PASS``/``SKIPPED``, 4.x ``Pass``) -> our five."""
    if not isinstance(raw, str):
        return "error"
    return _STATUS_WORDS.get(" ".join(raw.lower().split()), "error")


def worst(statuses: list[DiagStatus]) -> DiagStatus | None:
    for status in SEVERITY:
        if status in statuses:
            return status
    return None


@dataclass(frozen=True)
class DcgmMessage:
    """A warning (with DCGM's error code where it printed one) or an info line."""

    text: str
    error_id: int | None = None
    error_category: int | None = None
    error_severity: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "error_id": self.error_id,
            "error_category": self.error_category,
            "error_severity": self.error_severity,
        }


@dataclass(frozen=True)
class DcgmEntityResult:
    """One test's result on one GPU (or CPU). ``gpu`` None = all GPUs / not per-GPU."""

    status: DiagStatus
    raw_status: str
    gpu: int | None = None
    entity_group: str | None = "GPU"
    warnings: tuple[DcgmMessage, ...] = ()
    info: tuple[str, ...] = ()

    @property
    def entity_id(self) -> int | None:
        return self.gpu

    def to_dict(self) -> dict[str, Any]:
        return {
            "entity_group": self.entity_group,
            "gpu": self.gpu,
            "status": self.status,
            "raw_status": self.raw_status,
            "warnings": [w.to_dict() for w in self.warnings],
            "info": list(self.info),
        }


@dataclass(frozen=True)
class DcgmTest:
    """One diagnostic test (``software``, ``memory``, ``Targeted Stress`` ...)."""

    name: str
    category: str | None
    status: DiagStatus
    raw_status: str | None
    results: tuple[DcgmEntityResult, ...] = ()
    warnings: tuple[DcgmMessage, ...] = ()
    info: tuple[str, ...] = ()

    def status_of_gpu(self, gpu: int) -> DiagStatus | None:
        """This GPU's status: its own result, else an all-GPU one, else None."""
        own = [r.status for r in self.results if r.gpu == gpu and r.entity_group == "GPU"]
        if own:
            return worst(own)
        shared = [r.status for r in self.results if r.gpu is None]
        return worst(shared)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "category": self.category,
            "status": self.status,
            "raw_status": self.raw_status,
            "results": [r.to_dict() for r in self.results],
            "warnings": [w.to_dict() for w in self.warnings],
            "info": list(self.info),
        }


@dataclass(frozen=True)
class DcgmGpu:
    index: int
    device_id: str | None = None
    serial: str | None = None
    entity_group: str = "GPU"

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "entity_group": self.entity_group,
            "device_id": self.device_id,
            "serial": self.serial,
        }


@dataclass(frozen=True)
class DcgmDiagResult:
    """A whole ``dcgmi diag`` report.

    ``overall`` is the worst test status; it is ``error`` when DCGM reported a
    runtime error or no test at all, ``skip`` only when every test was skipped.
    ``reported_overall`` is DCGM's own overall word when it printed one.
    """

    source: str
    format: str  # "json-4" | "json-3" | "text"
    tests: tuple[DcgmTest, ...]
    dcgm_version: str | None = None
    driver_version: str | None = None
    gpus: tuple[DcgmGpu, ...] = ()
    runtime_error: str | None = None
    reported_overall: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def overall(self) -> DiagStatus:
        if self.runtime_error or not self.tests:
            return "error"
        statuses = [t.status for t in self.tests]
        if self.reported_overall is not None:
            statuses.append(normalize_status(self.reported_overall))
        return worst(statuses) or "error"

    @property
    def passed(self) -> bool:
        """Every test ran and passed (skips allowed beside at least one pass), no warning."""
        return self.overall == "pass"

    @property
    def failed(self) -> bool:
        """A test failed, or the result is unknown or broken (``error``)."""
        return self.overall in ("fail", "error")

    @property
    def gpu_indices(self) -> tuple[int, ...]:
        """GPUs named anywhere in the report (entity list or per-GPU results)."""
        found = {g.index for g in self.gpus if g.entity_group == "GPU"}
        for test in self.tests:
            found.update(
                r.gpu for r in test.results if r.gpu is not None and r.entity_group == "GPU"
            )
        return tuple(sorted(found))

    def test(self, name: str) -> DcgmTest | None:
        """The first test called ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((t for t in self.tests if t.name.lower() == wanted), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "format": self.format,
            "dcgm_version": self.dcgm_version,
            "driver_version": self.driver_version,
            "gpus": [g.to_dict() for g in self.gpus],
            "gpu_indices": list(self.gpu_indices),
            "overall": self.overall,
            "reported_overall": self.reported_overall,
            "passed": self.passed,
            "runtime_error": self.runtime_error,
            "tests": [t.to_dict() for t in self.tests],
            "warnings": list(self.warnings),
        }
