"""Real NVML adapters (nvidia-ml-py, imported lazily): the GPU probe and the XID watcher."""

from __future__ import annotations

from dcops.nvml.events import XidWatcher
from dcops.nvml.probe import NvmlProbe

__all__ = ["NvmlProbe", "XidWatcher"]
