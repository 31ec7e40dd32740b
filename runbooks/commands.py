"""The exact argv each step kind runs on a node (argv lists, never shell strings).

``plan`` prints these; the engine runs them through the remote runner (SSH,
local, or the simulator, which answers every one of them).
"""

from __future__ import annotations

from typing import Any

#: Evidence items of a ``collect`` step -> argv.
COLLECT_ARGV: dict[str, list[str]] = {
    "dmesg": ["dmesg", "--time-format", "iso"],
    "journal": ["journalctl", "-k", "-b", "-o", "short-unix", "--no-pager"],
    "nvidia-smi-q": ["nvidia-smi", "-q", "-x"],
    "temperatures": ["nvidia-smi", "-q", "-d", "TEMPERATURE,PERFORMANCE"],
    "remapped-rows": [
        "nvidia-smi",
        "--query-remapped-rows=gpu_bus_id,remapped_rows.pending,remapped_rows.failure",
        "--format=csv",
    ],
    "nvlink-errors": ["nvidia-smi", "nvlink", "-e"],
    "bug-report": [
        "nvidia-bug-report.sh",
        "--safe-mode",
        "--output-file",
        "/var/log/nvidia-bug-report.log.gz",
    ],
}


def action_argv(kind: str, spec: dict[str, Any]) -> list[str] | None:
    """The command a node-level action runs on the node (None: a scheduler call)."""
    if kind == "reboot":
        return ["systemctl", "reboot"]
    if kind == "gpu_reset":
        return ["nvidia-smi", "-r", "-i", str(spec["gpu"])]  # plan.needs_gpu: always given
    if kind == "service_restart":
        return ["systemctl", "restart", str(spec.get("service", ""))]
    return None
