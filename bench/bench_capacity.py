"""``capacity report`` and ``plan`` over 1,000 racks (18,000 trays), next to pandas.

The fleet: 1,000 simulated GB200 NVL72 racks of 18 trays with realistic state
churn drawn from a fixed seed (per tray: ~3% drained by dcops, ~1% drained by an
operator, ~0.5% handed to repair, ~0.5% in maintenance, ~0.7% unreachable in the
latest sweep, ~0.3% down in the scheduler, ~2% suspect, ~1% failing the latest
sweep; ~60% of the racks running a job on ~95% of their in-service trays).

Both sides start from the same in-memory tray records (what the store and the
scheduler give ``dcops capacity report``) and produce the same report: per rack
trays healthy / degraded / out, the out trays with their owner and reason,
healthy GPUs, domain state, segments ``promisable`` / ``free_now`` for sizes
1, 2, 4, 8, 9, 16, 18, fleet totals and out trays by owner.

* ``dcops``: :func:`capacity.trays.classify` per tray, then
  :func:`capacity.report.build_report`; the plan (32 trays in 16-tray
  segments, with repairs when it does not fit) is :func:`capacity.plan.plan`;
* ``pandas``: the straightforward vectorised implementation an operator would
  write: a DataFrame of the records, the owner and standing rules as
  ``numpy.select`` masks in the same order, ``groupby(rack)`` counts, floor
  division for segments, the out list grouped per rack; the plan's "fits now"
  as the sum of ``free // S`` over racks (no repair search: pandas has no
  counterpart, so the plan is compared on fits-now only).

The two reports are checked equal (per rack counts, segments, owners of the out
trays) before any time is printed. Each side runs ``--repeat`` times; the
median is reported. Run: ``python bench/bench_capacity.py [--racks 1000]``.
It ends with one ``RESULT`` line per query (:mod:`_result`): the report and the
fits-now plan, each against pandas.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _result import result  # noqa: E402

from capacity.plan import OutTray, RackSupply, Request, plan, repair_order  # noqa: E402
from capacity.report import DEFAULT_SEGMENT_SIZES, build_report  # noqa: E402
from capacity.trays import (  # noqa: E402
    OWNER_ORDER,
    Observation,
    Owner,
    SchedulerFacts,
    TrayFacts,
    classify,
)

SIZES = DEFAULT_SEGMENT_SIZES
TRAYS = 18
GPUS = 4
NOW = 1_765_000_000.0


def fleet(racks: int, seed: int) -> list[dict[str, Any]]:
    """One record per tray: what the scheduler, the lifecycle and the latest run say."""
    rng = random.Random(seed)
    rows = []
    for r in range(1, racks + 1):
        rack_busy = rng.random() < 0.6  # a rack runs one job across its trays, or idles
        for t in range(1, TRAYS + 1):
            x = rng.random()
            rec: dict[str, Any] = {
                "node": f"gb200-r{r:04d}-t{t:02d}",
                "rack": f"r{r:04d}",
                "drain": False,
                "down": False,
                "responding": True,
                "maint": False,
                "busy": rack_busy and rng.random() < 0.95,
                "reason": "",
                "by_dcops": False,
                "since": NOW - rng.uniform(0, 7 * 86400),
                "lifecycle": "ok",
                "obs_status": "pass",
                "obs_kind": "",
            }
            if x < 0.03:
                rec.update(drain=True, by_dcops=True, reason="dcops: sweep sw-1: xid 79")
                rec["lifecycle"] = "drained"
            elif x < 0.04:
                rec.update(drain=True, reason="admin: fan noise 4711")
            elif x < 0.045:
                rec.update(drain=True, by_dcops=True, reason="dcops: repair: ticket-9 escalated")
            elif x < 0.05:
                rec.update(maint=True, reason="maint window")
            elif x < 0.057:
                rec.update(obs_status="error", obs_kind="unreachable")
            elif x < 0.06:
                rec.update(down=True, responding=False, reason="Not responding")
            elif x < 0.08:
                rec["lifecycle"] = "suspect"
            elif x < 0.09:
                rec["obs_status"] = "fail"
            if rec["drain"] or rec["down"] or rec["maint"]:
                rec["busy"] = False
            rows.append(rec)
    return rows


# --- dcops ------------------------------------------------------------------------------------


def dcops_report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_rack: dict[str, list[Any]] = {}
    for rec in rows:
        facts = TrayFacts(
            node=rec["node"],
            rack=rec["rack"],
            gpus=GPUS,
            lifecycle=rec["lifecycle"],
            scheduler=SchedulerFacts(
                drain=rec["drain"],
                down=rec["down"],
                responding=rec["responding"],
                maintenance=rec["maint"],
                busy=rec["busy"],
                reason=rec["reason"],
                by_dcops=rec["by_dcops"],
                reason_time_s=rec["since"],
            ),
            observation=Observation(rec["obs_status"], "sw-1", NOW - 60, rec["obs_kind"]),
        )
        by_rack.setdefault(rec["rack"], []).append(classify(facts, now_s=NOW))
    return build_report([(r, r, v) for r, v in by_rack.items()], SIZES, at_s=NOW)


def dcops_plan(report: dict[str, Any], trays: int, segment: int) -> dict[str, Any]:
    rank = {o: i for i, o in enumerate(OWNER_ORDER)}
    supply = [
        RackSupply(
            rack=r["rack"],
            total=r["trays_total"],
            free=r["trays_free"],
            healthy=r["trays_healthy"],
            out=repair_order(
                [
                    OutTray(t["node"], t["owner"], rank[t["owner"]], t["reason"])
                    for t in r["trays_out"]
                ]
            ),
        )
        for r in report["racks"]
    ]
    return plan(Request(trays, segment), supply, SIZES)


# --- pandas -----------------------------------------------------------------------------------


def pandas_report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    df = pd.DataFrame.from_records(rows)
    low = df["reason"].str.lower()
    unreachable_obs = (df["obs_status"] == "error") & df["obs_kind"].isin(["unreachable", "hung"])
    maint = df["maint"] | (df["drain"] & low.str.startswith("maint"))
    handed = low.str.split(":", n=1).str[-1].str.strip().str.startswith("repair")
    repair_words = low.str.contains("repair|rma|replace", regex=True)
    drain = df["drain"] & ~maint
    conds = [
        unreachable_obs,
        maint,
        drain & df["by_dcops"] & ((df["lifecycle"] == "repair") | handed),
        drain & df["by_dcops"],
        drain & repair_words,
        drain,
        df["down"] | ~df["responding"],
        df["lifecycle"].isin(["drained", "repair"]),
        df["obs_status"].isin(["fail", "error"]),
    ]
    owners = ["unreachable", "maintenance", "repair", "dcops", "repair", "operator",
              "unreachable", "unknown", "dcops"]  # fmt: skip
    df["owner"] = np.select(conds, owners, default="")
    src = " in sw-1"
    down_why = np.where(
        df["reason"] != "", df["reason"], np.where(df["down"], "down", "not responding")
    )
    reasons = [
        df["obs_kind"] + src,
        np.where(df["reason"] != "", df["reason"], "maintenance"),
        df["reason"],
        df["reason"],
        df["reason"],
        np.where(df["reason"] != "", df["reason"], "drained (no reason)"),
        "scheduler: " + pd.Series(down_why, index=df.index, dtype=str),
        "dcops says " + df["lifecycle"] + " (" + df["lifecycle"] + "), scheduler in service",
        np.where(df["obs_kind"] != "", df["obs_kind"], df["obs_status"]) + src,
    ]
    df["reason"] = np.select(conds, [np.asarray(r, dtype=object) for r in reasons], default="")
    out = df["owner"] != ""
    degraded = ~out & ((df["lifecycle"] == "suspect") | (df["obs_status"] == "warn"))
    healthy = ~out & ~degraded
    df["healthy"] = healthy
    df["degraded"] = degraded
    df["free"] = healthy & ~df["busy"]
    g = df.groupby("rack", sort=False)
    counts = g.agg(
        total=("node", "size"),
        healthy=("healthy", "sum"),
        degraded=("degraded", "sum"),
        free=("free", "sum"),
    )
    outs = df[out].groupby("rack", sort=False)[["node", "owner", "reason"]]
    out_lists: dict[Hashable, list[dict[Hashable, Any]]] = {
        rack: part.to_dict("records") for rack, part in outs
    }
    state = np.select(
        [
            counts["healthy"] == 0,
            (counts["healthy"] < counts["total"]) | (counts["degraded"] > 0),
            counts["free"] == counts["total"],
        ],
        ["down", "degraded", "available"],
        default="running",
    )
    racks = []
    for (rack, row), st in zip(counts.iterrows(), state, strict=True):
        h, f = int(row["healthy"]), int(row["free"])
        racks.append(
            {
                "rack": rack,
                "state": st,
                "trays_total": int(row["total"]),
                "trays_healthy": h,
                "trays_degraded": int(row["degraded"]),
                "trays_free": f,
                "gpus_healthy": h * GPUS,
                "trays_out": out_lists.get(rack, []),
                "segments": {str(s): {"promisable": h // s, "free_now": f // s} for s in SIZES},
            }
        )
    by_owner = df.loc[out, "owner"].value_counts()
    return {
        "racks": racks,
        "fleet": {
            "trays_healthy": int(counts["healthy"].sum()),
            "trays_out": int(out.sum()),
            "out_by_owner": {o: int(by_owner.get(o, 0)) for o in OWNER_ORDER},
        },
    }


def pandas_fits_now(report: dict[str, Any], trays: int, segment: int) -> bool:
    free = pd.Series([r["trays_free"] for r in report["racks"]])
    return bool((free // segment).sum() >= trays // segment)


# --- compare and time -------------------------------------------------------------------------


def same(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Raise when the two reports differ in anything the baseline computes."""
    assert len(a["racks"]) == len(b["racks"])
    for x, y in zip(a["racks"], b["racks"], strict=True):
        for key in ("rack", "state", "trays_total", "trays_healthy", "trays_degraded",
                    "trays_free", "gpus_healthy", "segments"):  # fmt: skip
            assert x[key] == y[key], (x["rack"], key, x[key], y[key])
        ox = sorted((t["node"], t["owner"], t["reason"]) for t in x["trays_out"])
        oy = sorted((t["node"], t["owner"], t["reason"]) for t in y["trays_out"])
        assert ox == oy, x["rack"]
    for key in ("trays_healthy", "trays_out", "out_by_owner"):
        assert a["fleet"][key] == b["fleet"][key], key


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--racks", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="50 racks, 1 repeat (seconds)")
    args = ap.parse_args()
    if args.quick:
        args.racks, args.repeat = 50, 1
    rows = fleet(args.racks, args.seed)
    print(f"fleet: {args.racks} racks, {len(rows)} trays", flush=True)

    d_report_s, d_report = timed(lambda: dcops_report(rows), args.repeat)
    p_report_s, p_report = timed(lambda: pandas_report(rows), args.repeat)
    same(d_report, p_report)
    f = d_report["fleet"]
    owners = ", ".join(f"{k} {v}" for k, v in f["out_by_owner"].items())
    print(f"reports agree: {f['trays_healthy']} healthy, {f['trays_out']} out ({owners})")
    assert Owner.REPAIR.value in f["out_by_owner"]

    fits_trays = 32
    big = f["segments"]["16"]["free_now"] * 16 + 16  # one segment more than free: repairs
    d_plan_s, d_plan = timed(lambda: dcops_plan(d_report, fits_trays, 16), args.repeat)
    d_big_s, d_big = timed(lambda: dcops_plan(d_report, big, 16), args.repeat)
    p_plan_s, p_fits = timed(lambda: pandas_fits_now(p_report, fits_trays, 16), args.repeat)
    assert d_plan["fits_now"] == p_fits
    print(
        f"plan {fits_trays} trays/16: fits_now={d_plan['fits_now']}; plan {big} trays/16: "
        f"fits_now={d_big['fits_now']}, repairs={len(d_big['repairs'])}"
    )
    print(f"{'query':<28}{'dcops s':>10}{'pandas s':>10}{'pandas/dcops':>14}")
    print(f"{'report':<28}{d_report_s:>10.3f}{p_report_s:>10.3f}{p_report_s / d_report_s:>14.2f}")
    ratio = p_plan_s / d_plan_s
    print(f"{'plan (pandas: fits-now only)':<28}{d_plan_s:>10.4f}{p_plan_s:>10.4f}{ratio:>14.2f}")
    print(f"{'plan (with repairs)':<28}{d_big_s:>10.4f}{'-':>10}{'-':>14}")
    result("capacity_report", d_report_s, p_report_s, "s", "lower")
    result("capacity_plan_fits_now", d_plan_s, p_plan_s, "s", "lower")


if __name__ == "__main__":
    main()
