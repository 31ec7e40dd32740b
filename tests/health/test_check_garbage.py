"""Property: whatever garbage a node prints, no check reads it as ok."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcops.measurements import CommandResult
from health.base import Check, CheckStatus, NodeFacts, check_names, get_check

FACTS = NodeFacts(
    "n1", "gb200-nvl72", 4, baseline={"driver_version": "570.133.20"}, since_s=1_700_000_000.0
)
#: xid has its own garbage test (a kernel log may hold any line); dcgm's 127 is ok by design.
CHECKS = ["gpu_count", "memory", "throttle", "nvlink", "drift", "dcgm", "node_basics"]

garbage = st.one_of(
    st.text(min_size=1).filter(str.strip),
    st.builds(lambda s: f"<nvidia_smi_log>{s}</nvidia_smi_log>", st.text()),
    st.builds(lambda s: f"<nvidia_smi_log><gpu id='1'>{s}</gpu></nvidia_smi_log>", st.text()),
    st.builds(lambda s: f"==============NVSMI LOG==============\n{s}", st.text()),
    st.builds(lambda s: f"GPU 0: X (UUID: GPU-1)\n{s}", st.text(min_size=1).filter(str.strip)),
    st.builds(lambda s: '{"DCGM Diagnostic": ' + s + "}", st.text()),
)


@pytest.mark.parametrize("name", CHECKS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outputs=st.lists(garbage, min_size=3, max_size=3), rc=st.sampled_from([0, 1, 2, 15]))
def test_garbage_is_never_ok(name: str, outputs: list[str], rc: int) -> None:
    check = get_check(name)
    argvs = check.commands(FACTS)
    results = [
        CommandResult("n1", tuple(a), rc, out, "", 0.1)
        for a, out in zip(argvs, outputs, strict=False)
    ]
    found = check.judge(results, FACTS)
    assert found
    assert all(r.status is not CheckStatus.OK for r in found), found


@pytest.mark.parametrize("name", [*CHECKS, "xid"])
def test_wrong_number_of_results_is_an_error(name: str) -> None:
    (res,) = get_check(name).judge([], FACTS)
    assert res.status is CheckStatus.ERROR


def test_builtin_checks_are_registered_under_their_names() -> None:
    names = {*CHECKS, "xid"}
    assert names <= set(check_names())
    for name in names:
        check = get_check(name)
        assert isinstance(check, Check)
        assert check.name == name and check.description
