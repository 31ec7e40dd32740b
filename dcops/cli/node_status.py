"""What ``dcops node status`` shows per node: scheduler view, ownership, lifecycle, evidence."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from dcops.actions import origin_of_reason
from dcops.node_actions import NodeActions
from dcops.store import Store


def node_status(
    store: Store, actions: NodeActions, nodes: str | Iterable[str]
) -> list[dict[str, Any]]:
    states = actions.states(nodes)
    out = []
    for name, state in states.items():
        life = store.conn.execute(
            "SELECT state, evidence FROM node_state WHERE node = ?", (name,)
        ).fetchone()
        last = store.conn.execute(
            "SELECT a.id, a.kind, a.status, a.source, a.source_run, a.reason, a.evidence,"
            " a.updated_at FROM action_nodes n JOIN actions a ON a.id = n.action_id"
            " WHERE n.node = ? ORDER BY a.updated_at DESC LIMIT 1",
            (name,),
        ).fetchone()
        last_action = dict(last) if last is not None else None
        if last_action is not None:
            last_action["evidence"] = json.loads(last_action["evidence"])
        out.append(
            {
                "node": name,
                "state": "+".join(state.states),
                "states": list(state.states),
                "drained": state.drain,
                "reason": state.reason,
                "reason_user": state.reason_user,
                "by_dcops": state.by_dcops,
                "drained_by": (
                    (origin_of_reason(state.reason) or "dcops")
                    if state.by_dcops
                    else ("operator" if state.drain else None)
                ),
                "lifecycle": life["state"] if life is not None else None,
                "last_action": last_action,
                "evidence": last_action["evidence"] if last_action else [],
            }
        )
    return out
