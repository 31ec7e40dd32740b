"""The CLI as a user meets it: real processes, exit codes, one-line errors, no heavy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "sites" / "paris-1.yaml"
HEAVY = ("torch", "pandas", "paramiko", "kubernetes", "pynvml", "numpy", "pyarrow", "rich")


def dcops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dcops", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dcops: error: ")


def test_version_and_help_import_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from dcops.cli.main import main\n"
        "for args in (['--help'], ['--version']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, e.code\n"
        f"print('heavy=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "Usage: dcops" in proc.stdout and "0.1.0" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "heavy="  # no heavy module was imported


def test_inventory_show_json() -> None:
    proc = dcops("inventory", "show", "--site", str(EXAMPLE), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["site"] == "paris-1"
    assert [r["name"] for r in data["racks"]] == ["r01", "r02"]
    assert len(data["racks"][1]["nodes"]) == 18
    assert data["racks"][1]["nodes"][17]["name"] == "gb200-r02-t18"
    assert [g["index"] for g in data["racks"][0]["nodes"][0]["gpus"]] == [0, 1, 2, 3]


def test_inventory_show_defaults_to_this_machine() -> None:
    proc = dcops("inventory", "show", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["site"] == "local" and data["totals"]["nodes"] == 1


def test_site_from_environment(tmp_path: Path) -> None:
    proc = dcops(
        "inventory", "node", "gb200-r01-t[03-04]", "--json", env={"DCOPS_SITE": str(EXAMPLE)}
    )
    assert proc.returncode == 0, proc.stderr
    assert [(n["node"], n["tray"], n["domain"]) for n in json.loads(proc.stdout)] == [
        ("gb200-r01-t03", 3, "r01"),
        ("gb200-r01-t04", 4, "r01"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "site: s\nracks:\n  - name: r01\n    nodes: a[01-17]\n",
        "site: s\nracks:\n  - name: r01\n    nodes: a[01-18\n",
        "site: s\nracks:\n  - name: r01\n    nodes: a[01-18]\n    typo: 1\n",
        "site: [unclosed\n",
        "",
    ],
)
def test_bad_site_file_exit_2(tmp_path: Path, text: str) -> None:
    site = tmp_path / "bad.yaml"
    site.write_text(text)
    proc = dcops("inventory", "show", "--site", str(site), "--json")
    assert_one_line_error(proc, 2)
    assert str(site) in proc.stderr
    assert proc.stdout == ""


def test_missing_site_file_and_unknown_node(tmp_path: Path) -> None:
    assert_one_line_error(dcops("inventory", "show", "--site", str(tmp_path / "no.yaml")), 2)
    proc = dcops("inventory", "node", "gb200-r07-t01", "--site", str(EXAMPLE))
    assert_one_line_error(proc, 2)
    assert "gb200-r07-t01" in proc.stderr


def test_bad_config_is_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("nonsense = 1\n")
    assert_one_line_error(dcops("--config", str(cfg), "inventory", "show"), 2)
    assert_one_line_error(dcops("inventory", "show", env={"DCOPS_SSH_PORT": "x"}), 2)


def test_usage_errors_are_exit_2() -> None:
    proc = dcops("inventory", "show", "--bogus-flag")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = dcops("no-such-command")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_audit_verify_catches_tampering(tmp_path: Path) -> None:
    import sqlite3

    from dcops.store import AuditLog, Store

    db = tmp_path / "state.db"
    log = AuditLog(Store(db), actor="ops")
    for i in range(3):
        log.record("drain", f"n{i}", outcome="ok", evidence={"check": "xid"})
    log.store.close()
    ok = dcops("--state-db", str(db), "audit", "verify", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["records"] == 3
    shown = dcops("--state-db", str(db), "audit", "show", "--json", "--last", "2")
    assert [r["target"] for r in json.loads(shown.stdout)] == ["n1", "n2"]
    conn = sqlite3.connect(db)
    conn.executescript(
        "DROP TRIGGER audit_log_no_update;UPDATE audit_log SET target = 'n9' WHERE seq = 2;"
    )
    conn.close()
    bad = dcops("--state-db", str(db), "audit", "verify")
    assert bad.returncode == 1
    assert "record 2 was changed" in bad.stdout


def test_unwritable_state_store_is_exit_3(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = dcops("--state-db", str(blocker / "sub" / "state.db"), "audit", "show")
    assert_one_line_error(proc, 3)


def test_config_show_reports_sources(tmp_path: Path) -> None:
    proc = dcops("config", "show", "--json", env={"DCOPS_SSH_USER": "ops"})
    data = json.loads(proc.stdout)
    assert data["ssh"]["user"] == "ops" and data["source"] == ["defaults", "environment"]
