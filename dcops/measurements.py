"""Plain measurement records shared by real adapters, the simulator and the detectors.

Everything that crosses a port (see :mod:`dcops.ports`) is one of these frozen
dataclasses: no I/O, no library objects. Units are in the field names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntFlag


@dataclass(frozen=True, order=True)
class GpuRef:
    """One GPU: the node (compute tray) that holds it and its index on that node."""

    node: str
    index: int

    def __str__(self) -> str:
        return f"{self.node}:gpu{self.index}"


class ClocksEventReason(IntFlag):
    """NVML clocks-event (throttle) reason bits, as ``nvmlClocksEventReason*``."""

    NONE = 0
    GPU_IDLE = 0x1
    APPLICATIONS_CLOCKS_SETTING = 0x2
    SW_POWER_CAP = 0x4
    HW_SLOWDOWN = 0x8
    SYNC_BOOST = 0x10
    SW_THERMAL_SLOWDOWN = 0x20
    HW_THERMAL_SLOWDOWN = 0x40
    HW_POWER_BRAKE_SLOWDOWN = 0x80
    DISPLAY_CLOCK_SETTING = 0x100


#: Reasons that mean the hardware is protecting itself, not a policy choice.
HARDWARE_THROTTLE = (
    ClocksEventReason.HW_SLOWDOWN
    | ClocksEventReason.HW_THERMAL_SLOWDOWN
    | ClocksEventReason.HW_POWER_BRAKE_SLOWDOWN
    | ClocksEventReason.SW_THERMAL_SLOWDOWN
)


@dataclass(frozen=True)
class XidEvent:
    """One XID reported by the driver for a GPU."""

    code: int
    timestamp_s: float
    message: str = ""


@dataclass(frozen=True)
class GpuReading:
    """One NVML-like snapshot of one GPU. ``lost`` means the GPU fell off the bus."""

    gpu: GpuRef
    uuid: str
    name: str
    lost: bool = False
    power_w: float | None = None
    energy_mj: int | None = None  # total-energy counter since driver load
    temperature_c: float | None = None
    sm_clock_mhz: float | None = None
    max_sm_clock_mhz: float | None = None
    clocks_event_reasons: ClocksEventReason = ClocksEventReason.NONE
    utilization_pct: float | None = None
    memory_used_mib: float | None = None
    memory_total_mib: float | None = None
    ecc_uncorrectable: int = 0
    ecc_correctable: int = 0
    remapped_rows_pending: bool = False
    remapped_rows_failed: bool = False
    nvlink_links_active: int | None = None
    nvlink_links_total: int | None = None
    nvlink_error_count: int = 0
    xids: tuple[XidEvent, ...] = ()


@dataclass(frozen=True)
class NodeReading:
    """All GPU readings of one node at one instant, plus driver facts."""

    node: str
    timestamp_s: float
    gpus: tuple[GpuReading, ...]
    driver_version: str | None = None
    cuda_version: str | None = None


@dataclass(frozen=True)
class GemmResult:
    """One GEMM burn on one GPU (or CPU rank).

    ``checksum`` is computed over the result of the seeded common problem, so
    GPUs that agree produce the same value; ``rel_error`` is
    ``||out - ref|| / ||ref||`` against a higher-precision reference on a sample.
    """

    gpu: GpuRef
    dtype: str
    m: int
    n: int
    k: int
    iterations: int
    duration_s: float
    tflops: float
    checksum: str
    rel_error: float
    has_nan: bool = False
    device: str = "cpu"


@dataclass(frozen=True)
class BandwidthSample:
    """One timed collective at one size: nccl-tests' time/algbw/busbw/#wrong."""

    time_us: float
    algbw_gbps: float
    busbw_gbps: float
    wrong: int | None = 0  # None when the tool printed N/A


@dataclass(frozen=True)
class CollectiveRow:
    """One size of a collective sweep; in-place is None when not measured."""

    size_bytes: int
    count: int
    dtype: str
    redop: str | None
    root: int | None
    out_of_place: BandwidthSample
    in_place: BandwidthSample | None = None


@dataclass(frozen=True)
class CollectiveResult:
    """A collective sweep over a group of GPUs."""

    op: str
    members: tuple[GpuRef, ...]
    rows: tuple[CollectiveRow, ...]
    backend: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: Seconds the sweep held its GPUs (wall clock; the simulator's model); None: unknown.
    elapsed_s: float | None = None

    @property
    def peak_busbw_gbps(self) -> float:
        return max((r.out_of_place.busbw_gbps for r in self.rows), default=0.0)


@dataclass(frozen=True)
class CollectiveOutcome:
    """One group of a concurrent batch: its result, or the error that ended it.

    ``elapsed_s``: how long the group held its GPUs (to the result, or to the
    failure); ``gpu_seconds`` is that times the group's size.
    """

    members: tuple[GpuRef, ...]
    result: CollectiveResult | None
    error: Exception | None
    elapsed_s: float

    @property
    def gpu_seconds(self) -> float:
        return self.elapsed_s * len(self.members)


@dataclass(frozen=True)
class CommandResult:
    """What a remote (or local) command returned."""

    host: str
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float
    #: stdout or stderr passed the runner's output cap: the text is cut (a note says so).
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0


#: Collectives and the factor that turns algbw into busbw for n ranks (nccl-tests).
COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "alltoall", "broadcast", "reduce")


def bus_factor(op: str, ranks: int) -> float:
    """busbw = algbw x bus_factor(op, n), as nccl-tests' PERFORMANCE.md defines it."""
    if ranks < 1:
        raise ValueError("a collective needs at least one rank")
    if op == "all_reduce":
        return 2.0 * (ranks - 1) / ranks
    if op in ("all_gather", "reduce_scatter", "alltoall"):
        return (ranks - 1) / ranks
    if op in ("broadcast", "reduce", "sendrecv"):
        return 1.0
    raise ValueError(f"unknown collective {op!r}")
