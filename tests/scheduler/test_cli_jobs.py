"""``dcops jobs render`` through click: flags reach the core, rule breaks exit 2."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from dcops.cli.jobs import jobs
from dcops.errors import DcopsError, InputError
from scheduler.slurm.render import parse_sbatch_options
from tests.scheduler.conftest import spec_doc


@click.group()
def root() -> None:
    """A root group like dcops.cli.main's."""


root.add_command(jobs)


def _run(args: list[str]) -> tuple[int, str, str, BaseException | None]:
    """Invoke like the main handler: a DcopsError becomes one line and its exit code."""
    result = CliRunner().invoke(root, args)
    exc = result.exception
    if isinstance(exc, DcopsError):
        return int(exc.exit_code), result.stdout, str(exc), exc
    return result.exit_code, result.stdout, "", exc


@pytest.fixture
def files(tmp_path: Path, root_dir: Path) -> tuple[Path, Path]:
    tenant = tmp_path / "tenant.yaml"
    tenant.write_text(
        yaml.safe_dump(
            {
                "name": "acme",
                "slurm_account": "acme-acct",
                "slurm_qos": "acme-qos",
                "slurm_partitions": ["gb200"],
                "unix_users": ["acme01"],
                "k8s_namespace": "tenant-acme",
                "k8s_local_queue": "acme-lq",
                "gpu_quota": 8,
                "output_roots": [str(root_dir)],
            }
        )
    )
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump(spec_doc(outputs=["ckpt"])))
    return spec, tenant


@pytest.fixture
def root_dir(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    return out.resolve()


def test_render_slurm(files: tuple[Path, Path]) -> None:
    spec, tenant = files
    code, out, _, exc = _run(
        ["jobs", "render", str(spec), "--tenant-file", str(tenant), "--backend", "slurm"]
    )
    assert code == 0, exc
    opts = dict(parse_sbatch_options(out))
    assert (opts["account"], opts["qos"], opts["partition"]) == ("acme-acct", "acme-qos", "gb200")
    assert out.startswith("#!/bin/bash\n")


def test_render_kubernetes(files: tuple[Path, Path]) -> None:
    spec, tenant = files
    code, out, _, exc = _run(
        ["jobs", "render", str(spec), "--tenant-file", str(tenant), "--backend", "kubernetes"]
    )
    assert code == 0, exc
    docs = list(yaml.safe_load_all(out))
    assert [d["kind"] for d in docs] == ["Job"]
    assert docs[0]["metadata"]["namespace"] == "tenant-acme"


def test_flags_reach_the_core(files: tuple[Path, Path]) -> None:
    spec, tenant = files
    code, _, err, exc = _run(
        [
            "jobs",
            "render",
            str(spec),
            "--tenant-file",
            str(tenant),
            "--backend",
            "slurm",
            "--gpus-in-use",
            "6",
        ]
    )
    assert code == 2 and isinstance(exc, InputError)
    assert "quota of 8 GPUs" in err
    code, _, err, _ = _run(
        [
            "jobs",
            "render",
            str(spec),
            "--tenant-file",
            str(tenant),
            "--backend",
            "slurm",
            "--no-pyxis",
        ]
    )
    assert code == 2 and "pyxis" in err


def test_rule_break_is_one_line_exit_2(files: tuple[Path, Path], tmp_path: Path) -> None:
    _, tenant = files
    bad = tmp_path / "bad.yaml"
    doc = spec_doc(script="#SBATCH --account=other\nhostname\n")
    del doc["command"]
    bad.write_text(yaml.safe_dump(doc))
    code, out, err, _ = _run(
        ["jobs", "render", str(bad), "--tenant-file", str(tenant), "--backend", "slurm"]
    )
    assert code == 2 and out == ""
    assert "script:1" in err and "\n" not in err


def test_unknown_backend_is_a_usage_error(files: tuple[Path, Path]) -> None:
    spec, tenant = files
    code, _, _, _ = _run(
        ["jobs", "render", str(spec), "--tenant-file", str(tenant), "--backend", "lsf"]
    )
    assert code == 2


def _multi_node_spec(tmp_path: Path) -> Path:
    spec = tmp_path / "multi.yaml"
    doc = spec_doc(
        name="pretrain",
        resources={"nodes": 2, "gpus_per_node": 4, "time_limit": "1h", "memory": "64Gi"},
    )
    spec.write_text(yaml.safe_dump(doc))
    return spec


def test_render_check_validates_against_upstream_schemas(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    _, tenant = files
    spec = _multi_node_spec(tmp_path)
    args = ["jobs", "render", str(spec), "--tenant-file", str(tenant), "--backend", "kubernetes"]
    plain = CliRunner().invoke(root, args)
    checked = CliRunner().invoke(root, [*args, "--check"])
    assert plain.exit_code == checked.exit_code == 0, checked.exception
    assert checked.stdout == plain.stdout  # stdout stays the applicable YAML
    assert [d["kind"] for d in yaml.safe_load_all(checked.stdout)] == ["ComputeDomain", "JobSet"]
    assert "checked 2 manifests: valid for Kubernetes 1.33" in checked.stderr
    assert "kubernetes-sigs/jobset v0.12.0" in checked.stderr
    assert "NVIDIA/k8s-dra-driver-gpu v0.4.0" in checked.stderr
    assert "checked" not in plain.stderr


def test_render_check_refuses_an_invalid_manifest(
    files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scheduler.render
    from scheduler.kubernetes.render import KubernetesSite, Manifest, render_kubernetes
    from scheduler.tenants.contract import AdmittedJob

    def broken(job: AdmittedJob, site: KubernetesSite | None = None) -> list[Manifest]:
        manifests = render_kubernetes(job, site)
        manifests[0]["spec"]["channel"]["allocationMode"] = "Most"
        return manifests

    monkeypatch.setattr(scheduler.render, "render_kubernetes", broken)
    _, tenant = files
    spec = _multi_node_spec(tmp_path)
    args = ["jobs", "render", str(spec), "--tenant-file", str(tenant), "--backend", "kubernetes"]
    code, out, err, exc = _run([*args, "--check"])
    assert code == 2 and isinstance(exc, InputError) and out == ""
    assert err.startswith("ComputeDomain tenant-acme/pretrain-cd: $.spec.channel.allocationMode")
    assert "\n" not in err
    code, out, _, _ = _run(args)  # without --check the same rendering is printed
    assert code == 0 and "allocationMode: Most" in out


def test_render_check_is_for_kubernetes(files: tuple[Path, Path]) -> None:
    spec, tenant = files
    code, out, err, _ = _run(
        ["jobs", "render", str(spec), "--tenant-file", str(tenant), "--backend", "slurm", "--check"]
    )
    assert code == 2 and out == "" and "--backend kubernetes" in err
