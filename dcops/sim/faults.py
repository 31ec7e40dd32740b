"""The fault kinds a scenario may inject, and the one record that holds an injected fault.

:data:`FAULT_KINDS` is the single table of what each kind accepts; the scenario's
JSON Schema (``scenario.schema.json``) is generated from it by
:mod:`dcops.sim.schema`, and the fleet model (:mod:`dcops.sim.model`) gives each
kind its effect. Which measurements each kind shows up in is documented in
``docs/simulator.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class GpuKey(Enum):
    """Whether a fault kind takes the ``gpu`` key."""

    REQUIRED = "required"  # the fault sits on one GPU (or a listed few)
    OPTIONAL = "optional"  # omitted: every GPU of the node
    FORBIDDEN = "forbidden"  # a whole-node fault


@dataclass(frozen=True)
class KindSpec:
    """What one fault kind accepts besides ``node``, ``kind``, ``gpu`` and ``at_s``."""

    gpu: GpuKey
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    summary: str = ""


FAULT_KINDS: dict[str, KindSpec] = {
    "slow_gemm": KindSpec(GpuKey.REQUIRED, ("factor",), (), "GEMM TFLOPS x factor"),
    "slow_node": KindSpec(GpuKey.FORBIDDEN, ("factor",), (), "GEMM TFLOPS x factor, every GPU"),
    "sdc": KindSpec(GpuKey.REQUIRED, (), ("nan",), "wrong GEMM/collective results"),
    "xid": KindSpec(GpuKey.REQUIRED, ("code",), ("message",), "an XID event; 79 loses the GPU"),
    "thermal_throttle": KindSpec(
        GpuKey.REQUIRED, (), ("factor", "temperature_c"), "hot, thermal slowdown"
    ),
    "power_brake": KindSpec(GpuKey.OPTIONAL, (), ("factor",), "HW power brake slowdown"),
    "ecc": KindSpec(GpuKey.REQUIRED, (), ("uncorrectable", "correctable"), "ECC error counts"),
    "remapped_rows": KindSpec(GpuKey.REQUIRED, (), ("state",), "row remap pending/failed"),
    "missing_gpu": KindSpec(GpuKey.REQUIRED, (), (), "GPU absent from the node"),
    "nvlink_degraded": KindSpec(GpuKey.OPTIONAL, ("factor",), (), "NVLink bandwidth x factor"),
    "nvlink_down": KindSpec(GpuKey.OPTIONAL, (), ("links",), "NVLink links inactive"),
    "unreachable": KindSpec(GpuKey.FORBIDDEN, (), (), "every adapter: ConnectError"),
    "hang": KindSpec(GpuKey.FORBIDDEN, (), (), "every adapter: blocks, then CommandTimeout"),
}

#: Keys every fault may carry, whatever its kind.
COMMON_FAULT_KEYS = ("node", "kind", "gpu", "at_s")

#: Defaults of the optional parameters.
DEFAULT_THROTTLE_FACTOR = 0.70
DEFAULT_POWER_BRAKE_FACTOR = 0.50
THROTTLE_ABOVE_SLOWDOWN_C = 4.0  # a throttling GPU reads this far above its slowdown point


@dataclass(frozen=True)
class Fault:
    """One injected fault on one node, after hostlist expansion.

    ``gpus`` is ``None`` for a whole-node fault (or a GPU-optional kind given
    without ``gpu``), else the GPU indexes it sits on. ``at_s`` is when it
    starts, in seconds after the scenario's ``start_time_s``. ``line`` is the
    scenario line it came from (``None`` when built in code).
    """

    kind: str
    node: str
    gpus: tuple[int, ...] | None = None
    at_s: float = 0.0
    factor: float | None = None  # None: the kind's default (1.0 where it needs one)
    code: int = 0
    message: str = ""
    nan: bool = False
    temperature_c: float | None = None
    uncorrectable: int = 0
    correctable: int = 0
    state: str = "pending"
    links: int | None = None
    line: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            # Programming error in code that builds faults directly; files are validated earlier.
            raise ValueError(f"unknown fault kind {self.kind!r} (known: {', '.join(FAULT_KINDS)})")
