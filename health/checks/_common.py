"""Helpers shared by the built-in checks: findings, thresholds, PCI ids, failed commands.

Nothing here runs anything; every function is pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from dcops.errors import DcopsError
from dcops.measurements import CommandResult
from dcops.skus import SkuProfile, get_sku
from health.base import CheckResult, CheckStatus, NodeFacts
from health.checks._smi import SmiLog, SmiParseError, parse_smi

EXIT_NOT_FOUND = 127  # the shell's "command not found"

_T = TypeVar("_T")


class BadThreshold(ValueError):
    """A value in ``facts.thresholds`` has the wrong type or range."""


@dataclass(frozen=True)
class Finder:
    """Builds :class:`CheckResult` records for one check on one node."""

    check: str
    node: str

    def __call__(self, status: CheckStatus, message: str, **kw: Any) -> CheckResult:
        return CheckResult(check=self.check, node=self.node, status=status, message=message, **kw)

    def ok(self, message: str, **kw: Any) -> CheckResult:
        return self(CheckStatus.OK, message, **kw)

    def warn(self, message: str, **kw: Any) -> CheckResult:
        return self(CheckStatus.WARN, message, **kw)

    def fail(self, message: str, **kw: Any) -> CheckResult:
        return self(CheckStatus.FAIL, message, **kw)

    def error(self, message: str, **kw: Any) -> CheckResult:
        return self(CheckStatus.ERROR, message, **kw)


def finder(check: str, facts: NodeFacts) -> Finder:
    return Finder(check, facts.node)


def expect_results(
    find: Finder, results: Sequence[CommandResult], count: int
) -> CheckResult | None:
    """An ERROR finding when the sweep handed back the wrong number of results."""
    if len(results) != count:
        return find.error(f"expected {count} command results, got {len(results)}")
    return None


# -- thresholds ----------------------------------------------------------------------


def threshold_number(facts: NodeFacts, name: str, default: float) -> float:
    """``facts.thresholds[name]`` as a number (``default`` when absent)."""
    value = facts.thresholds.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadThreshold(f"threshold {name} must be a number, got {value!r}")
    return float(value)


def threshold_optional(facts: NodeFacts, name: str, default: float | None) -> float | None:
    """Like :func:`threshold_number`, but ``None`` (no limit) is allowed."""
    if facts.thresholds.get(name, default) is None:
        return None
    return threshold_number(facts, name, default if default is not None else 0.0)


def threshold_list(facts: NodeFacts, name: str, default: Sequence[_T], kind: type[_T]) -> list[_T]:
    """``facts.thresholds[name]`` as a list of ``kind`` values."""
    value = facts.thresholds.get(name, default)
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise BadThreshold(f"threshold {name} must be a list, got {value!r}")
    out: list[_T] = []
    for item in value:
        if not isinstance(item, kind) or isinstance(item, bool):
            raise BadThreshold(f"threshold {name} must hold {kind.__name__} values, got {item!r}")
        out.append(item)
    return out


def sku_profile(facts: NodeFacts) -> SkuProfile | None:
    """The node's SKU profile, or None when the SKU is not a known one."""
    try:
        return get_sku(facts.sku)
    except DcopsError:  # an unknown SKU (or a broken profile): no SKU defaults
        return None


# -- numbers and words in tool output ------------------------------------------------

_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")


def leading_number(text: str | None) -> float | None:
    """``"1980 MHz"`` -> 1980.0; ``"N/A"``, ``"[N/A]"``, ``""``, None -> None."""
    if text is None:
        return None
    found = _NUMBER.match(text)
    return float(found.group(1)) if found else None


def yes_no(text: str | None) -> bool | None:
    """``Yes``/``No`` (any case) -> bool; anything else (``N/A``) -> None."""
    if text is None:
        return None
    word = text.strip().lower()
    if word == "yes":
        return True
    if word == "no":
        return False
    return None


def first_line(result: CommandResult) -> str:
    """The first non-empty line the command printed (stdout, then stderr)."""
    for stream in (result.stdout, result.stderr):
        for line in stream.splitlines():
            if line.strip():
                return line.strip()[:200]
    return f"no output (exit {result.returncode})"


# -- PCI bus ids ---------------------------------------------------------------------

_PCI = re.compile(r"(?:PCI:)?([0-9A-Fa-f]{4,8}):([0-9A-Fa-f]{2}):([0-9A-Fa-f]{2})(?:\.([0-7]))?")

PciId = tuple[int, int, int]


def parse_pci(text: str) -> PciId | None:
    """``00000002:01:00.0``, ``0002:01:00.0``, ``PCI:0002:01:00`` -> (2, 1, 0); else None."""
    found = _PCI.fullmatch(text.strip())
    if found is None:
        return None
    return int(found.group(1), 16), int(found.group(2), 16), int(found.group(3), 16)


def format_pci(pci: PciId) -> str:
    return f"{pci[0]:04x}:{pci[1]:02x}:{pci[2]:02x}"


# -- nvidia-smi failure modes --------------------------------------------------------

PROC_GPUS_ARGV = ("ls", "-1", "/proc/driver/nvidia/gpus")

_LOST = re.compile(
    r"Unable to determine the device handle for (?:GPU\s*)?"
    r"(?P<pci>[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}(?:\.[0-7])?)\s*:?\s*(?P<why>.*)"
)
_NO_DRIVER = "couldn't communicate with the NVIDIA driver"


@dataclass(frozen=True)
class LostGpu:
    pci: PciId
    reason: str


def lost_gpus(result: CommandResult) -> list[LostGpu]:
    """GPUs nvidia-smi could not get a handle for (fallen off the bus, "GPU is lost")."""
    found: list[LostGpu] = []
    for line in (result.stdout + "\n" + result.stderr).splitlines():
        match = _LOST.search(line)
        if match is None:
            continue
        pci = parse_pci(match.group("pci"))
        if pci is not None:
            found.append(LostGpu(pci, match.group("why").strip() or "unknown error"))
    return found


def driver_missing(result: CommandResult) -> bool:
    return _NO_DRIVER in result.stdout or _NO_DRIVER in result.stderr


def smi_unusable(find: Finder, result: CommandResult) -> CheckResult | None:
    """An ERROR finding when an nvidia-smi command did not answer, else None.

    Lost GPUs and a missing driver are *reported* by ``gpu_count`` (fail, fatal);
    the other nvidia-smi checks cannot judge such a node and say so.
    """
    if result.returncode == EXIT_NOT_FOUND:
        return find.error("nvidia-smi is not installed (exit 127)")
    lost = lost_gpus(result)
    if lost:
        ids = ", ".join(format_pci(g.pci) for g in lost)
        return find.error(
            f"nvidia-smi cannot read the GPUs: GPU {ids} lost (see gpu_count)",
            evidence={"exit": result.returncode},
        )
    if driver_missing(result):
        return find.error("nvidia-smi cannot reach the NVIDIA driver (see gpu_count)")
    return None


def parse_proc_gpus(result: CommandResult) -> list[PciId] | None:
    """PCI ids the NVIDIA driver knows (``ls -1 /proc/driver/nvidia/gpus``), in index order.

    nvidia-smi numbers GPUs in PCI bus order, so a GPU's index is its position in
    this sorted list, even when nvidia-smi itself can no longer answer. None when
    the listing failed or holds something that is not a PCI id.
    """
    if not result.ok:
        return None
    found: list[PciId] = []
    for line in result.stdout.split():
        pci = parse_pci(line)
        if pci is None:
            return None
        found.append(pci)
    return sorted(found)


def index_of(pci: PciId, proc: Sequence[PciId] | None) -> int | None:
    if proc is None or pci not in proc:
        return None
    return list(proc).index(pci)


def mapping_get(data: Mapping[str, str], *keys: str) -> str | None:
    """The first of ``keys`` present in ``data``."""
    for key in keys:
        if key in data:
            return data[key]
    return None


def read_smi(
    find: Finder, smi: CommandResult, *, require_gpus: bool = True
) -> SmiLog | CheckResult:
    """The parsed ``nvidia-smi -q`` output, or the ERROR finding that says why there is none."""
    unusable = smi_unusable(find, smi)
    if unusable is not None:
        return unusable
    try:
        log = parse_smi(smi.stdout)
    except SmiParseError as exc:
        return find.error(f"unparsable nvidia-smi output ({exc}): {first_line(smi)}")
    if require_gpus and not log.gpus:
        return find.error(f"no GPU in nvidia-smi output: {first_line(smi)}")
    return log
