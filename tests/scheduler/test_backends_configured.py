"""One place turns ``[slurm]`` config into backend options, for `dcops serve` and `dcops jobs`."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcops.config import load_config
from dcops.errors import UnknownNameError
from scheduler.backends.configured import backend_options, build_backend


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text("")
    return path


def test_slurm_conf_and_restd_url_reach_the_backends(tmp_path: Path) -> None:
    env = {
        "DCOPS_SLURM_CONF": "/etc/slurm-b/slurm.conf",
        "DCOPS_SLURM_RESTD_URL": "http://127.0.0.1:6820",
    }
    cfg = load_config(_empty(tmp_path), environ=env)
    options = backend_options(cfg)
    assert options["slurm-cli"] == {"slurm_conf": "/etc/slurm-b/slurm.conf"}
    assert options["slurm-rest"] == {
        "slurm_conf": "/etc/slurm-b/slurm.conf",
        "url": "http://127.0.0.1:6820",
    }
    assert backend_options(load_config(_empty(tmp_path), environ={})) == {
        "slurm-cli": {},
        "slurm-rest": {},
    }


def test_build_backend_registers_the_builtins_and_refuses_unknown_names(tmp_path: Path) -> None:
    cfg = load_config(_empty(tmp_path), environ={})
    assert type(build_backend("recording", cfg)).__name__ == "RecordingBackend"
    with pytest.raises(UnknownNameError, match="slurm-cli"):  # the known names are listed
        build_backend("slurm-typo", cfg)
