"""xid check: kernel-log parsing (journalctl short-unix, dmesg iso), classification, fallback."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dcops.measurements import CommandResult
from health.base import CheckResult, CheckStatus, NodeFacts, get_check
from health.checks.xid import parse_kernel_log, parse_xid_text, recovery_hint

T0 = 1_710_449_000.0
PROC = "0000:0a:00.0\n0000:1b:00.0\n0000:3b:00.0\n0000:5e:00.0\n"

HOST = "gb200-r01-t03 kernel:"
UNKNOWN = "pid='<unknown>', name=<unknown>,"
MESSAGES = [
    (-100, "NVRM: Xid (PCI:0000:0a:00): 31, pid=4242, name=python3, Ch 00000008, MMU Fault"),
    (1, "nvidia 0000:3b:00.0: enabling device"),
    (2, f"NVRM: Xid (PCI:0000:3b:00): 79, {UNKNOWN} GPU has fallen off the bus."),
    (3, "NVRM: GPU 0000:3b:00.0: GPU has fallen off the bus."),
    (4, "NVRM: Xid (PCI:0000:1b:00): 13, pid=999, name=train, Graphics SM Warp Exception"),
    (5, "NVRM: Xid (PCI:0000:1b:00): 13, pid=999, name=train, Graphics Exception: ESR 0x51e730"),
    (6, f"NVRM: Xid (PCI:0000:5e:00): 63, {UNKNOWN} Row Remapper: New row marked for remapping"),
    (7, "NVRM: Xid (PCI:0000:0a:00): 45, pid=4242, name=python3, Ch 00000010"),
]
JOURNAL = "".join(f"{T0 + dt:.6f} {HOST} {text}\n" for dt, text in MESSAGES)


def cmd(argv: tuple[str, ...], stdout: str = "", rc: int = 0, stderr: str = "") -> CommandResult:
    return CommandResult("n1", argv, rc, stdout, stderr, 0.1)


def judge(
    journal: CommandResult, dmesg: CommandResult | None = None, *, since: float | None = T0
) -> list[CheckResult]:
    facts = NodeFacts("n1", "gb200-nvl72", 4, since_s=since)
    return get_check("xid").judge(
        [journal, dmesg or cmd(("dmesg",), "", 0), cmd(("ls",), PROC)], facts
    )


def test_commands_window() -> None:
    check = get_check("xid")
    with_since = check.commands(NodeFacts("n", "gb200-nvl72", 4, since_s=T0 + 0.7))
    assert with_since[0] == [
        "journalctl", "-k", "--since", f"@{int(T0)}", "-o", "short-unix", "--no-pager",
    ]  # fmt: skip
    assert with_since[1] == ["dmesg", "--time-format", "iso"]
    assert with_since[2] == ["ls", "-1", "/proc/driver/nvidia/gpus"]
    assert "-b" in check.commands(NodeFacts("n", "gb200-nvl72", 4))[0]


def test_parse_formats() -> None:
    new = parse_xid_text(
        f"NVRM: Xid (PCI:0000:3b:00): 79, {UNKNOWN} GPU has fallen off the bus.",
        1.0,
    )
    assert new is not None
    assert (new.code, new.pci, new.pid, new.process) == (79, (0, 0x3B, 0), "<unknown>", "<unknown>")
    assert new.message == "GPU has fallen off the bus."
    old = parse_xid_text("NVRM: Xid (0000:86:00): 48, An uncorrectable double bit error", 2.0)
    assert old is not None and (old.code, old.pci, old.pid) == (48, (0, 0x86, 0), None)
    assert old.message == "An uncorrectable double bit error"
    grace = parse_xid_text("NVRM: Xid (PCI:0019:01:00): 94, pid=77, Contained: SM (0x1)", 3.0)
    assert grace is not None and grace.pci == (0x19, 1, 0) and grace.pid == "77"
    assert parse_xid_text("NVRM: GPU at PCI:0000:3b:00: GPU-1234", 1.0) is None


def test_journal_findings_grouped_classified_and_mapped_to_gpus() -> None:
    log = parse_kernel_log(JOURNAL, form="journal")
    assert [x.code for x in log.xids] == [31, 79, 13, 13, 63, 45]
    assert log.lines == log.recognised == 8
    found = judge(cmd(("journalctl",), JOURNAL))
    by_code = {r.value: r for r in found}
    assert set(by_code) == {79, 13, 63, 45}  # 31 is before `since`
    lost = by_code[79]
    assert (lost.status, lost.fatal, lost.gpu) == (CheckStatus.FAIL, True, 2)
    assert lost.action == "drain, reboot, then check mechanicals"
    assert lost.evidence["pci"] == "0000:3b:00" and lost.evidence["source"] == "journalctl"
    app = by_code[13]
    assert (app.status, app.fatal, app.gpu, app.evidence["count"]) == (
        CheckStatus.WARN,
        False,
        1,
        2,
    )
    assert "x2" in app.message and app.action == "restart the application"
    assert (by_code[63].status, by_code[63].gpu) == (CheckStatus.WARN, 3)
    assert by_code[45].status is CheckStatus.OK


def test_fatal_and_ignored_codes_are_thresholds() -> None:
    facts = NodeFacts(
        "n1",
        "gb200-nvl72",
        4,
        since_s=T0,
        thresholds={"xid_fatal_codes": [63], "xid_ignore_codes": [13, 45]},
    )
    found = get_check("xid").judge(
        [cmd(("journalctl",), JOURNAL), cmd(("dmesg",)), cmd(("ls",), PROC)], facts
    )
    by_code = {r.value: r for r in found}
    assert set(by_code) == {79, 63}
    assert by_code[63].fatal and by_code[63].status is CheckStatus.FAIL
    assert not by_code[79].fatal and by_code[79].status is CheckStatus.FAIL  # still critical


def test_xid_154_recovery_action() -> None:
    line = (
        f"{T0 + 1:.6f} h kernel: NVRM: Xid (PCI:0000:0a:00): 154, pid='<unknown>', name=<unknown>, "
        "GPU recovery action changed from 0x0 (None) to 0x2 (Node Reboot Required)\n"
    )
    (res,) = judge(cmd(("journalctl",), line))
    assert (res.status, res.fatal, res.gpu) == (CheckStatus.FAIL, True, 0)
    assert "NODE_REBOOT" in res.action
    assert recovery_hint("from 0x0 (None) to 0x1 (GPU Reset Required)").endswith("[GPU_RESET]")
    assert recovery_hint("changed to 0x0 (None)").endswith("[NONE]")
    none = line.replace("0x2 (Node Reboot Required)", "0x0 (None)")
    (res,) = judge(cmd(("journalctl",), none))
    assert res.status is CheckStatus.WARN and not res.fatal


def test_no_xid_is_ok() -> None:
    (res,) = judge(cmd(("journalctl",), "-- No entries --\n"))
    assert res.status is CheckStatus.OK and res.value == 0
    (res,) = judge(cmd(("journalctl",), ""), since=None)
    assert res.status is CheckStatus.OK and "since boot" in res.message


def test_dmesg_fallback_when_journalctl_missing() -> None:
    dmesg = (
        "2024-03-14T20:43:00,000000+00:00 nvidia-nvlink: Nvlink Core is being initialized\n"
        "2024-03-14T20:44:00,123456+00:00 NVRM: Xid (PCI:0000:5e:00): 95, pid=1, Uncontained\n"
        "2024-03-14T18:00:00,000000+00:00 NVRM: Xid (PCI:0000:5e:00): 48, pid=1, old DBE\n"
    )
    since = 1_710_448_000.0  # 2024-03-14T20:26:40Z
    found = judge(
        cmd(("journalctl",), "", 127, "bash: journalctl: command not found"),
        cmd(("dmesg",), dmesg),
        since=since,
    )
    (res,) = found
    assert (res.value, res.status, res.fatal, res.gpu) == (95, CheckStatus.FAIL, True, 3)
    assert res.evidence["source"] == "dmesg"
    assert res.evidence["first_s"] == 1_710_449_040.123456


def test_command_failures_are_errors() -> None:
    missing = cmd(("x",), "", 127)
    (res,) = judge(missing, missing)
    assert res.status is CheckStatus.ERROR and "neither" in res.message
    (res,) = judge(
        missing, cmd(("dmesg",), "", 1, "dmesg: read kernel buffer failed: Operation not permitted")
    )
    assert res.status is CheckStatus.ERROR and "Operation not permitted" in res.message
    (res,) = judge(cmd(("journalctl",), "", 1, "Failed to get journal access"))
    assert res.status is CheckStatus.ERROR
    (res,) = judge(cmd(("journalctl",), "this is not a journal\nat all\n"))
    assert res.status is CheckStatus.ERROR and "unrecognised" in res.message


def test_unknown_pci_keeps_finding_without_gpu_index() -> None:
    line = f"{T0 + 1:.6f} h kernel: NVRM: Xid (PCI:0000:99:00): 74, pid=1, NVLink: fatal error\n"
    (res,) = judge(cmd(("journalctl",), line))
    assert (res.status, res.gpu, res.evidence["pci"]) == (CheckStatus.FAIL, None, "0000:99:00")


@settings(max_examples=60, deadline=None)
@given(
    st.text(min_size=1).filter(
        lambda s: (
            s.strip()
            and not any(
                ln[:1].isdigit() or ln[:1].isspace() or ln.startswith("-- ")
                for ln in s.splitlines()
                if ln.strip()
            )
        )
    )
)
def test_garbage_journal_is_never_ok(text: str) -> None:
    found = judge(cmd(("journalctl",), text))
    assert all(r.status is not CheckStatus.OK for r in found)
