"""``dcops jobs backends``: how each scheduler backend is tested; pyslurm marked untested."""

from __future__ import annotations

import json

from click.testing import CliRunner

from dcops.cli.main import cli


def test_backends_say_how_each_is_tested_and_pyslurm_is_not() -> None:
    result = CliRunner().invoke(cli, ["jobs", "backends", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["backends"]
    assert [r["name"] for r in rows] == ["slurm-cli", "slurm-rest", "kubernetes", "slurm-pyslurm"]
    tested = {r["name"]: r["tested"] for r in rows}
    assert tested == {
        "slurm-cli": True,
        "slurm-rest": True,
        "kubernetes": True,
        "slurm-pyslurm": False,
    }
    pyslurm = rows[-1]
    assert "25.11" in pyslurm["how"]
    # this machine has no pyslurm: the reason is given, never "ok"
    assert pyslurm["available"] != "ok" and "pyslurm" in pyslurm["available"]


def test_backends_table_marks_pyslurm_untested() -> None:
    result = CliRunner().invoke(cli, ["jobs", "backends"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "slurm-pyslurm" in x)
    assert "UNTESTED" in line
    assert all("UNTESTED" not in x for x in result.output.splitlines() if "slurm-cli" in x)


def test_help_marks_pyslurm_untested() -> None:
    for argv in (["jobs", "submit", "--help"], ["serve", "--help"]):
        result = CliRunner().invoke(cli, argv, env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        text = " ".join(result.output.split())
        assert "slurm-pyslurm is UNTESTED" in text, argv
