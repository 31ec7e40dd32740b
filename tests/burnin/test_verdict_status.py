"""Status ordering, worst-of laws, and the verdict roll-up."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from burnin.verdicts import Finding, Reason, Status, node_error, rollup, worst
from burnin.verdicts.status import gpu_finding, group_finding, node_finding
from dcops.errors import CommandTimeout, ConnectError
from dcops.measurements import GpuRef

statuses = st.sampled_from(list(Status))


def test_order_is_pass_warn_error_fail() -> None:
    assert Status.PASS < Status.WARN < Status.ERROR < Status.FAIL
    assert sorted([Status.FAIL, Status.PASS, Status.ERROR, Status.WARN]) == [
        Status.PASS,
        Status.WARN,
        Status.ERROR,
        Status.FAIL,
    ]


@given(st.lists(statuses), st.lists(statuses))
def test_worst_is_associative_and_commutative(a: list[Status], b: list[Status]) -> None:
    assert worst([worst(a), worst(b)]) == worst(a + b) == worst(b + a)


@given(st.lists(statuses))
def test_worst_identity_idempotence_and_bound(a: list[Status]) -> None:
    assert worst([*a, Status.PASS]) == worst(a)
    assert worst(a + a) == worst(a)
    assert all(s <= worst(a) for s in a)
    assert worst(a) in [*a, Status.PASS]


@given(st.lists(statuses), statuses)
def test_worst_is_monotone(a: list[Status], extra: Status) -> None:
    assert worst([*a, extra]) >= worst(a)


def _r(msg: str = "x", check: str = "gemm") -> Reason:
    return Reason(check, "tflops", 1.0, 2.0, msg)


LAYOUT = {
    "r1": {"a": [GpuRef("a", 0), GpuRef("a", 1)], "b": [GpuRef("b", 0), GpuRef("b", 1)]},
    "r2": {"c": [GpuRef("c", 0), GpuRef("c", 1)]},
}


@given(
    st.dictionaries(
        st.sampled_from([g for n in LAYOUT.values() for gs in n.values() for g in gs]), statuses
    )
)
def test_rollup_is_worst_of_children(assigned: dict[GpuRef, Status]) -> None:
    findings = [gpu_finding(g, s, _r()) for g, s in assigned.items()]
    v = rollup(findings, LAYOUT)
    assert v.status == worst(assigned.values())
    for rack in v.children:
        assert rack.status == worst(n.status for n in rack.children)
        for node in rack.children:
            assert node.status == worst(g.status for g in node.children)


def test_rollup_attaches_group_findings_to_racks_and_nodes() -> None:
    f_rack = group_finding([GpuRef("a", 0), GpuRef("b", 0)], Status.WARN, _r("slow rack"))
    f_node = group_finding([GpuRef("c", 0), GpuRef("c", 1)], Status.FAIL, _r("slow tray"))
    v = rollup([f_rack, f_node], LAYOUT)
    r1, r2 = v.children
    assert r1.status is Status.WARN and r1.findings == (f_rack,)
    assert r2.status is Status.FAIL and r2.children[0].findings == (f_node,)
    assert v.status is Status.FAIL


def test_missing_required_check_is_an_error_never_a_pass() -> None:
    findings = [gpu_finding(g, Status.PASS, _r()) for g in LAYOUT["r1"]["a"]]
    v = rollup(findings, LAYOUT, required_gpu_checks=("gemm",))
    assert v.status is Status.ERROR
    assert set(v.failing("node")) == {"b", "c"}
    assert "a" not in v.failing("node")


def test_unreachable_node_is_error_without_duplicate_coverage_errors() -> None:
    f = node_error("b", ConnectError("b", "connection timed out"))
    v = rollup([f], {"r1": LAYOUT["r1"]}, required_gpu_checks=("gemm",))
    node_b = v.children[0].children[1]
    assert node_b.status is Status.ERROR
    assert node_b.findings == (f,)
    assert all(not g.findings for g in node_b.children)
    assert f.reason.value == "unreachable"
    assert node_error("b", CommandTimeout("b", "t")).reason.value == "hung"
    assert node_error("b", RuntimeError("boom")).reason.value == "crashed"


def test_unknown_node_findings_are_kept_at_run_level() -> None:
    f = node_finding("zz", Status.FAIL, _r())
    v = rollup([f], LAYOUT)
    assert v.findings == (f,) and v.status is Status.FAIL


def test_json_contract() -> None:
    f = gpu_finding(GpuRef("a", 0), Status.FAIL, Reason("gemm", "nan", float("nan"), None, "m"))
    d = rollup([f], LAYOUT).to_dict()
    text = json.dumps(d)  # NaN rendered as a string: valid JSON
    assert "NaN" not in text
    reason = d["racks"][0]["nodes"][0]["gpus"][0]["reasons"][0]
    assert {"check", "metric", "value", "threshold", "message", "status", "target"} <= set(reason)
    assert d["status"] == "fail"
    passing = rollup([gpu_finding(GpuRef("a", 1), Status.PASS, _r())], LAYOUT).to_dict()
    assert passing["racks"][0]["nodes"][0]["gpus"][1]["reasons"] == []


def test_finding_targets() -> None:
    assert Finding(Status.PASS, _r(), (GpuRef("a", 1),), ("a",)).target == "a:gpu1"
    assert node_finding("a", Status.PASS, _r()).target == "a"
    assert group_finding([GpuRef("a", 0), GpuRef("b", 0)], Status.PASS, _r()).target == "a,b"
