"""Sweep XID findings -> runbooks: one run per tray and root cause, never one per GPU."""

from __future__ import annotations

from runbooks.library import load_library
from runbooks.suggest import Finding, suggest

BOOKS = load_library().values()
T0 = 1_735_689_600.0


def _xid(node: str, gpu: int, code: int, t: float, message: str = "m") -> Finding:
    return Finding(
        node=node,
        check="xid",
        metric="xid",
        status="fail",
        message=message,
        gpu=gpu,
        value=float(code),
        details={"pci": f"000{gpu + 1}:01:00", "count": 1, "first_s": t, "messages": [message]},
    )


def test_uncontained_ecc_on_every_gpu_of_a_tray_is_one_run() -> None:
    found, _ = suggest([_xid("t02", g, 95, T0 + 0.1 * g) for g in range(4)], BOOKS)
    assert [(s.node, s.runbook, s.gpu) for s in found] == [("t02", "gpu-reset", 0)]
    assert "also on GPU 1,2,3" in found[0].why


def test_a_hard_fault_on_one_tray_does_not_swallow_xid_95_on_another() -> None:
    findings = [_xid("t02", g, 95, T0) for g in range(4)]
    findings += [_xid("t05", g, 48, T0, "DBE") for g in range(3)]
    found, _ = suggest(findings, BOOKS)
    assert sorted((s.node, s.runbook) for s in found) == [
        ("t02", "gpu-reset"),
        ("t05", "gpu-reset"),
    ]


def test_xid_79_with_sympathetic_errors_on_its_other_gpus_is_one_reboot() -> None:
    findings = [_xid("t03", 1, 79, T0)]
    findings += [_xid("t03", g, c, T0 + 0.5) for g, c in ((0, 13), (2, 31), (3, 43))]
    found, _ = suggest(findings, BOOKS)
    assert [(s.node, s.runbook, s.gpu) for s in found] == [("t03", "xid-79-reboot", 1)]


def test_a_job_burst_on_many_gpus_of_many_trays_is_one_event_and_no_run() -> None:
    findings = [
        _xid(f"t{n:02d}", g, c, T0 + 0.01 * n) for n in range(12) for g, c in ((0, 13), (1, 94))
    ]
    found, notes = suggest(findings, BOOKS)
    assert found == []
    assert len([n for n in notes if "sympathetic burst on 24 GPUs of 12 nodes" in n]) == 1
