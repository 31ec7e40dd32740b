"""--debug keeps exit codes; click's usage errors are one line; config show prints TOML."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from tests.cli.test_cli_core import assert_one_line_error, dcops


def test_debug_keeps_exit_code_and_shows_traceback(tmp_path: Path) -> None:
    proc = dcops("--debug", "inventory", "show", "--site", str(tmp_path / "missing.yaml"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("dcops: error: ")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = dcops("--debug", "--state-db", str(blocker / "sub" / "s.db"), "audit", "show")
    assert proc.returncode == 3 and "Traceback" in proc.stderr
    proc = dcops("--debug", "inventory", "show", "--bogus")
    assert proc.returncode == 2


def test_click_usage_errors_are_one_line_with_hint() -> None:
    proc = dcops("inventory", "show", "--jsn")
    assert_one_line_error(proc, 2)
    assert "--jsn" in proc.stderr and "Did you mean '--json'?" in proc.stderr
    proc = dcops("invntory")
    assert_one_line_error(proc, 2)
    assert "inventory" in proc.stderr  # click's suggestion survives
    assert_one_line_error(dcops("burnin", "show"), 2)  # missing argument
    proc = dcops("jobs", "submitt")
    assert_one_line_error(proc, 2)
    assert "Did you mean 'submit'?" in proc.stderr


def test_a_group_alone_prints_its_help_and_exits_0() -> None:
    """`dcops` and `dcops jobs` print their help (not squashed into one error line)."""
    for args, first in [((), "Usage: dcops [OPTIONS] COMMAND"), (("jobs",), "Usage: dcops jobs")]:
        proc = dcops(*args)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(first) and proc.stderr == ""
        assert "\nCommands:\n" in proc.stdout and proc.stdout.count("\n") > 5


def test_config_show_is_valid_toml_with_sources(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('site = "/etc/site.yaml"\n[ssh]\nport = 2222\nidentity_files = ["a", "b"]\n')
    proc = dcops(
        "--config", str(cfg), "--actor", "ops", "config", "show", env={"DCOPS_SSH_USER": "dc"}
    )
    assert proc.returncode == 0, proc.stderr
    assert "None" not in proc.stdout and "(" not in proc.stdout.split("[ssh]")[1].split("#")[0]
    parsed = tomllib.loads(proc.stdout)
    assert parsed["site"] == "/etc/site.yaml" and parsed["actor"] == "ops"
    assert parsed["ssh"]["port"] == 2222 and parsed["ssh"]["identity_files"] == ["a", "b"]
    assert parsed["ssh"]["user"] == "dc"
    lines = proc.stdout.splitlines()
    assert f"# config file: {cfg}" in lines[0]
    assert any(line.startswith("port = 2222") and str(cfg) in line for line in lines)
    assert any(line.startswith('user = "dc"') and "DCOPS_SSH_USER" in line for line in lines)
    assert any(line.startswith('actor = "ops"') and "--actor" in line for line in lines)
    # The printed file is a config file dcops itself accepts, giving the same values.
    again = tmp_path / "again.toml"
    again.write_text(proc.stdout)
    back = json.loads(dcops("--config", str(again), "config", "show", "--json").stdout)
    first = json.loads(
        dcops(
            "--config",
            str(cfg),
            "--actor",
            "ops",
            "config",
            "show",
            "--json",
            env={"DCOPS_SSH_USER": "dc"},
        ).stdout
    )
    for key in ("site", "actor", "ssh", "slurm", "sweep", "data_dir", "state_db"):
        assert back[key] == first[key], key


def test_config_show_names_the_path_it_looked_for(tmp_path: Path) -> None:
    proc = dcops("config", "show", env={"XDG_CONFIG_HOME": str(tmp_path), "DCOPS_CONFIG": ""})
    assert proc.returncode == 0, proc.stderr
    assert str(tmp_path / "dcops" / "config.toml") in proc.stdout
    assert "not found" in proc.stdout.splitlines()[0]
    tomllib.loads(proc.stdout)
