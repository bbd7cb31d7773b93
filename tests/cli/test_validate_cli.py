"""``tallyclerk validate``: a dry run through the real CLI and the Python API, on real SQLite
files. It reports what a load would reject and skip, and writes nothing at all."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tallyclerk
from tests.cli.conftest import query, write_csv
from tests.cli.conftest import tallyclerk as cli


def _snapshot(directory: Path) -> dict[str, str]:
    """Every file of the directory (database, -wal, -shm included) with its content hash."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.iterdir()) if p.is_file()}


def test_reports_rejects_like_a_load_and_exits_1(work: Path) -> None:
    r = cli("validate", "a.csv", "b.csv", "--schema", "schema.json", "--json", cwd=work)
    assert r.code == 1, r.err
    rep = r.json()
    assert rep["status"] == "rejects"
    assert (rep["rows_read"], rep["rows_valid"], rep["rows_rejected"]) == (11, 9, 2)
    got = [(x["path"], x["line"], x["record_number"], x["column"], x["rule"])
           for x in rep["rejects"]]
    # the load's own verdicts, row for row
    loaded = cli("load", "a.csv", "b.csv", "--table", "t", "--schema", "schema.json", "--json",
                 cwd=work)
    assert loaded.code == 0
    stored = query(work / "tallyclerk.db",
                   "SELECT f.path, r.line, r.record_number, r.column_name, r.rule "
                   "FROM tallyclerk_rejects r JOIN tallyclerk_files f ON f.id = r.file_id "
                   "ORDER BY r.id")
    assert got == [tuple(s) for s in stored]
    assert [x["reason"] for x in rep["rejects"]] == [
        x[0] for x in query(work / "tallyclerk.db",
                            "SELECT reason FROM tallyclerk_rejects ORDER BY id")]


def test_clean_files_exit_0_and_limit_shows_the_first_n(work: Path) -> None:
    r = cli("validate", "a.csv", "--schema", "schema.json", cwd=work)
    assert r.code == 0, r.err
    assert "clean" in r.out
    r = cli("validate", "b.csv", "--schema", "schema.json", "--json", "--limit", "1", cwd=work)
    rep = r.json()
    assert r.code == 1 and rep["rows_rejected"] == 2
    assert len(rep["rejects"]) == 1 and rep["rejects_truncated"] is True
    assert rep["rejects"][0]["line"] == 3


def test_a_file_that_cannot_be_read_fails_with_exit_1(work: Path) -> None:
    r = cli("validate", "a.csv", "missing.csv", "--json", cwd=work)
    assert r.code == 1
    rep = r.json()
    assert rep["status"] == "failed"
    assert [f["status"] for f in rep["files"]] == ["valid", "failed"]
    assert "no such file" in rep["files"][1]["error"]


def test_a_bad_schema_is_a_usage_error(work: Path) -> None:
    (work / "bad.json").write_text("{not json", encoding="utf-8")
    r = cli("validate", "a.csv", "--schema", "bad.json", cwd=work)
    assert r.code == 2 and "bad.json" in r.err


def test_writes_nothing_and_tells_which_files_would_be_skipped(work: Path) -> None:
    assert cli("load", "a.csv", "--table", "t", "--schema", "schema.json", cwd=work).code == 0
    batch = query(work / "tallyclerk.db", "SELECT id FROM tallyclerk_batches")[0][0]
    before = _snapshot(work)
    assert not any(n.endswith(("-wal", "-shm")) for n in before)  # the load checkpointed
    r = cli("validate", "a.csv", "b.csv", "--table", "t", "--schema", "schema.json", "--json",
            cwd=work)
    assert r.code == 1, r.err
    files = {f["path"]: f for f in r.json()["files"]}
    assert files["a.csv"]["would_skip"] is True and files["a.csv"]["earlier_batch_id"] == batch
    assert files["b.csv"]["would_skip"] is False
    assert _snapshot(work) == before  # not a byte, not even a -wal or -shm file


def test_writes_nothing_while_another_connection_holds_a_wal(work: Path) -> None:
    assert cli("load", "a.csv", "--table", "t", "--schema", "schema.json", cwd=work).code == 0
    db = work / "tallyclerk.db"
    con = sqlite3.connect(db)  # a live writer: its commits sit in the -wal, not checkpointed
    try:
        con.execute("PRAGMA wal_autocheckpoint=0")
        con.execute("CREATE TABLE other (x)")
        con.execute("INSERT INTO other VALUES (1)")
        con.commit()
        wal = Path(f"{db}-wal")
        before = (db.read_bytes(), wal.read_bytes())
        assert before[1]  # the WAL holds data
        r = cli("validate", "a.csv", "--table", "t", "--schema", "schema.json", "--json",
                cwd=work)
        assert r.code == 0, r.err
        assert r.json()["files"][0]["would_skip"] is True
        assert (db.read_bytes(), wal.read_bytes()) == before
    finally:
        con.close()


def test_the_python_api(work: Path) -> None:
    report = tallyclerk.validate([str(work / "b.csv")], schema=str(work / "schema.json"),
                                 limit=5)
    assert isinstance(report, tallyclerk.ValidateReport)
    assert report.exit_code == 1 and report.rows_rejected == 2
    assert {r["rule"] for r in report.rejects} == {"type", "minimum"}


def test_the_python_api_takes_paths_and_schemas_as_load_does(work: Path) -> None:
    # one path (not a list: it was iterated character by character), a dict schema (it
    # raised TypeError), a pathlib.Path and a TableSchema, as tallyclerk.load() takes them
    doc = json.loads((work / "schema.json").read_text(encoding="utf-8"))
    report = tallyclerk.validate(str(work / "b.csv"), schema=doc)
    assert [f["path"] for f in report.as_dict()["files"]] == [str(work / "b.csv")]
    assert report.exit_code == 1 and report.rows_rejected == 2
    schema = tallyclerk.TableSchema.from_json(json.dumps(doc))
    report = tallyclerk.validate(work / "b.csv", schema=schema)
    assert report.rows_rejected == 2
    with pytest.raises(tallyclerk.ConfigError):
        tallyclerk.validate([], schema=doc)
    with pytest.raises(tallyclerk.ConfigError):
        tallyclerk.validate(str(work / "b.csv"), schema=42)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amounts=st.lists(st.integers(min_value=-3, max_value=3), min_size=1, max_size=30))
def test_counts_match_the_bad_rows(work: Path, amounts: list[int]) -> None:
    """Property: valid + rejected = read, and the rejected rows are exactly the bad ones."""
    path = write_csv(work / "p.csv", [(i, "n", a) for i, a in enumerate(amounts)])
    report = tallyclerk.validate([str(path)], schema=str(work / "schema.json"))
    bad = [i + 2 for i, a in enumerate(amounts) if a < 0]  # physical lines of amount < 0
    assert report.rows_read == len(amounts)
    assert report.rows_valid + report.rows_rejected == report.rows_read
    assert [r["line"] for r in report.rejects] == bad
    assert report.exit_code == (1 if bad else 0)


@pytest.mark.parametrize("limit", [-1])
def test_a_negative_limit_is_refused(work: Path, limit: int) -> None:
    with pytest.raises(tallyclerk.ConfigError):
        tallyclerk.validate([str(work / "a.csv")], limit=limit)
