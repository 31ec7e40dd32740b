"""Job interruptions charged to nodes (node_fail, XID events), with each node's exposure."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from telemetry.jobs import FAILURE_STATES
from telemetry.stability.frame import DAY_S, check_states

if TYPE_CHECKING:
    import pandas as pd

#: Columns of an XID table (one row per XID event): node, time, XID code.
XID_COLUMNS: tuple[str, ...] = ("node", "time", "xid")


def _job_nodes(jobs: pd.DataFrame) -> pd.DataFrame:
    """One row per (job, node) for jobs that name their nodes."""
    import pandas as pd

    rows = jobs[jobs["nodes"].notna()][
        ["source", "job_id", "nodes", "state", "start_time", "end_time", "extra"]
    ]
    exploded = rows.explode("nodes").rename(columns={"nodes": "node"})
    exploded = exploded[exploded["node"].notna()]
    return pd.DataFrame(exploded).reset_index(drop=True)


def _failed_node(extra: object) -> str | None:
    if not isinstance(extra, str) or "failed_node" not in extra:
        return None
    import json

    try:
        value = json.loads(extra).get("failed_node")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


def node_interruptions(
    jobs: pd.DataFrame,
    xids: pd.DataFrame | None = None,
    *,
    failure_states: Iterable[str] = FAILURE_STATES,
) -> pd.DataFrame:
    """Interruptions attributed to nodes, with each node's exposure.

    A job's interruption is charged to a node when the job ended ``node_fail``
    (to the node Slurm names in ``extra.failed_node`` when it does, else to
    every node of the job), or when it ended in another failure state and the
    XID table has an event on one of its nodes between its start and end. One
    job charges a node at most once. **Exposure** = node-days of every job that
    ran on the node (runtime known). Columns: ``node, interruptions, node_fail,
    xid, jobs, exposure_node_days, per_1000_node_days, last_time``.
    """
    import pandas as pd

    check_states(jobs)
    fstates = set(failure_states)
    per = _job_nodes(jobs)
    per["days"] = (per["end_time"] - per["start_time"]).dt.total_seconds() / DAY_S
    exposure = per.groupby("node")["days"].sum(min_count=1).fillna(0.0)
    hits: list[pd.DataFrame] = []
    nf = per[per["state"] == "node_fail"].copy()
    if len(nf):
        named = nf["extra"].map(_failed_node)
        charged = named.isna() | (named == nf["node"])
        nf = nf[charged]
        hits.append(nf.assign(cause="node_fail", when=nf["end_time"]))
    if xids is not None and len(xids):
        missing = [c for c in XID_COLUMNS if c not in xids.columns]
        if missing:
            raise ValueError(f"XID table lacks column(s): {', '.join(missing)}")
        failed = per[per["state"].isin(fstates - {"node_fail"})]
        x = xids[list(XID_COLUMNS)].copy()
        x["time"] = pd.to_datetime(x["time"], utc=True)
        m = failed.merge(x, on="node")
        m = m[(m["time"] >= m["start_time"]) & (m["time"] <= m["end_time"])]
        m = m.sort_values("time").drop_duplicates(["source", "job_id", "node"])
        hits.append(m.assign(cause="xid", when=m["time"]))
    cols = [
        "node",
        "interruptions",
        "node_fail",
        "xid",
        "jobs",
        "exposure_node_days",
        "per_1000_node_days",
        "last_time",
    ]
    if not hits:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    allhits = pd.concat([h[["source", "job_id", "node", "cause", "when"]] for h in hits])
    allhits = allhits.drop_duplicates(["source", "job_id", "node"])
    g = allhits.groupby("node")
    out = pd.DataFrame(
        {
            "interruptions": g.size(),
            "node_fail": g["cause"].apply(lambda c: int((c == "node_fail").sum())),
            "xid": g["cause"].apply(lambda c: int((c == "xid").sum())),
            "jobs": g["job_id"].nunique(),
            "last_time": g["when"].max(),
        }
    )
    out["exposure_node_days"] = exposure.reindex(out.index).fillna(0.0)
    out["per_1000_node_days"] = [
        1000.0 * n / d if d > 0 else None
        for n, d in zip(out["interruptions"], out["exposure_node_days"], strict=True)
    ]
    out = out.reset_index().rename(columns={"index": "node"})
    return (
        out[cols]
        .sort_values(["interruptions", "node"], ascending=[False, True])
        .reset_index(drop=True)
    )
