"""Topology generation from the inventory and drift detection (pure; the live test is apart)."""

from __future__ import annotations

import yaml
from hypothesis import given
from hypothesis import strategies as st

from capacity.topology import (
    Domain,
    LiveGroup,
    block_conf,
    block_sizes,
    fabric_clique,
    k8s_labels,
    label_drift,
    parse_show_topology,
    slurm_drift,
    topology_yaml,
    tree_conf,
)
from dcops.hostlist import expand

R1 = Domain("r01", "r01", tuple(f"n-r01-t{i:02d}" for i in range(1, 19)))
R2 = Domain("r02", "r02", tuple(f"n-r02-t{i:02d}" for i in range(1, 19)))
R3 = Domain("r03", "r03", tuple(f"n-r03-t{i:02d}" for i in range(1, 19)))

# `scontrol show topology` on the real 22.05 rig (tree) and the 23.11+ block form
TREE_22_05 = """SwitchName=nvl-r01 Level=0 LinkSpeed=1 Nodes=sim-r01-t[01-18]
SwitchName=spine Level=1 LinkSpeed=1 Nodes=sim-r01-t[01-18] Switches=nvl-r01
"""
BLOCK_23_11 = """BlockName=r01 BlockIndex=0 Nodes=n-r01-t[01-18] BlockSize=18
BlockName=r02 BlockIndex=1 Nodes=n-r02-t[01-17] BlockSize=18
"""


def test_block_conf_and_sizes() -> None:
    text = block_conf([R1, R2, R3])
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == [
        "BlockName=r01 Nodes=n-r01-t[01-18]",
        "BlockName=r02 Nodes=n-r02-t[01-18]",
        "BlockName=r03 Nodes=n-r03-t[01-18]",
        "BlockSizes=18,36",
    ]
    assert block_sizes([R1]) == [18]
    assert "SwitchName=spine Switches=r[01-03]" in tree_conf([R1, R2, R3])


def test_topology_yaml_shape() -> None:
    doc = yaml.safe_load(topology_yaml([R1, R2]))
    assert doc == [
        {
            "topology": "nvl72",
            "cluster_default": True,
            "block": {
                "block_sizes": [18, 36],
                "blocks": [
                    {"block": "r01", "nodes": "n-r01-t[01-18]"},
                    {"block": "r02", "nodes": "n-r02-t[01-18]"},
                ],
            },
        }
    ]


def test_parse_live_outputs() -> None:
    kind, groups = parse_show_topology(TREE_22_05)
    assert kind == "tree" and [g.name for g in groups] == ["nvl-r01"]  # leaf switches only
    assert len(groups[0].nodes) == 18
    kind, groups = parse_show_topology(BLOCK_23_11)
    assert kind == "block" and [len(g.nodes) for g in groups] == [18, 17]
    assert parse_show_topology("") == ("none", [])


def test_drift_missing_wrong_and_renamed() -> None:
    _, groups = parse_show_topology(BLOCK_23_11)
    drift = slurm_drift([R1, R2], groups)
    assert drift == [{"node": "n-r02-t18", "kind": "missing", "expected": "r02", "found": None}]
    # a renamed block holding exactly its rack is not drift
    renamed = [LiveGroup("nvl-a", R1.nodes), LiveGroup("nvl-b", R2.nodes)]
    assert slurm_drift([R1, R2], renamed) == []
    # a node in another rack's block
    moved = [LiveGroup("a", R1.nodes[:-1]), LiveGroup("b", (*R2.nodes, R1.nodes[-1]))]
    assert slurm_drift([R1, R2], moved) == [
        {"node": "n-r01-t18", "kind": "wrong-block", "expected": "r01", "found": "b"}
    ]


few = st.sets(st.integers(0, 17), max_size=4)


@given(few, few, few, few)
def test_drift_names_exactly_the_removed_and_moved(
    rm1: set[int], rm2: set[int], mv1: set[int], mv2: set[int]
) -> None:
    # live groups stand for the rack most of their nodes belong to: with fewer than half of
    # a rack removed or moved, every removed node is missing and every moved one is wrong
    nodes = [*R1.nodes, *R2.nodes]
    removed = rm1 | {18 + i for i in rm2}
    moved = (mv1 | {18 + i for i in mv2}) - removed
    home = {n: ("a" if i < 18 else "b") for i, n in enumerate(nodes)}
    where: dict[str, list[str]] = {"a": [], "b": []}
    for i, n in enumerate(nodes):
        if i in removed:
            continue
        target = home[n] if i not in moved else ("b" if home[n] == "a" else "a")
        where[target].append(n)
    groups = [LiveGroup(k, tuple(v)) for k, v in where.items()]
    drift = {d["node"]: d["kind"] for d in slurm_drift([R1, R2], groups)}
    assert {n for n, k in drift.items() if k == "missing"} == {nodes[i] for i in removed}
    assert {n for n, k in drift.items() if k == "wrong-block"} == {nodes[i] for i in moved}


def test_labels_and_clique_pair() -> None:
    cliques = {R1.nodes[0]: ("uuid-a", "1"), R2.nodes[0]: ("uuid-b", "1")}
    labels = k8s_labels([R1, R2], cliques)
    assert labels[R1.nodes[0]]["nvidia.com/gpu.clique"] == "uuid-a.1"
    assert labels[R2.nodes[0]]["nvidia.com/gpu.clique"] == "uuid-b.1"  # same id, other rack
    assert "nvidia.com/gpu.clique" not in labels[R1.nodes[1]]
    live = {n: dict(v) for n, v in labels.items()}
    live[R1.nodes[0]]["nvidia.com/gpu.clique"] = "uuid-b.1"
    del live[R2.nodes[3]]
    drift = label_drift(labels, live)
    assert {(d["node"], d["kind"]) for d in drift} == {
        (R1.nodes[0], "wrong-label"),
        (R2.nodes[3], "missing"),
    }


def test_fabric_clique_from_nvidia_smi_xml() -> None:
    xml = (
        "<nvidia_smi_log>"
        + "".join(
            f"<gpu id='{i}'><fabric><state>Completed</state><cliqueId>3</cliqueId>"
            "<clusterUuid>abc</clusterUuid></fabric></gpu>"
            for i in range(4)
        )
        + "</nvidia_smi_log>"
    )
    assert fabric_clique(xml) == ("abc", "3")
    assert fabric_clique("<nvidia_smi_log><gpu/></nvidia_smi_log>") is None
    assert expand("n[1-2]") == ["n1", "n2"]
