"""NvmlProbe against autospecs of the real nvidia-ml-py functions (no GPU needed)."""

from __future__ import annotations

import sys
import threading
import time

import pynvml
import pytest

from dcops.errors import BackendError, CommandTimeout, ExitCode, InputError
from dcops.measurements import HARDWARE_THROTTLE, ClocksEventReason, GpuRef
from dcops.nvml import NvmlProbe
from dcops.ports import GpuProbe
from tests.nvml.fake_nvml import GB200_LINKS, GB200_MEMORY_MIB, FakeNvml, err, handle_for

HOST = "gb200-r01-t01.dc1.example"


def probe() -> NvmlProbe:
    return NvmlProbe(hostname=HOST, clock=lambda: 1_700_000_000.0)


def test_is_a_gpu_probe() -> None:
    assert isinstance(probe(), GpuProbe)


def test_healthy_gb200_tray(fake_nvml: FakeNvml) -> None:
    with probe() as p:
        reading = p.read("gb200-r01-t01")
    assert reading.node == "gb200-r01-t01"
    assert reading.timestamp_s == 1_700_000_000.0
    assert reading.driver_version == "570.133.20"
    assert reading.cuda_version == "12.8"
    assert [g.gpu for g in reading.gpus] == [GpuRef("gb200-r01-t01", i) for i in range(4)]
    g = reading.gpus[2]
    assert g.uuid == fake_nvml.gpus[2].uuid
    assert g.name == "NVIDIA GB200"
    assert not g.lost
    assert g.power_w == pytest.approx(982.345)
    assert g.energy_mj == 7_318_222_451
    assert g.temperature_c == 61.0
    assert (g.sm_clock_mhz, g.max_sm_clock_mhz) == (1965.0, 2062.0)
    assert g.clocks_event_reasons == ClocksEventReason.NONE
    assert g.utilization_pct == 98.0
    assert g.memory_used_mib == 170_000.0
    assert g.memory_total_mib == float(GB200_MEMORY_MIB)
    assert (g.ecc_uncorrectable, g.ecc_correctable) == (0, 3)
    assert (g.remapped_rows_pending, g.remapped_rows_failed) == (False, False)
    assert (g.nvlink_links_active, g.nvlink_links_total) == (GB200_LINKS, GB200_LINKS)
    assert g.nvlink_error_count == 0
    assert g.xids == ()
    # NVLink enumeration stopped at the first link NVML rejects (link 18).
    assert fake_nvml.calls("nvmlDeviceGetNvLinkState") == 4 * (GB200_LINKS + 1)


@pytest.mark.parametrize("node", ["localhost", "gb200-r01-t01", HOST])
def test_local_names_are_accepted(fake_nvml: FakeNvml, node: str) -> None:
    with probe() as p:
        assert p.read(node).node == node


def test_other_node_is_an_input_error_without_touching_nvml(fake_nvml: FakeNvml) -> None:
    p = probe()
    with pytest.raises(InputError, match="gb200-r01-t02"):
        p.read("gb200-r01-t02")
    assert fake_nvml.calls("nvmlInit") == 0


@pytest.mark.parametrize("error", ["GpuIsLost", "Unknown"])
def test_gpu_lost_at_handle_time(fake_nvml: FakeNvml, error: str) -> None:
    fake_nvml.gpus[1].errors["nvmlDeviceGetHandleByIndex"] = err(error)
    with probe() as p:
        reading = p.read("localhost")
    lost = reading.gpus[1]
    assert lost.lost
    assert (lost.uuid, lost.name, lost.power_w, lost.xids) == ("", "", None, ())
    assert [g.lost for g in reading.gpus] == [False, True, False, False]
    assert reading.gpus[0].power_w is not None


def test_gpu_lost_mid_read_keeps_what_was_read(fake_nvml: FakeNvml) -> None:
    fake_nvml.gpus[3].errors["nvmlDeviceGetPowerUsage"] = err("GpuIsLost")
    with probe() as p:
        g = p.read("localhost").gpus[3]
    assert g.lost
    assert g.uuid == fake_nvml.gpus[3].uuid
    assert g.name == "NVIDIA GB200"
    assert g.energy_mj is None


def test_not_supported_features_stay_empty(fake_nvml: FakeNvml) -> None:
    gpu = fake_nvml.gpus[0]
    for fn in (
        "nvmlDeviceGetTotalEnergyConsumption",
        "nvmlDeviceGetRemappedRows",
        "nvmlDeviceGetNvLinkState",
        "nvmlDeviceGetTotalEccErrors",
    ):
        gpu.errors[fn] = err("NotSupported")
    with probe() as p:
        g = p.read("localhost").gpus[0]
    assert not g.lost
    assert g.energy_mj is None
    assert (g.remapped_rows_pending, g.remapped_rows_failed) == (False, False)
    assert (g.nvlink_links_active, g.nvlink_links_total, g.nvlink_error_count) == (None, None, 0)
    assert (g.ecc_uncorrectable, g.ecc_correctable) == (0, 0)
    assert g.power_w == pytest.approx(982.345)
    assert fake_nvml.calls("nvmlDeviceGetNvLinkErrorCounter") == 3 * GB200_LINKS * 5


def test_other_missing_kinds_also_stay_empty(fake_nvml: FakeNvml) -> None:
    fake_nvml.gpus[0].errors["nvmlDeviceGetPowerUsage"] = err("NoPermission")
    fake_nvml.gpus[0].errors["nvmlDeviceGetUtilizationRates"] = err("FunctionNotFound")
    with probe() as p:
        g = p.read("localhost").gpus[0]
    assert (g.power_w, g.utilization_pct, g.lost) == (None, None, False)


def test_remapped_rows_and_ecc(fake_nvml: FakeNvml) -> None:
    fake_nvml.gpus[0].remapped_rows = (4, 1, 1, 0)
    fake_nvml.gpus[1].remapped_rows = (0, 9, 0, 1)
    fake_nvml.gpus[1].ecc_uncorrectable = 2
    with probe() as p:
        gpus = p.read("localhost").gpus
    assert (gpus[0].remapped_rows_pending, gpus[0].remapped_rows_failed) == (True, False)
    assert (gpus[1].remapped_rows_pending, gpus[1].remapped_rows_failed) == (False, True)
    assert gpus[1].ecc_uncorrectable == 2


def test_nvlink_links_down_and_error_counters(fake_nvml: FakeNvml) -> None:
    gpu = fake_nvml.gpus[2]
    gpu.links[5] = pynvml.NVML_FEATURE_DISABLED
    gpu.links[11] = pynvml.NVML_FEATURE_DISABLED
    gpu.link_errors = {
        (5, pynvml.NVML_NVLINK_ERROR_DL_CRC_FLIT): 120,
        (5, pynvml.NVML_NVLINK_ERROR_DL_REPLAY): 7,
        (11, pynvml.NVML_NVLINK_ERROR_DL_RECOVERY): 2,
        (0, pynvml.NVML_NVLINK_ERROR_DL_CRC_DATA): 1,
    }
    with probe() as p:
        g = p.read("localhost").gpus[2]
    assert (g.nvlink_links_active, g.nvlink_links_total) == (GB200_LINKS - 2, GB200_LINKS)
    assert g.nvlink_error_count == 130


def test_nvlink_error_counter_not_supported_is_skipped(fake_nvml: FakeNvml) -> None:
    fake_nvml.gpus[0].errors["nvmlDeviceGetNvLinkErrorCounter"] = err("NotSupported")
    with probe() as p:
        g = p.read("localhost").gpus[0]
    assert (g.nvlink_links_active, g.nvlink_error_count) == (GB200_LINKS, 0)


@pytest.mark.parametrize(
    ("bits", "expected"),
    [
        (pynvml.nvmlClocksEventReasonGpuIdle, ClocksEventReason.GPU_IDLE),
        (pynvml.nvmlClocksEventReasonSwPowerCap, ClocksEventReason.SW_POWER_CAP),
        (
            pynvml.nvmlClocksEventReasonHwThermalSlowdown | pynvml.nvmlClocksEventReasonSwPowerCap,
            ClocksEventReason.HW_THERMAL_SLOWDOWN | ClocksEventReason.SW_POWER_CAP,
        ),
        (
            pynvml.nvmlClocksEventReasonHwPowerBrakeSlowdown,
            ClocksEventReason.HW_POWER_BRAKE_SLOWDOWN,
        ),
        (pynvml.nvmlClocksEventReasonSwThermalSlowdown, ClocksEventReason.SW_THERMAL_SLOWDOWN),
        (pynvml.nvmlClocksEventReasonSyncBoost, ClocksEventReason.SYNC_BOOST),
        (pynvml.nvmlClocksEventReasonDisplayClockSetting, ClocksEventReason.DISPLAY_CLOCK_SETTING),
    ],
)
def test_clocks_event_reason_bits(
    fake_nvml: FakeNvml, bits: int, expected: ClocksEventReason
) -> None:
    fake_nvml.gpus[0].reasons = bits
    with probe() as p:
        got = p.read("localhost").gpus[0].clocks_event_reasons
    assert got == expected
    assert isinstance(got, ClocksEventReason)


def test_hardware_throttle_is_told_apart_from_policy(fake_nvml: FakeNvml) -> None:
    fake_nvml.gpus[0].reasons = (
        pynvml.nvmlClocksEventReasonHwThermalSlowdown | pynvml.nvmlClocksEventReasonGpuIdle
    )
    with probe() as p:
        reasons = p.read("localhost").gpus[0].clocks_event_reasons
    assert reasons & HARDWARE_THROTTLE == ClocksEventReason.HW_THERMAL_SLOWDOWN


def test_clocks_reasons_fall_back_to_throttle_name_when_absent(
    fake_nvml: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons")
    fake_nvml.gpus[0].reasons = pynvml.nvmlClocksThrottleReasonHwSlowdown
    with probe() as p:
        assert p.read("localhost").gpus[0].clocks_event_reasons == ClocksEventReason.HW_SLOWDOWN
    assert fake_nvml.calls("nvmlDeviceGetCurrentClocksThrottleReasons") == 4


def test_older_driver_falls_back_to_older_names(fake_nvml: FakeNvml) -> None:
    gpu = fake_nvml.gpus[0]
    gpu.errors["nvmlDeviceGetCurrentClocksEventReasons"] = err("FunctionNotFound")
    gpu.errors["nvmlDeviceGetTemperatureV"] = err("FunctionNotFound")
    gpu.reasons = pynvml.nvmlClocksThrottleReasonSwPowerCap
    fake_nvml.global_errors["nvmlSystemGetCudaDriverVersion_v2"] = err("FunctionNotFound")
    fake_nvml.cuda_version = 12040
    with probe() as p:
        reading = p.read("localhost")
    g = reading.gpus[0]
    assert g.clocks_event_reasons == ClocksEventReason.SW_POWER_CAP
    assert g.temperature_c == 61.0
    assert reading.cuda_version == "12.4"
    assert fake_nvml.calls("nvmlDeviceGetCurrentClocksThrottleReasons") == 1
    assert fake_nvml.calls("nvmlDeviceGetTemperature") == 1


def test_driver_facts_missing_are_none(fake_nvml: FakeNvml) -> None:
    fake_nvml.global_errors["nvmlSystemGetDriverVersion"] = err("Unknown")
    fake_nvml.global_errors["nvmlSystemGetCudaDriverVersion_v2"] = err("NotSupported")
    fake_nvml.global_errors["nvmlSystemGetCudaDriverVersion"] = err("NotSupported")
    with probe() as p:
        reading = p.read("localhost")
    assert (reading.driver_version, reading.cuda_version) == (None, None)
    assert len(reading.gpus) == 4


def test_fewer_gpus_than_expected_are_simply_fewer(fake_nvml: FakeNvml) -> None:
    fake_nvml.count = 3
    with probe() as p:
        assert [g.gpu.index for g in p.read("localhost").gpus] == [0, 1, 2]


def test_unexpected_field_error_is_a_backend_error(fake_nvml: FakeNvml) -> None:
    fake_nvml.gpus[1].errors["nvmlDeviceGetMemoryInfo"] = err("Uninitialized")
    with probe() as p, pytest.raises(BackendError, match=r"nvmlDeviceGetMemoryInfo.*:gpu1"):
        p.read("localhost")


def test_count_failure_is_a_backend_error(fake_nvml: FakeNvml) -> None:
    fake_nvml.global_errors["nvmlDeviceGetCount"] = err("Unknown")
    with probe() as p, pytest.raises(BackendError, match="cannot count GPUs"):
        p.read("localhost")


def test_init_failure_is_one_line_backend_error(fake_nvml: FakeNvml) -> None:
    fake_nvml.init_error = err("DriverNotLoaded")
    p = probe()
    with pytest.raises(BackendError) as info:
        p.read("localhost")
    assert str(info.value) == "NVML unavailable: Driver Not Loaded"
    assert info.value.exit_code == ExitCode.INTERNAL
    assert isinstance(info.value.__cause__, pynvml.NVMLError_DriverNotLoaded)
    p.close()
    assert fake_nvml.calls("nvmlShutdown") == 0  # never initialised, never shut down


def test_real_pynvml_without_a_driver_is_a_backend_error() -> None:
    """Unpatched: on a machine without libnvidia-ml, the real nvmlInit fails cleanly."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("NVML initialises here: a GPU machine")
    with pytest.raises(BackendError, match=r"^NVML unavailable: "):
        NvmlProbe().read("localhost", timeout_s=10)


def test_missing_nvidia_ml_py_is_a_backend_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(BackendError, match="nvidia-ml-py is not installed"):
        probe().read("localhost")


def test_init_once_shutdown_on_close_even_across_threads(fake_nvml: FakeNvml) -> None:
    p = probe()
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(p.read("localhost"))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 8
    assert fake_nvml.calls("nvmlInit") == 1
    p.close()
    p.close()
    assert fake_nvml.calls("nvmlShutdown") == 1


def test_hung_nvml_read_times_out(fake_nvml: FakeNvml) -> None:
    fake_nvml.block = threading.Event()
    p = probe()
    started = time.monotonic()
    try:
        with pytest.raises(CommandTimeout, match=r"within 0\.2 s"):
            p.read("localhost", timeout_s=0.2)
        assert time.monotonic() - started < 5
    finally:
        fake_nvml.block.set()
        p.close()


def test_autospec_rejects_a_wrong_arity(fake_nvml: FakeNvml) -> None:
    with pytest.raises(TypeError):
        pynvml.nvmlDeviceGetPowerUsage(handle_for(0), pynvml.NVML_CLOCK_SM)
    with pytest.raises(TypeError):
        pynvml.nvmlDeviceGetNvLinkErrorCounter(handle_for(0), 0)
