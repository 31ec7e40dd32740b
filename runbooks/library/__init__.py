"""The runbook library: the YAML files beside this module, plus a site's own directories.

A site adds runbooks with ``[runbooks] library_dirs`` in config (or
``DCOPS_RUNBOOKS_LIBRARY_DIRS``); a site runbook with a built-in's name
replaces it. :func:`pick` chooses the runbook for a finding: the matching
runbook of highest ``triggers.priority``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path

from dcops.errors import InputError, UnknownNameError
from runbooks.model import Runbook, load_runbook

#: Immediate buckets that ask nothing of the node (the application restarts, or nothing).
NO_NODE_ACTION = frozenset({"IGNORE", "RESTART_APP", "XID_154_EVAL", "RESTART_VM", ""})


def builtin_dir() -> Path:
    return Path(str(resources.files("runbooks").joinpath("library")))


@cache
def _load_dir(path: str) -> tuple[Runbook, ...]:
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(f"runbook directory {path} does not exist")
    return tuple(load_runbook(p) for p in sorted(folder.glob("*.yaml")))


def load_library(extra_dirs: Iterable[str | Path] = ()) -> dict[str, Runbook]:
    """Every runbook by name: the built-in ones, then each site directory's (which win)."""
    out: dict[str, Runbook] = {}
    for folder in (builtin_dir(), *extra_dirs):
        for book in _load_dir(str(folder)):
            out[book.name] = book
    return out


def get_runbook(name: str, extra_dirs: Iterable[str | Path] = ()) -> Runbook:
    books = load_library(extra_dirs)
    if name not in books:
        raise UnknownNameError("runbook", name, list(books))
    return books[name]


def pick(
    books: Iterable[Runbook],
    *,
    xids: Sequence[int] = (),
    buckets: Sequence[str] = (),
    checks: Sequence[str] = (),
    burnin: Sequence[str] = (),
) -> tuple[Runbook, str] | None:
    """The runbook for these findings and why, or None when none matches.

    A runbook written for the XID is the strongest reason, then one for the
    immediate bucket (the catalog's action), then a check or burn-in failure
    name; ties go to the higher priority.
    """
    best: tuple[int, int, Runbook, str] | None = None
    for book in books:
        trig = book.triggers
        reasons = [(3, f"XID {x}") for x in xids if x in trig.get("xids", [])]
        reasons += [(2, f"bucket {b}") for b in buckets if b in trig.get("buckets", [])]
        reasons += [(1, f"check {c}") for c in checks if c in trig.get("checks", [])]
        reasons += [(1, f"burn-in {b}") for b in burnin if b in trig.get("burnin", [])]
        if not reasons:
            continue
        strength, why = max(reasons)
        key = (strength, book.priority)
        if best is None or key > best[:2]:
            best = (strength, book.priority, book, why)
    return None if best is None else (best[2], best[3])


def pick_for_xid(code: int, bucket: str, extra_dirs: Iterable[str | Path] = ()) -> str | None:
    """The name of the runbook dcops would run for one XID with its immediate bucket."""
    if bucket in NO_NODE_ACTION:
        return None
    found = pick(load_library(extra_dirs).values(), xids=[code], buckets=[bucket])
    return found[0].name if found else None
