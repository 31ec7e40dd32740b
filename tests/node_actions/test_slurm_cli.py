"""SlurmCliNodeActions with a scripted RemoteRunner: argv built, errors mapped (no Slurm needed)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from dcops.errors import CommandTimeout, SchedulerError, UnknownNodeError
from dcops.measurements import CommandResult
from dcops.node_actions import NodeActionFeature, NodeActions, SlurmCliNodeActions

NODES_22_05 = json.dumps(
    {
        "meta": {"plugin": {"type": "openapi/v0.0.38"}},
        "errors": [],
        "nodes": [
            {"name": "sim-r01-t01", "state": "idle", "state_flags": [], "reason": ""},
            {
                "name": "sim-r01-t02",
                "state": "idle",
                "state_flags": ["DRAIN"],
                "reason": "dcops: x",
                "reason_changed_at": 1700000000,
                "reason_set_by_user": "root",
            },
            {"name": "sim-r01-t03", "state": "down", "state_flags": [], "reason": "gone"},
        ],
    }
)


class ScriptedRunner:
    """Answers argv (after any `env K=V` prefix) from a table; records every call."""

    def __init__(self, answers: dict[str, tuple[int, str, str]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def run(
        self, host: str, argv: Sequence[str], *, timeout_s: float, stdin: str | None = None
    ) -> CommandResult:
        self.calls.append((host, tuple(argv)))
        args = list(argv)
        while args and (args[0] == "env" or "=" in args[0]):
            args.pop(0)
        key = " ".join(args[:3])
        code, out, err = next(
            (v for k, v in self.answers.items() if key.startswith(k)), (0, "", "")
        )
        return CommandResult(host, tuple(argv), code, out, err, 0.01)


NO_JSON = (1, "", "scontrol: unrecognized option '--json'\nTry \"scontrol --help\"")


def _adapter(**answers: tuple[int, str, str]) -> tuple[SlurmCliNodeActions, ScriptedRunner]:
    table = {
        "scontrol --json show": NO_JSON,
        "sinfo --all --json": (0, NODES_22_05, ""),
        **{k.replace("_", " "): v for k, v in answers.items()},
    }
    runner = ScriptedRunner(table)
    return SlurmCliNodeActions(slurm_conf="/etc/x/slurm.conf", runner=runner, host="head"), runner


def test_port_and_features() -> None:
    adapter, _ = _adapter()
    assert isinstance(adapter, NodeActions)
    assert adapter.features == frozenset(NodeActionFeature)


def test_states_fall_back_to_sinfo_once_and_pass_slurm_conf() -> None:
    adapter, runner = _adapter()
    assert adapter.states("sim-r01-t02")["sim-r01-t02"].drain
    adapter.states()
    argvs = [argv for _, argv in runner.calls]
    assert argvs[0][:2] == ("env", "SLURM_CONF=/etc/x/slurm.conf")
    assert argvs[0][2:] == ("scontrol", "--json", "show", "node")
    assert [a[2] for a in argvs] == ["scontrol", "sinfo", "sinfo"]
    assert all(host == "head" for host, _ in runner.calls)


def test_states_prefer_scontrol_json() -> None:
    adapter, runner = _adapter(**{"scontrol_--json_show": (0, NODES_22_05, "")})
    adapter.states()
    adapter.states()
    assert [a[2] for _, a in runner.calls] == ["scontrol", "scontrol"]


def test_scontrol_failure_other_than_no_json_is_an_error() -> None:
    adapter, _ = _adapter(
        **{
            "scontrol_--json_show": (
                1,
                "",
                "slurm_load_node error: Unable to contact slurm controller",
            )
        }
    )
    with pytest.raises(SchedulerError, match="Unable to contact slurm controller"):
        adapter.states()


def test_drain_argv_is_one_update_with_hostlist_and_reason() -> None:
    adapter, runner = _adapter()
    assert adapter.drain(["sim-r01-t01", "sim-r01-t02"], "dcops: nvlink errors") == [
        "sim-r01-t01",
        "sim-r01-t02",
    ]
    update = runner.calls[-1][1][2:]
    assert update == (
        "scontrol",
        "update",
        "NodeName=sim-r01-t[01-02]",
        "State=DRAIN",
        "Reason=dcops: nvlink errors",
    )


def test_resume_only_drained_or_down() -> None:
    adapter, runner = _adapter()
    assert adapter.resume("sim-r01-t[01-03]") == ["sim-r01-t02", "sim-r01-t03"]
    assert runner.calls[-1][1][2:] == (
        "scontrol",
        "update",
        "NodeName=sim-r01-t[02-03]",
        "State=RESUME",
    )
    calls = len(runner.calls)
    assert adapter.resume("sim-r01-t01") == []
    assert all(a[2] != "scontrol" or a[3] != "update" for _, a in runner.calls[calls:])


def test_unknown_node_never_reaches_scontrol_update() -> None:
    adapter, runner = _adapter()
    with pytest.raises(UnknownNodeError, match="sim-r09-t01"):
        adapter.drain("sim-r01-t01,sim-r09-t01", "dcops: x")
    assert not any("update" in argv for _, argv in runner.calls)


def test_update_errors_become_one_line_scheduler_errors() -> None:
    adapter, _ = _adapter(
        **{
            "scontrol_update_NodeName=sim-r01-t01": (
                1,
                "",
                "slurm_update error: Access/permission denied\nmore",
            )
        }
    )
    with pytest.raises(SchedulerError) as info:
        adapter.drain("sim-r01-t01", "dcops: x")
    message = str(info.value)
    assert "\n" not in message
    assert "Access/permission denied" in message and "sim-r01-t01" in message


def test_update_invalid_node_name_is_unknown_node() -> None:
    adapter, _ = _adapter(
        **{
            "scontrol_update_NodeName=sim-r01-t01": (
                1,
                "",
                "slurm_update error: Invalid node name specified",
            )
        }
    )
    with pytest.raises(UnknownNodeError):
        adapter.drain("sim-r01-t01", "dcops: x")


def test_missing_client_is_a_scheduler_error() -> None:
    adapter, _ = _adapter(
        **{"scontrol_--json_show": (127, "", "env: 'scontrol': No such file or directory")}
    )
    with pytest.raises(SchedulerError, match="Slurm client installed"):
        adapter.states()


def test_sinfo_failure_and_garbage() -> None:
    adapter, _ = _adapter(**{"sinfo_--all_--json": (1, "", "sinfo: error: boom")})
    with pytest.raises(SchedulerError, match="boom"):
        adapter.states()
    adapter, _ = _adapter(**{"sinfo_--all_--json": (0, "<html>", "")})
    with pytest.raises(SchedulerError, match="not JSON"):
        adapter.states()


def test_timeout_propagates_as_command_timeout() -> None:
    class Hung:
        def run(
            self, host: str, argv: Sequence[str], *, timeout_s: float, stdin: str | None = None
        ) -> CommandResult:
            raise CommandTimeout(host, f"{argv[0]} did not finish within {timeout_s:g}s")

    adapter = SlurmCliNodeActions(runner=Hung(), host="head", timeout_s=2)
    with pytest.raises(CommandTimeout, match="head"):
        adapter.states()


def test_local_default_runner_without_slurm_conf_has_no_env_prefix() -> None:
    adapter = SlurmCliNodeActions()
    assert adapter.env == {}
