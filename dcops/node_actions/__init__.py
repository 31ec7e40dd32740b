"""Node actions: drain, resume and read nodes in a scheduler (the port and its backends).

- :mod:`dcops.node_actions.base`: the :class:`NodeActions` protocol, node state
  record, reason prefix helpers, declared features and the backend registry;
- :mod:`dcops.node_actions.slurm_cli`: Slurm through ``scontrol``/``sinfo``
  (here or on a head node through a RemoteRunner);
- :mod:`dcops.node_actions.recording`: in memory, recording every change.
"""

from __future__ import annotations

from dcops.node_actions.base import (
    DCOPS_REASON_PREFIX,
    NodeActionFeature,
    NodeActions,
    SchedulerNodeState,
    backend_names,
    create,
    dcops_reason,
    is_dcops_reason,
    register,
)
from dcops.node_actions.recording import NodeActionRecord, RecordingNodeActions
from dcops.node_actions.slurm_cli import SlurmCliNodeActions
from dcops.node_actions.slurm_json import parse_nodes_json

__all__ = [
    "DCOPS_REASON_PREFIX",
    "NodeActionFeature",
    "NodeActionRecord",
    "NodeActions",
    "RecordingNodeActions",
    "SchedulerNodeState",
    "SlurmCliNodeActions",
    "backend_names",
    "create",
    "dcops_reason",
    "is_dcops_reason",
    "parse_nodes_json",
    "register",
]
