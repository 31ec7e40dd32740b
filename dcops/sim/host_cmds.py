"""What a simulated node prints for the standard tools the health checks run.

Pure renderers over a :class:`~dcops.measurements.NodeReading` (and a few
fixed host figures); :mod:`dcops.sim.runner` turns them into command answers:

- ``journalctl -k [--since @EPOCH | -b] -o short-unix`` and ``dmesg --time-format
  iso``: one ``NVRM: Xid (PCI:dddd:bb:dd): CODE, pid='<unknown>', name=<unknown>,
  MESSAGE`` line per XID of the node's readings (the driver's r535+ layout);
- ``ls -1 /proc/driver/nvidia/gpus``: the PCI ids the driver probed (lost GPUs
  included, missing ones not);
- ``nvidia-smi nvlink --status`` / ``-e``: per-link speed (the SKU's
  ``nvlink_gbps / nvlink_links`` x the GPU's ``nvlink_degraded`` factor),
  ``<inactive>`` for links of ``nvlink_down``, zero error counters;
- ``df -P -k``, ``cat /proc/meminfo``, the InfiniBand port states (four
  ``mlx5_N`` ports, all ``ACTIVE``): healthy, fixed figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from dcops.measurements import GpuReading, NodeReading

IB_ROOT = "/sys/class/infiniband"
IB_PORTS = ("mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3")
DISK_TOTAL_KIB = 1_875_382_960  # a 1.92 TB NVMe boot drive
DISK_USED_KIB = 412_583_251
MEM_TOTAL_KIB = 1_002_438_656  # two Grace CPUs, ~480 GiB LPDDR5X each
MEM_AVAILABLE_KIB = 941_286_400


def kernel_pci(index: int) -> str:
    """The ``dddd:bb:dd`` a kernel XID line names (matches :func:`dcops.sim.model.pci_bus_id`)."""
    return f"{index + 1:04x}:01:00"


def xid_lines(reading: NodeReading, since_s: float | None) -> list[tuple[float, str]]:
    """(timestamp, kernel message) of every XID at or after ``since_s``, oldest first."""
    found: list[tuple[float, str]] = []
    for gpu in reading.gpus:
        for event in gpu.xids:
            if since_s is not None and event.timestamp_s < since_s:
                continue
            text = (
                f"NVRM: Xid (PCI:{kernel_pci(gpu.gpu.index)}): {event.code}, "
                f"pid='<unknown>', name=<unknown>, {event.message}"
            )
            found.append((event.timestamp_s, text.rstrip(", ")))
    return sorted(found)


def journal(host: str, reading: NodeReading, since_s: float | None) -> str:
    lines = [f"{ts:.6f} {host} kernel: {text}" for ts, text in xid_lines(reading, since_s)]
    return "".join(line + "\n" for line in lines) if lines else "-- No entries --\n"


def dmesg(reading: NodeReading) -> str:
    lines = []
    for ts, text in xid_lines(reading, None):
        stamp = datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S,%f+00:00")
        lines.append(f"{stamp} {text}\n")
    return "".join(lines)


def proc_gpus(reading: NodeReading) -> str:
    return "".join(f"{kernel_pci(g.gpu.index)}.0\n" for g in reading.gpus)


def _header(gpu: GpuReading) -> str:
    return f"GPU {gpu.gpu.index}: {gpu.name} (UUID: {gpu.uuid})\n"


def nvlink_status(reading: NodeReading, link_gbps: Sequence[float]) -> str:
    """``nvidia-smi nvlink --status``; ``link_gbps[i]``: GPU i's per-link speed."""
    out: list[str] = []
    for gpu, speed in zip(reading.gpus, link_gbps, strict=True):
        out.append(_header(gpu))
        total = gpu.nvlink_links_total or 0
        active = gpu.nvlink_links_active if gpu.nvlink_links_active is not None else total
        if total and not active:
            out.append("NVML: Unable to retrieve NVLink information as all links are inactive\n")
            continue
        shown = f"{speed:.0f}" if abs(speed - round(speed)) < 1e-9 else f"{speed:.3f}"
        for link in range(total):
            state = f"{shown} GB/s" if link < active else "<inactive>"
            out.append(f"\t Link {link}: {state}\n")
    return "".join(out)


def nvlink_errors(reading: NodeReading) -> str:
    """``nvidia-smi nvlink -e``: replay / recovery / CRC counters (the probe's count on link 0)."""
    out: list[str] = []
    for gpu in reading.gpus:
        out.append(_header(gpu))
        total = gpu.nvlink_links_total or 0
        active = gpu.nvlink_links_active if gpu.nvlink_links_active is not None else total
        for link in range(min(total, active)):
            crc = gpu.nvlink_error_count if link == 0 else 0
            out.append(f"\t Link {link}: Replay Errors: 0\n")
            out.append(f"\t Link {link}: Recovery Errors: 0\n")
            out.append(f"\t Link {link}: CRC Errors: {crc}\n")
    return "".join(out)


def df(paths: Sequence[str]) -> tuple[int, str, str]:
    """``df -P -k PATHS``: every absolute path sits on the root filesystem."""
    rows = ["Filesystem     1024-blocks      Used  Available Capacity Mounted on\n"]
    errors: list[str] = []
    avail = DISK_TOTAL_KIB - DISK_USED_KIB
    pct = -(-100 * DISK_USED_KIB // DISK_TOTAL_KIB)  # df rounds the capacity up
    for path in paths or ["/"]:
        if not path.startswith("/"):
            errors.append(f"df: {path}: No such file or directory\n")
            continue
        rows.append(f"/dev/nvme0n1p2  {DISK_TOTAL_KIB} {DISK_USED_KIB} {avail}      {pct}% /\n")
    return (1 if errors else 0), "".join(rows), "".join(errors)


def meminfo() -> str:
    fields = (
        ("MemTotal", MEM_TOTAL_KIB),
        ("MemFree", MEM_AVAILABLE_KIB - 20_000_000),
        ("MemAvailable", MEM_AVAILABLE_KIB),
        ("Buffers", 1_204_224),
        ("Cached", 19_884_032),
        ("SwapTotal", 0),
        ("SwapFree", 0),
    )
    return "".join(f"{name + ':':<16}{value:>10} kB\n" for name, value in fields)


def ib_states(root: str) -> str:
    """What ``find -L ROOT ... -exec grep -H . {} +`` prints for the port state files."""
    return "".join(f"{root}/{dev}/ports/1/state:4: ACTIVE\n" for dev in IB_PORTS)
