"""Properties of XID de-duplication and grouping (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dcops.xid.catalog import catalog
from dcops.xid.events import XidOccurrence, dedupe, group
from dcops.xid.nvlink5 import decode

CODES = [13, 31, 43, 45, 48, 63, 79, 94, 95, 119, 154]

lines = st.lists(
    st.builds(
        lambda node, gpu, code, t: XidOccurrence(
            f"n{node}", f"000{gpu}:01:00", code, t, "m", catalog()[code].immediate
        ),
        st.integers(0, 5),
        st.integers(0, 3),
        st.sampled_from(CODES),
        st.floats(0, 3600, allow_nan=False),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(lines)
def test_no_line_is_lost_or_counted_twice(items: list[XidOccurrence]) -> None:
    events = dedupe(items)
    assert sum(e.count for e in events) == len(items)
    incidents = group(events)
    held = sum(len(i.events) + len(i.sympathetic) for i in incidents)
    assert held == len(events)
    for inc in incidents:  # a node incident only holds that node's origin events
        assert all(e.node == inc.node for e in inc.events)


@settings(max_examples=300, deadline=None)
@given(st.integers(144, 150), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_nvlink5_decode_is_total_and_consistent(xid: int, intr: int, status: int) -> None:
    found = decode(xid, intr, status)
    if found is not None:
        assert found.layout in ("v1", "v2") and found.immediate
        assert decode(xid, intr, status, layout=found.layout) is not None
