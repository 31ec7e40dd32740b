"""A simulated fleet that remembers: what remediation did to it persists in the state store.

``--sim SCENARIO`` commands build the fleet from the scenario file, then
:func:`open_world` replays what earlier commands did to it (virtual clock,
faults cleared by reboots and resets, nodes still booting) from the
``sim_world`` table, keyed by the scenario's absolute path; :func:`save_world`
stores it again. Drains live in the simulated scheduler (``sim_scheduler``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dcops.sim.fleet import SimFleet
from dcops.sim.maintenance import Maintenance, install, restore_world, world_state
from dcops.store.db import Store, utc_now


@dataclass
class SimWorld:
    """A fleet, its boot state, and the scenario key it is stored under."""

    fleet: SimFleet
    maintenance: Maintenance
    key: str


def scenario_key(path: str | Path) -> str:
    return str(Path(path).resolve())


def open_world(store: Store, scenario: str | Path) -> SimWorld:
    """The fleet of ``scenario`` as earlier commands left it (ScenarioError if the file is bad)."""
    key = scenario_key(scenario)
    fleet = SimFleet.from_file(scenario)
    maintenance = install(fleet)
    row = store.conn.execute("SELECT state FROM sim_world WHERE scenario = ?", (key,)).fetchone()
    if row is not None:
        restore_world(fleet, maintenance, json.loads(row["state"]))
    return SimWorld(fleet, maintenance, key)


def save_world(store: Store, world: SimWorld) -> None:
    state = json.dumps(world_state(world.fleet, world.maintenance), sort_keys=True)
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO sim_world (scenario, state, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT(scenario) DO UPDATE SET state = excluded.state,"
            " updated_at = excluded.updated_at",
            (world.key, state, utc_now()),
        )


def load_fleet(state_db: str | Path, scenario: str | Path) -> SimFleet:
    """The fleet of ``scenario`` as runbooks left it (read only: nothing is saved back).

    What ``sweep --sim`` and ``burnin run --sim`` measure: a tray a runbook
    rebooted is healthy again, one still booting does not answer.
    """
    with Store(state_db) as store:
        return open_world(store, scenario).fleet
