"""Job stability analytics: pure functions from a job frame to plain results.

Every function takes a frame with the job schema (:mod:`telemetry.jobs`) and
does no I/O. Definitions (also in ``docs/telemetry.md``):

- **runtime** of a job: ``end_time - start_time``, known only when both are.
- **GPU-hours** of a job: ``gpus * runtime`` in hours, known when gpus and
  runtime are.
- **shares**: a state's part of the total over all states; every share is 0
  when the total is 0 (never NaN), and otherwise the shares sum to 1.
- **failure**: a job whose state is in ``failure_states`` (default
  :data:`telemetry.jobs.FAILURE_STATES`: failed, node_fail, out_of_memory).
- **node-days** of a job: ``num_nodes * runtime`` in days, known when both are.
  Failures per 1,000 node-days counts failures and node-days over the same jobs:
  those whose node-days are known.
- **MTTF** of a job-size bucket: the runtime hours of the bucket's jobs with a
  known runtime (whatever their state, running ones included), divided by the
  number of those jobs that failed; ``None`` when none failed.

One module per concept, every name re-exported here:

- :mod:`~telemetry.stability.frame`: runtime, GPU-hours, :func:`filter_jobs`, the state check;
- :mod:`~telemetry.stability.outcomes`: jobs, GPUs and GPU-hours by state, with shares;
- :mod:`~telemetry.stability.failures`: failures per 1,000 node-days;
- :mod:`~telemetry.stability.mttf`: MTTF by job-size bucket;
- :mod:`~telemetry.stability.report`: the ``report stability`` bundle of the three above;
- :mod:`~telemetry.stability.restarts`: restart chains and ETTR;
- :mod:`~telemetry.stability.interruptions`: interruptions charged to nodes, with exposure;
- :mod:`~telemetry.stability.lemons`: lemon nodes ranked from those interruptions;
- :mod:`~telemetry.stability.waste`: badput (GPU-hours and energy of jobs that did not complete).
"""

from __future__ import annotations

from telemetry.stability.failures import FailureRate, failure_rate
from telemetry.stability.frame import BADPUT_STATES, filter_jobs, gpu_hours, runtime_hours
from telemetry.stability.interruptions import XID_COLUMNS, node_interruptions
from telemetry.stability.lemons import LemonNode, lemon_nodes
from telemetry.stability.mttf import SIZE_BUCKETS, SizeBucketMttf, mttf_by_size, size_bucket
from telemetry.stability.outcomes import (
    OutcomeSummary,
    StateOutcome,
    outcome_shares,
    outcome_summary,
)
from telemetry.stability.report import StabilityReport, stability_report
from telemetry.stability.restarts import ChainEttr, EttrSummary, chain_roots, ettr
from telemetry.stability.waste import Badput, badput

__all__ = [
    "BADPUT_STATES",
    "SIZE_BUCKETS",
    "XID_COLUMNS",
    "Badput",
    "ChainEttr",
    "EttrSummary",
    "FailureRate",
    "LemonNode",
    "OutcomeSummary",
    "SizeBucketMttf",
    "StabilityReport",
    "StateOutcome",
    "badput",
    "chain_roots",
    "ettr",
    "failure_rate",
    "filter_jobs",
    "gpu_hours",
    "lemon_nodes",
    "mttf_by_size",
    "node_interruptions",
    "outcome_shares",
    "outcome_summary",
    "runtime_hours",
    "size_bucket",
    "stability_report",
]
