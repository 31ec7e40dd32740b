"""``memory``: uncorrectable ECC, remapped rows, retired pages per GPU.

Command: ``nvidia-smi -q -x``. The judge also reads the text report
(``nvidia-smi -q -d PAGE_RETIREMENT,ROW_REMAPPER,ECC``), told apart by its banner.

Per GPU (thresholds in ``facts.thresholds``):

- volatile uncorrectable ECC (DRAM + SRAM, since the driver loaded) above
  ``memory_ecc_uncorrectable_max`` (default 0) -> fail, fatal;
- remapping failure -> fail, fatal; remap pending -> warn (reset when idle);
- retired pages (single + double bit) at or above ``memory_retired_pages_max``
  (default 60: NVIDIA's RMA guidance for page retirement) -> fail;
  retirement pending -> warn (reboot or reset to retire them).

A field a GPU reports as ``N/A`` (not supported there) is not judged; a GPU with
none of these fields at all is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dcops.measurements import CommandResult
from dcops.xid import classify_xid
from health.base import CheckResult, NodeFacts, register_check
from health.checks._common import (
    BadThreshold,
    Finder,
    expect_results,
    finder,
    leading_number,
    read_smi,
    threshold_number,
    yes_no,
)
from health.checks._smi import SmiGpu

DEFAULT_ECC_UNCORRECTABLE_MAX = 0
DEFAULT_RETIRED_PAGES_MAX = 60

_UE_XML = (
    "ecc_errors/volatile/dram_uncorrectable",
    "ecc_errors/volatile/sram_uncorrectable",
    "ecc_errors/volatile/sram_uncorrectable_parity",
    "ecc_errors/volatile/sram_uncorrectable_secded",
    "ecc_errors/volatile/double_bit/total",
)
_UE_TEXT = (
    "ecc errors/volatile/dram uncorrectable",
    "ecc errors/volatile/sram uncorrectable",
    "ecc errors/volatile/sram uncorrectable parity",
    "ecc errors/volatile/sram uncorrectable sec-ded",
    "ecc errors/volatile/double bit/total",
)


@dataclass(frozen=True)
class GpuMemory:
    """The memory-health fields of one GPU; None = not reported (or N/A)."""

    index: int
    bus_id: str
    ecc_uncorrectable: int | None
    remap_pending: bool | None
    remap_failed: bool | None
    retired_sbe: int | None
    retired_dbe: int | None
    retirement_pending: bool | None

    @property
    def reported(self) -> bool:
        return any(
            v is not None
            for v in (
                self.ecc_uncorrectable,
                self.remap_pending,
                self.remap_failed,
                self.retired_sbe,
                self.retired_dbe,
                self.retirement_pending,
            )
        )


def memory_fields(gpu: SmiGpu, form: str) -> GpuMemory:
    """Pull the memory fields out of one GPU of an XML (``form="xml"``) or text report."""
    xml = form == "xml"
    counts = [
        leading_number(gpu.fields[k]) for k in (_UE_XML if xml else _UE_TEXT) if k in gpu.fields
    ]
    known = [int(c) for c in counts if c is not None]
    if xml:
        pending = gpu.get("remapped_rows/remapped_row_pending")
        failed = gpu.get("remapped_rows/remapped_row_failure")
        sbe = gpu.get("retired_pages/multiple_single_bit_retirement/retired_count")
        dbe = gpu.get("retired_pages/double_bit_retirement/retired_count")
        retire = gpu.get("retired_pages/pending_blacklist", "retired_pages/pending_retirement")
    else:
        pending = gpu.get("remapped rows/pending")
        failed = gpu.get("remapped rows/remapping failure occurred")
        sbe = gpu.get("retired pages/single bit ecc")
        dbe = gpu.get("retired pages/double bit ecc")
        retire = gpu.get(
            "retired pages/pending page blacklist", "retired pages/pending page retirement"
        )
    return GpuMemory(
        index=gpu.index,
        bus_id=gpu.bus_id,
        ecc_uncorrectable=sum(known) if known else None,
        remap_pending=yes_no(pending),
        remap_failed=yes_no(failed),
        retired_sbe=_int(sbe),
        retired_dbe=_int(dbe),
        retirement_pending=yes_no(retire),
    )


def _int(text: str | None) -> int | None:
    value = leading_number(text)
    return None if value is None else int(value)


@register_check("memory")
class MemoryCheck:
    name = "memory"
    description = "uncorrectable ECC, remapped rows and retired pages per GPU"
    needs_nvidia_gpus = True

    def commands(self, facts: NodeFacts) -> Sequence[Sequence[str]]:
        return [["nvidia-smi", "-q", "-x"]]

    def judge(self, results: Sequence[CommandResult], facts: NodeFacts) -> list[CheckResult]:
        find = finder(self.name, facts)
        wrong = expect_results(find, results, 1)
        if wrong is not None:
            return [wrong]
        try:
            ue_max = threshold_number(
                facts, "memory_ecc_uncorrectable_max", DEFAULT_ECC_UNCORRECTABLE_MAX
            )
            pages_max = threshold_number(
                facts, "memory_retired_pages_max", DEFAULT_RETIRED_PAGES_MAX
            )
        except BadThreshold as exc:
            return [find.error(str(exc))]
        (smi,) = results
        log = read_smi(find, smi)
        if isinstance(log, CheckResult):
            return [log]
        out: list[CheckResult] = []
        for gpu in log.gpus:
            mem = memory_fields(gpu, log.format)
            out.extend(_judge_gpu(find, mem, ue_max, pages_max))
        if not out:
            return [
                find.ok(
                    f"{len(log.gpus)} GPUs: no uncorrectable ECC, no row remap pending or "
                    f"failed, retired pages under {pages_max:g}",
                )
            ]
        return out


def _judge_gpu(find: Finder, mem: GpuMemory, ue_max: float, pages_max: float) -> list[CheckResult]:
    gpu = mem.index
    ev = {"bus_id": mem.bus_id}
    if not mem.reported:
        return [find.error(f"GPU {gpu}: no ECC, remapped-row or retired-page fields", gpu=gpu)]
    out: list[CheckResult] = []
    if mem.ecc_uncorrectable is not None and mem.ecc_uncorrectable > ue_max:
        out.append(
            find.fail(
                f"GPU {gpu}: {mem.ecc_uncorrectable} uncorrectable ECC errors since driver load",
                fatal=True,
                gpu=gpu,
                metric="ecc_uncorrectable",
                value=mem.ecc_uncorrectable,
                threshold=ue_max,
                action=classify_xid(48).action,
                evidence=ev,
            )
        )
    if mem.remap_failed:
        out.append(
            find.fail(
                f"GPU {gpu}: row remapping failed",
                fatal=True,
                gpu=gpu,
                metric="remapped_rows_failed",
                value=1,
                action=classify_xid(64).action,
                evidence=ev,
            )
        )
    if mem.remap_pending:
        out.append(
            find.warn(
                f"GPU {gpu}: row remap pending",
                gpu=gpu,
                metric="remapped_rows_pending",
                value=1,
                action=classify_xid(63).action,
                evidence=ev,
            )
        )
    retired = (mem.retired_sbe or 0) + (mem.retired_dbe or 0)
    if (mem.retired_sbe is not None or mem.retired_dbe is not None) and retired >= pages_max:
        out.append(
            find.fail(
                f"GPU {gpu}: {retired} retired pages ({mem.retired_sbe} single-bit, "
                f"{mem.retired_dbe} double-bit)",
                gpu=gpu,
                metric="retired_pages",
                value=retired,
                threshold=pages_max,
                action="drain; open a service (RMA) case for the GPU",
                evidence=ev,
            )
        )
    if mem.retirement_pending:
        out.append(
            find.warn(
                f"GPU {gpu}: page retirement pending",
                gpu=gpu,
                metric="retired_pages_pending",
                value=1,
                action="reset the GPU or reboot when idle to retire the pages",
                evidence={**ev, "retired_pages": retired},
            )
        )
    return out
