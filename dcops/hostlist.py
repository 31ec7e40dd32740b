"""Slurm hostlist expressions: parse ``gb200-r[01-02]-t[01-18],login01`` and format back.

Syntax (as Slurm's): a comma-separated list of terms; a term is text with any
number of bracket groups, each holding comma-separated numbers or ``lo-hi``
ranges. A range is zero-padded to the width of its low bound (``[01-18]`` gives
``01`` .. ``18``; ``[1-10]`` gives ``1`` .. ``10``). Several brackets expand as
a cartesian product, the leftmost varying slowest.

:func:`compress` is the inverse: for any set of names,
``set(expand(compress(names))) == set(names)``, and canonical expressions
(sorted, merged ranges) come back unchanged.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import product

from dcops.errors import HostlistError

#: Refuse expansions larger than this (a typo like ``n[1-99999999]`` must not eat memory).
MAX_EXPANSION = 1_000_000

_NAME_CHARS = re.compile(r"[A-Za-z0-9._-]*")
_DIGITS = re.compile(r"(\d+)")


def _split_top(expr: str) -> list[str]:
    """Split on commas that are outside brackets."""
    terms: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(expr):
        if ch == "[":
            depth += 1
            if depth > 1:
                raise HostlistError(f"hostlist {expr!r}: nested '[' at position {i + 1}")
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise HostlistError(f"hostlist {expr!r}: unmatched ']' at position {i + 1}")
        elif ch == "," and depth == 0:
            terms.append(expr[start:i])
            start = i + 1
    if depth != 0:
        raise HostlistError(f"hostlist {expr!r}: unclosed '['")
    terms.append(expr[start:])
    return terms


def _bracket_values(expr: str, body: str) -> list[str]:
    values: list[str] = []
    if not body:
        raise HostlistError(f"hostlist {expr!r}: empty brackets")
    for item in body.split(","):
        lo, sep, hi = item.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise HostlistError(f"hostlist {expr!r}: bad range {item!r} (want N or N-M)")
        if not sep:
            values.append(lo)
            continue
        low, high = int(lo), int(hi)
        if high < low:
            raise HostlistError(f"hostlist {expr!r}: range {item!r} runs backwards")
        if high - low + 1 > MAX_EXPANSION:
            raise HostlistError(f"hostlist {expr!r}: range {item!r} is too large")
        width = len(lo)
        values.extend(str(v).zfill(width) for v in range(low, high + 1))
    return values


def _expand_term(expr: str, term: str) -> Iterator[str]:
    parts: list[list[str]] = []
    pos = 0
    size = 1
    while pos < len(term):
        open_at = term.find("[", pos)
        text = term[pos:] if open_at < 0 else term[pos:open_at]
        if not _NAME_CHARS.fullmatch(text):
            bad = next(c for c in text if not _NAME_CHARS.fullmatch(c))
            raise HostlistError(f"hostlist {expr!r}: character {bad!r} is not allowed in a name")
        if text:
            parts.append([text])
        if open_at < 0:
            break
        close_at = term.find("]", open_at)
        values = _bracket_values(expr, term[open_at + 1 : close_at])
        size *= len(values)
        if size > MAX_EXPANSION:
            raise HostlistError(f"hostlist {expr!r}: expands to more than {MAX_EXPANSION} names")
        parts.append(values)
        pos = close_at + 1
    for combo in product(*parts):
        yield "".join(combo)


def expand(expr: str) -> list[str]:
    """All names of a hostlist expression, in order, each once.

    >>> expand("gb200-r01-t[01-03],login01")
    ['gb200-r01-t01', 'gb200-r01-t02', 'gb200-r01-t03', 'login01']
    """
    expr = expr.strip()
    if not expr:
        raise HostlistError("empty hostlist")
    seen: dict[str, None] = {}
    for term in _split_top(expr):
        if not term:
            raise HostlistError(f"hostlist {expr!r}: empty name between commas")
        for name in _expand_term(expr, term):
            if name[0] in "-.":
                raise HostlistError(f"hostlist {expr!r}: name {name!r} starts with {name[0]!r}")
            seen.setdefault(name, None)
            if len(seen) > MAX_EXPANSION:
                raise HostlistError(f"hostlist {expr!r}: more than {MAX_EXPANSION} names")
    return list(seen)


# ----------------------------------------------------------------------------- compress


@dataclass(frozen=True)
class _Num:
    """A set of numbers printed at one width (0 = natural, no padding)."""

    width: int
    values: frozenset[int]

    def render(self) -> str:
        nums = sorted(self.values)
        runs: list[str] = []
        i = 0
        while i < len(nums):
            j = i
            while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
                j += 1
            lo, hi = str(nums[i]).zfill(self.width), str(nums[j]).zfill(self.width)
            runs.append(lo if i == j else f"{lo}-{hi}")
            i = j + 1
        text = ",".join(runs)
        return text if len(nums) == 1 else f"[{text}]"

    def sort_key(self) -> tuple[int, int]:
        return (min(self.values), self.width)


_Token = str | _Num
_Term = tuple[_Token, ...]


def _tokenize(name: str) -> _Term:
    tokens: list[_Token] = []
    for i, piece in enumerate(_DIGITS.split(name)):
        if i % 2 == 0:
            if piece:
                tokens.append(piece)
        else:
            width = len(piece) if piece.startswith("0") and len(piece) > 1 else 0
            tokens.append(_Num(width, frozenset({int(piece)})))
    return tuple(tokens)


def _merge_dim(terms: list[_Term], dim: int) -> list[_Term]:
    """Merge terms that differ only in numeric token ``dim`` (counted from the right)."""
    buckets: dict[tuple[object, ...], list[_Num]] = defaultdict(list)
    shapes: dict[tuple[object, ...], _Term] = {}
    passthrough: list[_Term] = []
    for term in terms:
        num_positions = [i for i, t in enumerate(term) if isinstance(t, _Num)]
        if dim >= len(num_positions):
            passthrough.append(term)
            continue
        pos = num_positions[-1 - dim]
        key = (len(term), pos, term[:pos], term[pos + 1 :])
        token = term[pos]
        assert isinstance(token, _Num)
        buckets[key].append(token)
        shapes[key] = term
    merged: list[_Term] = list(passthrough)
    for bucket, nums in buckets.items():
        term = shapes[bucket]
        at = bucket[1]
        assert isinstance(at, int)
        for num in _regroup_widths(nums):
            merged.append((*term[:at], num, *term[at + 1 :]))
    return merged


def _regroup_widths(nums: list[_Num]) -> list[_Num]:
    """Group numbers by print width; a natural number joins a padded group it prints equal in."""
    padded = {n.width for n in nums if n.width}
    by_width: dict[int, set[int]] = defaultdict(set)
    for num in nums:
        for value in num.values:
            width = num.width
            if width == 0:
                fits = [w for w in padded if len(str(value)) >= w]
                width = max(fits, default=0)
            by_width[width].add(value)
    return [_Num(w, frozenset(v)) for w, v in sorted(by_width.items())]


def _term_sort_key(term: _Term) -> tuple[tuple[int, str, int, int], ...]:
    return tuple((0, t, 0, 0) if isinstance(t, str) else (1, "", *t.sort_key()) for t in term)


def compress(names: Iterable[str]) -> str:
    """The shortest-ish hostlist expression for a set of names (sorted, ranges merged).

    >>> compress(["n02", "n01", "n03", "login"])
    'login,n[01-03]'
    """
    unique = set(names)
    for name in unique:
        if not name or not _NAME_CHARS.fullmatch(name) or name[0] in "-.":
            raise HostlistError(f"{name!r} is not a valid host name")
    terms = [_tokenize(n) for n in unique]
    depth = max((sum(isinstance(t, _Num) for t in term) for term in terms), default=0)
    for dim in range(depth):
        terms = _merge_dim(terms, dim)
    terms.sort(key=_term_sort_key)
    return ",".join(
        "".join(t if isinstance(t, str) else t.render() for t in term) for term in terms
    )
