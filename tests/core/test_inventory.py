"""Site files: the model, topology queries, and every kind of bad file."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from dcops.errors import SiteError, UnknownNameError, UnknownNodeError
from dcops.inventory import load_site, local_site, simulated_site, site_schema
from dcops.inventory.local import LocalGpus, sku_for_gpu_name

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "sites" / "paris-1.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return path


def test_example_site_topology() -> None:
    site = load_site(EXAMPLE)
    assert site.name == "paris-1"
    assert len(site.nodes()) == 36
    info = site.node("gb200-r02-t05")
    assert (info.rack, info.tray, info.domain, info.gpus_per_node) == ("r02", 5, "r02", 4)
    assert [str(g) for g in info.gpus] == [f"gb200-r02-t05:gpu{i}" for i in range(4)]
    assert site.rack("r01").nodes[0] == "gb200-r01-t01"
    assert site.rack("r01").nodes[-1] == "gb200-r01-t18"
    assert set(site.domains()) == {"r01", "r02"}
    assert len(site.all_gpus()) == 144
    assert site.select("gb200-r01-t[01-02]") == ["gb200-r01-t01", "gb200-r01-t02"]


def test_example_site_validates_against_published_schema() -> None:
    jsonschema.validate(yaml.safe_load(EXAMPLE.read_text()), site_schema())


def test_unknown_nodes_and_racks_are_named() -> None:
    site = load_site(EXAMPLE)
    with pytest.raises(UnknownNodeError, match=r"gb200-r09-t\[01-02\]"):
        site.select("gb200-r01-t01,gb200-r09-t[01-02]")
    with pytest.raises(UnknownNameError, match="r01, r02"):
        site.rack("r07")


def test_json_shape() -> None:
    data = load_site(EXAMPLE).to_dict()
    racks = data["racks"]
    assert isinstance(racks, list)
    rack = racks[0]
    assert rack["name"] == "r01" and rack["hostlist"] == "gb200-r01-t[01-18]"
    assert rack["nodes"][3]["gpus"][2] == {"index": 2, "name": "gb200-r01-t04:gpu2"}
    assert data["totals"] == {"racks": 2, "nodes": 36, "gpus": 144, "nvlink_domains": 2}


def test_hgx_sku_domain_is_the_node(tmp_path: Path) -> None:
    site = load_site(
        write(tmp_path, "site: s\nsku: h100\nracks:\n  - name: a\n    nodes: h[1-3]\n")
    )
    assert site.domain_of("h2") == "h2"
    assert site.node("h3").gpus_per_node == 8


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (
            "site: s\nracks:\n  - name: r01\n    nodes: a[01-18]\n    color: red\n",
            5,
            "unknown key 'color'",
        ),
        (
            "site: s\nbogus: 1\nracks:\n  - name: r01\n    nodes: a[01-18]\n",
            2,
            "unknown key 'bogus'",
        ),
        ("site: s\nracks:\n  - name: r01\n    nodes: a[01-17]\n", 4, "17 nodes"),
        (
            "site: s\nracks:\n  - name: r01\n    nodes: a[01-18]\n"
            "  - name: r02\n    nodes: a[18-35]\n",
            6,
            "already in rack 'r01'",
        ),
        ("site: s\nracks:\n  - name: r01\n    nodes: a[01-18\n", 4, "unclosed"),
        (
            "site: s\nracks:\n  - name: r01\n    nodes: a[01-18]\n"
            "  - name: r01\n    nodes: b[01-18]\n",
            5,
            "listed twice",
        ),
        (
            "site: s\nracks:\n  - name: r01\n    nodes: a[01-18]\n    sku: dgx-9000\n",
            5,
            "unknown SKU 'dgx-9000'",
        ),
        (
            "site: s\nracks:\n  - name: r01\n    nodes: a[01-18]\n    gpus_per_node: 8\n",
            5,
            "gpus_per_node is 8",
        ),
        ("site: s\nracks:\n  - name: r01\n", 3, "'nodes' is a required property"),
        ("site: s\nracks: [\n", 3, "invalid YAML"),
        ("site: s\nsite: t\nracks: []\n", 2, "duplicate key"),
        ("site: s\nracks:\n  - name: r01\n    nodes: 7\n", 4, "is not of type 'string'"),
    ],
)
def test_bad_site_files(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SiteError) as info:
        load_site(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}"), message
    assert fragment in message
    assert "\n" not in message


def test_missing_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match="no such file"):
        load_site(tmp_path / "absent.yaml")
    with pytest.raises(SiteError, match="mapping"):
        load_site(write(tmp_path, "- just\n- a list\n"))


def test_site_sku_dirs(tmp_path: Path) -> None:
    skus = tmp_path / "skus"
    skus.mkdir()
    gb = (REPO / "dcops" / "data" / "skus" / "h100.yaml").read_text()
    (skus / "mini.yaml").write_text(
        gb.replace("name: h100", "name: mini").replace("gpus_per_node: 8", "gpus_per_node: 2")
    )
    site = load_site(
        write(
            tmp_path,
            "site: s\nsku_dirs: [skus]\nsku: mini\nracks:\n  - name: a\n    nodes: m[1-2]\n",
        )
    )
    assert site.node("m1").gpus_per_node == 2


def test_local_site_without_and_with_gpus() -> None:
    cpu = local_site(LocalGpus(0, None, None), hostname="box")
    assert cpu.nodes() == ["box"] and cpu.sku == "cpu" and len(cpu.all_gpus()) == 1
    gpu = local_site(LocalGpus(4, "NVIDIA GB200", "570.1"), hostname="tray1")
    assert gpu.sku == "gb200-nvl72" and len(gpu.all_gpus()) == 4
    assert sku_for_gpu_name("NVIDIA H100 80GB HBM3") == "h100"
    assert sku_for_gpu_name("NVIDIA B200") == "b200"
    assert sku_for_gpu_name("Tesla T4") is None


def test_simulated_site_names() -> None:
    site = simulated_site(2)
    assert site.nodes()[0] == "sim-r01-t01" and site.nodes()[-1] == "sim-r02-t18"
    big = simulated_site(100)
    assert len(big.all_gpus()) == 7200
    assert big.nodes()[-1] == "sim-r100-t18"
