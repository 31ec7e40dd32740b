"""Judge collective sweeps: correctness, busbw against per-scope floors, peer outliers.

The figure judged for a sweep is :func:`group_busbw`: the median busbw over the
out-of-place and in-place samples of every row at or above the profile's
``min_size_bytes`` (bandwidth only plateaus at large messages: CoreWeave's
NVL72 rack reaches 835+ GB/s from 4 GiB). The median, not the peak, so noise
does not bias the figure upwards.

Scale-awareness: a group's scope is ``node`` (one tray), ``domain`` (several
trays of one NVLink domain) or ``inter_domain``; each has its own expected,
warn and fail busbw in the profile. Absolute floors apply to the profile's op
(all_reduce); every op is checked for correctness and against peers: groups of
the same op, rank count and scope (e.g. the 36 per-tray sweeps of a 2-rack
run) are compared by :mod:`burnin.verdicts.robust`.

Findings: one ``collective`` finding per sweep at least, attached to the group
(a node for a one-tray sweep, the rack(s) otherwise). ``wrong > 0`` fails;
``#wrong`` printed as N/A warns (correctness unchecked); a sweep with no row
large enough is an error (nothing to judge), as is a sweep that raised
(:func:`collective_error`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from burnin.profiles.model import CollectiveThresholds
from burnin.verdicts.robust import OutlierRule, low_outliers, median
from burnin.verdicts.status import Finding, Reason, Status, group_finding
from dcops.measurements import CollectiveResult, GpuRef

CHECK = "collective"


def scope_of(members: Sequence[GpuRef], domain_of: Mapping[str, str]) -> str:
    """``node``, ``domain`` or ``inter_domain`` for a group of GPUs."""
    nodes = {g.node for g in members}
    if len(nodes) <= 1:
        return "node"
    domains = {domain_of.get(n, n) for n in nodes}
    return "domain" if len(domains) == 1 else "inter_domain"


def group_busbw(result: CollectiveResult, min_size_bytes: int) -> float | None:
    """Median busbw of the rows at or above ``min_size_bytes``; None when there are none."""
    samples: list[float] = []
    for row in result.rows:
        if row.size_bytes < min_size_bytes:
            continue
        samples.append(row.out_of_place.busbw_gbps)
        if row.in_place is not None:
            samples.append(row.in_place.busbw_gbps)
    return median(samples) if samples else None


def _label(result: CollectiveResult, scope: str) -> str:
    return f"{result.op} over {len(result.members)} GPUs ({scope})"


def judge_collectives(
    results: Sequence[CollectiveResult],
    thresholds: CollectiveThresholds,
    *,
    domain_of: Mapping[str, str],
) -> list[Finding]:
    """Findings for every sweep in ``results`` (see the module docstring)."""
    out: list[Finding] = []
    figures: dict[int, float] = {}
    peers: dict[tuple[str, int, str], dict[int, float]] = {}
    for i, result in enumerate(results):
        scope = scope_of(result.members, domain_of)
        found = _judge_one(result, scope, thresholds)
        busbw = group_busbw(result, thresholds.min_size_bytes)
        if busbw is not None and len(result.members) > 1:
            figures[i] = busbw
            peers.setdefault((result.op, len(result.members), scope), {})[i] = busbw
        out.extend(found)

    p = thresholds.peers
    rule = OutlierRule(p.z_cut, p.warn_deficit, p.min_peers, p.min_scale_fraction)
    for (op, ranks, scope), table in peers.items():
        for i, low in low_outliers(table, rule).items():
            status = Status.FAIL if low.deficit >= p.fail_deficit else Status.WARN
            msg = (
                f"{op} over {ranks} GPUs ({scope}): busbw {low.value:.4g} GB/s is "
                f"{100 * low.deficit:.1f}% below its {len(table)} peer groups' median "
                f"{low.median:.4g} (robust z {low.z:.1f})"
            )
            reason = Reason(CHECK, "busbw_vs_peers", low.value, low.median, msg)
            out.append(group_finding(results[i].members, status, reason))

    # One pass finding per sweep that nothing flagged, carrying its figure.
    flagged = {f.gpus + f.nodes for f in out if f.status is not Status.PASS}
    for i, result in enumerate(results):
        probe = group_finding(result.members, Status.PASS, Reason(CHECK, "", None, None, ""))
        if probe.gpus + probe.nodes in flagged:
            continue
        scope = scope_of(result.members, domain_of)
        busbw = figures.get(i)
        floor = thresholds.busbw_gbps.get(scope)
        expected = floor.expected if floor is not None else None
        msg = f"{_label(result, scope)}: busbw {busbw:.4g} GB/s" if busbw is not None else "ok"
        reason = Reason(CHECK, "busbw_gbps", busbw, expected, msg)
        out.append(group_finding(result.members, Status.PASS, reason))
    return out


def _judge_one(
    result: CollectiveResult, scope: str, thresholds: CollectiveThresholds
) -> list[Finding]:
    members = result.members
    label = _label(result, scope)
    out: list[Finding] = []
    if not result.rows:
        msg = f"{label}: no result rows (empty or unparsable output)"
        return [group_finding(members, Status.ERROR, Reason(CHECK, "rows", 0, None, msg))]
    wrong = 0
    unchecked = False
    for row in result.rows:
        for sample in (row.out_of_place, row.in_place):
            if sample is None:
                continue
            if sample.wrong is None:
                unchecked = True
            else:
                wrong += sample.wrong
    if wrong > 0:
        msg = f"{label}: {wrong} wrong values: data corruption in the group"
        out.append(group_finding(members, Status.FAIL, Reason(CHECK, "wrong", wrong, 0, msg)))
    elif unchecked:
        msg = f"{label}: correctness not checked (#wrong is N/A)"
        out.append(group_finding(members, Status.WARN, Reason(CHECK, "wrong", "N/A", 0, msg)))
    if len(members) < 2:
        return out
    busbw = group_busbw(result, thresholds.min_size_bytes)
    if busbw is None:
        msg = f"{label}: no row at or above {thresholds.min_size_bytes} bytes; cannot judge busbw"
        reason = Reason(CHECK, "busbw_gbps", None, thresholds.min_size_bytes, msg)
        out.append(group_finding(members, Status.ERROR, reason))
        return out
    floor = thresholds.busbw_gbps.get(scope)
    if floor is None or result.op != thresholds.op:
        return out
    if busbw < floor.fail:
        msg = f"{label}: busbw {busbw:.4g} GB/s below the fail floor {floor.fail:g}"
        out.append(
            group_finding(members, Status.FAIL, Reason(CHECK, "busbw_gbps", busbw, floor.fail, msg))
        )
    elif busbw < floor.warn:
        msg = f"{label}: busbw {busbw:.4g} GB/s below the warn floor {floor.warn:g}"
        out.append(
            group_finding(members, Status.WARN, Reason(CHECK, "busbw_gbps", busbw, floor.warn, msg))
        )
    return out


def collective_error(op: str, members: Sequence[GpuRef], error: BaseException | str) -> Finding:
    """An ``error`` finding for a sweep that raised (NCCL failure, timeout, unreachable)."""
    msg = f"{op} over {len(members)} GPUs did not complete: {error}"
    return group_finding(members, Status.ERROR, Reason(CHECK, "completed", 0, 1, msg))
