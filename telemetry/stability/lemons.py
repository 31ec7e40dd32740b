"""Lemon nodes: the repeat offenders among the nodes that interrupted jobs."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class LemonNode:
    """A node that keeps interrupting jobs."""

    rank: int
    node: str
    interruptions: int
    node_fail: int
    xid: int
    jobs: int
    exposure_node_days: float
    per_1000_node_days: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def lemon_nodes(
    interruptions: pd.DataFrame, *, min_interruptions: int = 2, top: int | None = None
) -> list[LemonNode]:
    """Repeat offenders: nodes with at least ``min_interruptions``, worst first.

    Ranked by interruptions, then by interruptions per 1,000 node-days of
    exposure (a node that failed as often with less work is worse), then name.
    """
    rows = interruptions[interruptions["interruptions"] >= min_interruptions].copy()
    rows["_rate"] = rows["per_1000_node_days"].astype("float64").fillna(float("inf"))
    rows = rows.sort_values(["interruptions", "_rate", "node"], ascending=[False, False, True])
    if top is not None:
        rows = rows.head(top)
    return [
        LemonNode(
            rank=i + 1,
            node=str(r["node"]),
            interruptions=int(r["interruptions"]),
            node_fail=int(r["node_fail"]),
            xid=int(r["xid"]),
            jobs=int(r["jobs"]),
            exposure_node_days=float(r["exposure_node_days"]),
            per_1000_node_days=None
            if r["per_1000_node_days"] is None or r["per_1000_node_days"] != r["per_1000_node_days"]
            else float(r["per_1000_node_days"]),
        )
        for i, (_, r) in enumerate(rows.iterrows())
    ]
