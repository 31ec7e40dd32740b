"""Render a NodeReading as ``nvidia-smi -q -x`` would print it (a modest subset).

The element names, nesting and unit strings follow the real ``nvsmi_device_v12``
layout (driver 550+): ``clocks_event_reasons/clocks_event_reason_*`` with
``Active``/``Not Active``, ``fb_memory_usage`` in MiB, ``ecc_errors/volatile``,
``remapped_rows``, ``temperature/gpu_temp`` in C, ``gpu_power_readings`` in W,
``clocks``/``max_clocks`` in MHz. Sections the simulator has no figures for
are left out rather than made up.

A node with a GPU that fell off the bus does not print XML at all: real
``nvidia-smi`` prints ``Unable to determine the device handle for GPU<bus id>:
Unknown Error`` and exits 15; :func:`render` returns that case as ``None``.
"""

from __future__ import annotations

import time
from xml.sax.saxutils import escape

from dcops.measurements import ClocksEventReason, GpuReading, NodeReading
from dcops.sim.model import pci_bus_id

EXIT_GPU_LOST = 15  # nvidia-smi: "GPU is lost"
VBIOS_VERSION = "97.00.82.00.1F"  # made up, the same on every simulated GPU

_REASON_TAGS = (
    ("gpu_idle", ClocksEventReason.GPU_IDLE),
    ("applications_clocks_setting", ClocksEventReason.APPLICATIONS_CLOCKS_SETTING),
    ("sw_power_cap", ClocksEventReason.SW_POWER_CAP),
    ("hw_slowdown", ClocksEventReason.HW_SLOWDOWN),
    ("hw_thermal_slowdown", ClocksEventReason.HW_THERMAL_SLOWDOWN),
    ("hw_power_brake_slowdown", ClocksEventReason.HW_POWER_BRAKE_SLOWDOWN),
    ("sync_boost", ClocksEventReason.SYNC_BOOST),
    ("sw_thermal_slowdown", ClocksEventReason.SW_THERMAL_SLOWDOWN),
    ("display_clocks_setting", ClocksEventReason.DISPLAY_CLOCK_SETTING),
)


def lost_gpu_message(reading: NodeReading) -> str | None:
    """nvidia-smi's one-line complaint when a GPU fell off the bus, else None."""
    for gpu in reading.gpus:
        if gpu.lost:
            return (
                f"Unable to determine the device handle for GPU{pci_bus_id(gpu.gpu.index)}: "
                "Unknown Error\n"
            )
    return None


def render(
    reading: NodeReading, *, power_limit_w: float, clique: tuple[int, str] | None = None
) -> str:
    """The XML document for ``reading`` (call :func:`lost_gpu_message` first).

    ``clique`` (cliqueId, clusterUuid) adds each GPU's ``fabric`` section as an
    NVL72 GPU registered with the fabric reports it (``Completed``/``Success``).
    """
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(reading.timestamp_s))
    lines = [
        '<?xml version="1.0" ?>',
        '<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">',
        "<nvidia_smi_log>",
        f"\t<timestamp>{stamp}</timestamp>",
        f"\t<driver_version>{_text(reading.driver_version)}</driver_version>",
        f"\t<cuda_version>{_text(reading.cuda_version)}</cuda_version>",
        f"\t<attached_gpus>{len(reading.gpus)}</attached_gpus>",
    ]
    for gpu in reading.gpus:
        lines.extend(_gpu(gpu, power_limit_w, clique))
    lines.append("</nvidia_smi_log>")
    return "\n".join(lines) + "\n"


def _gpu(gpu: GpuReading, power_limit_w: float, clique: tuple[int, str] | None) -> list[str]:
    bus = pci_bus_id(gpu.gpu.index)
    active = gpu.clocks_event_reasons
    out = [
        f'\t<gpu id="{bus}">',
        f"\t\t<product_name>{escape(gpu.name)}</product_name>",
        "\t\t<product_brand>NVIDIA</product_brand>",
        "\t\t<product_architecture>Blackwell</product_architecture>",
        "\t\t<persistence_mode>Enabled</persistence_mode>",
        f"\t\t<uuid>{escape(gpu.uuid)}</uuid>",
        f"\t\t<minor_number>{gpu.gpu.index}</minor_number>",
        f"\t\t<module_id>{gpu.gpu.index + 1}</module_id>",
        f"\t\t<vbios_version>{VBIOS_VERSION}</vbios_version>",
        "\t\t<pci>",
        f"\t\t\t<pci_bus_id>{bus}</pci_bus_id>",
        "\t\t</pci>",
        *_fabric(clique),
        f"\t\t<performance_state>{'P8' if active & ClocksEventReason.GPU_IDLE else 'P0'}"
        "</performance_state>",
        "\t\t<clocks_event_reasons>",
    ]
    for tag, bit in _REASON_TAGS:
        value = "Active" if active & bit else "Not Active"
        out.append(f"\t\t\t<clocks_event_reason_{tag}>{value}</clocks_event_reason_{tag}>")
    used = gpu.memory_used_mib or 0.0
    total = gpu.memory_total_mib or 0.0
    pending = "Yes" if gpu.remapped_rows_pending else "No"
    failure = "Yes" if gpu.remapped_rows_failed else "No"
    out += [
        "\t\t</clocks_event_reasons>",
        "\t\t<fb_memory_usage>",
        f"\t\t\t<total>{total:.0f} MiB</total>",
        f"\t\t\t<used>{used:.0f} MiB</used>",
        f"\t\t\t<free>{max(0.0, total - used):.0f} MiB</free>",
        "\t\t</fb_memory_usage>",
        "\t\t<utilization>",
        f"\t\t\t<gpu_util>{_num(gpu.utilization_pct, '.0f')} %</gpu_util>",
        "\t\t</utilization>",
        "\t\t<ecc_mode>",
        "\t\t\t<current_ecc>Enabled</current_ecc>",
        "\t\t\t<pending_ecc>Enabled</pending_ecc>",
        "\t\t</ecc_mode>",
        "\t\t<ecc_errors>",
        "\t\t\t<volatile>",
        f"\t\t\t\t<dram_correctable>{gpu.ecc_correctable}</dram_correctable>",
        f"\t\t\t\t<dram_uncorrectable>{gpu.ecc_uncorrectable}</dram_uncorrectable>",
        "\t\t\t</volatile>",
        "\t\t\t<aggregate>",
        f"\t\t\t\t<dram_correctable>{gpu.ecc_correctable}</dram_correctable>",
        f"\t\t\t\t<dram_uncorrectable>{gpu.ecc_uncorrectable}</dram_uncorrectable>",
        "\t\t\t</aggregate>",
        "\t\t</ecc_errors>",
        "\t\t<remapped_rows>",
        f"\t\t\t<remapped_row_corr>{gpu.ecc_correctable}</remapped_row_corr>",
        f"\t\t\t<remapped_row_unc>{gpu.ecc_uncorrectable}</remapped_row_unc>",
        f"\t\t\t<remapped_row_pending>{pending}</remapped_row_pending>",
        f"\t\t\t<remapped_row_failure>{failure}</remapped_row_failure>",
        "\t\t</remapped_rows>",
        "\t\t<temperature>",
        f"\t\t\t<gpu_temp>{_num(gpu.temperature_c, '.0f')} C</gpu_temp>",
        "\t\t</temperature>",
        "\t\t<gpu_power_readings>",
        f"\t\t\t<power_draw>{_num(gpu.power_w, '.2f')} W</power_draw>",
        f"\t\t\t<current_power_limit>{power_limit_w:.2f} W</current_power_limit>",
        "\t\t</gpu_power_readings>",
        "\t\t<clocks>",
        f"\t\t\t<sm_clock>{_num(gpu.sm_clock_mhz, '.0f')} MHz</sm_clock>",
        "\t\t</clocks>",
        "\t\t<max_clocks>",
        f"\t\t\t<sm_clock>{_num(gpu.max_sm_clock_mhz, '.0f')} MHz</sm_clock>",
        "\t\t</max_clocks>",
        "\t</gpu>",
    ]
    return out


def _fabric(clique: tuple[int, str] | None) -> list[str]:
    if clique is None:
        return []
    return [
        "\t\t<fabric>",
        "\t\t\t<state>Completed</state>",
        "\t\t\t<status>Success</status>",
        f"\t\t\t<cliqueId>{clique[0]}</cliqueId>",
        f"\t\t\t<clusterUuid>{clique[1]}</clusterUuid>",
        "\t\t</fabric>",
    ]


def _num(value: float | None, spec: str) -> str:
    return "N/A" if value is None else format(value, spec)


def _text(value: str | None) -> str:
    return "N/A" if value is None else escape(value)
