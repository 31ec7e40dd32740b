"""``dcops xid explain`` and ``dcops runbook list|show|plan`` as a user meets them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli_core import assert_one_line_error, dcops

LINES = (
    (Path(__file__).resolve().parents[1] / "data" / "xid" / "gb200_kernel_xid_lines.txt")
    .read_text()
    .splitlines()
)


def test_xid_explain_json_on_a_real_gb200_line() -> None:
    proc = dcops("xid", "explain", LINES[0], "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["xid"] == 149 and data["pci"] == "0018:01:00"
    assert data["immediate"] == "RESET_GPU" and data["investigatory"] == "INVESTIGATE_PEER_DEVICE"
    assert data["subcomponent"] == "NETIR_LINK_EVT/NETIR_LINK_DOWN"
    assert data["severity"] == "Link Fatal"
    assert data["runbook"] == "nvlink5-errors"


def test_xid_explain_refuses_a_non_xid_line() -> None:
    assert_one_line_error(dcops("xid", "explain", "eth0: link up"), 2)


def test_runbook_list_json_has_name_triggers_steps() -> None:
    proc = dcops("runbook", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    books = {b["name"]: b for b in json.loads(proc.stdout)}
    assert books["xid-79-reboot"]["triggers"]["xids"] == [79]
    assert books["xid-79-reboot"]["steps"][0] == "drain"


def test_runbook_plan_and_unknown_name() -> None:
    proc = dcops("runbook", "plan", "xid-79-reboot", "--nodes", "n[1-2]", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [d["node"] for d in data] == ["n1", "n2"]
    reboot = next(s for s in data[0]["steps"] if s["name"] == "reboot")
    assert reboot["commands"][0]["argv"] == ["systemctl", "reboot"]
    check = next(s for s in data[0]["steps"] if s["name"] == "check")
    assert {"host": "n1", "argv": ["nvidia-smi", "-q", "-x"]} in check["commands"]
    assert_one_line_error(dcops("runbook", "show", "no-such-book"), 2)


def test_xid_incidents_groups_a_log(tmp_path: Path) -> None:
    lines = [
        f"1735689600.{i:03d} node{i:02d} kernel: NVRM: Xid (PCI:0000:01:00): 45, pid=42, Ch 10"
        for i in range(77)
    ]
    lines += [
        f"{1735690000 + i * 0.1:.3f} node90 kernel: NVRM: Xid (PCI:0000:03:00): 95, pid=42, "
        "Uncontained: FBHUB. RST: Yes, D-RST: No"
        for i in range(800)
    ]
    lines += [f"1735699000.0 node91 kernel: {LINES[0]}", "1735699001.0 node91 kernel: eth0 up"]
    log = tmp_path / "kern.log"
    log.write_text("\n".join(lines) + "\n")
    proc = dcops("xid", "incidents", str(log), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["lines"] == 878
    by_node = {i["node"]: i for i in data["incidents"]}
    assert set(by_node) == {None, "node90", "node91"}  # 878 lines, 3 incidents
    assert by_node[None]["immediate"] == "RESTART_APP" and len(by_node[None]["sympathetic"]) == 77
    assert by_node["node90"]["events"][0]["count"] == 800
    assert by_node["node91"]["runbook"] == "nvlink5-errors"
