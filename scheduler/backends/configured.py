"""Scheduler backends as dcops's config sets them up: the one place ``[slurm]`` becomes options.

``build_backend("slurm-cli", cfg)`` is what ``dcops serve`` and ``dcops jobs`` use:
``[slurm] conf`` (``DCOPS_SLURM_CONF``) reaches the Slurm backends, ``[slurm]
restd_url`` (``DCOPS_SLURM_RESTD_URL``) the REST one (which otherwise falls back to
``DCOPS_SLURMRESTD_URL`` / ``SLURMRESTD_URL``). The backend registry
(:data:`scheduler.backends.base.BACKENDS`) imports the built-in backends itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scheduler.backends.base import SchedulerBackend, create_backend

if TYPE_CHECKING:
    from dcops.config import Config


def backend_options(cfg: Config) -> dict[str, dict[str, Any]]:
    """Backend name -> the options config gives it (absent keys: the backend's defaults)."""
    slurm: dict[str, Any] = {"slurm_conf": cfg.slurm.conf} if cfg.slurm.conf else {}
    rest = dict(slurm)
    if cfg.slurm.restd_url:
        rest["url"] = cfg.slurm.restd_url
    return {"slurm-cli": slurm, "slurm-rest": rest}


def build_backend(name: str, cfg: Config) -> SchedulerBackend:
    """The named backend, configured from ``[slurm]`` where it applies."""
    return create_backend(name, **backend_options(cfg).get(name, {}))
