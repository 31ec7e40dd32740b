"""Badput: the GPU-hours (and energy) of jobs that ended without completing."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from telemetry.stability.frame import BADPUT_STATES, check_states, gpu_hours

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Badput:
    """GPU-hours and energy of ended jobs that did not complete."""

    gpu_hours: float  # all ended jobs with known GPU-hours
    badput_gpu_hours: float
    gpu_hours_share: float
    energy_mj: int | None  # all ended jobs with known energy; None without energy
    badput_energy_mj: int | None
    energy_share: float | None
    by_state: dict[str, dict[str, float | int | None]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def badput(jobs: pd.DataFrame, job_energy: pd.DataFrame | None = None) -> Badput:
    """Badput: the GPU-hours (and energy) of jobs that ended without completing.

    Ended jobs are those in ``completed`` or :data:`BADPUT_STATES` (failed,
    cancelled, timeout, node_fail, preempted, out_of_memory); their badput is
    the part in :data:`BADPUT_STATES`. ``job_energy`` (columns ``job_id``,
    ``energy_mj``, e.g. :attr:`telemetry.energy.EnergyAccount.jobs`) adds energy.
    """
    check_states(jobs)
    ended = jobs[jobs["state"].isin(("completed", *BADPUT_STATES))]
    hours = gpu_hours(ended).fillna(0.0)
    bad = ended["state"].isin(BADPUT_STATES)
    total_h = float(hours.sum())
    bad_h = float(hours[bad].sum())
    energy = None
    if job_energy is not None:
        e = job_energy.groupby("job_id")["energy_mj"].sum()
        energy = ended["job_id"].map(e).fillna(0).astype("int64")
    by_state: dict[str, dict[str, float | int | None]] = {}
    for s in BADPUT_STATES:
        mask = ended["state"] == s
        by_state[s] = {
            "jobs": int(mask.sum()),
            "gpu_hours": float(hours[mask].sum()),
            "energy_mj": None if energy is None else int(energy[mask].sum()),
        }
    e_total = None if energy is None else int(energy.sum())
    e_bad = None if energy is None else int(energy[bad].sum())
    return Badput(
        gpu_hours=total_h,
        badput_gpu_hours=bad_h,
        gpu_hours_share=bad_h / total_h if total_h > 0 else 0.0,
        energy_mj=e_total,
        badput_energy_mj=e_bad,
        energy_share=None if not e_total else (e_bad or 0) / e_total,
        by_state=by_state,
    )
