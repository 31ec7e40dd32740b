"""Hostlist parsing and formatting, with property tests for the round trip."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcops.errors import HostlistError
from dcops.hostlist import MAX_EXPANSION, compress, expand


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("n1", ["n1"]),
        ("n[1-3]", ["n1", "n2", "n3"]),
        ("n[01-03]", ["n01", "n02", "n03"]),
        ("n[8-11]", ["n8", "n9", "n10", "n11"]),
        ("n[098-101]", ["n098", "n099", "n100", "n101"]),
        ("n[1,3,5-6]", ["n1", "n3", "n5", "n6"]),
        ("r[1-2]t[1-2]", ["r1t1", "r1t2", "r2t1", "r2t2"]),
        ("a,b,a", ["a", "b"]),
        (
            "gb200-r[01-02]-t[17-18],login01",
            ["gb200-r01-t17", "gb200-r01-t18", "gb200-r02-t17", "gb200-r02-t18", "login01"],
        ),
        ("rack[1-2].dc.example", ["rack1.dc.example", "rack2.dc.example"]),
    ],
)
def test_expand(expr: str, names: list[str]) -> None:
    assert expand(expr) == names


def test_expand_full_site_example() -> None:
    names = expand("gb200-r[01-02]-t[01-18],login01")
    assert len(names) == 37
    assert names[0] == "gb200-r01-t01" and names[17] == "gb200-r01-t18"
    assert names[18] == "gb200-r02-t01" and names[-1] == "login01"


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("", "empty"),
        ("n[1-3", "unclosed"),
        ("n1-3]", "unmatched"),
        ("n[[1]]", "nested"),
        ("n[3-1]", "backwards"),
        ("n[a-b]", "bad range"),
        ("n[]", "empty brackets"),
        ("a,,b", "empty name"),
        ("bad name", "not allowed"),
        ("n;rm -rf /", "not allowed"),
        ("n[1-9999999]", "too large"),
        ("-n1", "starts with"),
    ],
)
def test_expand_rejects(expr: str, fragment: str) -> None:
    with pytest.raises(HostlistError, match=fragment):
        expand(expr)


def test_expand_refuses_huge_products() -> None:
    with pytest.raises(HostlistError):
        expand("a[1-1000]b[1-1000]c[1-10]")
    assert MAX_EXPANSION >= 100 * 72


@pytest.mark.parametrize(
    ("names", "expr"),
    [
        (["n03", "n01", "n02"], "n[01-03]"),
        ([f"node{i}" for i in range(1, 101)], "node[1-100]"),
        (["n01", "n02", "n10"], "n[01-02,10]"),
        (["n1", "n01"], "n1,n01"),
        (["n9", "n10", "n11"], "n[9-11]"),
        (
            [f"gb200-r0{r}-t{t:02d}" for r in (1, 2) for t in range(1, 19)],
            "gb200-r[01-02]-t[01-18]",
        ),
        (["login", "x"], "login,x"),
    ],
)
def test_compress(names: list[str], expr: str) -> None:
    assert compress(names) == expr


@pytest.mark.parametrize(
    "expr",
    [
        "gb200-r[01-02]-t[01-18],login01",
        "n[1-100]",
        "sim-r[001-100]-t[01-18]",
        "a[1,3,5]b",
        "n[08-12]",
    ],
)
def test_canonical_expressions_round_trip(expr: str) -> None:
    assert compress(expand(expr)) == expr


_label = st.text(alphabet="abcxyz-", min_size=1, max_size=4).filter(lambda s: s[0] != "-")
_number = st.integers(min_value=0, max_value=2000).flatmap(
    lambda n: st.sampled_from([str(n), str(n).zfill(2), str(n).zfill(3), str(n).zfill(4)])
)
_name = st.builds(
    "".join,
    st.lists(st.one_of(_label, _number), min_size=1, max_size=5),
).filter(lambda s: s[0] not in "-.")


@settings(max_examples=300, deadline=None)
@given(st.sets(_name, min_size=1, max_size=60))
def test_expand_of_compress_gives_the_set(names: set[str]) -> None:
    assert set(expand(compress(names))) == names
    assert len(expand(compress(names))) == len(names)


@settings(max_examples=200, deadline=None)
@given(st.sets(_name, min_size=1, max_size=40))
def test_format_is_a_fixed_point(names: set[str]) -> None:
    expr = compress(names)
    assert compress(expand(expr)) == expr


def test_compress_rejects_bad_names() -> None:
    with pytest.raises(HostlistError):
        compress(["ok", "not ok"])
    with pytest.raises(HostlistError):
        compress([""])
