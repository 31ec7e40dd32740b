"""A burn-in's long waits: counts move while a node hangs, and the CLI is told who is pending."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from burnin.profiles import load_thresholds
from burnin.suite import SuiteOptions, run_suite, sim_ports
from dcops.sim import SimFleet

TH = load_thresholds("gb200-nvl72")


def test_a_hung_first_node_holds_back_no_count_and_is_the_one_pending() -> None:
    fleet = SimFleet.from_dict(
        {"sku": "gb200-nvl72", "racks": 1, "seed": 3, "noise": 0.01,
         "faults": [{"node": "sim-r01-t01", "kind": "hang"}]}
    )  # fmt: skip
    events: list[tuple[str, str, object]] = []
    watched: dict[str, list[tuple[str, ...]]] = {}

    def progress(stage: str, done: int, total: int) -> None:
        events.append(("count", stage, done))

    def watch(
        stage: str, nodes: Sequence[str], timeout_s: float, concurrency: int
    ) -> Callable[[str], None]:
        events.append(("watch", stage, (tuple(nodes), timeout_s)))
        watched.setdefault(stage, []).append(tuple(nodes))
        return lambda node: events.append(("answer", stage, node))

    nodes = tuple(fleet.site.nodes())  # sim-r01-t01, the hung one, first
    options = SuiteOptions(nodes=nodes, probe_timeout_s=0.3, collectives=False)
    try:
        run_suite(sim_ports(fleet), TH, options, progress, watch)
    finally:
        fleet.close()
    first_probe = events[: events.index(("answer", "probe", "sim-r01-t01")) + 1]
    assert first_probe[0] == ("watch", "probe", (nodes, 0.3))
    answers = [str(e[2]) for e in first_probe if e[0] == "answer"]
    assert sorted(answers) == sorted(nodes) and answers[-1] == "sim-r01-t01"
    counts = [e[2] for e in first_probe if e[0] == "count"]
    assert counts[: len(nodes) - 1] == list(range(1, len(nodes)))  # 17 of 18 before it answers
    assert watched["gemm"] and all("sim-r01-t01" not in ns for ns in watched["gemm"])
