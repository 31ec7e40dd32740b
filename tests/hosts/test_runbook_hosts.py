"""Runbooks over real SSH across the rig's hosts: each host runs its own step; one that
cannot be reached escalates (a ticket), the others finish, and the audit chain holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hosts._cli import dcops
from tests.rig.hosts import HostsRig

pytestmark = [pytest.mark.hosts, pytest.mark.timeout(90)]


def _config(rig: HostsRig, tmp_path: Path) -> tuple[Path, Path]:
    books, marks = tmp_path / "books", tmp_path / "marks"
    books.mkdir()
    marks.mkdir()
    (books / "who.yaml").write_text(
        "name: t-who\ndescription: each host writes its own name\ntriggers: {}\nsteps:\n"
        f"  - {{name: who, kind: command, argv: [sh, -c, 'hostname > {marks}/{{node}}'], "
        "timeout_s: 10}\n"
    )
    config = tmp_path / "config.toml"
    config.write_text(
        rig.config.read_text()
        + f'\n[slurm]\nnode_actions = "none"\n[runbooks]\nlibrary_dirs = ["{books}"]\n'
    )
    return config, marks


def test_a_runbook_step_runs_on_each_host_and_an_unreachable_one_escalates(
    healed_hosts: HostsRig, tmp_path: Path
) -> None:
    rig = healed_hosts
    hosts = rig.racks["r01"]
    config, marks = _config(rig, tmp_path)
    args = ("runbook", "run", "t-who", "--nodes", ",".join(hosts), "--apply", "--json")
    ran = dcops(rig, tmp_path, *args, config=config)
    assert ran.proc.returncode == 0, ran.proc.stderr[-2000:]
    assert [(r["node"], r["status"]) for r in ran.json] == [(h, "done") for h in hosts]
    # each file was written by the host it names (its own UTS hostname)
    assert {p.name: p.read_text().strip() for p in marks.iterdir()} == {h: h for h in hosts}
    for p in marks.iterdir():
        p.unlink()
    rig.fault(hosts[2], "link-down")
    ran = dcops(rig, tmp_path, *args, config=config)
    assert ran.proc.returncode == 1
    runs = {r["node"]: r for r in ran.json}
    assert runs[hosts[2]]["status"] == "escalated"
    assert "connect timed out after 3s" in runs[hosts[2]]["steps"][0]["outcome"]
    assert all(runs[h]["status"] == "done" for h in hosts if h != hosts[2])
    assert sorted(p.name for p in marks.iterdir()) == [h for h in hosts if h != hosts[2]]
    verify = dcops(rig, tmp_path, "audit", "verify", config=config)
    assert verify.proc.returncode == 0, verify.proc.stderr
    print(f"\ntime-to-verdict runbook, link down: whole run of 4 hosts {ran.elapsed_s:.1f} s")
