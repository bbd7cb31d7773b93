"""Claims taken ahead (issue 16.4): a load of many small files into SQLite, the audit store in
the same file, claims a chunk of new files in one transaction before loading them one by one.

Through the real CLI in subprocesses: a SIGKILL at each point of a file's load leaves the
later files' claims ``loading`` (a dead owner), and the re-run loads every file exactly once;
a batch that stops early leaves no claim behind and no manifest row for the files it did not
reach; a file whose data transaction rolled back ends ``failed`` with its error.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.util import (
    check_exactly_once,
    check_report,
    env_for,
    query,
    table_exists,
    tallyclerk,
    write_dataset,
    write_schema,
)

FILES = 12
ROWS = 40  # two record batches a file (--batch-rows 20)
TABLE = "events"


def _args(paths: list[Path], *extra: str) -> list[str]:
    return ["load", *[p.name for p in paths], "--table", TABLE, "--into", "sqlite:///data.db",
            "--schema", "schema.json", "--batch-rows", "20", "--json", *extra]


def _statuses(db: Path) -> list[tuple[str, str]]:
    return [(str(p), str(s)) for p, s in query(
        db, "SELECT path, status FROM tallyclerk_files ORDER BY id")]


def _dataset(tmp: Path, *, clean: bool = False) -> list[Path]:
    """The suite's files (id 0 is rejected by the schema) or, ``clean``, all rows valid."""
    write_schema(tmp)
    paths = write_dataset(tmp, FILES, ROWS)
    if clean:
        for i, p in enumerate(paths):
            p.write_text("id,name,amount\n" + "".join(
                f"{n},name-{n},{n % 1000}\n" for n in range(i * ROWS + 1, (i + 1) * ROWS + 1)),
                encoding="utf-8")
    return paths


@pytest.mark.parametrize(
    "fault",
    [
        "batch-written:kill@1",  # inside the first file
        "batch-written:kill@8",  # inside the fourth
        "before-data-commit:kill@3",
        "after-commit-before-event:kill@5",
        "before-data-commit:kill@12",  # the last file
    ],
)
def test_sigkill_during_a_small_file_load_then_rerun_loads_each_file_once(
    tmp_path: Path, fault: str
) -> None:
    paths = _dataset(tmp_path)
    db = tmp_path / "data.db"
    killed = tallyclerk(*_args(paths), cwd=tmp_path, env=env_for(TALLYCLERK_FAULT=fault))
    assert killed.code == -signal.SIGKILL, killed.err
    rows = _statuses(db)
    loading = [p for p, s in rows if s == "loading"]
    # the killed file's claim and those taken ahead for the files not reached: all loading
    # with a dead owner, none loaded twice, no file claimed twice
    assert loading, rows
    assert len({p for p, _ in rows}) == len(rows), rows
    loaded_before = {p for p, s in rows if s == "loaded"}

    again = tallyclerk(*_args(paths), cwd=tmp_path)
    assert again.code == 0, again.err
    report = again.json()
    check_report(report)
    by_path = {f["path"]: f["status"] for f in report["files"]}
    for p in paths:
        assert by_path[p.name] == ("skipped" if p.name in loaded_before else "loaded"), report
    check_exactly_once(db, db, TABLE, paths, ROWS)
    # every claim the kill left behind was cleaned up as interrupted by the re-run
    interrupted = query(db, "SELECT path, error_class, cleaned_by FROM tallyclerk_files "
                            "WHERE status = 'failed'")
    assert sorted(p for p, _, _ in interrupted) == sorted(loading), interrupted
    assert all(c == "Interrupted" and by is not None for _, c, by in interrupted), interrupted

    third = tallyclerk(*_args(paths), cwd=tmp_path)
    assert third.code == 0, third.err
    assert [f["status"] for f in third.json()["files"]] == ["skipped"] * FILES
    check_exactly_once(db, db, TABLE, paths, ROWS)


@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stop_at=st.integers(min_value=1, max_value=FILES))
def test_a_batch_stopping_early_leaves_no_claim_of_the_files_it_did_not_reach(
    tmp_path_factory: pytest.TempPathFactory, stop_at: int
) -> None:
    tmp = tmp_path_factory.mktemp("stop")
    paths = _dataset(tmp, clean=True)
    db = tmp / "data.db"
    # file number stop_at fails in its data transaction (a permanent fault before its
    # commit); --on-error abort stops the batch there
    r = tallyclerk(*_args(paths, "--on-error", "abort"), cwd=tmp,
                   env=env_for(TALLYCLERK_FAULT=f"before-data-commit:raise@{stop_at}"))
    assert r.code == 1, r.err
    report = r.json()
    check_report(report)
    files = report["files"]
    assert [f["status"] for f in files] == (
        ["loaded"] * (stop_at - 1) + ["failed"] * (FILES - stop_at + 1)), files
    failed = files[stop_at - 1]
    assert "injected" in failed["error"], failed
    assert failed["rows_rolled_back"] + failed["rows_rejected"] == failed["rows_read"] > 0
    for f in files[stop_at:]:
        assert f["error"].startswith("not attempted"), f
    manifest = query(db, "SELECT path, status, error, rows_read, rows_written, rows_rejected, "
                         "rows_rolled_back FROM tallyclerk_files ORDER BY id")
    # the failed file's rows rolled back, its failure recorded with its error; the files
    # after it have no row at all (their claims taken ahead were deleted), nothing loading
    assert [m[:2] for m in manifest] == (
        [(p.name, "loaded") for p in paths[:stop_at - 1]]
        + [(paths[stop_at - 1].name, "failed")]), manifest
    _path, _status, error, read, written, rejected, rolled_back = manifest[-1]
    assert "injected" in error
    assert read == written + rejected + rolled_back and written == 0
    # (the table is created in the first file's transaction: none when it rolled back)
    rows = query(db, f'SELECT count(*) FROM "{TABLE}"')[0][0] if table_exists(db, TABLE) else 0
    assert rows == sum(m[4] for m in manifest)

    # the next run loads the rest, each file once
    rest = tallyclerk(*_args(paths), cwd=tmp)
    assert rest.code == 0, rest.err
    check_exactly_once(db, db, TABLE, paths, ROWS)


def test_a_timed_out_batch_leaves_no_claim_behind(tmp_path: Path) -> None:
    paths = _dataset(tmp_path)
    db = tmp_path / "data.db"
    r = tallyclerk(*_args(paths), cwd=tmp_path, env=env_for(
        # file 2 fails once (transient) and waits 3 s to retry: the batch times out meanwhile
        TALLYCLERK_FAULT="before-data-commit:transient@2",
        TALLYCLERK_BACKOFF_INITIAL_MS="3000", TALLYCLERK_BACKOFF_MAX_MS="3000",
        TALLYCLERK_OPERATION_TIMEOUT_S="1"))
    assert r.code == 1, r.err
    report = r.json()
    check_report(report)
    assert report["status"] == "timed_out", report
    statuses = [f["status"] for f in report["files"]]
    assert statuses[0] == "loaded" and statuses[1] == "failed", report
    assert query(db, "SELECT count(*) FROM tallyclerk_files WHERE status = 'loading'") == [(0,)]
    # only the files the batch started have manifest rows
    assert [s for _, s in _statuses(db)] == ["loaded", "failed"]
    assert tallyclerk(*_args(paths), cwd=tmp_path).code == 0
    check_exactly_once(db, db, TABLE, paths, ROWS)
