"""A rig that cannot be had fails its tests where the rigs are required, and skips elsewhere."""

from __future__ import annotations

import pytest

import tests.rig.slurm as rig


@pytest.mark.parametrize(
    ("env", "ci", "fails"),
    [
        ({}, None, False),
        ({"DCOPS_RIG_REQUIRE": "1"}, None, True),
        ({"DCOPS_RIG_REQUIRE": "0"}, None, False),
        ({}, "true", True),
        ({}, "", False),
    ],
)
def test_skip_or_fail(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], ci: str | None, fails: bool
) -> None:
    monkeypatch.setattr(rig, "_RIG_ENV", env)
    monkeypatch.setattr(rig, "_CI", ci)
    assert rig.rigs_required() is fails
    expected = pytest.fail.Exception if fails else pytest.skip.Exception
    with pytest.raises(expected, match=r"the 24\.11 rig is missing"):
        rig.skip_or_fail("the 24.11 rig is missing")
