"""XidWatcher against autospecs of the real NVML event functions (no GPU needed)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pynvml
import pytest

from dcops.errors import BackendError
from dcops.measurements import XidEvent
from dcops.nvml import NvmlProbe, XidWatcher
from tests.nvml.fake_nvml import FakeGpu, FakeNvml, err

MESSAGES = {79: "GPU has fallen off the bus", 48: "Double bit ECC error"}


def watcher() -> XidWatcher:
    return XidWatcher(clock=lambda: 1_700_000_123.0, messages=MESSAGES, poll_ms=50)


def wait_for(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_registers_every_gpu_for_critical_xids(fake_nvml: FakeNvml) -> None:
    w = watcher().start(background=False)
    try:
        assert w.watched == (0, 1, 2, 3)
        assert w.unwatched == ()
        register = fake_nvml.mocks["nvmlDeviceRegisterEvents"]
        assert register.call_count == 4
        assert all(
            c.args[1] == pynvml.nvmlEventTypeXidCriticalError for c in register.call_args_list
        )
    finally:
        w.stop()
    assert fake_nvml.calls("nvmlEventSetFree") == 1
    assert fake_nvml.calls("nvmlShutdown") == 1


def test_poll_records_an_event_and_timeout_means_none(fake_nvml: FakeNvml) -> None:
    with watcher() as w:
        pass  # background thread started and stopped with nothing to see
    w = watcher().start(background=False)
    try:
        assert w.poll(10) is None  # NVMLError_Timeout: no event
        fake_nvml.push_xid(2, 79)
        event = w.poll(10)
        assert event == XidEvent(79, 1_700_000_123.0, "GPU has fallen off the bus")
        wait_args = fake_nvml.mocks["nvmlEventSetWait_v2"].call_args
        assert wait_args.args[1] == 10  # the timeout in ms reaches NVML
        assert w.drain() == {2: (event,)}
        assert w.drain() == {}
        assert w.events() == {2: (event,)}
    finally:
        w.stop()


def test_background_thread_collects_over_a_window(fake_nvml: FakeNvml) -> None:
    with watcher() as w:
        fake_nvml.push_xid(0, 48)
        fake_nvml.push_xid(3, 119)
        fake_nvml.push_xid(0, 94)
        wait_for(lambda: sum(len(v) for v in w.events().values()) == 3)
    events = w.events()
    assert [e.code for e in events[0]] == [48, 94]
    assert [e.code for e in events[3]] == [119]
    assert events[3][0].message == ""  # no catalogue entry given for 119
    assert fake_nvml.calls("nvmlEventSetFree") == 1
    assert w.errors == ()


def test_probe_readings_carry_xids_since_last_read(fake_nvml: FakeNvml) -> None:
    w = watcher().start(background=False)
    try:
        with NvmlProbe(hostname="gb200-r01-t01", watcher=w) as probe:
            fake_nvml.push_xid(1, 48)
            assert w.poll(10) is not None
            first = probe.read("localhost")
            assert [e.code for e in first.gpus[1].xids] == [48]
            assert all(g.xids == () for i, g in enumerate(first.gpus) if i != 1)
            second = probe.read("localhost")
            assert all(g.xids == () for g in second.gpus)
            assert [e.code for e in w.events()[1]] == [48]  # the window keeps them
    finally:
        w.stop()


def test_xids_of_a_lost_gpu_still_reach_its_reading(fake_nvml: FakeNvml) -> None:
    w = watcher().start(background=False)
    try:
        fake_nvml.push_xid(2, 79)
        w.poll(10)
        fake_nvml.gpus[2].errors["nvmlDeviceGetHandleByIndex"] = err("GpuIsLost")
        with NvmlProbe(hostname="h", watcher=w) as probe:
            g = probe.read("localhost").gpus[2]
        assert g.lost
        assert [e.code for e in g.xids] == [79]
    finally:
        w.stop()


def test_failed_read_loses_no_xid(fake_nvml: FakeNvml) -> None:
    w = watcher().start(background=False)
    try:
        fake_nvml.push_xid(0, 48)
        w.poll(10)
        probe = NvmlProbe(hostname="h", watcher=w)
        fake_nvml.global_errors["nvmlDeviceGetCount"] = err("Unknown")
        with pytest.raises(BackendError):
            probe.read("localhost")
        del fake_nvml.global_errors["nvmlDeviceGetCount"]
        assert [e.code for e in probe.read("localhost").gpus[0].xids] == [48]
        probe.close()
    finally:
        w.stop()


@pytest.mark.parametrize("error", ["GpuIsLost", "NotSupported"])
def test_gpu_that_cannot_be_registered_is_unwatched(fake_nvml: FakeNvml, error: str) -> None:
    fake_nvml.gpus[1].errors["nvmlDeviceRegisterEvents"] = err(error)
    fake_nvml.gpus[3].errors["nvmlDeviceGetHandleByIndex"] = err("GpuIsLost")
    w = watcher().start(background=False)
    try:
        assert w.watched == (0, 2)
        assert w.unwatched == (1, 3)
    finally:
        w.stop()


def test_unknown_device_falls_back_to_index_then_unattributed(fake_nvml: FakeNvml) -> None:
    fake_nvml.gpus.append(FakeGpu(4))  # appeared after registration
    fake_nvml.count = 4
    w = watcher().start(background=False)
    try:
        fake_nvml.push_xid(4, 79)
        w.poll(10)
        assert [e.code for e in w.drain()[4]] == [79]
        fake_nvml.global_errors["nvmlDeviceGetIndex"] = err("GpuIsLost")
        fake_nvml.push_xid(4, 79)
        w.poll(10)
        assert w.drain() == {}
        assert [e.code for e in w.unattributed] == [79]
    finally:
        w.stop()


def test_non_xid_events_are_ignored(fake_nvml: FakeNvml) -> None:
    w = watcher().start(background=False)
    try:
        fake_nvml.events.put((0, pynvml.nvmlEventTypeSingleBitEccError, 0))
        assert w.poll(10) is None
        assert w.events() == {}
    finally:
        w.stop()


def test_wait_failure_is_a_backend_error_and_the_thread_keeps_going(fake_nvml: FakeNvml) -> None:
    w = watcher().start(background=False)
    fake_nvml.events.put(err("Unknown"))
    with pytest.raises(BackendError, match="waiting for XID events failed"):
        w.poll(10)
    w.stop()
    with watcher() as w:
        fake_nvml.events.put(err("Unknown"))
        fake_nvml.push_xid(1, 48)
        wait_for(lambda: 1 in w.events())
    assert len(w.errors) == 1


def test_event_set_unavailable_is_a_backend_error(fake_nvml: FakeNvml) -> None:
    fake_nvml.global_errors["nvmlEventSetCreate"] = err("NotSupported")
    with pytest.raises(BackendError, match="XID events unavailable: Not Supported"):
        watcher().start()
    assert fake_nvml.calls("nvmlShutdown") == fake_nvml.calls("nvmlInit") == 1


def test_init_failure_is_a_backend_error(fake_nvml: FakeNvml) -> None:
    fake_nvml.init_error = err("LibraryNotFound")
    with pytest.raises(BackendError, match=r"^NVML unavailable: NVML Shared Library Not Found$"):
        watcher().start()


def test_poll_before_start_is_an_error(fake_nvml: FakeNvml) -> None:
    with pytest.raises(BackendError, match="not started"):
        watcher().poll(1)
