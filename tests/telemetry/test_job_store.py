"""The Parquet job store: idempotent re-import, atomic writes, clear errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dcops.errors import InputError, StoreError
from telemetry.ingest import import_jobs
from telemetry.jobs import COLUMNS, JobRecord, empty_jobs_frame, jobs_frame
from telemetry.store import JobStore, jobs_dir
from tests.telemetry.test_alibaba_import import GOOD_ROWS, HEADER, write

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def records(source: str = "alibaba-gpu-2023", n: int = 3) -> list[JobRecord]:
    return [
        JobRecord(
            job_id=f"j{i}",
            source=source,
            backend="slurm",
            state="completed" if i % 2 else "node_fail",
            tenant="acme",
            user="ada",
            nodes=("gb200-r01-t01", "gb200-r01-t02"),
            num_nodes=2,
            gpus=8.0,
            submit_time=T0,
            start_time=T0,
            end_time=T0,
            raw_state="COMPLETED",
            exit_code=i,
            restart_of=None if i == 0 else f"j{i - 1}",
            extra={"partition": "batch"},
        )
        for i in range(n)
    ]


def test_round_trip_keeps_every_field_and_dtype(tmp_path: Path) -> None:
    store = JobStore.for_data_dir(tmp_path)
    frame = jobs_frame(records())
    done = store.replace("alibaba-gpu-2023", frame)
    assert done.path == jobs_dir(tmp_path) / "alibaba-gpu-2023.parquet"
    assert (done.records, done.replaced) == (3, 0)
    back = store.read()
    assert list(back.columns) == list(COLUMNS)
    assert dict(back.dtypes) == dict(frame.dtypes)
    assert back.drop(columns="nodes").equals(frame.drop(columns="nodes"))
    assert [list(n) for n in back["nodes"]] == [["gb200-r01-t01", "gb200-r01-t02"]] * 3
    assert back["exit_code"].tolist() == [0, 1, 2]


def test_empty_store_reads_as_empty_frame(tmp_path: Path) -> None:
    store = JobStore.for_data_dir(tmp_path)
    assert store.sources() == []
    empty = store.read()
    assert len(empty) == 0
    assert dict(empty.dtypes) == dict(empty_jobs_frame().dtypes)


def test_reimport_replaces_instead_of_duplicating(tmp_path: Path) -> None:
    store = JobStore.for_data_dir(tmp_path / "data")
    path = write(tmp_path, [HEADER, *GOOD_ROWS])
    first = import_jobs(store, "alibaba-gpu-2023", path)
    before = store.read()
    second = import_jobs(store, "alibaba-gpu-2023", path)
    after = store.read()
    assert (first.records, first.replaced) == (4, 0)
    assert (second.records, second.replaced) == (4, 4)
    assert len(after) == 4
    assert after.drop(columns="nodes").equals(before.drop(columns="nodes"))
    assert store.sources() == ["alibaba-gpu-2023"]
    assert [p.name for p in store.root.iterdir()] == ["alibaba-gpu-2023.parquet"]
    # A smaller re-import shrinks the source: replace, not append.
    third = import_jobs(store, "alibaba-gpu-2023", write(tmp_path, [HEADER, GOOD_ROWS[0]]))
    assert (third.records, third.replaced) == (1, 4)
    assert store.read()["job_id"].tolist() == ["pod-a"]


def test_sources_are_kept_apart(tmp_path: Path) -> None:
    store = JobStore.for_data_dir(tmp_path)
    store.replace("slurm-a", jobs_frame(records("slurm-a", 2)))
    store.replace("slurm-b", jobs_frame(records("slurm-b", 3)))
    assert store.sources() == ["slurm-a", "slurm-b"]
    assert len(store.read()) == 5
    assert len(store.read(["slurm-b"])) == 3
    with pytest.raises(ValueError, match="other sources"):
        store.replace("slurm-a", jobs_frame(records("slurm-b", 1)))


def test_malformed_import_leaves_store_untouched(tmp_path: Path) -> None:
    store = JobStore.for_data_dir(tmp_path / "data")
    import_jobs(store, "alibaba-gpu-2023", write(tmp_path, [HEADER, *GOOD_ROWS]))
    before = store.read()
    bad = write(tmp_path, [HEADER, GOOD_ROWS[0], "pod-z,1,1,1,1000,,LS,Bogus,0,1,0"], "bad.csv")
    with pytest.raises(InputError):
        import_jobs(store, "alibaba-gpu-2023", bad)
    assert store.read().drop(columns="nodes").equals(before.drop(columns="nodes"))


def test_failed_write_keeps_old_file_and_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = JobStore.for_data_dir(tmp_path)
    store.replace("alibaba-gpu-2023", jobs_frame(records(n=3)))

    def half_write(table: Any, where: Any, **kwargs: Any) -> None:
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("telemetry.store.pq.write_table", half_write)
    with pytest.raises(StoreError, match="No space left"):
        store.replace("alibaba-gpu-2023", jobs_frame(records(n=5)))
    assert [p.name for p in store.root.iterdir()] == ["alibaba-gpu-2023.parquet"]
    assert len(store.read()) == 3


def test_corrupt_file_is_a_store_error(tmp_path: Path) -> None:
    store = JobStore.for_data_dir(tmp_path)
    store.root.mkdir(parents=True)
    (store.root / "broken.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(StoreError, match=r"broken\.parquet"):
        store.read()


@pytest.mark.parametrize("name", ["", "../escape", "UPPER", "a/b", ".hidden", "x" * 101])
def test_unsafe_source_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="bad telemetry source name"):
        JobStore(tmp_path).path_for(name)


def test_records_reject_unknown_states_and_naive_times() -> None:
    with pytest.raises(ValueError, match="unknown job state"):
        JobRecord(job_id="x", source="s", backend="slurm", state="exploded")
    with pytest.raises(ValueError, match="timezone-aware"):
        JobRecord(
            job_id="x",
            source="s",
            backend="slurm",
            state="running",
            start_time=datetime(2024, 1, 1),
        )


def test_frame_from_elsewhere_is_conformed(tmp_path: Path) -> None:
    frame = jobs_frame(records(n=2))
    loose = pd.DataFrame({c: frame[c].tolist() for c in COLUMNS})  # object dtypes
    JobStore(tmp_path).replace("alibaba-gpu-2023", loose)
    assert dict(JobStore(tmp_path).read().dtypes) == dict(frame.dtypes)
