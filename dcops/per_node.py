"""One call per node in parallel, told back as each node answers, kept in node order.

``each_node(pool, call, nodes, answered=...)`` is how a burn-in stage and a
telemetry tick read their nodes: a hung node holds back no one else's answer
(``answered(node, count)`` follows completion order, for progress and "waiting
for ..." lines), and the outcomes come back in the order of ``nodes``. ``call``
returns its failures as values; an exception it raises propagates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor, as_completed
from typing import TypeVar

T = TypeVar("T")


def _nothing(node: str, count: int) -> None:
    return None


def each_node(
    pool: Executor,
    call: Callable[[str], T],
    nodes: Sequence[str],
    *,
    answered: Callable[[str, int], None] = _nothing,
) -> dict[str, T]:
    """``{node: call(node)}`` in the order of ``nodes``; ``answered(node, k)`` for the
    k-th node to answer, as it does."""
    futures = {pool.submit(call, node): node for node in nodes}
    got: dict[str, T] = {}
    for count, future in enumerate(as_completed(futures), start=1):
        node = futures[future]
        got[node] = future.result()
        answered(node, count)
    return {node: got[node] for node in nodes}
