"""``nvlink``: inactive or slow NVLink links, error counters, NVL72 fabric state.

Commands: ``nvidia-smi nvlink --status``, ``nvidia-smi nvlink -e`` and
``nvidia-smi -q -x`` (its ``fabric`` section: ``state``/``status``).

- a link ``<inactive>``, ``all links are inactive``, or fewer active links than
  ``nvlink_links_expected`` (default: the SKU's ``nvlink_links``) -> fail;
- a link slower than ``nvlink_link_gbps_min`` (default 0.9 x the SKU's
  ``nvlink_gbps / nvlink_links``) -> warn;
- an error counter (replay, recovery, CRC ...) above ``nvlink_errors_max``
  (default 100) -> warn. The counters run since the driver loaded; this check
  keeps no state, so "rising" means "over the threshold": every counter is in
  the finding's evidence for whoever keeps history;
- fabric ``state`` other than ``Completed`` or ``status`` other than ``Success``
  -> fail (``N/A``, a GPU outside an NVLink fabric, is not judged).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from dcops.measurements import CommandResult
from health.base import CheckResult, NodeFacts, register_check
from health.checks._common import (
    BadThreshold,
    Finder,
    expect_results,
    finder,
    first_line,
    sku_profile,
    smi_unusable,
    threshold_number,
    threshold_optional,
)
from health.checks._smi import SmiParseError, parse_smi

DEFAULT_ERRORS_MAX = 100
LINK_SPEED_MIN_RATIO = 0.9

_GPU = re.compile(r"^GPU (\d+): (.*?)(?: \(UUID: [^)]*\))?\s*$")
_LINK = re.compile(r"^\s*Link (\d+): (.+?)\s*$")
_SPEED = re.compile(r"^(\d+(?:\.\d+)?) GB/s$")
_COUNTER = re.compile(r"^\s*Link (\d+): ([A-Za-z][A-Za-z0-9 ]*?): (\d+|N/A)\s*$")
_ALL_INACTIVE = "all links are inactive"


@dataclass
class NvlinkGpu:
    index: int
    name: str
    links: dict[int, float | None] = field(default_factory=dict)  # None: inactive
    all_inactive: bool = False
    counters: dict[int, dict[str, int]] = field(default_factory=dict)


class NvlinkParseError(ValueError):
    pass


def parse_nvlink_status(text: str) -> list[NvlinkGpu]:
    """``nvidia-smi nvlink --status`` -> per-GPU link speeds (GB/s; None = inactive)."""
    gpus: list[NvlinkGpu] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        header = _GPU.match(line)
        if header is not None:
            gpus.append(NvlinkGpu(int(header.group(1)), header.group(2)))
            continue
        if not gpus:
            raise NvlinkParseError(f"line before any GPU: {line.strip()[:80]}")
        if _ALL_INACTIVE in line:
            gpus[-1].all_inactive = True
            continue
        link = _LINK.match(line)
        if link is None:
            raise NvlinkParseError(f"unrecognised line: {line.strip()[:80]}")
        value = link.group(2)
        speed = _SPEED.match(value)
        if speed is not None:
            gpus[-1].links[int(link.group(1))] = float(speed.group(1))
        elif "inactive" in value.lower():
            gpus[-1].links[int(link.group(1))] = None
        else:
            raise NvlinkParseError(f"unrecognised link state: {value[:80]}")
    return gpus


def parse_nvlink_errors(text: str) -> dict[int, dict[int, dict[str, int]]]:
    """``nvidia-smi nvlink -e`` -> {gpu: {link: {"Replay Errors": n, ...}}} (N/A left out)."""
    out: dict[int, dict[int, dict[str, int]]] = {}
    current: dict[int, dict[str, int]] | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        header = _GPU.match(line)
        if header is not None:
            current = out.setdefault(int(header.group(1)), {})
            continue
        counter = _COUNTER.match(line)
        if counter is None or current is None:
            if current is not None and _ALL_INACTIVE in line:
                continue
            raise NvlinkParseError(f"unrecognised line: {line.strip()[:80]}")
        if counter.group(3) != "N/A":
            current.setdefault(int(counter.group(1)), {})[counter.group(2)] = int(counter.group(3))
    return out


@register_check("nvlink")
class NvlinkCheck:
    name = "nvlink"
    description = "inactive or slow NVLink links, link error counters, NVL72 fabric state"
    needs_nvidia_gpus = True

    def commands(self, facts: NodeFacts) -> Sequence[Sequence[str]]:
        return [
            ["nvidia-smi", "nvlink", "--status"],
            ["nvidia-smi", "nvlink", "-e"],
            ["nvidia-smi", "-q", "-x"],
        ]

    def judge(self, results: Sequence[CommandResult], facts: NodeFacts) -> list[CheckResult]:
        find = finder(self.name, facts)
        wrong = expect_results(find, results, 3)
        if wrong is not None:
            return [wrong]
        profile = sku_profile(facts)
        links_default: float | None = None
        speed_default: float | None = None
        if profile is not None and profile.gpu.nvlink_links > 0:
            links_default = float(profile.gpu.nvlink_links)
            per_link = profile.gpu.nvlink_gbps / profile.gpu.nvlink_links
            speed_default = LINK_SPEED_MIN_RATIO * per_link
        try:
            expected = threshold_optional(facts, "nvlink_links_expected", links_default)
            speed_min = threshold_optional(facts, "nvlink_link_gbps_min", speed_default)
            errors_max = threshold_number(facts, "nvlink_errors_max", DEFAULT_ERRORS_MAX)
        except BadThreshold as exc:
            return [find.error(str(exc))]
        status, errors, smi = results
        out: list[CheckResult] = []
        gpus = self._status(find, status, expected, speed_min, out)
        self._errors(find, errors, errors_max, out)
        fabric = self._fabric(find, smi, out)
        if not out:
            links = sum(len(g.links) for g in gpus or [])
            return [
                find.ok(
                    f"{len(gpus or [])} GPUs, {links} NVLink links active, error counters "
                    f"under {errors_max:g}{fabric}",
                    metric="nvlink_links_active",
                    value=links,
                )
            ]
        return out

    @staticmethod
    def _status(
        find: Finder,
        result: CommandResult,
        expected: float | None,
        speed_min: float | None,
        out: list[CheckResult],
    ) -> list[NvlinkGpu] | None:
        unusable = smi_unusable(find, result)
        if unusable is not None:
            out.append(unusable)
            return None
        try:
            if not result.ok:
                raise NvlinkParseError(f"exit {result.returncode}")
            gpus = parse_nvlink_status(result.stdout)
        except NvlinkParseError as exc:
            out.append(find.error(f"nvidia-smi nvlink --status: {exc}: {first_line(result)}"))
            return None
        if not gpus:
            out.append(
                find.error(f"nvidia-smi nvlink --status listed no GPU: {first_line(result)}")
            )
            return None
        for gpu in gpus:
            active = sorted(k for k, v in gpu.links.items() if v is not None)
            inactive = sorted(k for k, v in gpu.links.items() if v is None)
            total = int(expected) if expected is not None else len(gpu.links)
            ev = {"links": {str(k): v for k, v in sorted(gpu.links.items())}}
            if gpu.all_inactive or inactive or (expected is not None and len(active) < expected):
                which = (
                    "all links inactive"
                    if gpu.all_inactive
                    else f"{len(active)} of {total} links active"
                    + (f" (inactive: {', '.join(map(str, inactive))})" if inactive else "")
                )
                out.append(
                    find.fail(
                        f"GPU {gpu.index}: NVLink {which}",
                        gpu=gpu.index,
                        metric="nvlink_links_active",
                        value=len(active),
                        threshold=expected,
                        action="run the NVLink workflow (reseat / check the tray's NVLink cables)",
                        evidence=ev,
                    )
                )
            if speed_min is None:
                continue
            slow = {k: v for k, v in gpu.links.items() if v is not None and v < speed_min}
            if slow:
                low = min(slow.values())
                out.append(
                    find.warn(
                        f"GPU {gpu.index}: {len(slow)} NVLink links below {speed_min:g} GB/s "
                        f"(slowest {low:g} GB/s)",
                        gpu=gpu.index,
                        metric="nvlink_link_gbps",
                        value=low,
                        threshold=speed_min,
                        action="run the NVLink workflow",
                        evidence=ev,
                    )
                )
        return gpus

    @staticmethod
    def _errors(
        find: Finder, result: CommandResult, errors_max: float, out: list[CheckResult]
    ) -> None:
        if smi_unusable(find, result) is not None:
            return  # said once by the status part
        try:
            if not result.ok:
                raise NvlinkParseError(f"exit {result.returncode}")
            counters = parse_nvlink_errors(result.stdout)
        except NvlinkParseError as exc:
            out.append(find.error(f"nvidia-smi nvlink -e: {exc}: {first_line(result)}"))
            return
        for gpu, links in sorted(counters.items()):
            high = [
                f"link {link} {name} {count}"
                for link, named in sorted(links.items())
                for name, count in named.items()
                if count > errors_max
            ]
            if high:
                worst = max(c for named in links.values() for c in named.values())
                out.append(
                    find.warn(
                        f"GPU {gpu}: NVLink error counters above {errors_max:g}: "
                        + ", ".join(high[:6])
                        + (" ..." if len(high) > 6 else ""),
                        gpu=gpu,
                        metric="nvlink_errors",
                        value=worst,
                        threshold=errors_max,
                        action="run the NVLink workflow if the counters keep rising",
                        evidence={"counters": {str(k): v for k, v in sorted(links.items())}},
                    )
                )

    @staticmethod
    def _fabric(find: Finder, result: CommandResult, out: list[CheckResult]) -> str:
        if smi_unusable(find, result) is not None:
            return ""
        try:
            log = parse_smi(result.stdout)
        except SmiParseError as exc:
            out.append(find.error(f"unparsable nvidia-smi -q output ({exc}): {first_line(result)}"))
            return ""
        seen = False
        for gpu in log.gpus:
            state = gpu.get("fabric/state")
            status = gpu.get("fabric/status")
            if state is None or state.strip().upper() == "N/A":
                continue
            seen = True
            if state.strip().lower() != "completed" or (status or "").strip().lower() != "success":
                out.append(
                    find.fail(
                        f"GPU {gpu.index}: NVLink fabric state {state}, status {status}",
                        gpu=gpu.index,
                        metric="fabric_state",
                        value=state,
                        threshold="Completed/Success",
                        action="check the NVLink switch trays and fabric manager / IMEX",
                        evidence={"state": state, "status": status},
                    )
                )
        return ", fabric Completed" if seen else ""
