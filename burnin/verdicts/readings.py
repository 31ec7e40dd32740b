"""Judge NVML-like GPU readings taken before, during and after a burn.

Input: every :class:`~dcops.measurements.NodeReading` taken in the run (several
per node are fine: XIDs are merged, counters taken from the latest snapshot,
throttling and temperature from any snapshot), the GPU count the inventory
expects per node, and the GPUs the GEMM judge found slow. Output: ``gpu_health``
findings; at least one per GPU read.

- lost GPU (fell off the bus) or fewer GPUs than the inventory -> fail;
- XIDs by :mod:`burnin.verdicts.xid` (critical fail, non-critical warn), with
  the recommended action on the finding;
- uncorrectable ECC or failed row remapping -> fail; remap pending or many
  correctable errors -> warn;
- NVLink links inactive -> fail; NVLink error counter high -> warn;
- hardware throttling (thermal, power brake, HW slowdown) -> warn, fail when
  the same GPU's GEMM speed was also judged low;
- temperature at or above the warn (and optional fail) point.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from burnin.profiles.model import HealthThresholds
from burnin.verdicts.status import Finding, Reason, Status, gpu_finding, node_finding
from burnin.verdicts.xid import classify_xid, xid_status
from dcops.measurements import HARDWARE_THROTTLE, ClocksEventReason, GpuReading, GpuRef, NodeReading

CHECK = "gpu_health"


def judge_readings(
    readings: Sequence[NodeReading],
    thresholds: HealthThresholds,
    *,
    expected_gpus: Mapping[str, int],
    slow: Collection[GpuRef] = (),
) -> list[Finding]:
    """Findings for every node in ``readings`` or ``expected_gpus`` (see module docstring)."""
    by_node: dict[str, list[NodeReading]] = {}
    for reading in sorted(readings, key=lambda r: r.timestamp_s):
        by_node.setdefault(reading.node, []).append(reading)
    out: list[Finding] = []
    for node in sorted(set(by_node) | set(expected_gpus)):
        snaps = by_node.get(node)
        if not snaps:
            reason = Reason(CHECK, "reading", None, None, "no GPU reading from this node")
            out.append(node_finding(node, Status.ERROR, reason))
            continue
        per_gpu: dict[GpuRef, list[GpuReading]] = {}
        for snap in snaps:
            for gpu in snap.gpus:
                per_gpu.setdefault(gpu.gpu, []).append(gpu)
        want = expected_gpus.get(node)
        if want is not None:
            for index in range(want):
                ref = GpuRef(node, index)
                if ref not in per_gpu:
                    msg = (
                        f"GPU absent: inventory expects {want} GPUs, the node shows {len(per_gpu)}"
                    )
                    reason = Reason(CHECK, "gpu_count", len(per_gpu), want, msg)
                    out.append(gpu_finding(ref, Status.FAIL, reason, "drain; check seating"))
        for ref in sorted(per_gpu):
            out.extend(_judge_gpu(ref, per_gpu[ref], thresholds, ref in slow))
    return out


def _judge_gpu(
    ref: GpuRef, snaps: list[GpuReading], th: HealthThresholds, slow: bool
) -> list[Finding]:
    out: list[Finding] = []

    def add(
        status: Status, metric: str, value: object, limit: object, msg: str, act: str = ""
    ) -> None:
        reason = Reason(CHECK, metric, _num(value), _num(limit), msg)
        out.append(gpu_finding(ref, status, reason, act))

    seen: set[tuple[int, float]] = set()
    for snap in snaps:
        for xid in snap.xids:
            if (xid.code, xid.timestamp_s) in seen:
                continue
            seen.add((xid.code, xid.timestamp_s))
            rule = classify_xid(xid.code, xid.message)
            kind = "critical" if rule.critical else "non-critical"
            msg = f"XID {xid.code} ({rule.what}, {kind})"
            if xid.message:
                msg += f": {xid.message}"
            add(xid_status(rule), "xid", xid.code, None, msg, rule.action)

    if any(s.lost for s in snaps):
        add(
            Status.FAIL,
            "lost",
            1,
            0,
            "GPU fell off the bus",
            "drain, reboot, then check mechanicals",
        )
        return out
    last = snaps[-1]
    if last.ecc_uncorrectable > 0:
        add(
            Status.FAIL,
            "ecc_uncorrectable",
            last.ecc_uncorrectable,
            0,
            f"{last.ecc_uncorrectable} uncorrectable ECC error(s)",
            "drain, reset the GPU",
        )
    if last.ecc_correctable >= th.ecc_correctable_warn:
        add(
            Status.WARN,
            "ecc_correctable",
            last.ecc_correctable,
            th.ecc_correctable_warn,
            f"{last.ecc_correctable} correctable ECC errors",
            "monitor",
        )
    if last.remapped_rows_failed:
        add(
            Status.FAIL,
            "remapped_rows",
            "failed",
            None,
            "row remapping failed",
            "reset, then service",
        )
    elif last.remapped_rows_pending:
        add(Status.WARN, "remapped_rows", "pending", None, "row remap pending", "reset when idle")
    active, total = last.nvlink_links_active, last.nvlink_links_total
    if active is not None and total is not None and active < total:
        add(
            Status.FAIL,
            "nvlink_links_active",
            active,
            total,
            f"{total - active} of {total} NVLink links inactive",
            "run the NVLink workflow",
        )
    if last.nvlink_error_count >= th.nvlink_errors_warn:
        add(
            Status.WARN,
            "nvlink_errors",
            last.nvlink_error_count,
            th.nvlink_errors_warn,
            f"{last.nvlink_error_count} NVLink errors",
        )
    throttled = ClocksEventReason.NONE
    for s in snaps:
        throttled |= s.clocks_event_reasons & HARDWARE_THROTTLE
    if throttled:
        names = "|".join(r.name or "" for r in ClocksEventReason if r and r in throttled)
        if slow:
            add(
                Status.FAIL,
                "clocks_event_reasons",
                names,
                None,
                f"hardware throttling ({names}) and GEMM speed low",
                "check cooling / power delivery",
            )
        else:
            add(Status.WARN, "clocks_event_reasons", names, None, f"hardware throttling ({names})")
    temps = [s.temperature_c for s in snaps if s.temperature_c is not None]
    if temps:
        hottest = max(temps)
        if th.temperature_fail_c is not None and hottest >= th.temperature_fail_c:
            add(Status.FAIL, "temperature_c", hottest, th.temperature_fail_c, f"{hottest:g} C")
        elif hottest >= th.temperature_warn_c:
            add(Status.WARN, "temperature_c", hottest, th.temperature_warn_c, f"{hottest:g} C")
    if not any(f.status is not Status.PASS for f in out):
        add(Status.PASS, "readings", len(snaps), None, f"healthy in {len(snaps)} reading(s)")
    return out


def _num(value: object) -> float | int | str | None:
    if value is None or isinstance(value, (float, int, str)):
        return value
    return str(value)
