"""Job importers: one per source (a trace, Slurm accounting, Kubernetes), by name.

>>> from telemetry.importers import get_importer, ImportOptions
>>> frame = get_importer("alibaba-gpu-2023").read(path, ImportOptions())
"""

from __future__ import annotations

from telemetry.importers import alibaba_gpu_2023 as _alibaba_gpu_2023  # registers itself
from telemetry.importers import sacct as _sacct  # registers itself
from telemetry.importers.base import (
    DEFAULT_TRACE_START,
    IMPORTERS,
    ImportOptions,
    JobImporter,
    get_importer,
    importer_names,
    register,
)

__all__ = [
    "DEFAULT_TRACE_START",
    "IMPORTERS",
    "ImportOptions",
    "JobImporter",
    "get_importer",
    "importer_names",
    "register",
]
del _alibaba_gpu_2023, _sacct
