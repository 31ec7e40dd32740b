"""dcops.registry.Registry, and that every pluggable part of dcops uses it."""

from __future__ import annotations

from typing import Any

import pytest

from dcops.errors import ExitCode, UnknownNameError
from dcops.registry import Registry


class Thing:
    def __init__(self, size: int = 1) -> None:
        self.size = size


def test_register_create_names() -> None:
    reg: Registry[Thing] = Registry("thing")

    @reg.register("b")
    class B(Thing):
        pass

    reg.add("a", Thing)
    assert reg.names() == ["a", "b"]
    assert list(reg) == ["a", "b"] and len(reg) == 2 and "a" in reg and "c" not in reg
    made = reg.create("a", size=3)
    assert type(made) is Thing and made.size == 3
    assert isinstance(reg.create("b"), B)
    assert reg.get("b") is B
    assert B.__name__ == "B"  # the decorator hands the class back unchanged


def test_unknown_name_lists_the_known_ones() -> None:
    reg: Registry[Thing] = Registry("widget")
    reg.add("x", Thing)
    reg.add("y", Thing)
    with pytest.raises(UnknownNameError) as info:
        reg.create("z")
    assert str(info.value) == "unknown widget 'z' (known: x, y)"
    assert info.value.known == ("x", "y") and info.value.exit_code is ExitCode.INPUT
    with pytest.raises(UnknownNameError, match=r"\(known: none\)"):
        Registry[Thing]("empty").get("x")


def test_a_name_is_registered_once_unless_replaced() -> None:
    reg: Registry[Thing] = Registry("thing")
    reg.add("a", Thing)
    reg.add("a", Thing)  # the same factory again (a module imported twice): fine

    class Other(Thing):
        pass

    with pytest.raises(ValueError, match="thing 'a' registered twice"):
        reg.add("a", Other)
    reg.add("a", Other, replace=True)
    assert reg.get("a") is Other
    with pytest.raises(ValueError, match="non-empty"):
        reg.add("", Thing)


def test_load_runs_once_on_first_lookup_not_on_register() -> None:
    calls: list[int] = []

    def load() -> None:
        calls.append(1)
        reg.add("built", Thing)

    reg: Registry[Thing] = Registry("thing", load=load)
    reg.add("extra", Thing)
    assert calls == []
    assert reg.names() == ["built", "extra"]
    reg.create("built")
    assert calls == [1]


def test_a_failed_load_is_retried() -> None:
    attempts: list[int] = []

    def load() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ImportError("first try")

    reg: Registry[Thing] = Registry("thing", load=load)
    with pytest.raises(ImportError):
        reg.names()
    assert reg.names() == [] and len(attempts) == 2


def test_every_pluggable_part_is_a_registry() -> None:
    from dcops.actions.kinds import KINDS
    from dcops.node_actions.base import NODE_ACTIONS
    from dcops.remote import RUNNERS
    from health.base import CHECKS
    from scheduler.backends.base import BACKENDS
    from telemetry.importers import IMPORTERS

    registries: list[Registry[Any]] = [KINDS, NODE_ACTIONS, RUNNERS, CHECKS, BACKENDS, IMPORTERS]
    assert all(isinstance(r, Registry) for r in registries)
    assert {"drain", "resume", "cordon", "uncordon"} <= set(KINDS.names())
    assert {"slurm-cli", "kubernetes"} <= set(NODE_ACTIONS.names())
    assert RUNNERS.names() == ["local", "ssh"]
    assert {"xid", "dcgm"} <= set(CHECKS.names())
    assert {"sacct", "alibaba-gpu-2023"} <= set(IMPORTERS.names())
    import scheduler.backends.slurm_cli  # noqa: F401 - backends register on import

    assert "slurm-cli" in BACKENDS
    for reg in registries:
        with pytest.raises(UnknownNameError, match=f"unknown {reg.kind} 'nope'"):
            reg.get("nope")
