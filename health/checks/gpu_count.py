"""``gpu_count``: the GPUs nvidia-smi sees vs the inventory; GPUs fallen off the bus.

Commands: ``nvidia-smi -L`` and ``ls -1 /proc/driver/nvidia/gpus`` (the PCI ids
the driver probed, which name a lost GPU's index when nvidia-smi cannot).

- ``Unable to determine the device handle for GPU<pci>: <why>`` (nvidia-smi
  exits non-zero, e.g. 15 "GPU is lost") -> fail, fatal, per lost GPU.
- nvidia-smi cannot reach the driver -> fail, fatal (no GPU usable).
- fewer GPUs than ``facts.expected_gpus`` -> fail, fatal (a missing GPU);
  more -> warn (the inventory is stale).
- nvidia-smi missing (127) or output that is not a GPU listing -> error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from dcops.measurements import CommandResult
from dcops.xid import classify_xid
from health.base import CheckResult, NodeFacts, register_check
from health.checks._common import (
    EXIT_NOT_FOUND,
    PROC_GPUS_ARGV,
    Finder,
    driver_missing,
    expect_results,
    finder,
    first_line,
    format_pci,
    index_of,
    lost_gpus,
    parse_proc_gpus,
)

_LISTED = re.compile(r"^GPU (\d+): (.+?) \(UUID: ([^)]+)\)\s*$")
_MIG = re.compile(r"^\s+MIG .*Device\s+\d+:")
_NO_DEVICES = "No devices were found"
_LOST_ACTION = classify_xid(79).action


def parse_gpu_list(text: str) -> list[tuple[int, str, str]] | None:
    """``nvidia-smi -L`` -> [(index, name, uuid)]; None when a line is not a listing line."""
    found: list[tuple[int, str, str]] = []
    for line in text.splitlines():
        if not line.strip() or _MIG.match(line):
            continue
        match = _LISTED.match(line)
        if match is None:
            return None
        found.append((int(match.group(1)), match.group(2), match.group(3)))
    return found


@register_check("gpu_count")
class GpuCountCheck:
    name = "gpu_count"
    description = "GPUs visible to nvidia-smi vs the inventory; GPUs fallen off the bus (fatal)"
    needs_nvidia_gpus = True

    def commands(self, facts: NodeFacts) -> Sequence[Sequence[str]]:
        return [["nvidia-smi", "-L"], list(PROC_GPUS_ARGV)]

    def judge(self, results: Sequence[CommandResult], facts: NodeFacts) -> list[CheckResult]:
        find = finder(self.name, facts)
        wrong = expect_results(find, results, 2)
        if wrong is not None:
            return [wrong]
        smi, proc_result = results
        proc = parse_proc_gpus(proc_result)
        expected = facts.expected_gpus
        if smi.returncode == EXIT_NOT_FOUND:
            return [find.error("nvidia-smi is not installed (exit 127)")]
        if driver_missing(smi):
            return [
                find.fail(
                    "nvidia-smi cannot communicate with the NVIDIA driver: no GPU is usable",
                    fatal=True,
                    metric="gpus_visible",
                    value=0,
                    threshold=expected,
                    action="check the driver is loaded (dmesg), reboot",
                )
            ]
        out: list[CheckResult] = []
        lost = lost_gpus(smi)
        for gpu in lost:
            out.append(
                find.fail(
                    f"GPU {format_pci(gpu.pci)} fell off the bus ({gpu.reason})",
                    fatal=True,
                    gpu=index_of(gpu.pci, proc),
                    metric="gpu_lost",
                    value=1,
                    action=_LOST_ACTION,
                    evidence={"pci": format_pci(gpu.pci), "exit": smi.returncode},
                )
            )
        if lost:
            # nvidia-smi gave up at the lost GPU; count what the driver probed instead.
            if proc is not None and len(proc) < expected:
                out.append(_missing(find, len(proc), expected, [], "/proc/driver/nvidia/gpus"))
            return out
        listed = parse_gpu_list(smi.stdout)
        if _NO_DEVICES in smi.stdout + smi.stderr and not listed:
            listed = []
        elif not listed or not smi.ok:
            return [find.error(f"unrecognised nvidia-smi -L output: {first_line(smi)}")]
        indexes = sorted(i for i, _, _ in listed)
        count = len(listed)
        if count < expected:
            # A hole below the highest listed index names the absent GPU; a short
            # list 0..n-1 may be renumbered, so it names none.
            top = indexes[-1] if indexes else -1
            gaps = [i for i in range(top) if i not in indexes]
            gaps = gaps if len(gaps) == expected - count and top < expected else []
            return [_missing(find, count, expected, gaps, "nvidia-smi -L")]
        evidence = {"uuids": [u for _, _, u in listed]}
        if count > expected:
            return [
                find.warn(
                    f"{count} GPUs visible, the inventory expects {expected} (inventory stale?)",
                    metric="gpus_visible",
                    value=count,
                    threshold=expected,
                    evidence=evidence,
                )
            ]
        return [
            find.ok(
                f"{count} of {expected} GPUs visible",
                metric="gpus_visible",
                value=count,
                threshold=expected,
                evidence=evidence,
            )
        ]


def _missing(find: Finder, count: int, expected: int, gaps: list[int], source: str) -> CheckResult:
    where = f" (GPU {', '.join(map(str, gaps))} absent)" if gaps else ""
    return find.fail(
        f"{count} of {expected} GPUs visible{where}",
        fatal=True,
        gpu=gaps[0] if len(gaps) == 1 else None,
        metric="gpus_visible",
        value=count,
        threshold=expected,
        action="drain; reseat or replace the missing GPU, then burn in",
        evidence={"source": source, "absent": gaps},
    )
