"""Crash suite: a multi-file load SIGKILLed at seeded random points and at every commit
boundary, then run again to completion: every source row exactly once, the manifest agrees,
``PRAGMA integrity_check`` is ok.

Kills come two ways: the parent sends SIGKILL after a seeded random delay (anywhere: start-up,
claim, mid-file, commit, report), or the child kills itself through a fault point
(``TALLYCLERK_FAULT=batch-written:kill@N``, a row-count-based point inside a file; see
:mod:`tallyclerk.faults`). After every kill the data has no duplicated row. Once everything is
loaded the next cycles run with ``--force`` (replacing files is killed too).

By default 20 kills with the audit store in the data file and 10 with a separate audit file.
Reproduce a run with ``TALLYCLERK_CRASH_SEED=<seed printed by the test>``. Larger:
``TALLYCLERK_CRASH_SCALE=5`` (5x the rows per file) and ``TALLYCLERK_CRASH_KILLS=100``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
from pathlib import Path

import pytest

from tests.reliability.util import (
    assert_no_duplicates,
    check_exactly_once,
    check_report,
    cli_argv,
    env_for,
    query,
    tallyclerk,
    write_dataset,
    write_schema,
)

SCALE = max(1, int(os.environ.get("TALLYCLERK_CRASH_SCALE", "1")))
KILLS = max(20, int(os.environ.get("TALLYCLERK_CRASH_KILLS", "20")))
FILES = 20
ROWS_PER_FILE = 10_000 * SCALE  # 200,000 rows at scale 1
BATCH_ROWS = 2_000
TABLE = "events"


def _seed() -> int:
    text = os.environ.get("TALLYCLERK_CRASH_SEED")
    return int(text) if text else random.SystemRandom().randrange(2**32)


def _load_args(paths: list[Path], into: str, audit: str | None, force: bool) -> list[str]:
    args = ["load", *[p.name for p in paths], "--table", TABLE, "--into", into,
            "--schema", "schema.json", "--batch-rows", str(BATCH_ROWS), "--json"]
    if audit:
        args += ["--audit", audit]
    if force:
        args.append("--force")
    return args


def _run_killed(cwd: Path, args: list[str], rng: random.Random, full_s: float) -> tuple[str, int]:
    """One cycle: a load killed by a timer or by a row-count fault point; returns (how, rc)."""
    if rng.random() < 0.5:
        batches = FILES * ROWS_PER_FILE // BATCH_ROWS
        n = rng.randint(1, max(2, batches // 8))
        proc = subprocess.run(cli_argv(*args), cwd=cwd, capture_output=True, text=True,
                              env=env_for(TALLYCLERK_FAULT=f"batch-written:kill@{n}"),
                              timeout=300, check=False)
        return f"fault batch-written@{n}", proc.returncode
    delay = rng.uniform(0.0, full_s)
    with subprocess.Popen(cli_argv(*args), cwd=cwd, env=env_for(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True) as child:
        try:
            child.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
        child.communicate(timeout=300)
        return f"timer {delay:.3f}s", child.returncode


@pytest.mark.parametrize("separate_audit", [False, True], ids=["same-db", "separate-audit"])
def test_sigkill_at_random_points_then_rerun_loads_every_row_once(
    tmp_path: Path, separate_audit: bool
) -> None:
    seed = _seed()
    print(f"crash suite seed: {seed} (TALLYCLERK_CRASH_SEED={seed} reproduces it)")
    rng = random.Random(seed)
    paths = write_dataset(tmp_path, FILES, ROWS_PER_FILE)
    write_schema(tmp_path)
    data_db = tmp_path / "data.db"
    audit_db = tmp_path / "audit.db" if separate_audit else data_db
    into = "sqlite:///data.db"
    audit = "sqlite:///audit.db" if separate_audit else None
    full_s = 2.5 * SCALE  # a timer range that covers start-up, the files and the report
    # the separate-audit run is the second deployment of the same code path: half the kills
    # by default (both grow with TALLYCLERK_CRASH_KILLS)
    wanted = max(10, KILLS // 2) if separate_audit else KILLS
    kills, force, log = 0, False, []
    for _cycle in range(wanted * 4):
        if kills >= wanted:
            break
        how, rc = _run_killed(tmp_path, _load_args(paths, into, audit, force), rng, full_s)
        log.append((how, rc, force))
        assert rc in (-signal.SIGKILL, 0), (seed, log)
        if rc == -signal.SIGKILL:
            kills += 1
        else:
            force = True  # everything loaded: keep killing forced reloads
        if data_db.exists():
            assert_no_duplicates(data_db, TABLE)
    assert kills >= wanted, (seed, log)

    final = tallyclerk(*_load_args(paths, into, audit, False), cwd=tmp_path)
    assert final.code == 0, (seed, final.err)
    report = final.json()
    check_report(report)
    assert {f["status"] for f in report["files"]} <= {"loaded", "skipped"}
    check_exactly_once(data_db, audit_db, TABLE, paths, ROWS_PER_FILE)
    again = tallyclerk(*_load_args(paths, into, audit, False), cwd=tmp_path)
    assert again.code == 0, again.err
    assert [f["status"] for f in again.json()["files"]] == ["skipped"] * FILES
    check_exactly_once(data_db, audit_db, TABLE, paths, ROWS_PER_FILE)


# --- one kill at each commit boundary ----------------------------------------------------------

BOUNDARY_FILES = 4
BOUNDARY_ROWS = 1_500


@pytest.mark.parametrize(
    ("point", "separate_audit"),
    [
        ("batch-written", False),
        ("before-data-commit", False),
        ("after-commit-before-event", False),
        ("batch-written", True),
        ("before-data-commit", True),
        ("after-data-commit-before-manifest", True),
        ("after-commit-before-event", True),
    ],
)
def test_kill_at_each_commit_boundary_then_rerun(
    tmp_path: Path, point: str, separate_audit: bool
) -> None:
    paths = write_dataset(tmp_path, BOUNDARY_FILES, BOUNDARY_ROWS)
    write_schema(tmp_path)
    data_db = tmp_path / "data.db"
    audit_db = tmp_path / "audit.db" if separate_audit else data_db
    args = ["load", *[p.name for p in paths], "--table", TABLE, "--into", "sqlite:///data.db",
            "--schema", "schema.json", "--batch-rows", "500", "--json"]
    if separate_audit:
        args += ["--audit", "sqlite:///audit.db"]
    # the second file's boundary (batch-written: its second batch, i.e. mid-file)
    n = 5 if point == "batch-written" else 2
    killed = tallyclerk(*args, cwd=tmp_path, env=env_for(TALLYCLERK_FAULT=f"{point}:kill@{n}"))
    assert killed.code == -signal.SIGKILL, killed.err
    second = paths[1].name
    status = query(audit_db, "SELECT status FROM tallyclerk_files WHERE path = ?", (second,))
    ids = {r[0] for r in query(data_db, f'SELECT id FROM "{TABLE}"')}
    first_id_of_second = BOUNDARY_ROWS  # ids are sequential across the files
    second_rows_present = first_id_of_second + 1 in ids
    if point == "after-commit-before-event":
        assert status == [("loaded",)]
        assert second_rows_present
        events = query(audit_db, "SELECT count(*) FROM tallyclerk_events WHERE type = "
                                 "'file_loaded' AND file_id = (SELECT id FROM tallyclerk_files "
                                 "WHERE path = ?)", (second,))
        assert events == [(0,)]  # the event log may miss it; the manifest is the record
    elif point == "after-data-commit-before-manifest":
        assert status == [("loading",)]  # the gap of separate databases ...
        assert second_rows_present  # ... data committed, manifest not: repaired on re-run
    else:
        assert status == [("loading",)]
        assert not second_rows_present  # rolled back with the process
    assert_no_duplicates(data_db, TABLE)

    rerun = tallyclerk(*args, cwd=tmp_path)
    assert rerun.code == 0, rerun.err
    report = rerun.json()
    check_report(report)
    statuses = [f["status"] for f in report["files"]]
    done_before = 2 if point == "after-commit-before-event" else 1
    assert statuses == ["skipped"] * done_before + ["loaded"] * (BOUNDARY_FILES - done_before)
    check_exactly_once(data_db, audit_db, TABLE, paths, BOUNDARY_ROWS)
    batches = query(audit_db, "SELECT status, error_message FROM tallyclerk_batches "
                              "ORDER BY started_at")
    assert [b[0] for b in batches[1:]] == ["succeeded"]
    if point != "after-commit-before-event":
        # the killed batch is not left "running" forever: cleaning its dead claim closed it
        # (killed with no claim open, it still shows "running": see the README's guarantees)
        assert batches[0][0] == "failed" and "interrupted" in batches[0][1], batches
    if point in ("after-data-commit-before-manifest", "batch-written", "before-data-commit"):
        (cleaned,) = query(audit_db, "SELECT status, error FROM tallyclerk_files WHERE path = ? "
                                     "AND status = 'failed'", (second,))
        assert "interrupted" in cleaned[1]


def test_the_oracle_catches_a_doubled_and_a_lost_row(tmp_path: Path) -> None:
    """The checks above can fail: one row doubled, or one row lost, is reported."""
    import sqlite3

    paths = write_dataset(tmp_path, 2, 300)
    write_schema(tmp_path)
    r = tallyclerk("load", *[p.name for p in paths], "--table", TABLE, "--into",
                   "sqlite:///data.db", "--schema", "schema.json", "--json", cwd=tmp_path)
    assert r.code == 0, r.err
    db = tmp_path / "data.db"
    check_exactly_once(db, db, TABLE, paths, 300)
    con = sqlite3.connect(db)
    with con:
        con.execute(f'INSERT INTO "{TABLE}" SELECT * FROM "{TABLE}" WHERE id = 5')
    with pytest.raises(AssertionError, match="duplicated"):
        assert_no_duplicates(db, TABLE)
    with pytest.raises(AssertionError, match="doubled"):
        check_exactly_once(db, db, TABLE, paths, 300)
    with con:
        con.execute(f'DELETE FROM "{TABLE}" WHERE id IN (5, 7)')
    con.close()
    with pytest.raises(AssertionError, match="lost"):
        check_exactly_once(db, db, TABLE, paths, 300)
