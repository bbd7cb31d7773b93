"""Table Schema ``unique`` and ``primaryKey``: a duplicate within a file or against the rows
already in the table is a rejected row (rule ``unique`` / ``primary-key``) with its file, line
and reason, on every built-in sink; ``--force`` does not count a file's own earlier rows;
``--mode merge`` still upserts by the key."""

from __future__ import annotations

import json
import sqlite3
import tempfile
import uuid
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tallyclerk
from tests.clirun import Result, env_for, run_cli
from tests.modes.targets import Target

SCHEMA: dict[str, Any] = {
    "fields": [
        {"name": "id", "type": "integer", "constraints": {"unique": True}},
        {"name": "code", "type": "string"},
        {"name": "n", "type": "integer"},
    ],
    "primaryKey": ["code", "n"],
}
FILE1 = "id,code,n\n1,a,1\n2,a,2\n007,b,1\n3,a,1\n4,,5\n"
FILE2 = "id,code,n\n5,z,9\n1,q,1\n6,a,2\n"


def _load(target: Target, cwd: Path, *args: str) -> Result:
    return run_cli("load", *args, "--table", "t", "--schema", "s.json", *target.args(),
                   "--json", cwd=cwd, env=env_for())


def _rows(target: Target) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in target.query('SELECT id, code, n FROM "t" ORDER BY id')]


def _rejects(target: Target, cwd: Path) -> list[tuple[str, int, str | None, str, str]]:
    r = run_cli("rejects", *target.args(), "--json", cwd=cwd, env=env_for())
    assert r.code == 0, r.err
    return sorted((Path(x["path"]).name, x["line"], x["column"], x["rule"], x["reason"])
                  for x in r.json()["rejects"])


def test_duplicates_in_the_file_and_in_the_table_are_rejected(target: Target,
                                                              tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps(SCHEMA))
    (tmp_path / "f1.csv").write_text(FILE1)
    (tmp_path / "f2.csv").write_text(FILE2)
    first = _load(target, tmp_path, "f1.csv")
    assert first.code == 0, first.err
    second = _load(target, tmp_path, "f2.csv")
    assert second.code == 0, second.err
    counts = [(f["rows_read"], f["rows_written"], f["rows_rejected"])
              for r in (first, second) for f in r.json()["files"]]
    assert counts == [(5, 3, 2), (3, 1, 2)]
    assert _rows(target) == [(1, "a", 1), (2, "a", 2), (5, "z", 9), (7, "b", 1)]
    pk = 'primary key "code", "n"'
    assert _rejects(target, tmp_path) == [
        ("f1.csv", 5, None, "primary-key", f"duplicate key (a, 1) for {pk} (first seen on line 2)"),
        ("f1.csv", 6, "code", "primary-key", 'key column "code" is empty'),
        ("f2.csv", 3, "id", "unique",
         'duplicate value 1 for unique field "id" (already in the table)'),
        ("f2.csv", 4, None, "primary-key", f"duplicate key (a, 2) for {pk} (already in the table)"),
    ]
    # --force replaces the file's rows: its own earlier rows are deleted first, in the same
    # transaction, so they are no duplicates; the table is unchanged
    forced = _load(target, tmp_path, "f2.csv", "--force")
    assert forced.code == 0, forced.err
    (f,) = forced.json()["files"]
    assert (f["rows_read"], f["rows_written"], f["rows_rejected"]) == (3, 1, 2)
    assert _rows(target) == [(1, "a", 1), (2, "a", 2), (5, "z", 9), (7, "b", 1)]


def test_merge_still_upserts_by_the_primary_key(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    schema = {"fields": [{"name": "k", "type": "integer"}, {"name": "v"}], "primaryKey": "k"}
    (tmp_path / "a.csv").write_text("k,v\n1,x\n2,y\n")
    (tmp_path / "b.csv").write_text("k,v\n2,z\n3,w\n2,again\n")
    for name in ("a.csv", "b.csv"):
        report = tallyclerk.load([tmp_path / name], table="t", into=f"sqlite:///{db}",
                                 schema=schema, mode="merge")
        assert report.status == "succeeded"
    assert (report.rows_written, report.rows_rejected) == (2, 1)
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT k, v FROM t ORDER BY k").fetchall() == [
            (1, "x"), (2, "z"), (3, "w")]
        (rule,) = con.execute("SELECT rule FROM tallyclerk_rejects").fetchone()
    assert rule == "primary-key"


def test_postgres_through_the_api(tmp_path: Path, pg_url: str) -> None:
    import sqlalchemy as sa

    schema = {"fields": [{"name": "email", "constraints": {"unique": True}},
                         {"name": "day", "type": "date"}]}
    (tmp_path / "a.csv").write_text("email,day\na@x,2024-01-01\nb@x,2024-01-02\n")
    (tmp_path / "b.csv").write_text("email,day\nb@x,2024-02-01\nc@x,2024-02-02\nc@x,2024-02-03\n")
    audit = f"sqlite:///{tmp_path / 'audit.db'}"
    first = tallyclerk.load([tmp_path / "a.csv"], table="t", into=pg_url, audit=audit,
                            schema=schema)
    second = tallyclerk.load([tmp_path / "b.csv"], table="t", into=pg_url, audit=audit,
                             schema=schema)
    assert (first.rows_written, first.rows_rejected) == (2, 0)
    assert (second.rows_read, second.rows_written, second.rows_rejected) == (3, 1, 2)
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            got = conn.exec_driver_sql("SELECT email FROM t ORDER BY 1").scalars().all()
    finally:
        engine.dispose()
    assert got == ["a@x", "b@x", "c@x"]
    with sqlite3.connect(tmp_path / "audit.db") as con:
        reasons = [r[0] for r in con.execute(
            "SELECT reason FROM tallyclerk_rejects ORDER BY line")]
    assert reasons == ['duplicate value b@x for unique field "email" (already in the table)',
                       'duplicate value c@x for unique field "email" (first seen on line 3)']


def test_validate_reports_duplicates_within_a_file(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps(SCHEMA))
    (tmp_path / "f1.csv").write_text(FILE1)
    report = tallyclerk.validate([str(tmp_path / "f1.csv")], schema=str(tmp_path / "s.json"),
                                 into=f"sqlite:///{tmp_path / 'none.db'}")
    assert [(r["line"], r["rule"]) for r in report.rejects] == [(5, "primary-key"),
                                                                 (6, "primary-key")]
    assert report.files[0]["rows_valid"] == 3
    assert not (tmp_path / "none.db").exists()


keys = st.lists(st.integers(0, 12), max_size=15)


def _check_property(files: list[list[int]], into: str, audit: str | None, d: Path,
                    read_keys: Any) -> None:
    schema = {"fields": [{"name": "k", "type": "integer"}, {"name": "tag"}],
              "primaryKey": ["k"]}
    table_name = "t_" + uuid.uuid4().hex[:10]
    table: set[int] = set()
    for i, rows in enumerate(files):
        p = d / f"{table_name}_{i}.csv"
        # a last key of its own keeps identical key lists distinct files (not skipped)
        content = [*rows, 1000 + i]
        p.write_text("k,tag\n" + "".join(f"{k},x\n" for k in content))
        report = tallyclerk.load([p], table=table_name, into=into, audit=audit, schema=schema)
        new = set(content) - table
        (f,) = report.files
        assert f.status == "loaded"
        assert f.rows_written == len(new)
        assert f.rows_rejected == len(content) - len(new)
        assert f.rows_read == f.rows_written + f.rows_rejected == len(content)
        table |= new
    if table:
        assert read_keys(table_name) == sorted(table)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.lists(keys, min_size=1, max_size=4))
def test_written_are_the_new_distinct_keys(files: list[list[int]]) -> None:
    """For any files of keys: written = the distinct keys not already in the table, rejected =
    the rest, read = written + rejected; the table holds each key once."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        db = d / "t.db"

        def read_keys(name: str) -> list[int]:
            with sqlite3.connect(db) as con:
                return [k for (k,) in con.execute(f'SELECT k FROM "{name}" ORDER BY k')]

        _check_property(files, f"sqlite:///{db}", None, d, read_keys)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(files=st.lists(keys, min_size=1, max_size=3))
def test_written_are_the_new_distinct_keys_on_postgres(files: list[list[int]],
                                                       pg_url: str) -> None:
    import sqlalchemy as sa

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        engine = sa.create_engine(pg_url)

        def read_keys(name: str) -> list[int]:
            with engine.connect() as conn:
                return list(conn.exec_driver_sql(f'SELECT k FROM "{name}" ORDER BY k')
                            .scalars().all())

        try:
            # the audit store in the target: one store for every example (the database
            # outlives an example), the rows and the manifest in one transaction
            _check_property(files, pg_url, None, d, read_keys)
        finally:
            engine.dispose()
