"""NvmlProbe: the GpuProbe port for this machine's GPUs, read through NVML.

NVML sees only the local machine, so :meth:`NvmlProbe.read` accepts only this
host's name (full or short) or ``localhost``; any other node is an
:class:`~dcops.errors.InputError`. Readings carry NVML's own units converted
to the names' units: power mW -> W, memory bytes -> MiB, energy stays mJ.

Per GPU: a feature the GPU or driver lacks (``NVMLError_NotSupported`` and
kin, see :mod:`dcops.nvml._lib`) leaves its field ``None`` (or 0 / False for
counters and flags); a GPU that is lost, at handle time or mid-read, comes
back ``lost=True`` with what was read before. No XID is invented for a lost
GPU: XIDs come only from an attached :class:`~dcops.nvml.events.XidWatcher`,
and each read hands over those the watcher collected since the previous one.
How many GPUs there should be is the caller's to judge (a missing GPU is
simply absent from ``gpus``).
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, NoReturn

from dcops.errors import BackendError, InputError
from dcops.measurements import ClocksEventReason, GpuReading, GpuRef, NodeReading
from dcops.nvml._lib import NvmlSession, bounded, has_code, is_lost, is_missing
from dcops.nvml.events import XidWatcher

DEFAULT_TIMEOUT_S = 30.0
_MIB = 1024 * 1024
_DEFAULT_MAX_LINKS = 18  # NVLink5 links per Blackwell GPU, if pynvml lacks the constant


class _GpuLost(Exception):
    """Internal: an NVML call said the GPU is gone."""


class NvmlProbe:
    """GpuProbe over NVML on this machine; use as a context manager (``nvmlShutdown`` on close).

    ``timeout_s`` bounds every read (NVML calls can hang on a wedged driver);
    a read that outlives it raises :class:`~dcops.errors.CommandTimeout`.
    """

    def __init__(
        self,
        *,
        hostname: str | None = None,
        watcher: XidWatcher | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        host = hostname or socket.gethostname()
        self.hostname = host
        self._local_names = {"localhost", host, host.split(".")[0]}
        self.watcher = watcher
        self.timeout_s = timeout_s
        self._clock = clock
        self._session = NvmlSession()

    # -- lifecycle ----------------------------------------------------------------

    def open(self) -> NvmlProbe:
        """Initialise NVML now (reads do it on first use). BackendError when NVML is unavailable."""
        bounded(self._session.open, timeout_s=self.timeout_s, host=self.hostname, what="init")
        return self

    def close(self) -> None:
        """Shut NVML down (an attached watcher is the caller's to stop)."""
        self._session.close()

    def __enter__(self) -> NvmlProbe:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def attach(self, watcher: XidWatcher | None) -> None:
        """Hand this watcher's XIDs over in subsequent readings (None detaches)."""
        self.watcher = watcher

    # -- the port -------------------------------------------------------------------

    def read(self, node: str, *, timeout_s: float | None = None) -> NodeReading:
        if node not in self._local_names:
            raise InputError(
                f"NVML reads only this machine ({self.hostname}); cannot read node {node!r}"
            )
        limit = self.timeout_s if timeout_s is None else timeout_s
        reading = bounded(lambda: self._read(node), timeout_s=limit, host=node, what="read")
        if self.watcher is None:
            return reading
        # Drained here, after the read succeeded, so a failed read loses no XID.
        xids = self.watcher.drain([g.gpu.index for g in reading.gpus])
        if not xids:
            return reading
        gpus = tuple(
            dataclasses.replace(g, xids=g.xids + xids[g.gpu.index]) if g.gpu.index in xids else g
            for g in reading.gpus
        )
        return dataclasses.replace(reading, gpus=gpus)

    def _read(self, node: str) -> NodeReading:
        pynvml = self._session.open()
        try:
            count = int(pynvml.nvmlDeviceGetCount())
        except pynvml.NVMLError as exc:
            raise BackendError(f"NVML: cannot count GPUs on {node}: {exc}") from exc
        gpus = tuple(_read_gpu(pynvml, GpuRef(node, index)) for index in range(count))
        return NodeReading(
            node=node,
            timestamp_s=self._clock(),
            gpus=gpus,
            driver_version=_driver_version(pynvml),
            cuda_version=_cuda_version(pynvml),
        )


# -- one GPU ------------------------------------------------------------------------


def _read_gpu(pynvml: Any, ref: GpuRef) -> GpuReading:
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(ref.index)
    except pynvml.NVMLError as exc:
        if is_lost(pynvml, exc):
            return GpuReading(gpu=ref, uuid="", name="", lost=True)
        raise BackendError(f"NVML: no handle for {ref}: {exc}") from exc
    uuid = name = ""
    try:
        uuid = _text(_call(pynvml, ref, pynvml.nvmlDeviceGetUUID, handle))
        name = _text(_call(pynvml, ref, pynvml.nvmlDeviceGetName, handle))
        return _read_fields(pynvml, ref, handle, uuid, name)
    except _GpuLost:
        return GpuReading(gpu=ref, uuid=uuid, name=name, lost=True)


def _read_fields(pynvml: Any, ref: GpuRef, handle: Any, uuid: str, name: str) -> GpuReading:
    power_mw = _call(pynvml, ref, pynvml.nvmlDeviceGetPowerUsage, handle)
    energy_mj = _call(pynvml, ref, pynvml.nvmlDeviceGetTotalEnergyConsumption, handle)
    temperature = _first(
        pynvml,
        ref,
        ("nvmlDeviceGetTemperatureV", "nvmlDeviceGetTemperature"),
        handle,
        pynvml.NVML_TEMPERATURE_GPU,
    )
    sm_clock = _call(pynvml, ref, pynvml.nvmlDeviceGetClockInfo, handle, pynvml.NVML_CLOCK_SM)
    max_sm_clock = _call(
        pynvml, ref, pynvml.nvmlDeviceGetMaxClockInfo, handle, pynvml.NVML_CLOCK_SM
    )
    reasons = _first(
        pynvml,
        ref,
        ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"),
        handle,
    )
    utilization = _call(pynvml, ref, pynvml.nvmlDeviceGetUtilizationRates, handle)
    memory = _call(pynvml, ref, pynvml.nvmlDeviceGetMemoryInfo, handle)
    ecc_unc = _call(
        pynvml,
        ref,
        pynvml.nvmlDeviceGetTotalEccErrors,
        handle,
        pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
        pynvml.NVML_VOLATILE_ECC,
    )
    ecc_corr = _call(
        pynvml,
        ref,
        pynvml.nvmlDeviceGetTotalEccErrors,
        handle,
        pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED,
        pynvml.NVML_VOLATILE_ECC,
    )
    remapped = _call(pynvml, ref, pynvml.nvmlDeviceGetRemappedRows, handle)
    _corr_rows, _unc_rows, pending, failed = remapped if remapped is not None else (0, 0, 0, 0)
    links_active, links_total, link_errors = _nvlink(pynvml, ref, handle)
    return GpuReading(
        gpu=ref,
        uuid=uuid,
        name=name,
        power_w=None if power_mw is None else int(power_mw) / 1000.0,
        energy_mj=None if energy_mj is None else int(energy_mj),
        temperature_c=None if temperature is None else float(temperature),
        sm_clock_mhz=None if sm_clock is None else float(sm_clock),
        max_sm_clock_mhz=None if max_sm_clock is None else float(max_sm_clock),
        clocks_event_reasons=ClocksEventReason(int(reasons or 0)),
        utilization_pct=None if utilization is None else float(utilization.gpu),
        memory_used_mib=None if memory is None else int(memory.used) / _MIB,
        memory_total_mib=None if memory is None else int(memory.total) / _MIB,
        ecc_uncorrectable=int(ecc_unc or 0),
        ecc_correctable=int(ecc_corr or 0),
        remapped_rows_pending=bool(pending),
        remapped_rows_failed=bool(failed),
        nvlink_links_active=links_active,
        nvlink_links_total=links_total,
        nvlink_error_count=link_errors,
    )


def _nvlink_counters(pynvml: Any) -> tuple[int, ...]:
    """Data-link error counters summed into ``nvlink_error_count``: replay, recovery, CRC, ECC."""
    return (
        pynvml.NVML_NVLINK_ERROR_DL_REPLAY,
        pynvml.NVML_NVLINK_ERROR_DL_RECOVERY,
        pynvml.NVML_NVLINK_ERROR_DL_CRC_FLIT,
        pynvml.NVML_NVLINK_ERROR_DL_CRC_DATA,
        pynvml.NVML_NVLINK_ERROR_DL_ECC_DATA,
    )


def _nvlink(pynvml: Any, ref: GpuRef, handle: Any) -> tuple[int | None, int | None, int]:
    """(links active, links present, error count); (None, None, 0) without NVLink.

    Links are enumerated from 0 until NVML says NOT_SUPPORTED / INVALID_ARGUMENT
    (no such link) or ``NVML_NVLINK_MAX_LINKS`` is reached.
    """
    max_links = int(getattr(pynvml, "NVML_NVLINK_MAX_LINKS", _DEFAULT_MAX_LINKS))
    counters = _nvlink_counters(pynvml)
    active = total = errors = 0
    for link in range(max_links):
        try:
            state = pynvml.nvmlDeviceGetNvLinkState(handle, link)
        except pynvml.NVMLError as exc:
            if has_code(pynvml, exc, "INVALID_ARGUMENT") or is_missing(pynvml, exc):
                break
            _raise(pynvml, ref, "nvmlDeviceGetNvLinkState", exc)
        total += 1
        active += int(state == pynvml.NVML_FEATURE_ENABLED)
        for counter in counters:
            value = _call(
                pynvml, ref, pynvml.nvmlDeviceGetNvLinkErrorCounter, handle, link, counter
            )
            errors += int(value or 0)
    if total == 0:
        return None, None, 0
    return active, total, errors


# -- calls and errors ---------------------------------------------------------------


def _call(pynvml: Any, ref: GpuRef, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``; None when the feature is missing, _GpuLost when the GPU is gone."""
    try:
        return fn(*args)
    except pynvml.NVMLError as exc:
        if is_missing(pynvml, exc):
            return None
        _raise(pynvml, ref, getattr(fn, "__name__", "NVML call"), exc)


def _first(pynvml: Any, ref: GpuRef, names: tuple[str, ...], *args: Any) -> Any:
    """The first of ``names`` that this pynvml and driver have (newer name first)."""
    for name in names:
        fn = getattr(pynvml, name, None)
        if fn is None:
            continue
        try:
            return fn(*args)
        except pynvml.NVMLError as exc:
            if has_code(pynvml, exc, "FUNCTION_NOT_FOUND"):
                continue  # an older driver: try the older name
            if is_missing(pynvml, exc):
                return None
            _raise(pynvml, ref, name, exc)
    return None


def _raise(pynvml: Any, ref: GpuRef, what: str, exc: BaseException) -> NoReturn:
    if is_lost(pynvml, exc):
        raise _GpuLost(what) from exc
    raise BackendError(f"NVML: {what} failed on {ref}: {exc}") from exc


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def _driver_version(pynvml: Any) -> str | None:
    try:
        return _text(pynvml.nvmlSystemGetDriverVersion()) or None
    except pynvml.NVMLError:
        return None


def _cuda_version(pynvml: Any) -> str | None:
    """NVML's CUDA driver version (e.g. 12080) as ``"12.8"``."""
    for name in ("nvmlSystemGetCudaDriverVersion_v2", "nvmlSystemGetCudaDriverVersion"):
        fn = getattr(pynvml, name, None)
        if fn is None:
            continue
        try:
            version = int(fn())
        except pynvml.NVMLError:
            continue
        return f"{version // 1000}.{version % 1000 // 10}"
    return None
