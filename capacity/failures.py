"""Failure events: the import CSV and availability figures (MTBF, MTTR) per node, rack, fleet.

The CSV (``dcops capacity import-failures FILE``), one outage per row, with a
header naming at least these columns (others are ignored)::

    node,failed_at,repaired_at,cause
    gb200-r01-t03,2025-01-04T10:54:00Z,2025-01-04T16:00:00Z,GPU Xid 79
    gb200-r01-t07,2025-01-09 08:00,,NVLink        # empty repaired_at: still out

Times are ISO-8601; without a zone they are UTC. A row whose ``repaired_at``
is before its ``failed_at``, a bad time, an empty node, or (when a site is in
use) a node the site does not hold is an error naming the file and line, and
nothing is written.

Definitions (:func:`availability`), over a window ``[since, until]`` (default:
the first to the last time in the events):

* the outages of a node are merged first (overlapping or touching records are
  one outage; the count merged away is reported), so downtime never counts twice;
* ``failures``: merged outages that start inside the window;
* ``downtime_h``: hours out inside the window (an open outage runs to ``until``);
* ``mtbf_h = (window_h - downtime_h) / failures`` (up time per failure);
* ``mttr_h = downtime_h / failures``; both ``null`` when a node had no failure;
* racks and fleet: the same over their nodes, summing up time, downtime and
  failures (nodes without failures add up time).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from capacity.outages import Merged, Outage, downtime_s, merge
from dcops.errors import LocatedInputError

COLUMNS = ("node", "failed_at", "repaired_at", "cause")


def parse_time(text: str) -> float:
    """ISO-8601 (``Z`` allowed; no zone = UTC) to Unix seconds; ValueError if malformed."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def parse_failures_csv(
    text: str, path: str, *, known_nodes: Iterable[str] | None = None, source: str = ""
) -> list[Outage]:
    """The rows of a failure CSV as outages; LocatedInputError (file:line) on the first bad one."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise LocatedInputError(
            path, "empty file: want a header node,failed_at,repaired_at,cause"
        ) from None
    names = [h.strip().lower() for h in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise LocatedInputError(path, f"missing column(s) {', '.join(missing)}", line=1)
    idx = {c: names.index(c) for c in COLUMNS}
    known = set(known_nodes) if known_nodes is not None else None
    out: list[Outage] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(names):
            raise LocatedInputError(
                path, f"{len(row)} fields, the header has {len(names)}", line=line
            )
        node = row[idx["node"]].strip()
        if not node:
            raise LocatedInputError(path, "empty node", line=line)
        if known is not None and node not in known:
            raise LocatedInputError(path, f"node {node!r} is not in the site", line=line)
        try:
            failed = parse_time(row[idx["failed_at"]])
        except ValueError:
            raise LocatedInputError(
                path, f"bad failed_at {row[idx['failed_at']]!r} (want ISO-8601)", line=line
            ) from None
        raw_end = row[idx["repaired_at"]].strip()
        try:
            repaired = parse_time(raw_end) if raw_end else None
        except ValueError:
            raise LocatedInputError(
                path, f"bad repaired_at {raw_end!r} (want ISO-8601 or empty)", line=line
            ) from None
        if repaired is not None and repaired < failed:
            raise LocatedInputError(path, f"repaired_at {raw_end} is before failed_at", line=line)
        out.append(Outage(node, failed, repaired, row[idx["cause"]].strip(), source))
    return out


def window_of(outages: Sequence[Outage]) -> tuple[float, float] | None:
    """First to last time named in the events (None without events)."""
    times = [o.start_s for o in outages] + [o.end_s for o in outages if o.end_s is not None]
    return (min(times), max(times)) if times else None


def _stats(up_s: float, down_s: float, failures: int) -> dict[str, Any]:
    hours = 3600.0
    return {
        "failures": failures,
        "downtime_h": round(down_s / hours, 6),
        "uptime_h": round(up_s / hours, 6),
        "mtbf_h": round(up_s / hours / failures, 6) if failures else None,
        "mttr_h": round(down_s / hours / failures, 6) if failures else None,
        "availability": round(up_s / (up_s + down_s), 9) if up_s + down_s > 0 else None,
    }


def availability(
    outages: Sequence[Outage],
    *,
    since_s: float | None = None,
    until_s: float | None = None,
    nodes: Sequence[str] | None = None,
    rack_of: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Per node, (per rack,) fleet availability figures over the window (see module docstring)."""
    merged: Merged = merge(outages)
    span = window_of(outages)
    start = since_s if since_s is not None else (span[0] if span else 0.0)
    end = until_s if until_s is not None else (span[1] if span else start)
    window = max(0.0, end - start)
    names = list(nodes) if nodes is not None else sorted(merged.outages)
    per_node: list[dict[str, Any]] = []
    sums: dict[str, list[float]] = {}
    fleet = [0.0, 0.0, 0.0]
    for node in names:
        items = merged.outages.get(node, [])
        down = downtime_s(items, start, end)
        fails = sum(1 for o in items if start <= o.start_s <= end)
        up = window - down
        per_node.append({"node": node, **_stats(up, down, fails)})
        for acc in (fleet, sums.setdefault(rack_of[node], [0.0, 0.0, 0.0]) if rack_of else None):
            if acc is not None:
                acc[0] += up
                acc[1] += down
                acc[2] += fails
    result: dict[str, Any] = {
        "window": {"since_s": start, "until_s": end, "hours": round(window / 3600.0, 6)},
        "records": len(outages),
        "merged": merged.merged_away,
        "nodes": per_node,
        "fleet": {"nodes": len(names), **_stats(fleet[0], fleet[1], int(fleet[2]))},
    }
    if rack_of:
        result["racks"] = [
            {"rack": rack, **_stats(v[0], v[1], int(v[2]))} for rack, v in sorted(sums.items())
        ]
    return result
