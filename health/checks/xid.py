"""``xid``: NVIDIA XID events in the kernel log since the last sweep, classified.

Commands (all three always run; the judge picks):

1. ``journalctl -k --since @<facts.since_s> -o short-unix --no-pager``
   (``-b``, the current boot, instead of ``--since`` when ``since_s`` is None);
2. ``dmesg --time-format iso`` -- used only when journalctl exits 127 (not
   installed); its lines are filtered to ``since_s`` here;
3. ``ls -1 /proc/driver/nvidia/gpus`` -- the driver's PCI ids in index order,
   which turn the ``PCI:dddd:bb:dd`` of an XID line into a GPU index.

Lines look like ``NVRM: Xid (PCI:0000:3b:00): 79, pid='<unknown>', name=<unknown>,
GPU has fallen off the bus.`` (older drivers: ``pid=1234, <message>`` or no pid).
Each (GPU, code) pair gives one finding, classified by
:func:`burnin.verdicts.xid.classify_xid`: critical -> fail, non-critical -> warn,
45 -> ok. Fatal (drain at once): codes in ``xid_fatal_codes`` (default 48, 64,
79, 95) and XID 154 whose recovery action is ``NODE_REBOOT`` or
``DRAIN_AND_RESET``. Codes in ``xid_ignore_codes`` (default none) are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from dcops.measurements import CommandResult
from dcops.xid import RECOVERY_ACTIONS, classify_xid
from health.base import CheckResult, CheckStatus, NodeFacts, register_check
from health.checks._common import (
    EXIT_NOT_FOUND,
    PROC_GPUS_ARGV,
    BadThreshold,
    Finder,
    PciId,
    expect_results,
    finder,
    first_line,
    format_pci,
    index_of,
    parse_pci,
    parse_proc_gpus,
    threshold_list,
)

DEFAULT_FATAL_CODES = (48, 64, 79, 95)
FATAL_RECOVERY_ACTIONS = ("NODE_REBOOT", "DRAIN_AND_RESET")

_XID = re.compile(r"NVRM: Xid \((?P<pci>[^)]*)\): (?P<code>\d+)(?:,\s*(?P<rest>.*))?$")
_PID = re.compile(r"^pid=(?P<pid>[^,]*),\s*")
_NAME = re.compile(r"^name=(?P<name>[^,]*),\s*")
_JOURNAL_LINE = re.compile(r"^(?P<ts>\d{9,}(?:\.\d+)?)\s+\S+\s+(?P<text>.*)$")
_DMESG_LINE = re.compile(
    r"^(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)\s+(?P<text>.*)$"
)
_RECOVERY_TO = re.compile(r"\bto 0x[0-9a-fA-F]+ \((?P<words>[^)]*)\)")


@dataclass(frozen=True)
class KernelXid:
    """One XID line of the kernel log."""

    timestamp_s: float
    pci: PciId | None
    pci_text: str
    code: int
    message: str
    pid: str | None = None
    process: str | None = None


@dataclass(frozen=True)
class KernelLog:
    xids: tuple[KernelXid, ...]
    lines: int  # non-empty lines
    recognised: int  # lines in the expected timestamped (or journal meta) form


def parse_kernel_log(text: str, *, form: str) -> KernelLog:
    """``form``: ``"journal"`` (journalctl -o short-unix) or ``"dmesg"`` (--time-format iso)."""
    stamp = _JOURNAL_LINE if form == "journal" else _DMESG_LINE
    xids: list[KernelXid] = []
    lines = recognised = 0
    for raw in text.splitlines():
        if not raw.strip():
            continue
        lines += 1
        if raw.startswith("-- ") or raw[:1].isspace():
            recognised += 1  # journal meta ("-- No entries --") or a continuation line
            continue
        match = stamp.match(raw)
        if match is None:
            continue
        when = _timestamp(match.group("ts"), form)
        if when is None:
            continue
        recognised += 1
        event = parse_xid_text(match.group("text"), when)
        if event is not None:
            xids.append(event)
    return KernelLog(tuple(xids), lines, recognised)


def parse_xid_text(text: str, timestamp_s: float) -> KernelXid | None:
    """The XID in one kernel message (``... NVRM: Xid (PCI:...): N, ...``), or None."""
    match = _XID.search(text)
    if match is None:
        return None
    rest = (match.group("rest") or "").strip()
    pid = name = None
    if (found := _PID.match(rest)) is not None:
        pid, rest = found.group("pid").strip("'\""), rest[found.end() :]
    if (found := _NAME.match(rest)) is not None:
        name, rest = found.group("name"), rest[found.end() :]
    pci_text = match.group("pci").strip()
    return KernelXid(
        timestamp_s=timestamp_s,
        pci=parse_pci(pci_text),
        pci_text=pci_text,
        code=int(match.group("code")),
        message=rest.strip(),
        pid=pid,
        process=name,
    )


def _timestamp(text: str, form: str) -> float | None:
    if form == "journal":
        return float(text)
    try:
        when = datetime.fromisoformat(text.replace(",", "."))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def recovery_hint(message: str) -> str:
    """XID 154's message with the driver's recovery action spelled as the table's token.

    The driver prints e.g. ``GPU recovery action changed from 0x0 (None) to 0x1
    (GPU Reset Required)``; :func:`classify_xid` looks for ``GPU_RESET`` etc.
    """
    if any(re.search(rf"\b{a}\b", message) for a in RECOVERY_ACTIONS):
        return message
    found = _RECOVERY_TO.search(message)
    if found is None:
        return message
    words = found.group("words").lower()
    for needle, token in (
        ("drain and reset", "DRAIN_AND_RESET"),
        ("drain p2p", "DRAIN_P2P"),
        ("reboot", "NODE_REBOOT"),
        ("reset", "GPU_RESET"),
        ("none", "NONE"),
    ):
        if needle in words:
            return f"{message} [{token}]"
    return message


_STATUS = {"ignore": CheckStatus.OK, "warn": CheckStatus.WARN}


@register_check("xid")
class XidCheck:
    name = "xid"
    description = "NVIDIA XID events in the kernel log since the last sweep"

    def commands(self, facts: NodeFacts) -> Sequence[Sequence[str]]:
        window = ["-b"] if facts.since_s is None else ["--since", f"@{int(facts.since_s)}"]
        return [
            ["journalctl", "-k", *window, "-o", "short-unix", "--no-pager"],
            ["dmesg", "--time-format", "iso"],
            list(PROC_GPUS_ARGV),
        ]

    def judge(self, results: Sequence[CommandResult], facts: NodeFacts) -> list[CheckResult]:
        find = finder(self.name, facts)
        wrong = expect_results(find, results, 3)
        if wrong is not None:
            return [wrong]
        try:
            fatal_codes = set(threshold_list(facts, "xid_fatal_codes", DEFAULT_FATAL_CODES, int))
            ignored = set(threshold_list(facts, "xid_ignore_codes", (), int))
        except BadThreshold as exc:
            return [find.error(str(exc))]
        journal, dmesg, proc_result = results
        if journal.returncode == EXIT_NOT_FOUND:
            if dmesg.returncode == EXIT_NOT_FOUND:
                return [find.error("neither journalctl nor dmesg is installed")]
            if not dmesg.ok:
                return [find.error(f"dmesg failed (exit {dmesg.returncode}): {first_line(dmesg)}")]
            used, source = dmesg, "dmesg"
            log = parse_kernel_log(dmesg.stdout, form="dmesg")
        elif not journal.ok:
            return [
                find.error(f"journalctl failed (exit {journal.returncode}): {first_line(journal)}")
            ]
        else:
            used, source = journal, "journalctl"
            log = parse_kernel_log(journal.stdout, form="journal")
        if log.lines and not log.recognised:
            return [find.error(f"unrecognised {source} output: {first_line(used)}")]
        since = facts.since_s
        events = [x for x in log.xids if since is None or x.timestamp_s >= since]
        window = "since boot" if since is None else f"since {_iso(since)}"
        proc = parse_proc_gpus(proc_result)
        groups: dict[tuple[str, int], list[KernelXid]] = {}
        for event in events:
            if event.code not in ignored:
                key = (format_pci(event.pci) if event.pci else event.pci_text, event.code)
                groups.setdefault(key, []).append(event)
        if not groups:
            return [find.ok(f"no XID {window}", metric="xid_events", value=0)]
        out: list[CheckResult] = []
        for (pci_text, code), group in sorted(groups.items()):
            out.append(self._finding(find, pci_text, code, group, proc, fatal_codes, source))
        return out

    @staticmethod
    def _finding(
        find: Finder,
        pci_text: str,
        code: int,
        group: list[KernelXid],
        proc: list[PciId] | None,
        fatal_codes: set[int],
        source: str,
    ) -> CheckResult:
        last = group[-1]
        rule = classify_xid(code, recovery_hint(last.message))
        fatal = code in fatal_codes or (
            code == 154 and any(a in rule.action for a in FATAL_RECOVERY_ACTIONS)
        )
        status = CheckStatus.FAIL if fatal else _STATUS.get(rule.severity, CheckStatus.FAIL)
        gpu = index_of(last.pci, proc) if last.pci is not None else None
        times = f"x{len(group)} " if len(group) > 1 else ""
        return find(
            status,
            f"XID {code} ({rule.what}) {times}on GPU {pci_text}: {last.message}".rstrip(": "),
            fatal=fatal,
            gpu=gpu,
            metric="xid",
            value=code,
            action=rule.action,
            evidence={
                "pci": pci_text,
                "count": len(group),
                "first_s": group[0].timestamp_s,
                "last_s": last.timestamp_s,
                "messages": [x.message for x in group[-3:]],
                "source": source,
            },
        )


def _iso(when_s: float) -> str:
    return datetime.fromtimestamp(when_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
