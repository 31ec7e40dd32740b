"""SimCollectiveEngine: nccl-tests-like collective sweeps on simulated GPUs.

The model, per size ``S`` bytes over ``n`` members:

- the group's scope decides its peak bus bandwidth, from the SKU profile:
  one node -> ``intra_node_busbw_gbps``; one NVLink domain ->
  ``all_reduce_busbw_gbps``; several domains -> ``inter_domain_busbw_gbps``
  (the same figure for every op, as nccl-tests' busbw is meant to be);
- a collective runs at its slowest member: peak x min over members of the
  member's link factor (``nvlink_degraded`` factor x active/total links);
- ``time = latency + S / algbw_peak``, with ``algbw_peak = peak / bus_factor``
  and a latency of ``base(scope) x (1 + log2 n / 2)``, so small sizes are
  latency-bound; then x (1 + noise x N(0, 1));
- ``algbw = S / time`` and ``busbw = algbw x bus_factor(op, n)``, exactly.

``run_batch`` models disjoint groups running at the same time: NVL72 trays
share no GPU links and the NVLink switch is non-blocking, so every group of a
batch gets exactly the result it would get alone (its own noise stream) and
holds its GPUs for its modelled sweep time (``elapsed_s``: the sum of the
timed iterations); the batch lasts as long as its slowest group. A group
that fails is an outcome with its error (held 0 s, or ``timeout_s`` when it
hangs).

``wrong`` is 0, or > 0 when a member has ``sdc``. A member that is lost,
missing, or has all its NVLink links down makes the collective fail with a
:class:`~dcops.errors.BackendError`, as NCCL would. Noise is keyed by the member
set and op, with that group's own call counter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from dcops.collective_batch import check_disjoint
from dcops.errors import BackendError, CommandTimeout, DcopsError, UnknownNameError
from dcops.measurements import (
    COLLECTIVES,
    BandwidthSample,
    CollectiveOutcome,
    CollectiveResult,
    CollectiveRow,
    GpuRef,
    bus_factor,
)
from dcops.sim.model import I64, FleetModel
from dcops.sim.noise import Stream, group_key, normals

DTYPE = "float"
DTYPE_BYTES = 4
#: Base latency (µs) of one collective step by scope.
BASE_LATENCY_US = {"node": 8.0, "domain": 12.0, "inter_domain": 25.0}
_REDOP = {"all_reduce": "sum", "reduce_scatter": "sum", "reduce": "sum"}
_ROOTED = ("broadcast", "reduce")


class SimCollectiveEngine:
    """CollectiveEngine over a :class:`~dcops.sim.model.FleetModel`."""

    backend = "sim"

    def __init__(self, model: FleetModel) -> None:
        self.model = model

    def run(
        self,
        op: str,
        members: Sequence[GpuRef],
        *,
        sizes_bytes: Sequence[int],
        iterations: int = 5,
        timeout_s: float | None = None,
    ) -> CollectiveResult:
        model = self.model
        model.refresh()
        if op not in COLLECTIVES:
            raise UnknownNameError("collective", op, COLLECTIVES)
        if not members:
            raise ValueError("a collective needs at least one member")
        if len(set(members)) != len(members):
            raise ValueError("a collective's members must be distinct GPUs")
        idx = model.gpu_indexes(members)
        model.check_nodes((g.node for g in members), timeout_s)
        self._check_usable(op, members, idx)

        n = len(members)
        scope, peak_gbps = self._peak(idx)
        factor = bus_factor(op, n)
        link = model.state.link_factor[idx] * (
            1.0 - model.state.links_down[idx] / np.maximum(1, model.nominal.nvlink_links[idx])
        )
        busbw_peak = peak_gbps * float(np.min(link))
        # One rank moves nothing over links: nccl-tests reports busbw 0; time is a local copy.
        algbw_peak = busbw_peak / factor if factor > 0 else busbw_peak
        latency_us = BASE_LATENCY_US[scope] * (1.0 + math.log2(n) / 2.0)

        key = group_key(idx.tolist(), op)
        counter = model.counters.take_key(Stream.COLLECTIVE, key)
        sizes = [int(s) for s in sizes_bytes]
        z = normals(
            model.seed,
            Stream.COLLECTIVE,
            np.array([key], dtype=np.uint64),
            np.array([counter], dtype=np.uint64),
            max(1, 2 * len(sizes)),
        )[0]
        sdc_members = int(np.count_nonzero(model.state.sdc[idx]))
        rows: list[CollectiveRow] = []
        total_s = 0.0
        for j, size in enumerate(sizes):
            count = size // DTYPE_BYTES
            wrong = sdc_members * max(1, count // 4096) if sdc_members and count else 0
            samples = []
            for lane in (2 * j, 2 * j + 1):
                ideal_us = latency_us + size / (algbw_peak * 1e9) * 1e6
                time_us = ideal_us * max(0.05, 1.0 + model.noise * float(z[lane]))
                algbw = size / (time_us * 1e-6) / 1e9
                samples.append(BandwidthSample(time_us, algbw, algbw * factor, wrong))
                total_s += time_us * 1e-6 * iterations
            rows.append(
                CollectiveRow(
                    size_bytes=size,
                    count=count,
                    dtype=DTYPE,
                    redop=_REDOP.get(op),
                    root=0 if op in _ROOTED else None,
                    out_of_place=samples[0],
                    in_place=samples[1],
                )
            )
        if timeout_s is not None and total_s > timeout_s:
            raise CommandTimeout(
                members[0].node, f"{op} sweep needs {total_s:.3g} s, over {timeout_s:g} s"
            )
        return CollectiveResult(
            op=op,
            members=tuple(members),
            rows=tuple(rows),
            backend=self.backend,
            notes=(f"scope={scope}", f"ranks={n}"),
            elapsed_s=total_s,
        )

    def run_batch(
        self,
        op: str,
        groups: Sequence[Sequence[GpuRef]],
        *,
        sizes_bytes: Sequence[int],
        iterations: int = 5,
        timeout_s: float | None = None,
    ) -> list[CollectiveOutcome]:
        check_disjoint(groups)
        out: list[CollectiveOutcome] = []
        for members in groups:
            try:
                result = self.run(
                    op, members, sizes_bytes=sizes_bytes, iterations=iterations,
                    timeout_s=timeout_s,
                )  # fmt: skip
            except DcopsError as exc:
                held = float(timeout_s or 0.0) if isinstance(exc, CommandTimeout) else 0.0
                out.append(CollectiveOutcome(tuple(members), None, exc, held))
                continue
            out.append(CollectiveOutcome(tuple(members), result, None, result.elapsed_s or 0.0))
        return out

    def _check_usable(self, op: str, members: Sequence[GpuRef], idx: I64) -> None:
        state = self.model.state
        for ref, g in zip(members, idx.tolist(), strict=True):
            if state.lost[g]:
                why = "fell off the bus"
            elif state.missing[g]:
                why = "is not present"
            elif len(members) > 1 and state.links_down[g] >= self.model.nominal.nvlink_links[g] > 0:
                why = "has no active NVLink link"
            else:
                continue
            raise BackendError(
                f"{op} over {len(members)} GPUs failed: {ref} {why} (NCCL: unhandled system error)"
            )

    def _peak(self, idx: I64) -> tuple[str, float]:
        model = self.model
        node_ids = np.unique(model.node_of_gpu[idx]).tolist()
        profiles = [model.profiles[i].collectives for i in node_ids]
        if len(node_ids) == 1:
            return "node", min(p.intra_node_busbw_gbps for p in profiles)
        domains = {model.domain_of_node[i] for i in node_ids}
        if len(domains) == 1:
            return "domain", min(p.all_reduce_busbw_gbps for p in profiles)
        return "inter_domain", min(p.inter_domain_busbw_gbps for p in profiles)
