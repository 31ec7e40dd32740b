"""The layers, as import-linter contracts (``[tool.importlinter]`` in pyproject.toml).

``dcops.cli -> burnin / health / scheduler / telemetry / capacity / runbooks -> dcops core``;
domains independent; torch, kubernetes and paramiko only in their adapters. ``lint-imports``
runs in ``scripts/check``; this test runs it too, keeps the contracts' list of core modules in
step with the tree (a new core module is covered or this fails), and checks what import-linter
cannot: a private module (``_name``) is imported only from inside its own package.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import grimp

REPO = Path(__file__).resolve().parents[2]
DOMAINS = ("burnin", "health", "scheduler", "telemetry", "capacity", "runbooks")


def _contracts() -> list[dict[str, Any]]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    contracts: list[dict[str, Any]] = data["tool"]["importlinter"]["contracts"]
    return contracts


def test_lint_imports_keeps_every_contract() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    proc = subprocess.run(
        [exe, "--config", str(REPO / "pyproject.toml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout
    assert proc.stdout.count(" KEPT") == len(_contracts())


def test_the_core_contract_lists_every_core_module() -> None:
    core = next(c for c in _contracts() if "imports no domain" in str(c["name"]))
    listed = set(core["source_modules"])
    present = {
        f"dcops.{p.stem if p.is_file() else p.name}"
        for p in (REPO / "dcops").iterdir()
        if (p.suffix == ".py" and p.stem not in ("__init__", "__main__"))
        or (p.is_dir() and (p / "__init__.py").exists() and p.name != "cli")
    }
    assert present - listed == set(), "add new core modules to the contract in pyproject.toml"
    assert listed - present == set(), "the contract names core modules that no longer exist"
    assert {d for d in DOMAINS} <= set(core["forbidden_modules"])


def test_private_modules_are_imported_only_inside_their_package() -> None:
    graph = grimp.build_graph("dcops", *DOMAINS, cache_dir=None)
    bad = []
    for module in graph.modules:
        leaf = module.rsplit(".", 1)[-1]
        if not leaf.startswith("_") or leaf.startswith("__"):
            continue
        package = module.rsplit(".", 1)[0]
        for importer in graph.find_modules_that_directly_import(module):
            if not (importer == package or importer.startswith(package + ".")):
                bad.append(f"{importer} imports {module}")
    assert bad == []
