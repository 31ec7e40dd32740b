"""node_basics check: df, /proc/meminfo and InfiniBand port states."""

from __future__ import annotations

from dcops.measurements import CommandResult
from health.base import CheckResult, CheckStatus, NodeFacts, get_check
from health.checks.node_basics import parse_df, parse_ib_states, parse_meminfo

DF = """Filesystem     1024-blocks      Used Available Capacity Mounted on
/dev/nvme0n1p2  1875382960 412583251 1462799709      23% /
tmpfs            65536000  64000000   1536000      98% /dev/shm
/dev/md0       7900000000 7400000000 500000000      94% /mnt/local scratch
"""
MEMINFO = """MemTotal:       1002438656 kB
MemFree:         921286400 kB
MemAvailable:    941286400 kB
Active(anon):      1204224 kB
HugePages_Total:       0
"""
IB = (
    "/sys/class/infiniband/mlx5_0/ports/1/state:4: ACTIVE\n"
    "/sys/class/infiniband/mlx5_1/ports/1/state:1: DOWN\n"
    "/sys/class/infiniband/mlx5_bf/ports/1/state:2: INIT\n"
)


def cmd(stdout: str, rc: int = 0, stderr: str = "") -> CommandResult:
    return CommandResult("n1", ("x",), rc, stdout, stderr, 0.1)


def judge(
    df: CommandResult, mem: CommandResult, ib: CommandResult, **thresholds: object
) -> list[CheckResult]:
    facts = NodeFacts("n1", "gb200-nvl72", 4, thresholds=thresholds)
    return get_check("node_basics").judge([df, mem, ib], facts)


def by_metric(found: list[CheckResult]) -> dict[str, list[CheckResult]]:
    out: dict[str, list[CheckResult]] = {}
    for r in found:
        out.setdefault(r.metric, []).append(r)
    return out


def test_commands_use_no_shell_and_configured_mounts() -> None:
    facts = NodeFacts("n1", "gb200-nvl72", 4, thresholds={"disk_mounts": ["/", "/scratch"]})
    df, mem, ib = get_check("node_basics").commands(facts)
    assert df == ["df", "-P", "-k", "/", "/scratch"]
    assert mem == ["cat", "/proc/meminfo"]
    assert ib[:2] == ["find", "-L"] and ib[-5:] == ["grep", "-H", ".", "{}", "+"]


def test_parsers() -> None:
    rows = parse_df(DF)
    assert [(r.mount, r.available_kib) for r in rows] == [
        ("/", 1462799709),
        ("/dev/shm", 1536000),
        ("/mnt/local scratch", 500000000),
    ]
    assert round(rows[0].free_pct, 1) == 78.0
    info = parse_meminfo(MEMINFO)
    assert info["MemAvailable"] == 941286400 and info["Active(anon)"] == 1204224
    assert parse_ib_states(IB) == {
        ("mlx5_0", 1): "ACTIVE",
        ("mlx5_1", 1): "DOWN",
        ("mlx5_bf", 1): "INIT",
    }


def test_judgements() -> None:
    found = by_metric(judge(cmd(DF), cmd(MEMINFO), cmd(IB), ib_devices_ignore=["mlx5_bf"]))
    disk = {r.message.split(":")[0]: r.status for r in found["disk_free_pct"]}
    assert disk == {
        "/": CheckStatus.OK,
        "/dev/shm": CheckStatus.FAIL,
        "/mnt/local scratch": CheckStatus.WARN,
    }
    (mem,) = found["mem_available_pct"]
    assert mem.status is CheckStatus.OK and mem.value == 93.9
    (port,) = found["ib_port_state"]
    assert (port.status, port.value, port.fatal) == (CheckStatus.FAIL, "DOWN", False)
    assert port.evidence == {"device": "mlx5_1", "port": 1}


def test_memory_low_and_total_floor() -> None:
    low = MEMINFO.replace("941286400", "10000000")
    (mem,) = by_metric(judge(cmd(DF), cmd(low), cmd(IB)))["mem_available_pct"]
    assert mem.status is CheckStatus.WARN
    found = by_metric(judge(cmd(DF), cmd(MEMINFO), cmd(IB), mem_total_min_gib=990))
    assert found["mem_total_gib"][0].status is CheckStatus.FAIL


def test_ib_absent_and_minimum() -> None:
    gone = cmd("", 1, "find: '/sys/class/infiniband': No such file or directory\n")
    (ib,) = by_metric(judge(cmd(DF), cmd(MEMINFO), gone))["ib_ports_active"]
    assert ib.status is CheckStatus.OK
    (ib,) = by_metric(judge(cmd(DF), cmd(MEMINFO), gone, ib_ports_min=4))["ib_ports_active"]
    assert ib.status is CheckStatus.FAIL
    found = by_metric(
        judge(cmd(DF), cmd(MEMINFO), cmd(IB), ib_ports_min=2, ib_devices_ignore=["mlx5_bf"])
    )
    assert found["ib_ports_active"][0].status is CheckStatus.FAIL


def test_missing_mount_and_garbage_are_errors() -> None:
    partial = cmd(DF, 1, "df: /nope: No such file or directory\n")
    found = judge(partial, cmd(MEMINFO), cmd(IB))
    assert any(r.status is CheckStatus.ERROR and "/nope" in r.message for r in found)
    found = judge(cmd("garbage"), cmd("garbage"), cmd("garbage"))
    assert [r.status for r in found] == [CheckStatus.ERROR] * 3
    found = judge(cmd("", 127), cmd("", 1, "cat: /proc/meminfo: Permission denied"), cmd("", 127))
    assert [r.status for r in found] == [CheckStatus.ERROR] * 3
    (bad,) = judge(cmd(DF), cmd(MEMINFO), cmd(IB), disk_free_warn_pct="ten")
    assert bad.status is CheckStatus.ERROR
