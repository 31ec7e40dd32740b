"""each_node: answers in completion order, outcomes in node order."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from dcops.per_node import each_node


def test_a_slow_first_node_is_told_last_and_kept_first() -> None:
    release = threading.Event()

    def call(node: str) -> str:
        if node == "a":
            release.wait(5)
        return node.upper()

    told: list[tuple[str, int]] = []

    def answered(node: str, count: int) -> None:
        told.append((node, count))
        if count == 2:
            release.set()  # the others are in: let the slow one finish

    with ThreadPoolExecutor(3) as pool:
        got = each_node(pool, call, ["a", "b", "c"], answered=answered)
    assert list(got.items()) == [("a", "A"), ("b", "B"), ("c", "C")]
    assert told[-1] == ("a", 3) and sorted(n for n, _ in told[:2]) == ["b", "c"]
