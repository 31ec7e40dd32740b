"""XID knowledge: the shipped catalog, NVLink5 decode of real GB200 lines, XID 154, grouping."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcops.errors import InputError
from dcops.xid import XID_TABLE, classify_xid
from dcops.xid.catalog import buckets, catalog
from dcops.xid.events import XidOccurrence, dedupe, group
from dcops.xid.explain import explain
from dcops.xid.nvlink5 import decode, mask_matches, rows
from dcops.xid.recovery import RecoveryAction, recovery_action

DATA = Path(__file__).resolve().parents[1] / "data" / "xid"
PKG = Path(__file__).resolve().parents[2] / "dcops" / "xid" / "data"
LINES = (DATA / "gb200_kernel_xid_lines.txt").read_text().splitlines()


@pytest.mark.parametrize(
    ("shipped", "captured"),
    [
        ("xids.csv", "xid_catalog_xids.csv"),
        ("nvlink5_decode.csv", "xid_catalog_144_150_decode.csv"),
        ("buckets.csv", "xid_catalog_resolution_buckets.csv"),
    ],
)
def test_shipped_catalog_is_nvidias_sheet_unchanged(shipped: str, captured: str) -> None:
    assert (PKG / shipped).read_bytes() == (DATA / captured).read_bytes()


def test_catalog_holds_every_xid_with_buckets_and_gb200() -> None:
    cat = catalog()
    assert len(cat) == 172
    assert cat[79].immediate == "RESTART_BM" and cat[79].gb200
    assert cat[48].immediate == "WORKFLOW_XID_48"
    assert cat[95].investigatory == "IGNORE (sympathetic)"
    assert cat[63].immediate == "IGNORE"
    assert cat[74].gb200 is False  # NVLink4 XID; GB200 reports 144-150
    assert "WORKFLOW_XID_45" in buckets()
    # the rule table covers the whole catalog and keeps the operator wording
    assert set(cat) <= set(XID_TABLE)
    assert classify_xid(79).action == "drain, reboot, then check mechanicals"
    assert classify_xid(162).critical and classify_xid(13).severity == "warn"


def test_real_gb200_line_149_decodes_as_the_worked_example() -> None:
    found = explain(LINES[0])
    assert found.xid == 149 and found.line.pci == "0018:01:00" and found.line.link == 17
    assert found.decoded is not None and found.decoded.layout == "v1"
    assert found.subcomponent == "NETIR_LINK_EVT/NETIR_LINK_DOWN"
    assert (found.immediate, found.investigatory) == ("RESET_GPU", "INVESTIGATE_PEER_DEVICE")
    assert found.severity == "Link Fatal"


def test_real_gb200_line_145_is_xid_154_eval() -> None:
    found = explain(LINES[1])
    assert found.xid == 145 and found.subcomponent == "RLW_SRC_TRACK"
    assert (found.immediate, found.investigatory) == ("XID_154_EVAL", "IGNORE")
    assert found.severity == "Non-fatal"
    data = found.to_dict()
    assert data["error_status"] == "0x00000008" and data["pci"] == "0008:01:00"


def test_v2_layout_decodes_from_r575_masks() -> None:
    # V2 NETIR_LINK_DOWN: IntrInfo[6:0] = 0010001, bits [25:20] = 100101 (peer device)
    intr = (0b100101 << 20) | 0b0010001
    found = decode(149, intr, 0, subcomponent="NETIR_LINK_DOWN")
    assert found is not None and found.layout == "v2"
    assert found.investigatory == "INVESTIGATE_PEER_DEVICE"
    # the same value read with the v1 masks matches no row
    assert decode(149, intr, 0, layout="v1") is None


def test_promotable_row_takes_action_2() -> None:
    # 145 RLW_RXPIPE status 0x1: bit 10 clear -> IGNORE, set -> RESET_GPU (action 2)
    base = 0b0011000010
    ignored = decode(145, base, 0x1, layout="v1")
    assert ignored is not None and ignored.immediate == "IGNORE"
    promoted = decode(145, base | 1 << 10, 0x1, layout="v1")
    assert promoted is not None and promoted.immediate == "RESET_GPU"


def test_mask_matching_and_sheet_shape() -> None:
    assert mask_matches("--01", 0b0001) and not mask_matches("--01", 0b0011)
    assert all(len(r.masks[0]) == 32 and len(r.masks[1]) == 32 for r in rows())
    assert {r.xid for r in rows()} == set(range(144, 151))


@pytest.mark.parametrize(
    ("message", "action"),
    [
        ("GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)", "GPU_RESET"),
        ("recovery action changed from 0x0 (None) to 0x2 (Node Reboot Required)", "NODE_REBOOT"),
        ("GPU recovery action changed from 0x1 (GPU Reset Required) to 0x0 (None)", "NONE"),
        ("recovery action changed to 0x4 (Drain and Reset)", "DRAIN_AND_RESET"),
        ("recovery action changed to 0x3 (Drain P2P)", "DRAIN_P2P"),
    ],
)
def test_xid_154_recovery_actions(message: str, action: str) -> None:
    assert recovery_action(message) is RecoveryAction(action)
    line = f"NVRM: Xid (PCI:0000:01:00): 154, {message}"
    assert explain(line).recovery is RecoveryAction(action)


def test_explain_names_the_gpu_and_refuses_non_xid_lines() -> None:
    line = (
        "[ 12.5] NVRM: Xid (PCI:0000:3b:00): 79, pid='<unknown>', name=<unknown>, "
        "GPU has fallen off the bus."
    )
    found = explain(line, pci_order=["0000:1a:00.0", "0000:3b:00.0"])
    assert found.gpu == 1 and found.immediate == "RESTART_BM"
    with pytest.raises(InputError):
        explain("kernel: eth0 link up")


def _occ(
    node: str, code: int, t: float, pci: str = "0000:01:00", bucket: str = ""
) -> XidOccurrence:
    return XidOccurrence(node, pci, code, t, f"msg {t}", bucket or catalog()[code].immediate)


def test_repeated_lines_are_one_event() -> None:
    lines = [_occ("n1", 95, 100.0 + i) for i in range(800)] + [_occ("n1", 95, 5000.0)]
    events = dedupe(lines, window_s=300)
    assert [e.count for e in events] == [800, 1]


def test_xid_45_burst_on_77_nodes_is_one_job_incident_not_77_drains() -> None:
    lines = [_occ(f"n{i:02d}", 45, 10.0 + i * 0.05) for i in range(77)]
    incidents = group(dedupe(lines))
    assert len(incidents) == 1
    assert incidents[0].node is None and incidents[0].immediate == "RESTART_APP"
    assert len(incidents[0].sympathetic) == 77


def test_xid_45_alone_restarts_the_fabric_manager() -> None:
    (incident,) = group(dedupe([_occ("n1", 45, 1.0)]))
    assert incident.node == "n1" and incident.immediate == "RESTART_FM"


def test_hard_fault_with_sympathetic_followers() -> None:
    lines = [_occ("n1", 79, 1.0), _occ("n1", 45, 1.5, pci="0000:02:00")]
    lines += [_occ(f"m{i}", 43, 2.0) for i in range(5)]
    (incident,) = group(dedupe(lines))
    assert incident.node == "n1" and incident.immediate == "RESTART_BM"
    assert len(incident.sympathetic) == 6


def test_xid_48_alone_resets_with_63_drains_and_resets() -> None:
    (alone,) = group(dedupe([_occ("n1", 48, 1.0)]))
    assert alone.immediate == "RESET_GPU"
    (both,) = group(dedupe([_occ("n1", 48, 1.0), _occ("n1", 63, 1.2)]))
    assert both.immediate == "DRAIN_AND_RESET"


def test_xid_154_gives_its_action_to_154_eval() -> None:
    lines = [
        _occ("n1", 145, 1.0, bucket="XID_154_EVAL"),
        _occ("n1", 154, 1.1, bucket="RESTART_BM"),
    ]
    (incident,) = group(dedupe(lines))
    assert incident.immediate == "RESTART_BM"
    (alone,) = group(dedupe([_occ("n2", 145, 1.0, bucket="XID_154_EVAL")]))
    assert alone.immediate == "RESTART_APP"


def test_classify_uses_the_nvlink5_decode_when_the_message_has_registers() -> None:
    link_down = classify_xid(149, LINES[0].split("149, ", 1)[1])
    assert link_down.critical and link_down.action == "drain, reset the GPU"
    assert "Link Fatal" in link_down.what
    src_track = classify_xid(145, LINES[1].split("145, ", 1)[1])
    assert not src_track.critical and src_track.severity == "warn"
    assert classify_xid(145).critical  # no registers: the catalog's workflow, critical
