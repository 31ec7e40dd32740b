"""A scripted NVML behind autospecs of the real nvidia-ml-py functions.

Every pynvml function the adapters call is replaced, in the ``pynvml`` module
itself, by ``create_autospec(real_function, side_effect=...)``: a wrong name
fails at patch time and a wrong arity fails at call time, as they would on a
GPU. Values are what a GB200 compute tray reports, returned in NVML's own
types (ctypes device handles, ``c_nvmlMemory_t``, ``c_nvmlUtilization_t``,
``c_nvmlEventData_t``).
"""

from __future__ import annotations

import ctypes
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from unittest.mock import create_autospec

import pynvml
import pytest

MIB = 1024 * 1024
GB200_MEMORY_MIB = 189_471
GB200_LINKS = 18
_HANDLE_STRIDE = 0x1000
_EVENT_SET_ADDRESS = 0xE0000


def err(name: str) -> pynvml.NVMLError:
    """An NVML error as pynvml raises it, e.g. ``err("NotSupported")``."""
    return getattr(pynvml, f"NVMLError_{name}")()


def handle_for(index: int) -> Any:
    """A realistic device handle (a ``c_nvmlDevice_t`` pointer) for GPU ``index``."""
    return ctypes.cast(ctypes.c_void_p(_HANDLE_STRIDE * (index + 1)), pynvml.c_nvmlDevice_t)


def index_of(handle: Any) -> int:
    address = ctypes.cast(handle, ctypes.c_void_p).value or 0
    return address // _HANDLE_STRIDE - 1


@dataclass
class FakeGpu:
    index: int
    name: str = "NVIDIA GB200"
    power_mw: int = 982_345
    energy_mj: int = 7_318_222_451
    temperature_c: int = 61
    sm_clock_mhz: int = 1_965
    max_sm_clock_mhz: int = 2_062
    reasons: int = 0
    utilization_pct: int = 98
    memory_used_mib: int = 170_000
    memory_total_mib: int = GB200_MEMORY_MIB
    ecc_uncorrectable: int = 0
    ecc_correctable: int = 3
    remapped_rows: tuple[int, int, int, int] = (2, 0, 0, 0)  # corr, unc, pending, failure
    links: list[int] = field(default_factory=lambda: [1] * GB200_LINKS)
    link_errors: dict[tuple[int, int], int] = field(default_factory=dict)  # (link, counter)
    #: pynvml function name -> error it raises for this GPU
    errors: dict[str, pynvml.NVMLError] = field(default_factory=dict)

    @property
    def uuid(self) -> str:
        return f"GPU-5c1b2a3d-0000-4e5f-8a9b-00000000000{self.index}"


class FakeNvml:
    """NVML state plus the autospecs patched over pynvml; ``calls`` counts through ``mocks``."""

    def __init__(self, gpu_count: int = 4) -> None:
        self.gpus = [FakeGpu(i) for i in range(gpu_count)]
        self.count: int | None = None  # what nvmlDeviceGetCount says (default: len(gpus))
        self.driver_version = "570.133.20"
        self.cuda_version = 12080
        self.init_error: pynvml.NVMLError | None = None
        self.global_errors: dict[str, pynvml.NVMLError] = {}
        self.events: queue.Queue[tuple[int, int, int] | pynvml.NVMLError] = queue.Queue()
        self.block: threading.Event | None = None  # set: nvmlDeviceGetCount waits on it
        self.mocks: dict[str, Any] = {}

    # -- helpers used by the side effects -------------------------------------------

    def _gpu(self, handle: Any, fn: str) -> FakeGpu:
        gpu = self.gpus[index_of(handle)]
        if fn in gpu.errors:
            raise gpu.errors[fn]
        return gpu

    def _check(self, fn: str) -> None:
        if fn in self.global_errors:
            raise self.global_errors[fn]

    def push_xid(self, index: int, code: int) -> None:
        self.events.put((index, pynvml.nvmlEventTypeXidCriticalError, code))

    # -- the NVML functions ----------------------------------------------------------

    def impls(self) -> dict[str, Callable[..., Any]]:
        def init() -> None:
            if self.init_error is not None:
                raise self.init_error

        def count() -> int:
            if self.block is not None:
                self.block.wait(10)
            self._check("nvmlDeviceGetCount")
            return len(self.gpus) if self.count is None else self.count

        def handle_by_index(index: int) -> Any:
            gpu = self.gpus[index]
            if "nvmlDeviceGetHandleByIndex" in gpu.errors:
                raise gpu.errors["nvmlDeviceGetHandleByIndex"]
            return handle_for(index)

        def memory(handle: Any, version: Any = None) -> pynvml.c_nvmlMemory_t:
            g = self._gpu(handle, "nvmlDeviceGetMemoryInfo")
            mem = pynvml.c_nvmlMemory_t()
            mem.total = g.memory_total_mib * MIB
            mem.used = g.memory_used_mib * MIB
            mem.free = mem.total - mem.used
            return mem

        def utilization(handle: Any) -> pynvml.c_nvmlUtilization_t:
            g = self._gpu(handle, "nvmlDeviceGetUtilizationRates")
            util = pynvml.c_nvmlUtilization_t()
            util.gpu = g.utilization_pct
            util.memory = g.utilization_pct // 2
            return util

        def temperature(handle: Any, sensor: int) -> int:
            assert sensor == pynvml.NVML_TEMPERATURE_GPU
            return self._gpu(handle, "nvmlDeviceGetTemperature").temperature_c

        def temperature_v(handle: Any, sensor: int, version: Any = None) -> int:
            assert sensor == pynvml.NVML_TEMPERATURE_GPU
            return self._gpu(handle, "nvmlDeviceGetTemperatureV").temperature_c

        def clock(handle: Any, kind: int) -> int:
            assert kind == pynvml.NVML_CLOCK_SM
            return self._gpu(handle, "nvmlDeviceGetClockInfo").sm_clock_mhz

        def max_clock(handle: Any, kind: int) -> int:
            assert kind == pynvml.NVML_CLOCK_SM
            return self._gpu(handle, "nvmlDeviceGetMaxClockInfo").max_sm_clock_mhz

        def ecc(handle: Any, error_type: int, counter_type: int) -> int:
            g = self._gpu(handle, "nvmlDeviceGetTotalEccErrors")
            assert counter_type == pynvml.NVML_VOLATILE_ECC
            if error_type == pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED:
                return g.ecc_uncorrectable
            assert error_type == pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED
            return g.ecc_correctable

        def link_state(handle: Any, link: int) -> int:
            g = self._gpu(handle, "nvmlDeviceGetNvLinkState")
            if link >= len(g.links):
                raise err("InvalidArgument")
            return g.links[link]

        def link_errors(handle: Any, link: int, counter: int) -> int:
            g = self._gpu(handle, "nvmlDeviceGetNvLinkErrorCounter")
            return g.link_errors.get((link, counter), 0)

        def event_set_create() -> Any:
            self._check("nvmlEventSetCreate")
            return ctypes.cast(ctypes.c_void_p(_EVENT_SET_ADDRESS), pynvml.c_nvmlEventSet_t)

        def register(handle: Any, event_types: int, event_set: Any) -> None:
            self._gpu(handle, "nvmlDeviceRegisterEvents")
            assert event_types == pynvml.nvmlEventTypeXidCriticalError

        def wait(event_set: Any, timeout_ms: int) -> pynvml.c_nvmlEventData_t:
            try:
                item = self.events.get(timeout=min(timeout_ms, 20) / 1000.0)
            except queue.Empty:
                raise err("Timeout") from None
            if isinstance(item, pynvml.NVMLError):
                raise item
            index, event_type, code = item
            data = pynvml.c_nvmlEventData_t()
            data.device = handle_for(index)
            data.eventType = event_type
            data.eventData = code
            return data

        def device_index(handle: Any) -> int:
            self._check("nvmlDeviceGetIndex")
            return index_of(handle)

        def per_gpu(fn: str, attr: str) -> Callable[[Any], Any]:
            return lambda handle: getattr(self._gpu(handle, fn), attr)

        def system(fn: str, value: Callable[[], Any]) -> Callable[[], Any]:
            def call() -> Any:
                self._check(fn)
                return value()

            return call

        return {
            "nvmlInit": init,
            "nvmlShutdown": lambda: None,
            "nvmlDeviceGetCount": count,
            "nvmlDeviceGetHandleByIndex": handle_by_index,
            "nvmlDeviceGetUUID": per_gpu("nvmlDeviceGetUUID", "uuid"),
            "nvmlDeviceGetName": per_gpu("nvmlDeviceGetName", "name"),
            "nvmlDeviceGetPowerUsage": per_gpu("nvmlDeviceGetPowerUsage", "power_mw"),
            "nvmlDeviceGetTotalEnergyConsumption": per_gpu(
                "nvmlDeviceGetTotalEnergyConsumption", "energy_mj"
            ),
            "nvmlDeviceGetTemperatureV": temperature_v,
            "nvmlDeviceGetTemperature": temperature,
            "nvmlDeviceGetClockInfo": clock,
            "nvmlDeviceGetMaxClockInfo": max_clock,
            "nvmlDeviceGetCurrentClocksEventReasons": per_gpu(
                "nvmlDeviceGetCurrentClocksEventReasons", "reasons"
            ),
            "nvmlDeviceGetCurrentClocksThrottleReasons": per_gpu(
                "nvmlDeviceGetCurrentClocksThrottleReasons", "reasons"
            ),
            "nvmlDeviceGetUtilizationRates": utilization,
            "nvmlDeviceGetMemoryInfo": memory,
            "nvmlDeviceGetTotalEccErrors": ecc,
            "nvmlDeviceGetRemappedRows": per_gpu("nvmlDeviceGetRemappedRows", "remapped_rows"),
            "nvmlDeviceGetNvLinkState": link_state,
            "nvmlDeviceGetNvLinkErrorCounter": link_errors,
            "nvmlSystemGetDriverVersion": system(
                "nvmlSystemGetDriverVersion", lambda: self.driver_version
            ),
            "nvmlSystemGetCudaDriverVersion_v2": system(
                "nvmlSystemGetCudaDriverVersion_v2", lambda: self.cuda_version
            ),
            "nvmlSystemGetCudaDriverVersion": system(
                "nvmlSystemGetCudaDriverVersion", lambda: self.cuda_version
            ),
            "nvmlEventSetCreate": event_set_create,
            "nvmlDeviceRegisterEvents": register,
            "nvmlEventSetWait_v2": wait,
            "nvmlEventSetFree": lambda event_set: None,
            "nvmlDeviceGetIndex": device_index,
        }

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
        for name, impl in self.impls().items():
            real = getattr(pynvml, name)  # a name pynvml lacks fails here
            mock = create_autospec(real, side_effect=impl)
            self.mocks[name] = mock
            monkeypatch.setattr(pynvml, name, mock)
        return self

    def calls(self, name: str) -> int:
        return int(self.mocks[name].call_count)
