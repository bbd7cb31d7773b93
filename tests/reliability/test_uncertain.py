"""Nothing uncertain is silent (issue 15, item 6).

With the audit store in another database than the target, a real ``tallyclerk load`` process is
SIGKILLed exactly between a file's data commit and its manifest commit
(``TALLYCLERK_FAULT=after-data-commit-before-manifest:kill@2``: the second file) or just before
its data commit. Then ``tallyclerk status`` must show the file ``uncertain``; ``tallyclerk
repair`` (or the next load, which settles its table first) must record what the target says;
and a re-run must leave every row exactly once with rows_read = rows_written + rows_rejected +
rows_rolled_back for every file. With the audit store in the target's SQLite file there is no
window (one transaction): nothing is ever uncertain.
"""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.util import (
    assert_no_duplicates,
    check_exactly_once,
    check_report,
    env_for,
    query,
    tallyclerk,
    write_dataset,
    write_schema,
)

FILES = 4
ROWS = 1_500  # the second file (ids 1500..2999) has rejected rows: ids 1994 and 2991
TABLE = "events"
WINDOW = "after-data-commit-before-manifest"
# without the amount constraint nothing is rejected: the committed outcome
NO_REJECTS = {"fields": [{"name": "id", "type": "integer"}, {"name": "name", "type": "string"},
                         {"name": "amount", "type": "number"}]}


def _load_args(paths: list[Path], into: str, audit: str | None) -> list[str]:
    args = ["load", *[p.name for p in paths], "--table", TABLE, "--into", into,
            "--schema", "schema.json", "--batch-rows", "500", "--json"]
    return args + (["--audit", audit] if audit else [])


def _kill(tmp_path: Path, args: list[str], point: str = WINDOW) -> None:
    killed = tallyclerk(*args, cwd=tmp_path, env=env_for(TALLYCLERK_FAULT=f"{point}:kill@2"))
    assert killed.code == -signal.SIGKILL, killed.err


def _status(tmp_path: Path, into: str, audit: str | None) -> dict[str, Any]:
    args = ["status", "--into", into, "--json"] + (["--audit", audit] if audit else [])
    r = tallyclerk(*args, cwd=tmp_path)
    assert r.code == 0, r.err
    data: dict[str, Any] = r.json()
    return data


def _repair(tmp_path: Path, into: str, audit: str | None, *more: str) -> tuple[int, Any]:
    args = ["repair", "--into", into, "--json", *more] + (["--audit", audit] if audit else [])
    r = tallyclerk(*args, cwd=tmp_path)
    return r.code, r.json() if r.out.strip() else r.err


def _digest(*paths: Path) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def _accounting(audit_db: Path) -> None:
    """Every finished manifest row adds up: read = written + rejected + rolled back."""
    rows = query(audit_db, "SELECT path, status, rows_read, rows_written, rows_rejected, "
                           "rows_rolled_back FROM tallyclerk_files")
    assert not [r for r in rows if r[1] == "loading"], rows
    for path, status, read, written, rejected, rolled in rows:
        if status in ("loaded", "failed"):
            assert read == written + rejected + rolled, (path, status, read, written, rejected,
                                                        rolled)


@pytest.mark.parametrize(("rejects", "outcome"), [(True, "rolled_back"), (False, "committed")])
def test_sqlite_kill_in_the_window_is_uncertain_and_repair_settles_it(
    tmp_path: Path, rejects: bool, outcome: str
) -> None:
    paths = write_dataset(tmp_path, FILES, ROWS)
    write_schema(tmp_path, None if rejects else NO_REJECTS)
    into, audit = "sqlite:///data.db", "sqlite:///audit.db"
    data_db, audit_db = tmp_path / "data.db", tmp_path / "audit.db"
    args = _load_args(paths, into, audit)
    _kill(tmp_path, args)
    second_ids = query(data_db, f'SELECT count(*) FROM "{TABLE}" WHERE id >= ? AND id < ?',
                       (ROWS, 2 * ROWS))
    assert second_ids[0][0] > 0  # the data committed, the manifest did not

    status = _status(tmp_path, into, audit)
    assert status["uncertain"] == 1
    assert [f["path"] for f in status["uncertain_files"]] == [paths[1].name]
    assert [f["status"] for f in status["files"]] == ["loaded", "uncertain"]
    text = tallyclerk("status", "--into", into, "--audit", audit, cwd=tmp_path)
    assert text.out.startswith("UNCERTAIN: 1 file(s)"), text.out
    history = tallyclerk("status", "--into", into, "--audit", audit, "--file", paths[1].name,
                         "--json", cwd=tmp_path).json()["history"]
    assert [h["status"] for h in history] == ["uncertain"]
    from tallyclerk import file_history

    assert [h["status"] for h in file_history(paths[1].name, audit=f"sqlite:///{audit_db}")] == [
        "uncertain"]

    before = _digest(data_db, audit_db)
    code, dry = _repair(tmp_path, into, audit, "--dry-run")
    assert code == 0 and dry["dry_run"] and dry[outcome] == 1, dry
    assert _digest(data_db, audit_db) == before  # a dry run changes nothing

    code, done = _repair(tmp_path, into, audit)
    assert code == 0, done
    assert [f["outcome"] for f in done["files"]] == [outcome]
    assert _status(tmp_path, into, audit)["uncertain"] == 0
    assert_no_duplicates(data_db, TABLE)
    settled = query(audit_db, "SELECT payload FROM tallyclerk_events WHERE type = "
                              "'file_settled'")
    assert len(settled) == 1 and outcome in settled[0][0]
    code, again = _repair(tmp_path, into, audit)
    assert code == 0 and again["uncertain"] == 0  # settled once

    rerun = tallyclerk(*args, cwd=tmp_path)
    assert rerun.code == 0, rerun.err
    report = rerun.json()
    check_report(report)
    done_before = 2 if outcome == "committed" else 1
    assert [f["status"] for f in report["files"]] == (
        ["skipped"] * done_before + ["loaded"] * (FILES - done_before))
    if rejects:
        check_exactly_once(data_db, audit_db, TABLE, paths, ROWS)
    else:
        assert query(data_db, f'SELECT count(*), count(DISTINCT id) FROM "{TABLE}"') == [
            (FILES * ROWS, FILES * ROWS)]
    _accounting(audit_db)
    v = tallyclerk("verify", "--audit", audit, cwd=tmp_path)
    assert v.code == 0, v.out + v.err


@pytest.mark.parametrize(("point", "outcome"),
                         [(WINDOW, "rolled_back"), ("before-data-commit", "not_committed")])
def test_a_rerun_settles_its_table_first_and_says_so(
    tmp_path: Path, point: str, outcome: str
) -> None:
    paths = write_dataset(tmp_path, FILES, ROWS)
    write_schema(tmp_path)
    into, audit = "sqlite:///data.db", "sqlite:///audit.db"
    data_db, audit_db = tmp_path / "data.db", tmp_path / "audit.db"
    args = _load_args(paths, into, audit)
    _kill(tmp_path, args, point)
    assert _status(tmp_path, into, audit)["uncertain"] == 1

    rerun = tallyclerk(*args, cwd=tmp_path)
    assert rerun.code == 0, rerun.err
    assert "was uncertain" in rerun.err and outcome in rerun.err  # logged, not silent
    check_report(rerun.json())
    check_exactly_once(data_db, audit_db, TABLE, paths, ROWS)
    _accounting(audit_db)
    (error,) = query(audit_db, "SELECT error FROM tallyclerk_files WHERE path = ? AND status = "
                               "'failed'", (paths[1].name,))
    assert error[0].startswith("interrupted; settled by batch"), error
    settled = query(audit_db, "SELECT payload FROM tallyclerk_events WHERE type = "
                              "'file_settled'")
    assert len(settled) == 1 and outcome in settled[0][0]


def test_a_marker_that_disagrees_with_the_target_is_not_settled(tmp_path: Path) -> None:
    """A target edited after the crash (rows of the file deleted): repair refuses (exit 1)
    with the reason, and the next load refuses too (exit 3) instead of guessing."""
    import sqlite3

    paths = write_dataset(tmp_path, FILES, ROWS)
    write_schema(tmp_path, NO_REJECTS)
    into, audit = "sqlite:///data.db", "sqlite:///audit.db"
    args = _load_args(paths, into, audit)
    _kill(tmp_path, args)
    con = sqlite3.connect(tmp_path / "data.db")
    with con:
        con.execute(f'DELETE FROM "{TABLE}" WHERE id = ?', (ROWS + 7,))
    con.close()
    code, result = _repair(tmp_path, into, audit)
    assert code == 1
    (entry,) = result["files"]
    assert entry["outcome"] == "unsettled" and "its marker says 1500" in entry["reason"]
    rerun = tallyclerk(*args, cwd=tmp_path)
    assert rerun.code == 3 and "tallyclerk repair" in rerun.err, rerun.err
    assert _status(tmp_path, into, audit)["uncertain"] == 1


def test_postgres_target_with_a_sqlite_audit_store(tmp_path: Path, pg_url: str) -> None:
    import sqlalchemy as sa

    from tallyclerk import repair

    paths = write_dataset(tmp_path, FILES, ROWS)
    write_schema(tmp_path, NO_REJECTS)
    audit = "sqlite:///audit.db"
    audit_db = tmp_path / "audit.db"
    args = _load_args(paths, pg_url, audit)
    _kill(tmp_path, args)
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            n = conn.exec_driver_sql(f'SELECT count(*) FROM "{TABLE}"').scalar()
        assert n == 2 * ROWS
        assert _status(tmp_path, pg_url, audit)["uncertain"] == 1
        dry = repair(into=pg_url, audit=f"sqlite:///{audit_db}", dry_run=True)
        assert dry.as_dict()["committed"] == 1
        rerun = tallyclerk(*args, cwd=tmp_path)  # settles it first: committed
        assert rerun.code == 0, rerun.err
        check_report(rerun.json())
        assert [f["status"] for f in rerun.json()["files"]] == ["skipped"] * 2 + ["loaded"] * 2
        with engine.connect() as conn:
            got = conn.exec_driver_sql(
                f'SELECT count(*), count(DISTINCT id) FROM "{TABLE}"').one()
        assert tuple(got) == (FILES * ROWS, FILES * ROWS)
        _accounting(audit_db)
        assert repair(into=pg_url, audit=f"sqlite:///{audit_db}").files == []
    finally:
        engine.dispose()


def test_one_sqlite_file_for_data_and_audit_is_never_uncertain(tmp_path: Path) -> None:
    """Same file: the rows and the manifest row commit in one transaction (no window, no
    marker table), so a kill before the commit is an ordinary interrupted claim."""
    paths = write_dataset(tmp_path, FILES, ROWS)
    write_schema(tmp_path)
    into = "sqlite:///data.db"
    data_db = tmp_path / "data.db"
    args = _load_args(paths, into, None)
    for point in ("before-data-commit", "after-commit-before-event"):
        _kill(tmp_path, args, point)
        assert _status(tmp_path, into, None)["uncertain"] == 0
        code, result = _repair(tmp_path, into, None)
        assert code == 0 and result["uncertain"] == 0
    assert not query(data_db, "SELECT 1 FROM sqlite_master WHERE name = '_tc_loads'")
    rerun = tallyclerk(*args, cwd=tmp_path)
    assert rerun.code == 0, rerun.err
    check_exactly_once(data_db, data_db, TABLE, paths, ROWS)


def test_replace_killed_in_the_window_is_settled_and_replaced_once(tmp_path: Path) -> None:
    """``--mode replace`` loads into a shadow table: its uncertain file is found by the batch's
    table, settled before the stale shadow is dropped, and the re-run rebuilds the table."""
    paths = write_dataset(tmp_path, FILES, ROWS)
    write_schema(tmp_path)
    into, audit = "sqlite:///data.db", "sqlite:///audit.db"
    data_db, audit_db = tmp_path / "data.db", tmp_path / "audit.db"
    args = [*_load_args(paths, into, audit), "--mode", "replace"]
    _kill(tmp_path, args)
    assert _status(tmp_path, into, audit)["uncertain"] == 1
    rerun = tallyclerk(*args, cwd=tmp_path)
    assert rerun.code == 0, rerun.err
    assert "was uncertain" in rerun.err
    assert [f["status"] for f in rerun.json()["files"]] == ["loaded"] * FILES
    check_exactly_once(data_db, audit_db, TABLE, paths, ROWS)
    _accounting(audit_db)
    assert _status(tmp_path, into, audit)["uncertain"] == 0


def test_repair_of_another_target_refuses_and_usage_errors_exit_2(tmp_path: Path) -> None:
    """An uncertain file is checked only in the target it was loaded into (exit 1 naming it);
    a bad argument is a usage error (exit 2)."""
    import sqlite3

    paths = write_dataset(tmp_path, FILES, ROWS)
    write_schema(tmp_path)
    into, audit = "sqlite:///data.db", "sqlite:///audit.db"
    _kill(tmp_path, _load_args(paths, into, audit))
    sqlite3.connect(tmp_path / "other.db").close()
    code, result = _repair(tmp_path, "sqlite:///other.db", audit)
    assert code == 1
    (entry,) = result["files"]
    assert entry["outcome"] == "unsettled" and "data.db" in entry["reason"]
    bad = tallyclerk("repair", "--into", into, "--audit", audit, "--table", "",
                     cwd=tmp_path)
    assert bad.code == 2, bad.err
    missing = tallyclerk("repair", "--into", into, "--audit", "sqlite:///none.db", cwd=tmp_path)
    assert missing.code == 2 and "no tallyclerk database" in missing.err
    assert _status(tmp_path, into, audit)["uncertain"] == 1  # nothing was changed
