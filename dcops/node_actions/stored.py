"""The simulator's scheduler, kept in the state store between commands.

``burnin run --sim``, ``sweep --sim``, ``node ... --sim`` and ``actions ...
--sim`` all see the same in-memory scheduler (:class:`RecordingNodeActions`):
it is loaded from the ``sim_scheduler`` table when a command starts and every
drain and resume is written back at once, so a drain made by one command is
there for the next (an operator's drain included)::

    actions = StoredNodeActions(store, site.nodes())
    actions.drain("sim-r01-t03", "admin: RMA 4711")     # kept in state.db
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable

from dcops.node_actions.base import SchedulerNodeState, node_names
from dcops.node_actions.recording import RecordingNodeActions
from dcops.store import Store, utc_now


class StoredNodeActions(RecordingNodeActions):
    """A :class:`RecordingNodeActions` whose table lives in the store's ``sim_scheduler``."""

    name = "recording"

    def __init__(
        self,
        store: Store,
        nodes: str | Iterable[str] = (),
        *,
        user: str = "dcops",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(nodes, user=user, clock=clock)
        self.store = store
        rows = store.conn.execute("SELECT * FROM sim_scheduler").fetchall()
        known = set(self._nodes)
        stored = {row["node"] for row in rows}
        self._save([n for n in self._nodes if n not in stored])  # every node, for later commands
        for row in rows:
            if row["node"] in known or not known:
                self._nodes[row["node"]] = SchedulerNodeState(
                    node=row["node"],
                    states=tuple(json.loads(row["states"])),
                    reason=row["reason"],
                    reason_user=row["reason_user"],
                    reason_time_s=row["reason_time_s"],
                )

    def drain(self, nodes: str | Iterable[str], reason: str) -> list[str]:
        done = super().drain(nodes, reason)
        self._save(done)
        return done

    def resume(self, nodes: str | Iterable[str]) -> list[str]:
        done = super().resume(nodes)
        self._save(done)
        return done

    def set_base(self, node: str, base: str) -> None:
        super().set_base(node, base)
        self._save([node])

    def _save(self, names: Iterable[str]) -> None:
        now = utc_now()
        rows = [
            (
                n,
                json.dumps(list(self._nodes[n].states)),
                self._nodes[n].reason,
                self._nodes[n].reason_user,
                self._nodes[n].reason_time_s,
                now,
            )
            for n in node_names(list(names))
        ]
        if not rows:
            return
        with self.store.transaction() as conn:
            conn.executemany(
                "INSERT INTO sim_scheduler (node, states, reason, reason_user, reason_time_s,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(node) DO UPDATE SET"
                " states=excluded.states, reason=excluded.reason,"
                " reason_user=excluded.reason_user, reason_time_s=excluded.reason_time_s,"
                " updated_at=excluded.updated_at",
                rows,
            )
