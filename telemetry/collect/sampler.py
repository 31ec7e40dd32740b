"""Sampler: read a node's GPUs through any GpuProbe at a fixed interval, store the samples.

::

    sampler = Sampler(probe, ["gb200-r01-t01"], interval_s=10, clock=SystemClock(),
                      store=sample_store(data_dir))
    sampler.run(duration_s=3600)          # or sampler.sample_once(); sampler.flush()

Side effects come in through two objects, so the daemon loop runs in a test
without waiting: the probe (NvmlProbe on a node, SimGpuProbe in
tests and benchmarks) and the :class:`SamplerClock` (``now`` and an
interruptible ``sleep``; :class:`SimClock` advances a simulated fleet instead
of waiting).

Ticks are aligned on multiples of ``interval_s`` so that the samplers of many
nodes read at the same instants. Rows are buffered and written as one Parquet
part per flush: when ``max_buffer_rows`` is reached, when ``flush_every_s``
has passed since the last write, and on stop; memory is bounded by
``max_buffer_rows``. Nodes are read in parallel (``concurrency`` at once,
each within ``timeout_s``), so a hung node costs a tick one timeout, not one per
node. A node that cannot be read (unreachable, hung, NVML
failed) yields no rows for that tick; its error is kept in
:attr:`Sampler.node_errors` and the tick's :class:`TickResult`.

XIDs: a probe may report the same event in several readings (the simulator
reports a GPU's XIDs until repaired; NvmlProbe hands each over once). A row's
``xids`` column holds only codes not seen before for that GPU, keyed by
(code, timestamp), so counting the column counts events once.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from dcops.errors import DcopsError
from dcops.measurements import GpuReading, GpuRef, NodeReading
from dcops.per_node import each_node
from dcops.ports import GpuProbe
from telemetry.collect.schema import SampleColumns

if TYPE_CHECKING:
    from dcops.sim import SimFleet
    from telemetry.collect.store import PartitionedStore

DEFAULT_INTERVAL_S = 10.0
DEFAULT_MAX_BUFFER_ROWS = 20_000
DEFAULT_FLUSH_EVERY_S = 600.0
DEFAULT_CONCURRENCY = 32
_XID_MEMORY = 256  # (code, timestamp) keys remembered per GPU


def _ignore(node: str, count: int) -> None:
    return None


class SamplerClock(Protocol):
    """Time as the sampler sees it."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        """Wait ``seconds`` or until ``stop`` is set, whichever comes first."""
        ...


class SystemClock:
    """The wall clock; ``sleep`` wakes up early when ``stop`` is set (SIGTERM)."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        if seconds > 0:
            stop.wait(seconds)


class SimClock:
    """A simulated fleet's virtual clock: ``sleep`` advances the fleet (no real waiting)."""

    def __init__(self, fleet: SimFleet) -> None:
        self.fleet = fleet

    def now(self) -> float:
        return self.fleet.clock.now()

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        if seconds > 0 and not stop.is_set():
            self.fleet.advance(seconds)


@dataclass(frozen=True)
class TickResult:
    """What one sampling instant read."""

    time_s: float
    rows: int
    nodes_read: tuple[str, ...]
    errors: Mapping[str, str] = field(default_factory=dict)  # node -> one-line error


@dataclass(frozen=True)
class RunResult:
    """What a run of the loop (or one ``--once`` tick) did."""

    ticks: int
    rows: int
    files: tuple[str, ...]
    errors: Mapping[str, str]  # node -> last error seen

    def as_dict(self) -> dict[str, object]:
        return {
            "ticks": self.ticks,
            "rows": self.rows,
            "files": list(self.files),
            "errors": dict(self.errors),
        }


@dataclass(frozen=True)
class Snapshot:
    """The latest reading of every GPU, for an exporter (copied under the lock)."""

    time_s: float | None
    gpus: Mapping[GpuRef, GpuReading]
    racks: Mapping[str, str | None]
    xid_counts: Mapping[GpuRef, Mapping[int, int]]  # events seen since the sampler started
    node_errors: Mapping[str, str]
    node_times: Mapping[str, float]


class Sampler:
    """Samples ``nodes`` through ``probe`` every ``interval_s`` (see the module docstring)."""

    def __init__(
        self,
        probe: GpuProbe,
        nodes: Sequence[str],
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: SamplerClock | None = None,
        *,
        store: PartitionedStore | None = None,
        racks: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        max_buffer_rows: int = DEFAULT_MAX_BUFFER_ROWS,
        flush_every_s: float = DEFAULT_FLUSH_EVERY_S,
        on_tick: Callable[[TickResult], None] | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        on_answer: Callable[[str], None] | None = None,
    ) -> None:
        if not interval_s > 0 or not math.isfinite(interval_s):
            raise ValueError("interval_s must be a positive number of seconds")
        if max_buffer_rows < 1:
            raise ValueError("max_buffer_rows must be at least 1")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.probe = probe
        self.nodes = tuple(nodes)
        self.interval_s = float(interval_s)
        self.clock: SamplerClock = clock or SystemClock()
        self.store = store
        self.racks = dict(racks or {})
        self.timeout_s = timeout_s if timeout_s is not None else max(self.interval_s, 5.0)
        self.max_buffer_rows = max_buffer_rows
        self.flush_every_s = flush_every_s
        self.on_tick = on_tick
        self.concurrency = concurrency
        self.on_answer = on_answer
        self.stop_event = threading.Event()
        self.buffer = SampleColumns()
        self.files_written: list[str] = []
        self.node_errors: dict[str, str] = {}
        self._lock = threading.Lock()
        self._latest: dict[GpuRef, GpuReading] = {}
        self._node_times: dict[str, float] = {}
        self._latest_time: float | None = None
        self._xid_seen: dict[GpuRef, deque[tuple[int, float]]] = {}
        self._xid_counts: dict[GpuRef, Counter[int]] = {}
        self._last_flush: float | None = None

    # -- one tick -------------------------------------------------------------------

    def sample_once(self) -> TickResult:
        """Read every node now, buffer its rows, flush if the buffer is due."""
        now = self.clock.now()
        if self._last_flush is None:
            self._last_flush = now
        errors: dict[str, str] = {}
        read: list[str] = []
        rows = 0
        for node, outcome in self._read_all().items():
            if isinstance(outcome, DcopsError):
                errors[node] = str(outcome)
                continue
            read.append(node)
            rows += self._take(outcome)
        with self._lock:
            for node in read:
                self.node_errors.pop(node, None)
            self.node_errors.update(errors)
            self._latest_time = now
        if len(self.buffer) >= self.max_buffer_rows or (
            now - self._last_flush >= self.flush_every_s
        ):
            self.flush()
        result = TickResult(time_s=now, rows=rows, nodes_read=tuple(read), errors=errors)
        if self.on_tick is not None:
            self.on_tick(result)
        return result

    def _read_all(self) -> dict[str, NodeReading | DcopsError]:
        """Every node read in parallel (a hung node costs the tick one timeout, not one
        per node); the outcomes in the order of ``nodes``."""

        def read(node: str) -> NodeReading | DcopsError:
            try:
                return self.probe.read(node, timeout_s=self.timeout_s)
            except DcopsError as exc:
                return exc

        on_answer = self.on_answer
        workers = max(1, min(self.concurrency, len(self.nodes)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dcops-sample") as pool:
            return each_node(
                pool,
                read,
                self.nodes,
                answered=(lambda node, count: on_answer(node)) if on_answer else _ignore,
            )

    def _take(self, reading: NodeReading) -> int:
        with self._lock:
            for g in reading.gpus:
                self._latest[g.gpu] = g
            self._node_times[reading.node] = reading.timestamp_s
            return self.buffer.add_reading(
                reading, rack=self.racks.get(reading.node), new_xids=self._new_xids
            )

    def _new_xids(self, g: GpuReading) -> list[int]:
        if not g.xids:
            return []
        seen = self._xid_seen.setdefault(g.gpu, deque(maxlen=_XID_MEMORY))
        fresh = []
        for event in g.xids:
            key = (event.code, event.timestamp_s)
            if key in seen:
                continue
            seen.append(key)
            fresh.append(event.code)
        if fresh:
            self._xid_counts.setdefault(g.gpu, Counter()).update(fresh)
        return fresh

    # -- storage --------------------------------------------------------------------

    def flush(self) -> list[str]:
        """Write the buffered rows as new Parquet parts (none without a store); the files."""
        with self._lock:
            self._last_flush = self.clock.now()
            if self.store is None or not len(self.buffer):
                self.buffer.clear()
                return []
            table = self.buffer.to_table()
            # Cleared only after a successful write: a failing store loses nothing
            # buffered (StoreError reaches the caller, the next flush retries).
            paths = [str(p) for p in self.store.append(table)]
            self.buffer.clear()
        self.files_written.extend(paths)
        return paths

    # -- the loop -------------------------------------------------------------------

    def next_tick(self, now: float) -> float:
        """The next multiple of ``interval_s`` strictly after ``now``."""
        return (math.floor(now / self.interval_s) + 1) * self.interval_s

    def run(self, *, duration_s: float | None = None, max_ticks: int | None = None) -> RunResult:
        """Sample until ``stop()``, ``duration_s`` elapsed or ``max_ticks`` ticks; then flush.

        The first tick is immediate; later ones fall on multiples of the interval.
        A tick that overran the interval skips the missed instants (no bursts).
        """
        start = self.clock.now()
        deadline = None if duration_s is None else start + duration_s
        ticks = rows = 0
        files_before = len(self.files_written)
        try:
            while not self.stop_event.is_set():
                result = self.sample_once()
                ticks += 1
                rows += result.rows
                if max_ticks is not None and ticks >= max_ticks:
                    break
                now = self.clock.now()
                wake = self.next_tick(now)
                if deadline is not None and wake >= deadline:
                    break
                self.clock.sleep(wake - now, self.stop_event)
        finally:
            self.flush()
        with self._lock:
            errors = dict(self.node_errors)
        return RunResult(
            ticks=ticks, rows=rows, files=tuple(self.files_written[files_before:]), errors=errors
        )

    def stop(self) -> None:
        """Ask the loop to end after the current tick (safe from a signal handler)."""
        self.stop_event.set()

    # -- for exporters ----------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                time_s=self._latest_time,
                gpus=dict(self._latest),
                racks={n: self.racks.get(n) for n in self.nodes},
                xid_counts={g: dict(c) for g, c in self._xid_counts.items()},
                node_errors=dict(self.node_errors),
                node_times=dict(self._node_times),
            )
