"""The runbook library: every file valid against the published schema; picks; plans."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from dcops.errors import InputError
from runbooks.library import builtin_dir, load_library, pick, pick_for_xid
from runbooks.model import RunbookError, load_runbook, parse_runbook, schema
from runbooks.plan import plan

EXPECTED = {
    "xid-79-reboot",
    "gpu-reset",
    "row-remap-pending",
    "nvlink5-errors",
    "xid-45-fabric-manager",
    "thermal-facilities",
    "return-to-service",
}


def test_schema_is_valid_json_schema_and_published() -> None:
    path = Path(__file__).resolve().parents[2] / "runbooks" / "runbook.schema.json"
    Draft202012Validator.check_schema(json.loads(path.read_text()))
    assert schema()["title"] == "dcops runbook"


def test_library_holds_the_issue_runbooks() -> None:
    books = load_library()
    assert set(books) == EXPECTED
    for book in books.values():
        assert book.steps and book.path.startswith(str(builtin_dir()))
        for step in book.steps:
            if step.destructive:
                assert step.autonomy == "approve"
                if step.spec["action"] in ("reboot", "gpu_reset"):
                    assert not step.idempotent  # asks approval again after a crash


def _minimal(**step: object) -> dict[str, object]:
    return {"name": "tt", "description": "d", "triggers": {}, "steps": [step]}


def test_a_shell_string_is_refused() -> None:
    with pytest.raises(RunbookError, match="argv"):
        parse_runbook(_minimal(name="s", kind="command", argv="reboot && rm -rf /"), "x.yaml")


def test_unknown_keys_kinds_and_placeholders_are_refused() -> None:
    with pytest.raises(RunbookError):
        parse_runbook(_minimal(name="s", kind="command", argv=["true"], shell=True), "x.yaml")
    with pytest.raises(RunbookError):
        parse_runbook(_minimal(name="s", kind="teleport"), "x.yaml")
    with pytest.raises(RunbookError, match="placeholder"):
        parse_runbook(_minimal(name="s", kind="command", argv=["echo", "{nope}"]), "x.yaml")


def test_bad_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ndescription: d\ntriggers: {}\nsteps:\n  - {name: a, kind: action}\n"
    )
    with pytest.raises(RunbookError) as err:
        load_runbook(path)
    assert str(err.value).startswith(f"{path}:5")


def test_site_directory_adds_and_replaces(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        "name: xid-79-reboot\ndescription: site version\ntriggers: {xids: [79]}\n"
        "steps:\n  - {name: hi, kind: command, argv: [echo, '{node}']}\n"
    )
    books = load_library([tmp_path])
    assert books["xid-79-reboot"].description == "site version"
    with pytest.raises(InputError):
        load_library([tmp_path / "missing"])


@pytest.mark.parametrize(
    ("xid", "bucket", "expected"),
    [
        (79, "RESTART_BM", "xid-79-reboot"),
        (48, "RESET_GPU", "gpu-reset"),
        (95, "RESET_GPU", "gpu-reset"),
        (149, "RESET_GPU", "nvlink5-errors"),
        (45, "RESTART_FM", "xid-45-fabric-manager"),
        (154, "RESET_GPU", "gpu-reset"),
        (145, "XID_154_EVAL", None),
        (13, "RESTART_APP", None),
    ],
)
def test_pick_for_xid(xid: int, bucket: str, expected: str | None) -> None:
    assert pick_for_xid(xid, bucket) == expected


def test_pick_for_checks() -> None:
    found = pick(load_library().values(), checks=["throttle"])
    assert found is not None and found[0].name == "thermal-facilities"


def test_plan_lists_exact_argv_and_actions_in_order() -> None:
    lines = plan(load_library()["gpu-reset"], "n1", {"gpu": 3})
    kinds = [line["kind"] for line in lines]
    assert kinds[:6] == ["action", "wait_for", "collect", "action", "check", "action"]
    reset = lines[3]
    assert reset["action"] == {"kind": "gpu_reset", "targets": "n1", "autonomy": "approve"}
    assert reset["commands"] == [
        {"host": "n1", "argv": ["nvidia-smi", "-r", "-i", "3"], "via": "actuator"}
    ]
    with pytest.raises(InputError, match="no parameter"):
        plan(load_library()["gpu-reset"], "n1", {"bogus": 1})
