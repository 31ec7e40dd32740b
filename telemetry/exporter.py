"""Prometheus exporter: the sampler's latest readings as ``dcops_``-prefixed metrics.

:class:`GpuCollector` is a prometheus-client custom collector. A scrape never
touches the GPUs: it renders the :class:`~telemetry.collect.Snapshot` the
sampler keeps (latest reading per GPU, XID counts since start), so a scrape
costs the same whatever NVML is doing. prometheus-client is imported when a
collector is built or a server started, never at module import.

Names follow Prometheus' conventions: base units in the name (watts, joules,
celsius, hertz, bytes, ratio, seconds), ``_total`` only on counters (the
client adds it), no unit for 0/1 state gauges. Labels: ``node``, ``rack``,
``gpu`` (index), ``uuid``, and ``job`` / ``tenant``, empty unless a job holds
the GPU *now* (cardinality stays bounded by the running jobs: a finished job's
series go stale at the next scrape). XID codes outside :data:`KNOWN_XIDS` are
counted under ``xid="other"``. The metric list is in ``docs/telemetry-collection.md``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dcops.errors import DcopsError
from dcops.measurements import ClocksEventReason
from telemetry.collect.sampler import Snapshot
from telemetry.jobmap.model import Allocation, holder

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.registry import CollectorRegistry

PREFIX = "dcops_"
DEFAULT_PORT = 9400
_MIB = 1024 * 1024

#: XID codes with their own label value (NVIDIA's catalog, see FACTS.md); others: "other".
KNOWN_XIDS: frozenset[int] = frozenset(
    {13, 31, 43, 45, 48, 61, 62, 63, 64, 68, 69, 74, 79, 92, 94, 95, 109, 119, 120, 121}
    | set(range(140, 156))
)

#: Throttle reasons exported, as label values (ClocksEventReason names, lower case).
THROTTLE_REASONS: tuple[tuple[str, ClocksEventReason], ...] = tuple(
    (r.name.lower(), r) for r in ClocksEventReason if r.name and r != ClocksEventReason.NONE
)

GPU_LABELS = ("node", "rack", "gpu", "uuid", "job", "tenant")


def xid_label(code: int) -> str:
    return str(code) if code in KNOWN_XIDS else "other"


class AllocationCache:
    """The current allocations from a source (``squeue``...), refreshed at most every ``every_s``.

    A failing refresh keeps the previous list and records the error: a
    scheduler hiccup must not blank every job label.
    """

    def __init__(
        self,
        source: Callable[[], Sequence[Allocation]],
        *,
        every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.every_s = every_s
        self.clock = clock
        self.error: str | None = None
        self._items: list[Allocation] = []
        self._at: float | None = None
        self._lock = threading.Lock()

    def refresh(self, force: bool = False) -> None:
        now = self.clock()
        if not force and self._at is not None and now - self._at < self.every_s:
            return
        try:
            items = list(self.source())
        except DcopsError as exc:
            with self._lock:
                self.error, self._at = str(exc), now
            return
        with self._lock:
            self._items, self.error, self._at = items, None, now

    def current(self) -> list[Allocation]:
        with self._lock:
            return list(self._items)


class GpuCollector:
    """A prometheus-client collector over a sampler's snapshots (see the module docstring)."""

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        allocations: Callable[[], Sequence[Allocation]] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.snapshot = snapshot
        self.allocations = allocations
        self.clock = clock

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        started = time.perf_counter()
        yield from self._families(self.snapshot())
        took = GaugeMetricFamily(
            f"{PREFIX}exporter_scrape_duration_seconds",
            "Time this exporter took to render the metrics of this scrape.",
        )
        took.add_metric([], time.perf_counter() - started)
        yield took

    def _families(self, snap: Snapshot) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        def gauge(name: str, doc: str, extra: Sequence[str] = ()) -> GaugeMetricFamily:
            return GaugeMetricFamily(PREFIX + name, doc, labels=[*GPU_LABELS, *extra])

        def counter(name: str, doc: str, extra: Sequence[str] = ()) -> CounterMetricFamily:
            return CounterMetricFamily(PREFIX + name, doc, labels=[*GPU_LABELS, *extra])

        power = gauge("gpu_power_watts", "GPU power draw (NVML, 1 s average on Ampere+).")
        energy = counter("gpu_energy_joules", "GPU energy since driver load (NVML counter).")
        temp = gauge("gpu_temperature_celsius", "GPU die temperature.")
        clock = gauge("gpu_sm_clock_hertz", "Current SM clock.")
        max_clock = gauge("gpu_sm_clock_max_hertz", "Maximum SM clock.")
        util = gauge(
            "gpu_utilization_ratio", "Fraction of the last sample period the GPU was busy."
        )
        mem_used = gauge("gpu_memory_used_bytes", "GPU memory in use.")
        mem_total = gauge("gpu_memory_total_bytes", "GPU memory size.")
        ecc = counter("gpu_ecc_errors", "Volatile ECC errors since driver load.", ["type"])
        remap_pending = gauge("gpu_remapped_rows_pending", "1 when a row remap awaits a reset.")
        remap_failed = gauge("gpu_remapped_rows_failed", "1 when a row remap failed.")
        xids = counter("gpu_xid_events", "XID events seen since the exporter started.", ["xid"])
        throttle = gauge(
            "gpu_throttle_reasons", "1 when the clocks-event reason is active.", ["reason"]
        )
        nvlink = counter(
            "gpu_nvlink_errors", "NVLink data-link errors (replay, recovery, CRC, ECC)."
        )
        links = gauge("gpu_nvlink_links_active", "NVLink links up.")
        lost = gauge("gpu_lost", "1 when the GPU fell off the bus (XID 79).")
        now = snap.time_s if snap.time_s is not None else self.clock()
        allocations = list(self.allocations()) if self.allocations is not None else []

        for ref in sorted(snap.gpus):
            g = snap.gpus[ref]
            job = holder(allocations, ref.node, ref.index, now) if allocations else None
            labels = [
                ref.node,
                snap.racks.get(ref.node) or "",
                str(ref.index),
                g.uuid,
                job.job_id if job else "",
                (job.tenant or "") if job else "",
            ]
            lost.add_metric(labels, 1.0 if g.lost else 0.0)
            for code, count in _xid_buckets(snap.xid_counts.get(ref, {})).items():
                xids.add_metric([*labels, code], float(count))
            if g.lost:
                continue
            _add(power, labels, g.power_w)
            _add(energy, labels, None if g.energy_mj is None else g.energy_mj / 1000.0)
            _add(temp, labels, g.temperature_c)
            _add(clock, labels, None if g.sm_clock_mhz is None else g.sm_clock_mhz * 1e6)
            _add(
                max_clock, labels, None if g.max_sm_clock_mhz is None else g.max_sm_clock_mhz * 1e6
            )
            _add(util, labels, None if g.utilization_pct is None else g.utilization_pct / 100.0)
            _add(mem_used, labels, None if g.memory_used_mib is None else g.memory_used_mib * _MIB)
            _add(
                mem_total, labels, None if g.memory_total_mib is None else g.memory_total_mib * _MIB
            )
            ecc.add_metric([*labels, "correctable"], float(g.ecc_correctable))
            ecc.add_metric([*labels, "uncorrectable"], float(g.ecc_uncorrectable))
            remap_pending.add_metric(labels, float(g.remapped_rows_pending))
            remap_failed.add_metric(labels, float(g.remapped_rows_failed))
            for name, flag in THROTTLE_REASONS:
                throttle.add_metric([*labels, name], 1.0 if flag in g.clocks_event_reasons else 0.0)
            nvlink.add_metric(labels, float(g.nvlink_error_count))
            _add(links, labels, g.nvlink_links_active)

        yield from (power, energy, temp, clock, max_clock, util, mem_used, mem_total, ecc)
        yield from (remap_pending, remap_failed, xids, throttle, nvlink, links, lost)
        yield from _node_families(snap)


def _add(family: Any, labels: list[str], value: float | int | None) -> None:
    if value is not None:
        family.add_metric(labels, float(value))


def _xid_buckets(counts: Mapping[int, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for code, n in counts.items():
        key = xid_label(code)
        out[key] = out.get(key, 0) + n
    return out


def _node_families(snap: Snapshot) -> Iterator[Any]:
    from prometheus_client.core import GaugeMetricFamily

    up = GaugeMetricFamily(
        f"{PREFIX}node_up", "1 when the node's last read succeeded.", labels=["node", "rack"]
    )
    seen = GaugeMetricFamily(
        f"{PREFIX}node_last_sample_timestamp_seconds",
        "When the node was last read successfully (Unix time).",
        labels=["node", "rack"],
    )
    for node, rack in sorted(snap.racks.items()):
        labels = [node, rack or ""]
        if node in snap.node_errors or node in snap.node_times:
            up.add_metric(labels, 0.0 if node in snap.node_errors else 1.0)
        if node in snap.node_times:
            seen.add_metric(labels, snap.node_times[node])
    yield up
    yield seen


def registry_for(collector: GpuCollector, extra: Sequence[Any] = ()) -> CollectorRegistry:
    """A fresh registry holding ``collector`` and the ``extra`` collectors (other domains'
    gauges the composition root adds, e.g. capacity), no process/platform collectors."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    for other in extra:
        registry.register(other)
    return registry


def start_server(
    collector: GpuCollector,
    *,
    port: int = DEFAULT_PORT,
    address: str = "127.0.0.1",
    extra: Sequence[Any] = (),
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` on ``address:port`` (0: an ephemeral port) in a daemon thread."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr=address, registry=registry_for(collector, extra))


__all__ = [
    "DEFAULT_PORT",
    "GPU_LABELS",
    "KNOWN_XIDS",
    "PREFIX",
    "THROTTLE_REASONS",
    "AllocationCache",
    "GpuCollector",
    "registry_for",
    "start_server",
    "xid_label",
]
