"""``node_basics``: disk space, memory, InfiniBand port state.

Commands:

1. ``df -P -k <mounts>`` -- ``disk_mounts`` (default ``["/"]``). Free space
   (available / (used + available)) under ``disk_free_warn_pct`` (default 10)
   -> warn, under ``disk_free_fail_pct`` (default 3) -> fail; a mount df cannot
   stat -> error.
2. ``cat /proc/meminfo`` -- ``MemAvailable`` under ``mem_available_warn_pct``
   (default 5) of ``MemTotal`` -> warn; ``MemTotal`` under ``mem_total_min_gib``
   (default none) -> fail (lost DIMMs).
3. ``find -L /sys/class/infiniband -mindepth 4 -maxdepth 4 -path '*/ports/*/state'
   -exec grep -H . {} +`` -- one ``<path>:<n>: <STATE>`` line per port. No shell
   glob is needed, ``-L`` follows the class symlinks, the depth bound keeps find
   out of sysfs' back-links, and ``grep -H`` names each port (``cat`` would not).
   A port not ``ACTIVE`` -> fail; fewer active ports than ``ib_ports_min``
   (default 0) -> fail; devices in ``ib_devices_ignore`` are skipped; a node
   without ``/sys/class/infiniband`` is ok unless ``ib_ports_min`` > 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from dcops.measurements import CommandResult
from health.base import CheckResult, NodeFacts, register_check
from health.checks._common import (
    EXIT_NOT_FOUND,
    BadThreshold,
    Finder,
    expect_results,
    finder,
    first_line,
    threshold_list,
    threshold_number,
    threshold_optional,
)

DEFAULT_MOUNTS = ("/",)
DEFAULT_DISK_FREE_WARN_PCT = 10.0
DEFAULT_DISK_FREE_FAIL_PCT = 3.0
DEFAULT_MEM_AVAILABLE_WARN_PCT = 5.0
IB_ROOT = "/sys/class/infiniband"
KIB_PER_GIB = 1024 * 1024

_IB_LINE = re.compile(r"^(?P<path>.*?/(?P<dev>[^/]+)/ports/(?P<port>\d+)/state):(?P<state>.*)$")
_MEMINFO = re.compile(r"^(\w[\w()]*):\s+(\d+)(?:\s+kB)?\s*$")


@dataclass(frozen=True)
class DiskUsage:
    filesystem: str
    used_kib: int
    available_kib: int
    mount: str

    @property
    def free_pct(self) -> float:
        total = self.used_kib + self.available_kib
        return 100.0 * self.available_kib / total if total else 0.0


class BasicsParseError(ValueError):
    pass


def parse_df(text: str) -> list[DiskUsage]:
    """``df -P -k`` (POSIX format, 1 KiB blocks)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("Filesystem"):
        raise BasicsParseError("no df header")
    rows: list[DiskUsage] = []
    for line in lines[1:]:
        parts = line.split()
        if len(parts) < 6 or not parts[4].endswith("%"):
            raise BasicsParseError(f"unrecognised df line: {line[:80]}")
        try:
            used, avail = int(parts[2]), int(parts[3])
        except ValueError as exc:
            raise BasicsParseError(f"unrecognised df line: {line[:80]}") from exc
        rows.append(DiskUsage(parts[0], used, avail, " ".join(parts[5:])))
    return rows


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` -> {field: kB} (HugePages_* counts kept as they are)."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        match = _MEMINFO.match(line.strip())
        if match is not None:
            found[match.group(1)] = int(match.group(2))
    if "MemTotal" not in found:
        raise BasicsParseError("no MemTotal in /proc/meminfo")
    return found


def parse_ib_states(text: str) -> dict[tuple[str, int], str]:
    """``grep -H . .../ports/N/state`` lines -> {(device, port): "ACTIVE"}."""
    found: dict[tuple[str, int], str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _IB_LINE.match(line.strip())
        if match is None:
            raise BasicsParseError(f"unrecognised port line: {line[:80]}")
        _, _, word = match.group("state").partition(":")
        state = (word or match.group("state")).strip().upper()
        found[(match.group("dev"), int(match.group("port")))] = state
    return found


@register_check("node_basics")
class NodeBasicsCheck:
    name = "node_basics"
    description = "disk space, memory, InfiniBand port state"

    def commands(self, facts: NodeFacts) -> Sequence[Sequence[str]]:
        try:
            mounts = threshold_list(facts, "disk_mounts", DEFAULT_MOUNTS, str) or ["/"]
        except BadThreshold:
            mounts = list(DEFAULT_MOUNTS)  # judge() reports the bad value
        return [
            ["df", "-P", "-k", *mounts],
            ["cat", "/proc/meminfo"],
            [
                "find", "-L", IB_ROOT, "-mindepth", "4", "-maxdepth", "4",
                "-path", "*/ports/*/state", "-exec", "grep", "-H", ".", "{}", "+",
            ],
        ]  # fmt: skip

    def judge(self, results: Sequence[CommandResult], facts: NodeFacts) -> list[CheckResult]:
        find = finder(self.name, facts)
        wrong = expect_results(find, results, 3)
        if wrong is not None:
            return [wrong]
        try:
            limits = _Limits.of(facts)
        except BadThreshold as exc:
            return [find.error(str(exc))]
        df, meminfo, ib = results
        out = _disk(find, df, limits) + _memory(find, meminfo, limits) + _ib(find, ib, limits)
        return out


@dataclass(frozen=True)
class _Limits:
    mounts: list[str]
    disk_warn: float
    disk_fail: float
    mem_warn: float
    mem_total_min_gib: float | None
    ib_min: float
    ib_ignore: list[str]

    @classmethod
    def of(cls, facts: NodeFacts) -> _Limits:
        return cls(
            mounts=threshold_list(facts, "disk_mounts", DEFAULT_MOUNTS, str),
            disk_warn=threshold_number(facts, "disk_free_warn_pct", DEFAULT_DISK_FREE_WARN_PCT),
            disk_fail=threshold_number(facts, "disk_free_fail_pct", DEFAULT_DISK_FREE_FAIL_PCT),
            mem_warn=threshold_number(
                facts, "mem_available_warn_pct", DEFAULT_MEM_AVAILABLE_WARN_PCT
            ),
            mem_total_min_gib=threshold_optional(facts, "mem_total_min_gib", None),
            ib_min=threshold_number(facts, "ib_ports_min", 0),
            ib_ignore=threshold_list(facts, "ib_devices_ignore", (), str),
        )


def _disk(find: Finder, result: CommandResult, limits: _Limits) -> list[CheckResult]:
    if result.returncode == EXIT_NOT_FOUND:
        return [find.error("df is not installed")]
    try:
        rows = parse_df(result.stdout)
    except BasicsParseError as exc:
        return [find.error(f"unparsable df output ({exc}): {first_line(result)}")]
    out: list[CheckResult] = [
        find.error(f"df: {line.strip()[:160]}", metric="disk_free_pct")
        for line in result.stderr.splitlines()
        if line.strip()
    ]
    if not rows and not out:
        return [find.error(f"df reported no filesystem: {first_line(result)}")]
    seen: set[str] = set()
    for row in rows:
        if row.mount in seen:
            continue
        seen.add(row.mount)
        pct = row.free_pct
        ev = {"filesystem": row.filesystem, "available_kib": row.available_kib}
        kw = {"metric": "disk_free_pct", "value": round(pct, 2), "evidence": ev}
        text = f"{row.mount}: {pct:.1f}% free ({row.available_kib / KIB_PER_GIB:.1f} GiB)"
        if pct < limits.disk_fail:
            out.append(find.fail(text, threshold=limits.disk_fail, action="free disk space", **kw))
        elif pct < limits.disk_warn:
            out.append(find.warn(text, threshold=limits.disk_warn, action="free disk space", **kw))
        else:
            out.append(find.ok(text, threshold=limits.disk_warn, **kw))
    return out


def _memory(find: Finder, result: CommandResult, limits: _Limits) -> list[CheckResult]:
    if not result.ok:
        return [find.error(f"cannot read /proc/meminfo: {first_line(result)}")]
    try:
        info = parse_meminfo(result.stdout)
    except BasicsParseError as exc:
        return [find.error(f"unparsable /proc/meminfo ({exc}): {first_line(result)}")]
    total = info["MemTotal"]
    available = info.get("MemAvailable")
    if available is None or total <= 0:
        return [find.error("/proc/meminfo has no MemAvailable (kernel < 3.14?)")]
    total_gib = total / KIB_PER_GIB
    ev = {"mem_total_kib": total, "mem_available_kib": available}
    if limits.mem_total_min_gib is not None and total_gib < limits.mem_total_min_gib:
        return [
            find.fail(
                f"memory total {total_gib:.1f} GiB under {limits.mem_total_min_gib:g} GiB",
                metric="mem_total_gib",
                value=round(total_gib, 2),
                threshold=limits.mem_total_min_gib,
                action="check for failed DIMMs (dmidecode, edac)",
                evidence=ev,
            )
        ]
    pct = 100.0 * available / total
    text = f"memory {pct:.1f}% available of {total_gib:.1f} GiB"
    kw = {"metric": "mem_available_pct", "value": round(pct, 2), "threshold": limits.mem_warn}
    if pct < limits.mem_warn:
        return [
            find.warn(text, action="look for leaked jobs / page cache pinning", evidence=ev, **kw)
        ]
    return [find.ok(text, evidence=ev, **kw)]


def _ib(find: Finder, result: CommandResult, limits: _Limits) -> list[CheckResult]:
    if result.returncode == EXIT_NOT_FOUND:
        return [find.error("find is not installed")]
    text = result.stdout + result.stderr
    if not result.ok and "No such file or directory" in text and not result.stdout.strip():
        if limits.ib_min > 0:
            return [
                find.fail(
                    f"no InfiniBand device, expected {limits.ib_min:g} active ports",
                    metric="ib_ports_active",
                    value=0,
                    threshold=limits.ib_min,
                    action="check the HCAs and their driver (mlx5_core)",
                )
            ]
        return [find.ok("no InfiniBand device", metric="ib_ports_active", value=0)]
    if not result.ok:
        return [find.error(f"cannot read InfiniBand port states: {first_line(result)}")]
    try:
        states = parse_ib_states(result.stdout)
    except BasicsParseError as exc:
        return [find.error(f"unparsable InfiniBand port states ({exc})")]
    states = {k: v for k, v in states.items() if k[0] not in limits.ib_ignore}
    out: list[CheckResult] = []
    active = 0
    for (dev, port), state in sorted(states.items()):
        if state == "ACTIVE":
            active += 1
            continue
        out.append(
            find.fail(
                f"InfiniBand {dev} port {port} is {state}",
                metric="ib_port_state",
                value=state,
                threshold="ACTIVE",
                action="check the cable and the switch port (ibstat, ibdiagnet)",
                evidence={"device": dev, "port": port},
            )
        )
    if active < limits.ib_min:
        out.append(
            find.fail(
                f"{active} InfiniBand ports active, expected at least {limits.ib_min:g}",
                metric="ib_ports_active",
                value=active,
                threshold=limits.ib_min,
                action="check the HCAs, cables and switch ports",
            )
        )
    if not out:
        out.append(
            find.ok(
                f"{active} InfiniBand ports active",
                metric="ib_ports_active",
                value=active,
                threshold=limits.ib_min,
            )
        )
    return out
