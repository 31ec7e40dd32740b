"""The shipped alerting rules and dashboard, judged by promtool and by a real Prometheus.

* ``promtool check rules`` and ``promtool test rules`` (the unit tests in
  ``tests/telemetry/promtool/``);
* a real Prometheus scrapes the real exporter (simulated fleet, a tenant's job on
  a GPU) and a real node_exporter reading the textfiles that a real sweep and a
  real ``dcops burnin run --textfile`` and ``dcops capacity metrics --textfile``
  wrote, with ``rules.yaml`` loaded: every
  alert must go pending or firing for a situation built to trigger it (the
  ``absent()`` one must stay silent while its metric is there), every metric
  name the rules and the dashboard use must exist, and every dashboard query
  must return data.

Needs the ``prometheus``, ``promtool`` and ``prometheus-node-exporter`` binaries
(Debian packages ``prometheus``, ``prometheus-node-exporter``); skipped without.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dcops.actions import ActionSettings
from dcops.node_actions import RecordingNodeActions
from dcops.sim import Fault, SimFleet
from dcops.store import AuditLog, Store
from health.base import get_check
from health.sweep import SweepOptions, SweepPorts, run_sweep
from health.textfile import write as write_sweep
from telemetry.collect import Sampler, SimClock
from telemetry.collect.sampler import Snapshot
from telemetry.exporter import GpuCollector, start_server
from telemetry.jobmap.model import Allocation
from tests.burnin.test_burnin_run import DEMO, dcops
from tests.health import _sweep_checks
from tests.telemetry.test_exporter_prometheus import free_port, get

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "telemetry" / "prometheus" / "rules.yaml"
DASHBOARD = REPO / "telemetry" / "prometheus" / "dashboard.json"
UNIT_TESTS = REPO / "tests" / "telemetry" / "promtool" / "rules_test.yaml"
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
#: Alerts whose expression is absent(): silent while the metric exists (the unit tests fire them).
SILENT_WHILE_PRESENT = {"DcopsSweepMissing": "dcops_sweep_last_success_timestamp_seconds"}
#: Grafana's variables, as a dashboard would expand them.
GRAFANA_VARS = {"$__range": "5m", "$__rate_interval": "1m", "$rack": ".*"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.prometheus,
    pytest.mark.skipif(
        None in (PROMETHEUS, PROMTOOL, NODE_EXPORTER),
        reason="needs prometheus, promtool and prometheus-node-exporter (Debian packages)",
    ),
    pytest.mark.timeout(240),
]


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _dashboard_exprs() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dash["panels"]:
        for target in panel.get("targets") or []:
            expr = target["expr"]
            for var, value in GRAFANA_VARS.items():
                expr = expr.replace(var, value)
            assert "$" not in expr, f"unexpanded variable in {panel['title']}: {expr}"
            out.append((panel["title"], expr))
    return out


def test_promtool_checks_the_rules() -> None:
    assert PROMTOOL is not None
    proc = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in proc.stdout


def test_promtool_unit_tests_pass() -> None:
    assert PROMTOOL is not None
    proc = subprocess.run(
        [PROMTOOL, "test", "rules", str(UNIT_TESTS)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tested = set(re.findall(r"alertname: (\w+)", UNIT_TESTS.read_text()))
    assert tested == {rule["alert"] for rule in _alerts()}  # every alert has unit tests


def test_every_dashboard_target_is_promql_prometheus_accepts() -> None:
    assert PROMTOOL is not None
    dash = json.loads(DASHBOARD.read_text())
    assert {"Health sweeps", "Burn-in (last run of each rack)", "Capacity", "Energy and power"} <= {
        p["title"] for p in dash["panels"] if p["type"] == "row"
    }
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    # promtool has no "check expression": wrap each in a recording rule and check those
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:panel{i}", "expr": expr}
                    for i, (_, expr) in enumerate(_dashboard_exprs())
                ],
            }
        ]
    }
    proc = subprocess.run(
        [PROMTOOL, "check", "rules", "/dev/stdin"],
        input=yaml.safe_dump(rules),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------- the live part


def _sweep_textfile(folder: Path, tmp: Path) -> dict[str, Any]:
    """Two real sweeps: one drains a node (2 days ago), the next trips the breaker (2 h ago)."""
    now = time.time()
    _sweep_checks.FLAGGED.clear()
    with SimFleet.from_dict({"racks": 1, "seed": 3}) as fleet, Store(tmp / "state.db") as store:
        actions = RecordingNodeActions(fleet.site.nodes(), clock=lambda: now - 2 * 86400)
        ports = SweepPorts(
            runner=fleet.runner,
            site=fleet.site,
            checks=[get_check("t-smi"), get_check("t-flag")],
            store=store,
            audit=AuditLog(store, actor="test"),
            actions=actions,
            clock=lambda: now - 2 * 3600,
        )
        fleet.inject(Fault(kind="xid", node="sim-r01-t04", gpus=(2,), code=79))
        run_sweep(ports, fleet.site.nodes(), SweepOptions(apply=True, timeout_s=5, mode="sim"))
        for node in ("sim-r01-t07", "sim-r01-t08"):
            fleet.inject(Fault(kind="xid", node=node, gpus=(0,), code=79))
        options = SweepOptions(
            apply=True,
            timeout_s=5,
            mode="sim",
            action_settings=ActionSettings(max_drain_fleet=0.05),
        )
        report = run_sweep(ports, fleet.site.nodes(), options)
    assert report["circuit_breaker"], "the breaker must refuse the second sweep's drains"
    write_sweep(folder, report)
    return report


def _burnin_and_capacity_textfiles(folder: Path, tmp: Path) -> None:
    """A burn-in that drains (--apply), one whose breaker trips, then the capacity gauges.

    The tripping run uses a store of its own: in the first one's store the failing trays are
    already drained, so it would plan nothing for the breaker to refuse."""
    drained = dcops(tmp, "burnin", "run", "--sim", str(DEMO), "--json", "--apply")
    assert drained.returncode == 1, drained.stderr
    (tmp / "breaker").mkdir()
    proc = dcops(
        tmp / "breaker", "burnin", "run", "--sim", str(DEMO), "--json", "--textfile", str(folder),
        "--max-drain-fleet", "0.1",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    cap = dcops(tmp, "capacity", "metrics", "--sim", str(DEMO), "--textfile", str(folder))
    assert cap.returncode == 0, cap.stderr
    assert sorted(p.name for p in folder.glob("*.prom")) == [
        "dcops_burnin_r01.prom",
        "dcops_burnin_r02.prom",
        "dcops_capacity.prom",
        "dcops_sweep.prom",
    ]


class _Exporter:
    """The real exporter over a sampled sim fleet, with switches for energy faults."""

    NODES = ("sim-r01-t01", "sim-r01-t02", "sim-r01-t03")

    def __init__(self) -> None:
        self.fleet = SimFleet.from_dict({"racks": 1, "seed": 5})
        self.sampler = Sampler(self.fleet.probe, list(self.NODES), 10, SimClock(self.fleet))
        self.reset = threading.Event()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        held = [Allocation(node=self.NODES[0], gpu=0, job_id="42", start_s=0, tenant="acme")]
        self.collector = GpuCollector(self.snapshot, lambda: held)
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                self.fleet.advance(10)
                self.sampler.sample_once()
            self.stop.wait(0.3)

    def snapshot(self) -> Snapshot:
        with self.lock:
            snap = self.sampler.snapshot()
        gpus = dict(snap.gpus)
        for ref, reading in snap.gpus.items():
            if ref.node == self.NODES[0] and ref.index == 1:  # no energy counter on this GPU
                gpus[ref] = dataclasses.replace(reading, energy_mj=None)
            if ref.node == self.NODES[0] and ref.index == 2 and self.reset.is_set():
                gpus[ref] = dataclasses.replace(reading, energy_mj=5)  # the driver reloaded
        errors = {**snap.node_errors, self.NODES[2]: "unreachable (injected)"}
        return dataclasses.replace(snap, gpus=gpus, node_errors=errors)


@pytest.fixture
def exporter() -> Iterator[tuple[_Exporter, int]]:
    exp = _Exporter()
    exp.sampler.sample_once()
    exp.thread.start()
    server, thread = start_server(exp.collector, port=0, address="127.0.0.1")
    try:
        yield exp, int(server.server_port)
    finally:
        exp.stop.set()
        exp.thread.join(5)
        server.shutdown()
        server.server_close()
        thread.join(5)
        exp.fleet.close()


def _start(argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _query(web: int, expr: str) -> list[Any]:
    url = f"http://127.0.0.1:{web}/api/v1/query?query={urllib.parse.quote(expr)}"
    doc = get(url)
    assert doc["status"] == "success", doc
    result: list[Any] = doc["data"]["result"]
    return result


def _wait_for(web: int, expr: str, deadline: float) -> list[Any]:
    result: list[Any] = []
    while time.monotonic() < deadline:
        try:
            result = _query(web, expr)
        except OSError:
            result = []
        if result:
            return result
        time.sleep(0.5)
    return result


def test_every_alert_and_panel_returns_data_in_a_real_prometheus(
    tmp_path: Path, exporter: tuple[_Exporter, int]
) -> None:
    exp, exporter_port = exporter
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    (tmp_path / "sweep").mkdir()
    _sweep_textfile(textfiles, tmp_path / "sweep")
    _burnin_and_capacity_textfiles(textfiles, tmp_path)
    node_port, web, closed = free_port(), free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {
                        "job_name": "dcops",
                        "static_configs": [
                            # the real exporter, and one that is down (nothing listens)
                            {"targets": [f"127.0.0.1:{exporter_port}", f"127.0.0.1:{closed}"]}
                        ],
                    },
                    {
                        "job_name": "node",
                        "static_configs": [{"targets": [f"127.0.0.1:{node_port}"]}],
                    },
                ],
            }
        )
    )
    assert NODE_EXPORTER is not None and PROMETHEUS is not None
    node_exporter = _start(
        [
            NODE_EXPORTER,
            "--collector.disable-defaults",
            "--collector.textfile",
            f"--collector.textfile.directory={textfiles}",
            f"--web.listen-address=127.0.0.1:{node_port}",
        ]
    )
    prometheus = _start(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{web}",
        ]
    )
    try:
        deadline = time.monotonic() + 90
        assert _wait_for(web, 'dcops_gpu_energy_joules_total{tenant="acme"}', deadline)
        assert _wait_for(web, "dcops_burnin_nodes", deadline), "node_exporter read no textfile"
        textfile_errors = _query(web, "node_textfile_scrape_error")
        assert [float(r["value"][1]) for r in textfile_errors] == [0.0]
        time.sleep(3)  # a few samples of every counter before the driver "reloads"
        exp.reset.set()

        # every metric name used by the rules and the dashboard is one dcops really exports
        names = set(get(f"http://127.0.0.1:{web}/api/v1/label/__name__/values")["data"])
        exprs = [r["expr"] for r in _alerts()] + [e for _, e in _dashboard_exprs()]
        used = set(re.findall(r"\bdcops_[a-z0-9_]+", " ".join(exprs)))
        assert used and used <= names, sorted(used - names)

        for rule in _alerts():
            name = rule["alert"]
            if name in SILENT_WHILE_PRESENT:
                assert _query(web, SILENT_WHILE_PRESENT[name]), name
                assert not _query(web, f'ALERTS{{alertname="{name}"}}'), name
                continue
            found = _wait_for(web, f'ALERTS{{alertname="{name}"}}', time.monotonic() + 30)
            assert found, f"{name} never went pending or firing"
            assert {r["metric"]["alertstate"] for r in found} <= {"pending", "firing"}
        drained = _query(web, 'ALERTS{alertname="DcopsNodeDrainedTooLong"}')
        assert {r["metric"]["node"] for r in drained} == {"sim-r01-t04"}
        missing = _query(web, 'ALERTS{alertname="DcopsGpuEnergyCounterMissing"}')
        assert {(r["metric"]["node"], r["metric"]["gpu"]) for r in missing} == {
            ("sim-r01-t01", "1")
        }
        reset = _query(web, 'ALERTS{alertname="DcopsGpuEnergyCounterReset"}')
        assert {(r["metric"]["node"], r["metric"]["gpu"]) for r in reset} == {("sim-r01-t01", "2")}
        down = _query(web, 'ALERTS{alertname="DcopsExporterDown"}')
        assert {r["metric"]["instance"] for r in down} == {f"127.0.0.1:{closed}"}
        failing = _query(web, 'ALERTS{alertname="DcopsNodeTelemetryFailing"}')
        assert {r["metric"]["node"] for r in failing} == {"sim-r01-t03"}
        short = _query(web, 'ALERTS{alertname="DcopsHealthySegmentsBelowPromise"}')
        assert {r["metric"]["rack"] for r in short} == {"r01", "r02"}  # 4 trays out of each
        breaker = _query(web, 'ALERTS{alertname="DcopsDrainCircuitBreakerTripped"}')
        assert {r["metric"].get("rack", "sweep") for r in breaker} == {"sweep", "r01", "r02"}

        for title, expr in _dashboard_exprs():
            assert _query(web, expr), f"panel {title!r}: no data for {expr}"
        # the per-rack segments panel: one series per rack and size, 14 healthy trays a rack
        (_, per_rack), _free = [(t, e) for t, e in _dashboard_exprs() if "by (rack, size)" in e][:2]
        series = {
            (r["metric"]["rack"], r["metric"]["size"]): float(r["value"][1])
            for r in _query(web, per_rack.replace("$rack", ".*"))
        }
        sizes = ("1", "2", "4", "8", "9", "16", "18")
        assert set(series) == {(rack, s) for rack in ("r01", "r02") for s in sizes}
        assert all(
            series[(rack, "16")] == 0 and series[(rack, "8")] == 1 for rack in ("r01", "r02")
        )
    finally:
        _stop(prometheus)
        _stop(node_exporter)


def test_dashboard_plots_segments_by_size_per_rack_over_time() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    found = [
        p
        for p in panels
        if p["type"] == "timeseries"
        and any("dcops_capacity_segments" in t["expr"] and "by (rack, size)" in t["expr"]
                for t in p.get("targets", []))
    ]  # fmt: skip
    assert len(found) == 1
    kinds = {k for t in found[0]["targets"] for k in ("promisable", "free_now") if k in t["expr"]}
    assert kinds == {"promisable", "free_now"}
    assert all("{{rack}}" in t["legendFormat"] for t in found[0]["targets"])


def test_rules_and_dashboard_are_package_data() -> None:
    from telemetry.prometheus import DASHBOARD as DASHBOARD_NAME
    from telemetry.prometheus import RULES as RULES_NAME
    from telemetry.prometheus import asset

    assert asset(RULES_NAME).read_text() == RULES.read_text()
    assert json.loads(asset(DASHBOARD_NAME).read_text())["uid"] == "dcops-overview"
    with pytest.raises(KeyError):
        asset("secrets.yaml")
