"""``dcops burnin run --launcher ssh`` against the real local sshd rig.

Every ``sim-*`` node name leads to 127.0.0.1, so the workers run here: CPU
"GPUs" (fp32, 0.2 s) and a gloo all_reduce with ``MASTER_ADDR=127.0.0.1``.
``closed-*`` names lead to a port nobody listens on.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from burnin.remote.ssh import SshCollectiveEngine, SshGemmEngine
from dcops.errors import BackendError, CommandTimeout
from dcops.measurements import GpuRef
from dcops.remote.ssh import SshRunner
from dcops.remote.ssh_settings import SshResolver
from tests.integration._burnin_remote import burnin_run, by_node, cpu_site
from tests.rig.ssh import SshdRig

pytestmark = [pytest.mark.ssh, pytest.mark.torch]


def _config(tmp_path: Path, rig: SshdRig) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        "[ssh]\n"
        f'identity_files = ["{rig.identity_file}"]\n'
        f'known_hosts = "{rig.known_hosts}"\n'
        f'ssh_config = "{rig.ssh_config}"\n'
        "connect_timeout_s = 5\n"
    )
    return path


def test_three_nodes_pass_over_ssh(sshd_rig: SshdRig, tmp_path: Path) -> None:
    proc, report = burnin_run(
        tmp_path,
        "--nodes", "sim-r01-t[01-03]", "--launcher", "ssh",
        "--site", str(cpu_site(tmp_path, "sim-r01-t[01-03]")),
        env={"DCOPS_CONFIG": str(_config(tmp_path, sshd_rig))},
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stderr[-2000:], report["nodes"], report["run_reasons"])
    assert report["status"] == "pass"
    assert report["params"]["backend"] == "ssh"
    nodes = by_node(report)
    assert sorted(nodes) == ["sim-r01-t01", "sim-r01-t02", "sim-r01-t03"]
    assert all(n["gpus"][0]["tflops"] > 0 for n in nodes.values())
    assert report["collectives"], report


def test_unreachable_node_is_an_error_for_that_node_only(sshd_rig: SshdRig, tmp_path: Path) -> None:
    proc, report = burnin_run(
        tmp_path,
        "--nodes", "sim-r01-t[01-02],closed-r01-t03", "--launcher", "ssh",
        "--site", str(cpu_site(tmp_path, "sim-r01-t[01-02],closed-r01-t03")),
        env={"DCOPS_CONFIG": str(_config(tmp_path, sshd_rig))},
    )  # fmt: skip
    assert proc.returncode == 1
    nodes = by_node(report)
    assert nodes["closed-r01-t03"]["status"] == "error"
    assert nodes["sim-r01-t01"]["status"] == "pass"
    assert nodes["sim-r01-t02"]["status"] == "pass"


@pytest.mark.slow
def test_hung_and_failing_workers_over_ssh(sshd_rig: SshdRig) -> None:
    fault = {"DCOPS_GEMM_FAULT": "sim-r01-t02=hang,sim-r01-t03=fail", "OMP_NUM_THREADS": "1"}
    with SshRunner(sshd_rig.settings) as runner:
        gemm = SshGemmEngine(runner, python=sys.executable, env=fault, threads=1)
        started = time.monotonic()
        with pytest.raises(CommandTimeout):
            gemm.run([GpuRef("sim-r01-t02", 0)], dtype="fp32", duration_s=0.2, seed=1, timeout_s=3)
        assert time.monotonic() - started < 3 + 20
        with pytest.raises(BackendError, match=r"sim-r01-t03.*on purpose"):
            gemm.run([GpuRef("sim-r01-t03", 0)], dtype="fp32", duration_s=0.2, seed=1, timeout_s=30)
        resolver = SshResolver(sshd_rig.settings)
        coll = SshCollectiveEngine(
            runner, python=sys.executable, address=lambda n: resolver.resolve(n).hostname, threads=1
        )
        members = [GpuRef("sim-r01-t01", 0), GpuRef("sim-r01-t02", 0)]
        res = coll.run("all_reduce", members, sizes_bytes=[1 << 20], iterations=2, timeout_s=60)
        assert res.members == tuple(members) and res.rows[0].out_of_place.wrong == 0
