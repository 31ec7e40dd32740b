"""`dcops jobs render SPEC --tenant T --backend slurm` on hostile specs (acceptance)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dcops.store import AuditLog, Store
from scheduler.tenants.store import create_tenant
from tests.cli.test_cli_core import dcops
from tests.scheduler.conftest import make_tenant, spec_doc
from tests.scheduler.test_injection import directive_zone


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "state.db"
    root = tmp_path / "out"
    root.mkdir()
    with Store(path) as store:
        create_tenant(store, make_tenant(root.resolve()), AuditLog(store, actor="op"))
    return path


@pytest.mark.parametrize("arg", ["0\u0085", "a\u2028b", "a\u2029b", "x\u009b2J"])
def test_control_characters_in_a_command_argument_exit_2(
    db: Path, tmp_path: Path, arg: str
) -> None:
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps(spec_doc(command=["python", arg])))
    proc = dcops(
        "--state-db",
        str(db),
        "jobs",
        "render",
        str(spec),
        "--tenant",
        "acme",
        "--backend",
        "slurm",
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("dcops: error:") and proc.stderr.count("\n") == 1


RAW = ["\u0085", "\u2028", "\u2029", "\u009b"]


@pytest.mark.parametrize("char", RAW)
@pytest.mark.parametrize("form", ["yaml", "json"])
def test_raw_line_breaks_in_the_file_exit_2_naming_the_line(
    db: Path, tmp_path: Path, char: str, form: str
) -> None:
    """A raw NEL inside a quoted YAML string is folded to a space by the parser: refused
    before parsing, so the argument never changes silently (JSON with ensure_ascii=False)."""
    doc = spec_doc(command=["python", f"a{char}b"])
    spec = tmp_path / f"job.{form}"
    if form == "json":
        spec.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
        line = next(i for i, t in enumerate(spec.read_text().split("\n"), 1) if char in t)
    else:
        del doc["command"]
        body = yaml.safe_dump(doc, sort_keys=False)
        spec.write_text(body + f'command: [python, "a{char}b"]\n', encoding="utf-8")
        line = body.count("\n") + 1
    proc = dcops(
        "--state-db", str(db), "jobs", "render", str(spec), "--tenant", "acme",
        "--backend", "slurm",
    )  # fmt: skip
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith(f"dcops: error: {spec}:{line}: ")
    assert f"U+{ord(char):04X}" in proc.stderr and proc.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "script",
    [
        "#SLURM --account=globex --qos=high --gres=gpu:8 --nodes=16\nhostname\n",
        "# note \\\n#SBATCH --account=globex\nhostname\n",
    ],
)
def test_directive_injection_exits_2_or_stays_out_of_the_zone(
    db: Path, tmp_path: Path, script: str
) -> None:
    doc = spec_doc(script=script)
    del doc["command"], doc["image"]
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps(doc))
    proc = dcops(
        "--state-db",
        str(db),
        "jobs",
        "render",
        str(spec),
        "--tenant",
        "acme",
        "--backend",
        "slurm",
    )
    if proc.returncode == 0:
        zone = "\n".join(directive_zone(proc.stdout))
        assert "globex" not in zone and "--account=acme-acct" in zone
    else:
        assert proc.returncode == 2, proc.stderr
