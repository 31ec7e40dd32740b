"""dcops.atomic: the old content or the whole new one, never a half file or a stray temp file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dcops.atomic import atomic_target, write_atomic


def test_replaces_whole_and_sets_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    target.write_text("old", encoding="utf-8")
    os.chmod(target, 0o644)
    write_atomic(target, "new")
    assert target.read_text(encoding="utf-8") == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # private unless asked
    write_atomic(target, b"\x00bytes", mode=0o644)
    assert target.read_bytes() == b"\x00bytes"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_a_writer_that_fails_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "part.parquet"
    target.write_text("old", encoding="utf-8")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), atomic_target(target) as tmp:
        tmp.write_text("half", encoding="utf-8")
        raise Boom
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part.parquet"]


def test_a_writer_that_writes_nothing_is_an_error_not_an_empty_file(tmp_path: Path) -> None:
    target = tmp_path / "y"
    with pytest.raises(FileNotFoundError), atomic_target(target):
        pass
    assert not target.exists()
