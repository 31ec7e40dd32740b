"""Read what the live scheduler holds: Slurm's topology and version, Kubernetes node labels.

Slurm is read with its own client (``scontrol --version``, ``scontrol show
config``, ``scontrol show topology``) through the core's Slurm command runner
(:class:`dcops.slurm.commands.SlurmCommands`), so the same code reads a head
node over SSH. What a version can hold:

* ``topology/tree`` (every version): leaf switches are compared with racks;
* ``topology/block`` (23.11+): blocks are compared with racks;
* ``topology.yaml`` (25.05+) prints its blocks the same way;
* no topology plugin: every node is reported missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dcops.errors import BackendError, SchedulerError
from dcops.slurm.commands import SlurmCommands, first_line

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class SlurmTopology:
    version: tuple[int, int]
    plugin: str  # topology/tree, topology/block, topology/default ...
    text: str  # scontrol show topology

    @property
    def supports_block(self) -> bool:
        return self.version >= (23, 11)


def _run(slurm: SlurmCommands, argv: list[str]) -> str:
    try:
        result = slurm.run(argv)
    except SchedulerError:
        raise
    except BackendError as exc:
        raise SchedulerError(f"{' '.join(argv)}: {exc}") from exc
    if result.returncode != 0:
        raise SchedulerError(f"{' '.join(argv)}: {first_line(result.stderr, result.stdout)}")
    return result.stdout


def read_slurm_topology(slurm: SlurmCommands) -> SlurmTopology:
    """Slurm's version, topology plugin and ``scontrol show topology``, read live."""
    version_text = _run(slurm, ["scontrol", "--version"])
    m = _VERSION.search(version_text)
    if not m:
        raise SchedulerError(f"cannot read the Slurm version from {version_text.strip()!r}")
    config = _run(slurm, ["scontrol", "show", "config"])
    plugin = "topology/default"
    for line in config.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "TopologyPlugin":
            plugin = value.strip() or plugin
    text = _run(slurm, ["scontrol", "show", "topology"])
    return SlurmTopology((int(m.group(1)), int(m.group(2))), plugin, text)


def node_labels(objects: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Kubernetes Node objects -> node name -> labels."""
    out: dict[str, dict[str, str]] = {}
    for obj in objects:
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        if name:
            out[str(name)] = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    return out
