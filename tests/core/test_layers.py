"""Layering: the shared core (``dcops``, but for its CLI) never imports a domain package.

``dcops.cli -> burnin / scheduler / telemetry / capacity / runbooks -> dcops core``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOMAINS = ("burnin", "health", "scheduler", "telemetry", "capacity", "runbooks")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


CORE_FILES = sorted(
    p for p in (REPO / "dcops").rglob("*.py") if "cli" not in p.relative_to(REPO / "dcops").parts
)


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_core_does_not_import_domains(path: Path) -> None:
    bad = {m for m in imported_modules(path) if m.split(".")[0] in DOMAINS}
    assert not bad, f"{path.relative_to(REPO)} imports domain modules {sorted(bad)}"


def test_the_check_sees_the_core() -> None:
    assert len(CORE_FILES) > 40
    assert any(p.name == "hostlist.py" for p in CORE_FILES)


DOMAIN_FILES = sorted(p for d in DOMAINS for p in (REPO / d).rglob("*.py"))


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_domains_do_not_import_each_other(path: Path) -> None:
    own = path.relative_to(REPO).parts[0]
    bad = {
        m for m in imported_modules(path) if m.split(".")[0] in DOMAINS and m.split(".")[0] != own
    }
    assert not bad, f"{path.relative_to(REPO)} imports another domain: {sorted(bad)}"
