"""Reason prefix helpers, node lists, the state record and the backend registry."""

from __future__ import annotations

import pytest

from dcops.errors import InputError, UnknownNameError
from dcops.node_actions import (
    DCOPS_REASON_PREFIX,
    RecordingNodeActions,
    SchedulerNodeState,
    SlurmCliNodeActions,
    backend_names,
    create,
    dcops_reason,
    is_dcops_reason,
)
from dcops.node_actions.base import check_reason, node_names, register


def test_reason_prefix() -> None:
    assert DCOPS_REASON_PREFIX == "dcops:"
    assert is_dcops_reason("dcops: xid 79")
    assert is_dcops_reason("  dcops:x")
    assert not is_dcops_reason("NHC: check_hw_ib failed")
    assert not is_dcops_reason("")
    assert not is_dcops_reason(None)
    assert not is_dcops_reason("replace dcops: cable")
    assert dcops_reason("xid 79\n on gpu2") == "dcops: xid 79 on gpu2"
    assert dcops_reason("dcops: already") == "dcops: already"


def test_check_reason() -> None:
    assert check_reason("  dcops: x ") == "dcops: x"
    for bad in ("", "  ", "a\nb", "a\rb"):
        with pytest.raises(InputError):
            check_reason(bad)


def test_node_names() -> None:
    assert node_names("n[1-3],n2") == ["n1", "n2", "n3"]
    assert node_names(["b", "a", "b"]) == ["b", "a"]
    assert node_names([]) == []
    with pytest.raises(InputError):
        node_names(["ok", " "])


def test_state_properties() -> None:
    idle = SchedulerNodeState("n1", ("IDLE",))
    assert idle.in_service and not idle.drain and idle.base == "IDLE" and idle.flags == ()
    completing = SchedulerNodeState("n1", ("IDLE", "COMPLETING", "DRAIN"))
    assert completing.draining and not completing.drained
    empty = SchedulerNodeState("n1", ())
    assert empty.base == "UNKNOWN" and empty.down
    assert idle.to_dict() == {
        "node": "n1",
        "states": ["IDLE"],
        "reason": "",
        "reason_user": None,
        "reason_time_s": None,
    }


def test_registry() -> None:
    assert {"recording", "slurm-cli"} <= set(backend_names())
    assert isinstance(create("recording", nodes="n[1-2]"), RecordingNodeActions)
    assert isinstance(create("slurm-cli", slurm_conf="/nonexistent"), SlurmCliNodeActions)
    with pytest.raises(UnknownNameError, match=r"known: .*recording, slurm-cli"):
        create("pbs")


def test_register_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        register("recording")(SlurmCliNodeActions)
