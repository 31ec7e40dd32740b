"""The sacct importer on every real slurmdb/sacct JSON fixture, and on edited copies."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dcops.errors import InputError, UnknownNameError
from telemetry.importers import ImportOptions, get_importer, importer_names
from telemetry.importers.sacct import SacctImporter, records_from_doc
from tests.conftest import data_file

ROOT = data_file("slurm/slurmrestd")
FIXTURES = sorted(ROOT.glob("*/*/slurmdb-job-*.json"))


def _ts(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def read(path: Path, **kw: Any) -> Any:
    return get_importer("sacct").read(path, ImportOptions(**kw))


def test_registered() -> None:
    assert "sacct" in importer_names()
    with pytest.raises(UnknownNameError, match="sacct"):
        get_importer("sacct-nope")


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_fixture_imports_with_its_own_values(path: Path) -> None:
    doc = json.loads(path.read_text())
    frame = read(path)
    assert len(frame) == len(doc["jobs"])
    for rec, raw in zip(frame.to_dict("records"), doc["jobs"], strict=True):
        assert rec["job_id"] == str(raw["job_id"])
        assert rec["source"] == "sacct" and rec["backend"] == "slurm"
        assert rec["tenant"] == raw["account"] and rec["user"] == raw["user"]
        assert rec["raw_state"].split("+")[0] == raw["state"]["current"][0]
        assert rec["state"] == raw["state"]["current"][0].lower()
        t = raw["time"]
        assert rec["submit_time"] == _ts(t["submission"])
        if rec["state"] != "pending":
            assert rec["start_time"] == _ts(t["start"])
            assert rec["nodes"] is not None and len(rec["nodes"]) >= 1
        else:
            assert rec["nodes"] is None
        if t["end"]:
            assert rec["end_time"] == _ts(t["end"])
        else:
            assert rec["end_time"] is None or str(rec["end_time"]) == "NaT"


# Real values, read off the fixtures.
KNOWN = [
    (
        "23.11/0.0.40/slurmdb-job-failed.json",
        "510",
        "failed",
        "optic",
        "bparks",
        ["cn2"],
        1,
        1746621142,
        1746621143,
    ),
    (
        "23.11/0.0.40/slurmdb-job-timeout.json",
        "609",
        "timeout",
        "acoustic",
        "cpotter",
        ["cn4"],
        0,
        1746624261,
        1746624340,
    ),
    (
        "24.05/0.0.41/slurmdb-job-archived.json",
        "649716",
        "cancelled",
        "biology",
        "crich",
        ["cn176"],
        0,
        1747749296,
        1747749338,
    ),
    (
        "24.11/0.0.42/slurmdb-job-gpus-per-node.json",
        "6377",
        "running",
        None,
        None,
        ["ia1", "ia2"],
        0,
        1762788939,
        None,
    ),
    (
        "25.05/0.0.43/slurmdb-job-archived.json",
        "2194",
        "completed",
        None,
        None,
        ["gpu1", "gpu2"],
        0,
        1762637323,
        1762637683,
    ),
    (
        "25.11/0.0.44/slurmdb-job-gpus-multi-nodes.json",
        "5679",
        "running",
        "acoustic",
        "dperez",
        ["gpu1", "gpu2"],
        0,
        1762788040,
        None,
    ),
]


@pytest.mark.parametrize("case", KNOWN, ids=lambda c: c[0])
def test_known_values(case: tuple[Any, ...]) -> None:
    rel, job_id, state, tenant, user, nodes, code, start, end = case
    rec = read(ROOT / rel).to_dict("records")[0]
    assert (rec["job_id"], rec["state"], list(rec["nodes"])) == (job_id, state, nodes)
    if tenant is not None:
        assert (rec["tenant"], rec["user"]) == (tenant, user)
    assert rec["exit_code"] == code
    assert rec["num_nodes"] == len(nodes)
    assert rec["start_time"] == _ts(start)
    if end is not None:
        assert rec["end_time"] == _ts(end)
    assert pd.isna(rec["restart_of"])


def test_unfound_job_is_empty() -> None:
    assert len(read(ROOT / "25.11/0.0.44/slurmdb-job-unfound.json")) == 0


def _doc() -> dict[str, Any]:
    base: dict[str, Any] = json.loads((ROOT / "25.11/0.0.44/slurmdb-job-failed.json").read_text())
    return base


@pytest.mark.parametrize(
    ("slurm", "state"),
    [
        ("COMPLETED", "completed"),
        ("FAILED", "failed"),
        ("CANCELLED", "cancelled"),
        ("TIMEOUT", "timeout"),
        ("NODE_FAIL", "node_fail"),
        ("PREEMPTED", "preempted"),
        ("OUT_OF_MEMORY", "out_of_memory"),
        ("REQUEUED", "preempted"),
        ("BOOT_FAIL", "node_fail"),
    ],
)
def test_state_mapping(slurm: str, state: str) -> None:
    doc = _doc()
    doc["jobs"][0]["state"]["current"] = [slurm]
    (rec,) = records_from_doc(doc, "x.json", ImportOptions())
    assert (rec.state, rec.raw_state) == (state, slurm)


def test_unknown_state_is_located_input_error() -> None:
    doc = _doc()
    doc["jobs"][0]["state"]["current"] = ["EXPLODED"]
    with pytest.raises(InputError, match=r"x.json: state: job 5739: unknown Slurm state"):
        records_from_doc(doc, "x.json", ImportOptions())


def test_requeued_attempts_form_a_restart_chain() -> None:
    doc = _doc()
    first = doc["jobs"][0]
    first["state"]["current"] = ["NODE_FAIL"]
    first["failed_node"] = "cn1"
    second = copy.deepcopy(first)
    second["state"]["current"] = ["COMPLETED"]
    second["failed_node"] = ""
    second["time"]["start"] = first["time"]["end"] + 60
    second["time"]["end"] = first["time"]["end"] + 600
    doc["jobs"] = [second, first]  # order in the file does not matter
    recs = records_from_doc(doc, "x.json", ImportOptions())
    assert [(r.job_id, r.state, r.restart_of) for r in recs] == [
        ("5739@0", "node_fail", None),
        ("5739", "completed", "5739@0"),
    ]
    assert recs[0].extra is not None and recs[0].extra["failed_node"] == "cn1"


def test_tenant_option_fills_missing_account(tmp_path: Path) -> None:
    doc = _doc()
    doc["jobs"][0]["account"] = ""
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc))
    assert read(path, tenant="acme")["tenant"].tolist() == ["acme"]


@pytest.mark.parametrize(
    ("text", "match"),
    [("{", "not JSON"), ('{"meta": {}}', "no 'jobs' list"), ("[1]", "expected an object")],
)
def test_malformed_files(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InputError, match=match):
        SacctImporter().read(path, ImportOptions())
