"""The one job vocabulary: normalized job states, shared by the scheduler bridge and telemetry.

Backends map their own words onto these (Slurm's ``NODE_FAIL`` and ``BOOT_FAIL``
are both :attr:`JobState.NODE_FAIL`; Kubernetes' ``Succeeded`` is
:attr:`JobState.COMPLETED`); reports and the job store use the values.
``UNKNOWN`` is what a live status says when the backend cannot tell; the
telemetry job store never records it.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """The normalized final (or current) state of a job."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    NODE_FAIL = "node_fail"
    PREEMPTED = "preempted"
    OUT_OF_MEMORY = "out_of_memory"
    RUNNING = "running"
    PENDING = "pending"
    UNKNOWN = "unknown"
