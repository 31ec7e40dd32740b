"""GPU telemetry collection: the sampler, the sample schema and the day-partitioned store.

``telemetry.collect.sampler`` imports no pyarrow; the store and the schema's
``sample_schema()`` import it on first use. See ``docs/telemetry-collection.md``.
"""

from telemetry.collect.sampler import (
    RunResult,
    Sampler,
    SamplerClock,
    SimClock,
    Snapshot,
    SystemClock,
    TickResult,
)
from telemetry.collect.schema import SAMPLE_COLUMNS, SampleColumns, sample_schema
from telemetry.collect.store import PartitionedStore, sample_store, samples_dir

__all__ = [
    "SAMPLE_COLUMNS",
    "PartitionedStore",
    "RunResult",
    "SampleColumns",
    "Sampler",
    "SamplerClock",
    "SimClock",
    "Snapshot",
    "SystemClock",
    "TickResult",
    "sample_schema",
    "sample_store",
    "samples_dir",
]
