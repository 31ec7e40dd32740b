"""Per-GPU energy intervals from samples: counter deltas, resets, wraps, power fallback.

A **sample** frame has one row per GPU reading (the collector's columns):

=============  ===========================  =========================================
column         type                         meaning
=============  ===========================  =========================================
``node``       string / category            node (compute tray) name
``gpu``        int                          GPU index on the node
``ts_s``       float                        reading time, Unix epoch seconds (UTC)
``power_w``    float, nullable              instantaneous power (NVML power usage)
``energy_mj``  uint64 / int64, nullable     NVML total-energy counter, mJ since
                                            driver load (null: the GPU has none)
=============  ===========================  =========================================

Consecutive readings of one GPU bound an **interval** ``[t0, t1)`` whose energy
is an integer number of millijoules:

- both ends have a counter: ``(c1 - c0) mod 2**64``. A counter that went down
  either **wrapped** (uint64 overflow: the modular delta is plausible, at most
  ``max_power_w * dt``) or was **reset** (driver reload: anything else). A
  wrapped delta is measured; a reset interval is *estimated*: the trapezoid of
  the two power readings when both are known, else the new counter value (the
  energy since the reload: a lower bound).
- otherwise (no counter at one end): the trapezoid of the power readings,
  rounded to whole mJ, *estimated*; a single known power counts as constant
  over the interval; no power at all gives 0 mJ and counts as unmetered.

Every interval carries ``measured`` (True: counter delta) so every figure built
from intervals knows how much of it is measured and how much estimated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from dcops.errors import InputError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
B = npt.NDArray[np.bool_]

#: Columns a sample frame must have (``power_w`` and ``energy_mj`` may be all null).
SAMPLE_COLUMNS: tuple[str, ...] = ("node", "gpu", "ts_s", "power_w", "energy_mj")

#: A counter delta above this many watts times the interval is not a wrap but a reset.
DEFAULT_MAX_POWER_W = 5000.0


@dataclass(frozen=True)
class GpuSamples:
    """Samples as flat arrays, sorted by (GPU, time), one reading per GPU and time."""

    nodes: tuple[str, ...]  # node name of each node code
    node: I64  # node code per row
    gpu: I64
    ts: F64
    power: F64  # NaN where unknown
    counter: U64  # 0 where unknown
    has_counter: B

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, idx: I64 | B) -> GpuSamples:
        return GpuSamples(
            self.nodes,
            self.node[idx],
            self.gpu[idx],
            self.ts[idx],
            self.power[idx],
            self.counter[idx],
            self.has_counter[idx],
        )


def _empty() -> GpuSamples:
    return GpuSamples(
        (),
        np.zeros(0, np.int64),
        np.zeros(0, np.int64),
        np.zeros(0, np.float64),
        np.zeros(0, np.float64),
        np.zeros(0, np.uint64),
        np.zeros(0, np.bool_),
    )


def _counter_column(col: pd.Series) -> tuple[U64, B]:
    import pandas as pd

    dtype = col.dtype
    if not isinstance(dtype, np.dtype):  # pandas extension dtypes: UInt64, Int64, Float64...
        mask = col.isna().to_numpy()
        if pd.api.types.is_integer_dtype(dtype):
            raw = col.to_numpy(dtype="uint64" if dtype.name == "UInt64" else "int64", na_value=0)
            return raw.astype(np.int64).view(np.uint64) if raw.dtype != np.uint64 else raw, ~mask
        col = pd.to_numeric(col.astype("object"), errors="coerce")
        dtype = col.dtype
    if dtype == np.uint64:
        return col.to_numpy(), np.ones(len(col), np.bool_)
    if isinstance(dtype, np.dtype) and np.issubdtype(dtype, np.integer):
        # int64 storage of a uint64 counter: reinterpret (values past 2**63 come back).
        return col.to_numpy(np.int64).view(np.uint64), np.ones(len(col), np.bool_)
    if dtype == np.dtype(object):
        col = pd.to_numeric(col, errors="coerce")
    values = col.to_numpy(np.float64)
    ok = np.isfinite(values) & (values >= 0)
    return np.where(ok, values, 0.0).astype(np.uint64), ok


def to_gpu_samples(samples: pd.DataFrame) -> GpuSamples:
    """Check and flatten a sample frame; InputError naming what is missing or wrong."""
    import pandas as pd

    missing = [c for c in SAMPLE_COLUMNS if c not in samples.columns]
    if missing:
        raise InputError(
            f"samples lack column(s) {', '.join(missing)} (need {', '.join(SAMPLE_COLUMNS)})"
        )
    if not len(samples):
        return _empty()
    node_col = samples["node"]
    if node_col.isna().any() or samples["gpu"].isna().any() or samples["ts_s"].isna().any():
        raise InputError("samples have rows without node, gpu or ts_s")
    if isinstance(node_col.dtype, pd.CategoricalDtype):
        codes = node_col.cat.codes.to_numpy().astype(np.int64)
        names = tuple(str(c) for c in node_col.cat.categories)
    else:
        codes_arr, uniques = pd.factorize(node_col.astype(str))
        codes = codes_arr.astype(np.int64)
        names = tuple(str(u) for u in uniques)
    try:
        gpu = samples["gpu"].to_numpy(np.int64)
        ts = samples["ts_s"].to_numpy(np.float64)
        power = pd.to_numeric(samples["power_w"], errors="raise").to_numpy(
            np.float64, na_value=np.nan
        )
    except (TypeError, ValueError) as exc:
        raise InputError(f"samples: gpu, ts_s and power_w must be numbers ({exc})") from exc
    if not np.isfinite(ts).all():
        raise InputError("samples: ts_s must be finite epoch seconds")
    counter, has_counter = _counter_column(samples["energy_mj"])
    return _sorted(GpuSamples(names, codes, gpu, ts, power, counter, has_counter))


def arrow_to_gpu_samples(table: pa.Table) -> GpuSamples:
    """:func:`to_gpu_samples` for an Arrow table, straight from its columns (no pandas).

    ``node`` may be a string or dictionary column; ``energy_mj`` an unsigned or
    signed integer column (int64 storage of a uint64 counter is reinterpreted),
    or a float one (negative, NaN and null read as "no counter").
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    missing = [c for c in SAMPLE_COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(
            f"samples lack column(s) {', '.join(missing)} (need {', '.join(SAMPLE_COLUMNS)})"
        )
    if not table.num_rows:
        return _empty()
    cols = {c: table.column(c) for c in SAMPLE_COLUMNS}
    if any(cols[c].null_count for c in ("node", "gpu", "ts_s")):
        raise InputError("samples have rows without node, gpu or ts_s")
    node = cols["node"]
    if not pa.types.is_dictionary(node.type):
        node = pc.dictionary_encode(node)
    node = node.unify_dictionaries() if node.num_chunks > 1 else node
    chunk0 = node.chunk(0) if node.num_chunks else None
    dictionary = chunk0.dictionary if chunk0 is not None else pa.array([], pa.string())
    codes = np.concatenate(
        [np.asarray(c.indices.to_numpy(zero_copy_only=False), np.int64) for c in node.chunks]
    )
    names = tuple(str(v) for v in dictionary.to_pylist())
    try:
        gpu = np.asarray(cols["gpu"].to_numpy(), np.int64)
        ts = np.asarray(cols["ts_s"].to_numpy(), np.float64)
        power = np.asarray(
            pc.fill_null(cols["power_w"].cast(pa.float64()), np.nan).to_numpy(), np.float64
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError, ValueError) as exc:
        raise InputError(f"samples: gpu, ts_s and power_w must be numbers ({exc})") from exc
    if not np.isfinite(ts).all():
        raise InputError("samples: ts_s must be finite epoch seconds")
    energy = cols["energy_mj"]
    has_counter = np.asarray(energy.is_valid().to_numpy(zero_copy_only=False), np.bool_)
    etype = energy.type
    if pa.types.is_unsigned_integer(etype):
        counter = np.asarray(pc.fill_null(energy, 0).to_numpy(), np.uint64)
    elif pa.types.is_integer(etype):
        raw = np.asarray(pc.fill_null(energy, 0).to_numpy(), np.int64)
        counter = raw.view(np.uint64)
    elif pa.types.is_floating(etype) or pa.types.is_null(etype):
        values = np.asarray(pc.fill_null(energy.cast(pa.float64()), np.nan).to_numpy(), np.float64)
        ok = np.isfinite(values) & (values >= 0)
        has_counter &= ok
        counter = np.where(ok, values, 0.0).astype(np.uint64)
    else:
        raise InputError(f"samples: energy_mj must be a number column, not {etype}")
    return _sorted(GpuSamples(names, codes, gpu, ts, power, counter, has_counter))


def _stable_order(key: I64) -> I64:
    """A stable argsort of GPU keys: radix sort when the keys fit in 16 bits."""
    if len(key) and int(key.max()) < 2**16 and int(key.min()) >= 0:
        order: I64 = np.argsort(key.astype(np.uint16), kind="stable")
        return order
    order = np.argsort(key, kind="stable")
    return order


def _gpu_key(s: GpuSamples) -> I64:
    width = int(s.gpu.max()) + 1 if len(s) else 1
    if len(s) and int(s.gpu.min()) < 0:
        raise InputError("samples: gpu indexes must be >= 0")
    key: I64 = s.node * width + s.gpu
    return key


def _sorted(s: GpuSamples) -> GpuSamples:
    """Sort by (GPU, time) unless already sorted; drop repeated (GPU, time) readings."""
    if not len(s):
        return s
    key = _gpu_key(s)
    dk = np.diff(key)
    if not ((dk > 0) | ((dk == 0) & (np.diff(s.ts) >= 0))).all():
        grid = _grid_transpose(s, key)
        if grid is not None:  # time-major, every GPU at every time (as collected)
            return _drop_repeats(grid, _gpu_key(grid))
        # time-major (as collected): a stable sort by GPU; else by GPU, then time
        time_major = bool((np.diff(s.ts) >= 0).all())
        order = _stable_order(key) if time_major else np.lexsort((s.ts, key))
        s = s.take(order)
        key = key[order]
    return _drop_repeats(s, key)


def _grid_transpose(s: GpuSamples, key: I64) -> GpuSamples | None:
    """Time-major rows with the same ascending GPU keys at every time, transposed.

    The collector writes one batch per time, GPUs in one order: then sorting by
    (GPU, time) is a transpose (a strided copy, no gather). None when not so.
    """
    n = len(key)
    g = int(np.searchsorted(s.ts, s.ts[0], side="right"))  # rows of the first time
    if g < 2 or n % g or not (np.diff(key[:g]) > 0).all():
        return None
    t = n // g
    ts = s.ts.reshape(t, g)
    if not ((key.reshape(t, g) == key[:g]).all() and (ts == ts[:, :1]).all()):
        return None
    if t > 1 and not (np.diff(ts[:, 0]) > 0).all():
        return None

    def tr(a: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        return a.reshape(t, g).T.ravel()

    return GpuSamples(
        s.nodes,
        tr(s.node),  # type: ignore[arg-type]
        tr(s.gpu),  # type: ignore[arg-type]
        tr(s.ts),  # type: ignore[arg-type]
        tr(s.power),  # type: ignore[arg-type]
        tr(s.counter),  # type: ignore[arg-type]
        tr(s.has_counter),  # type: ignore[arg-type]
    )


def _drop_repeats(s: GpuSamples, key: I64) -> GpuSamples:
    dup = (key[1:] == key[:-1]) & (s.ts[1:] == s.ts[:-1])
    if dup.any():  # keep the last reading of a repeated time
        keep = np.ones(len(s), np.bool_)
        keep[:-1] = ~dup
        s = s.take(keep)
    return s


def concat_samples(first: GpuSamples, second: GpuSamples) -> GpuSamples:
    """Both sample sets as one (node codes merged), sorted by (GPU, time).

    Every reading of ``first`` must be before those of the same GPU in ``second``.
    """
    if not len(first):
        return second
    if not len(second):
        return first
    if first.nodes == second.nodes:  # the usual case: chunks of one store
        names = list(first.nodes)
        second_node = second.node
    else:
        names = list(first.nodes)
        index = {n: i for i, n in enumerate(names)}
        remap = np.empty(len(second.nodes), np.int64)
        for i, n in enumerate(second.nodes):
            if n not in index:
                index[n] = len(names)
                names.append(n)
            remap[i] = index[n]
        second_node = remap[second.node]
    width = max(int(first.gpu.max()), int(second.gpu.max())) + 1
    k1 = first.node * width + first.gpu
    k2 = second_node * width + second.gpu
    if first.nodes == second.nodes and (len(k1) < 2 or (np.diff(k1) > 0).all()):
        # One carried reading per GPU, same node codes (the ledger's case; ``second``
        # is sorted by these keys): insert each in front of its GPU's run, a copy
        # instead of a sort and a gather.
        pos = np.searchsorted(k2, k1, side="left")
        return GpuSamples(
            tuple(names),
            np.insert(second_node, pos, first.node),
            np.insert(second.gpu, pos, first.gpu),
            np.insert(second.ts, pos, first.ts),
            np.insert(second.power, pos, first.power),
            np.insert(second.counter, pos, first.counter),
            np.insert(second.has_counter, pos, first.has_counter),
        )
    merged = GpuSamples(
        tuple(names),
        np.concatenate([first.node, second_node]),
        np.concatenate([first.gpu, second.gpu]),
        np.concatenate([first.ts, second.ts]),
        np.concatenate([first.power, second.power]),
        np.concatenate([first.counter, second.counter]),
        np.concatenate([first.has_counter, second.has_counter]),
    )
    # Each part is sorted by (GPU, time) and ``first`` comes first in time: a stable
    # sort by GPU keeps that order (and is fast on two sorted runs).
    key = _gpu_key(merged)
    order = _stable_order(key)
    return merged.take(order)


@dataclass(frozen=True)
class Intervals:
    """Per-GPU energy intervals, sorted by (GPU key, t0); see the module docstring."""

    nodes: tuple[str, ...]
    node: I64
    gpu: I64
    key: I64  # node code * width + gpu: one integer per GPU, contiguous runs
    width: int
    t0: F64
    t1: F64
    energy_mj: I64
    measured: B
    resets: int = 0
    wraps: int = 0
    unmetered: int = 0  # intervals with neither counter nor power
    estimated_keys: frozenset[int] = field(default_factory=frozenset)

    def __len__(self) -> int:
        return len(self.t0)


def intervals_from_samples(
    s: GpuSamples, *, max_power_w: float = DEFAULT_MAX_POWER_W
) -> tuple[Intervals, GpuSamples]:
    """Energy intervals between consecutive readings, and each GPU's last reading.

    The last readings are the *carry*: pass them in front of the next chunk of
    the same GPUs (:func:`concat_samples`) so no interval is lost at a chunk edge.
    """
    key = _gpu_key(s) if len(s) else np.zeros(0, np.int64)
    if len(s) < 2:
        empty = np.zeros(0, np.int64)
        return (
            Intervals(
                s.nodes,
                empty,
                empty,
                empty,
                1,
                np.zeros(0),
                np.zeros(0),
                empty,
                np.zeros(0, np.bool_),
            ),
            s,
        )
    same = key[1:] == key[:-1]
    last = np.ones(len(s), np.bool_)
    last[:-1] = ~same
    # Consecutive pairs as views (no gather); compress to same-GPU pairs at the end.
    c0, c1 = s.counter[:-1], s.counter[1:]
    both = s.has_counter[:-1] & s.has_counter[1:] & same
    delta = c1 - c0  # uint64: modular on purpose
    went_down = both & (c1 < c0)
    if went_down.any():
        dt_all = s.ts[1:] - s.ts[:-1]
        cap = np.floor(max_power_w * dt_all * 1000.0)
        wrapped = went_down & (delta.astype(np.float64) <= cap)
        reset = went_down & ~wrapped
    else:
        wrapped = reset = np.zeros(len(same), np.bool_)
    measured_all = both & ~reset
    energy_all = delta.view(np.int64)  # measured intervals: the counter delta
    est = np.flatnonzero(same & ~measured_all)
    if len(est):
        energy_all = energy_all.copy()
        # Power is needed only where there is no usable counter delta.
        p0 = s.power[est]
        p1 = s.power[est + 1]
        k0 = np.isfinite(p0)
        k1 = np.isfinite(p1)
        p0c = np.where(k0, np.maximum(p0, 0.0), 0.0)
        p1c = np.where(k1, np.maximum(p1, 0.0), 0.0)
        mean_w = np.where(k0 & k1, (p0c + p1c) / 2.0, np.where(k0, p0c, p1c))
        dt_est = s.ts[est + 1] - s.ts[est]
        trapezoid = np.rint(mean_w * dt_est * 1000.0).astype(np.int64)
        reset_no_power = reset[est] & ~(k0 & k1)
        energy_all[est] = np.where(reset_no_power, s.counter[est + 1].astype(np.int64), trapezoid)
        unmetered = ~both[est] & ~(k0 | k1)
    else:
        unmetered = np.zeros(0, np.bool_)
    est_keys = frozenset(int(k) for k in np.unique(key[est]))
    t0 = s.ts[:-1][same]
    t1 = s.ts[1:][same]
    energy = energy_all[same]
    measured = measured_all[same]
    i0_node = s.node[:-1][same]
    i0_gpu = s.gpu[:-1][same]
    i0_key = key[:-1][same]
    intervals = Intervals(
        nodes=s.nodes,
        node=i0_node,
        gpu=i0_gpu,
        key=i0_key,
        width=int(s.gpu.max()) + 1,
        t0=t0,
        t1=t1,
        energy_mj=energy,
        measured=measured,
        resets=int(reset.sum()),
        wraps=int(wrapped.sum()),
        unmetered=int(unmetered.sum()),
        estimated_keys=est_keys,
    )
    return intervals, s.take(last)
