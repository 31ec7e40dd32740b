"""Scenario files: the demo loads; bad files give ScenarioError naming file, line and key."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from dcops.errors import ScenarioError
from dcops.sim import FAULT_KINDS, load_scenario
from dcops.sim.schema import build_schema, packaged_schema, render_schema

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "scenarios" / "demo.yaml"


def test_demo_scenario_loads() -> None:
    scenario = load_scenario(DEMO)
    assert scenario.sku == "gb200-nvl72"
    assert scenario.seed == 7
    assert scenario.noise == pytest.approx(0.02)
    nodes = scenario.site.nodes()
    assert len(nodes) == 36
    assert nodes[0] == "sim-r01-t01"
    assert nodes[-1] == "sim-r02-t18"
    kinds = [f.kind for f in scenario.faults]
    assert kinds == [
        "slow_gemm",
        "nvlink_degraded",
        "sdc",
        "xid",
        "thermal_throttle",
        "ecc",
        "unreachable",
        "hang",
    ]
    slow = scenario.faults[0]
    assert (slow.node, slow.gpus, slow.factor, slow.line) == ("sim-r01-t05", (2,), 0.9, 8)


def test_published_schema_is_generated_from_fault_table() -> None:
    assert packaged_schema() == build_schema()
    path = REPO / "dcops" / "sim" / "scenario.schema.json"
    assert path.read_text(encoding="utf-8") == render_schema()
    assert set(
        packaged_schema()["properties"]["faults"]["items"]["properties"]["kind"]["enum"]
    ) == set(FAULT_KINDS)


def test_schema_is_valid_and_accepts_demo() -> None:
    jsonschema.Draft202012Validator.check_schema(packaged_schema())
    jsonschema.validate(yaml.safe_load(DEMO.read_text()), packaged_schema())


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


HEAD = "sku: gb200-nvl72\nracks: 2\nseed: 1\nfaults:\n"

BAD = [
    # (text, line, key, words in the message)
    ("sku: gb200-nvl72\nracks: 1\ncolour: blue\n", 3, "colour", "unknown scenario key"),
    (HEAD + "  - {node: sim-r01-t01, kind: melted}\n", 5, "faults[0].kind", "unknown fault kind"),
    (HEAD + "  - {node: sim-r09-t01, kind: hang}\n", 5, "faults[0].node", "not in site"),
    (
        HEAD + "  - {node: sim-r01-t01, gpu: 4, kind: sdc}\n",
        5,
        "faults[0].gpu",
        "out of range",
    ),
    (
        HEAD + "  - {node: sim-r01-t01, gpu: 0, kind: slow_gemm, factor: 1.5}\n",
        5,
        "faults[0].factor",
        "(0, 1]",
    ),
    (
        HEAD + "  - {node: sim-r01-t01, gpu: 0, kind: slow_gemm, factor: 0}\n",
        5,
        "faults[0].factor",
        "(0, 1]",
    ),
    (HEAD + "  - {node: sim-r01-t01, kind: sdc}\n", 5, "faults[0]", "missing key 'gpu'"),
    (HEAD + "  - {node: sim-r01-t01, gpu: 1, kind: hang}\n", 5, "faults[0].gpu", "not allowed"),
    (
        HEAD + "  - node: sim-r01-t01\n    gpu: 1\n    kind: xid\n    cde: 79\n",
        8,
        "faults[0].cde",
        "unknown fault key",
    ),
    (HEAD + "  - {node: sim-r01-t01, gpu: 1, kind: xid}\n", 5, "faults[0]", "missing key 'code'"),
    ("sku: gb200-nvl72\nracks: [1\n", 3, None, "invalid YAML"),
    ("sku: gb200-nvl72\nracks: 1\nracks: 2\n", 3, None, "duplicate key"),
    ("sku: nope\nracks: 1\n", 1, "sku", "unknown SKU"),
    ("sku: gb200-nvl72\nseed: 1\n", 1, None, "racks"),
    ("sku: gb200-nvl72\nracks: 1\nnoise: lots\n", 3, "noise", "not of type"),
    (
        HEAD + "  - {node: sim-r01-t01, gpu: 0, kind: ecc}\n",
        5,
        "faults[0]",
        "uncorrectable",
    ),
    (
        HEAD + "  - {node: sim-r01-t01, kind: nvlink_down, links: 40}\n",
        5,
        "faults[0].links",
        "links",
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "words"), BAD)
def test_bad_scenario_is_located(
    tmp_path: Path, text: str, line: int | None, key: str | None, words: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    err = info.value
    assert err.path == str(path)
    assert err.line == line, str(err)
    assert err.key == key, str(err)
    assert words in str(err)
    assert str(path) in str(err)
    assert "\n" not in str(err)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(tmp_path / "absent.yaml")


def test_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="mapping"):
        load_scenario(_write(tmp_path, "- 1\n- 2\n"))


def test_hostlist_faults_expand_per_node(tmp_path: Path) -> None:
    text = HEAD + "  - {node: 'sim-r01-t[01-03]', gpu: [0, 2], kind: slow_gemm, factor: 0.5}\n"
    scenario = load_scenario(_write(tmp_path, text))
    assert [f.node for f in scenario.faults] == ["sim-r01-t01", "sim-r01-t02", "sim-r01-t03"]
    assert all(f.gpus == (0, 2) for f in scenario.faults)


def test_site_file_is_reused(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        "site: lab\nsku: gb200-nvl72\nracks:\n  - name: a1\n    nodes: 'gb-a1-t[01-18]'\n",
        encoding="utf-8",
    )
    text = "site: site.yaml\nseed: 3\nfaults:\n  - {node: gb-a1-t04, kind: unreachable}\n"
    scenario = load_scenario(_write(tmp_path, text))
    assert scenario.site.nodes()[0] == "gb-a1-t01"
    assert scenario.faults[0].node == "gb-a1-t04"


def test_site_and_racks_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, "racks: 1\nsite: x.yaml\n"))
    assert info.value.key == "site"
    assert info.value.line == 2


def test_schema_json_is_plain_json() -> None:
    text = (REPO / "dcops" / "sim" / "scenario.schema.json").read_text(encoding="utf-8")
    assert json.loads(text)["$schema"].endswith("2020-12/schema")
