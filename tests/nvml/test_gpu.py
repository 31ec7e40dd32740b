"""The real probe and watcher on a real GPU (opt-in: marked ``gpu``, skipped without one)."""

from __future__ import annotations

import pytest

from dcops.errors import BackendError
from dcops.nvml import NvmlProbe, XidWatcher

pytestmark = pytest.mark.gpu


def _nvml_works() -> bool:
    try:
        with NvmlProbe() as probe:
            return len(probe.read("localhost", timeout_s=30).gpus) > 0
    except BackendError:
        return False


@pytest.mark.skipif(not _nvml_works(), reason="needs an NVIDIA GPU with a working driver")
def test_real_probe_reads_every_gpu() -> None:
    with XidWatcher(poll_ms=100) as watcher, NvmlProbe(watcher=watcher) as probe:
        reading = probe.read("localhost", timeout_s=30)
    assert reading.driver_version
    assert reading.cuda_version
    for g in reading.gpus:
        assert not g.lost, g
        assert g.uuid.startswith("GPU-")
        assert g.name
        assert g.memory_total_mib and g.memory_total_mib > 0
        assert g.temperature_c is not None and 0 < g.temperature_c < 120
        assert g.sm_clock_mhz is not None and g.max_sm_clock_mhz is not None
        assert g.sm_clock_mhz <= g.max_sm_clock_mhz
        if g.power_w is not None:
            assert 0 < g.power_w < 2000
        if g.nvlink_links_total is not None:
            assert 0 <= (g.nvlink_links_active or 0) <= g.nvlink_links_total
    assert watcher.errors == ()
