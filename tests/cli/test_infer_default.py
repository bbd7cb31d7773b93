"""Schema-less loads are typed by default (issue 13.2), through the real command and
``tallyclerk.load()`` on real SQLite files and a real PostgreSQL server.

The user story: a folder of CSVs and no schema gives typed columns (``SUM(amount)`` without a
cast); the types come from a sample of the first file, are remembered as the table's version 1,
and every later file (of the same load or a later one) is checked against that version: a value
that does not fit is a rejected row with its reason, file and line, never a failed file.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

import tallyclerk
from tests.clirun import env_for, query, run_cli


@pytest.fixture()
def env() -> dict[str, str]:
    return env_for()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp: Path, env: dict[str, str], into: str, *args: str) -> tuple[int, dict[str, Any]]:
    r = run_cli("load", *args, "--table", "t", "--into", into, "--json", cwd=tmp, env=env)
    assert "Traceback" not in r.err, r.err
    return r.code, (r.json() if r.out.strip() else {})


def types_of(into: str, table: str = "t") -> dict[str, str]:
    current = tallyclerk.table_schema(table, into=into)
    assert current is not None
    return {f["name"]: f["type"] for f in current["schema"]["fields"]}


def folder(tmp: Path) -> Path:
    d = tmp / "feed"
    write(d / "2026-01.csv", "id,day,amount,paid,note\n1,2026-01-02,10,true,a\n"
          "2,2026-01-03,2.5,false,\n")
    write(d / "2026-02.csv", "id,day,amount,paid,note\n3,2026-02-01,7,true,c\n"
          "4,2026-02-02,lots,true,d\n5,not a day,1,false,e\n")
    return d


def test_a_folder_of_csvs_without_a_schema_loads_typed_columns(
    tmp_path: Path, env: dict[str, str]
) -> None:
    d = folder(tmp_path)
    db = tmp_path / "d.db"
    into = f"sqlite:///{db}"
    code, rep = load(tmp_path, env, into, *sorted(str(p) for p in d.iterdir()))
    assert code == 0, rep
    first, second = rep["files"]
    assert (first["status"], first["rows_written"], first["rows_rejected"]) == ("loaded", 2, 0)
    # the second file is checked against the first file's types: two rows do not fit
    assert (second["status"], second["rows_written"], second["rows_rejected"]) == (
        "loaded", 1, 2)
    assert first["schema_version"] == second["schema_version"] == 1
    assert types_of(into) == {"id": "integer", "day": "date", "amount": "number",
                              "paid": "boolean", "note": "string"}
    assert query(db, "SELECT typeof(id), typeof(amount) FROM t ORDER BY id") == [
        ("integer", "real")] * 3
    assert query(db, "SELECT SUM(amount), SUM(paid) FROM t") == [(19.5, 2)]
    assert query(db, "SELECT note FROM t WHERE id = 2") == [(None,)]  # "" is missing
    rejects = run_cli("rejects", "--into", into, "--json", cwd=tmp_path, env=env).json()
    got = sorted((Path(r["path"]).name, r["line"], r["column"], r["rule"])
                 for r in rejects["rejects"])
    assert got == [("2026-02.csv", 3, "amount", "type"), ("2026-02.csv", 4, "day", "type")]
    assert all(r["reason"] for r in rejects["rejects"])
    shown = run_cli("schema", "t", "--into", into, "--json", cwd=tmp_path, env=env)
    assert shown.code == 0, shown.err
    doc = shown.json()
    assert doc["version"] == 1 and "inferred from a sample of 2 rows" in doc["reason"]
    assert "2026-01.csv" in doc["reason"]


def test_a_later_load_uses_the_remembered_schema_and_drift_is_in_status(
    tmp_path: Path, env: dict[str, str]
) -> None:
    db = tmp_path / "d.db"
    into = f"sqlite:///{db}"
    code, _ = load(tmp_path, env, into, str(write(tmp_path / "a.csv", "id,amount\n1,5\n2,6\n")))
    assert code == 0
    # a later load: not inferred again ("x" would make a fresh inference a string column)
    later = write(tmp_path / "b.csv", "id,amount,extra\n3,x,new\n4,8,\n")
    code, rep = load(tmp_path, env, into, str(later))
    f = rep["files"][0]
    assert code == 0 and (f["status"], f["rows_written"], f["rows_rejected"]) == ("loaded", 1, 1)
    assert f["columns_added"] == ["extra"] and f["schema_version"] == 2
    assert types_of(into) == {"id": "integer", "amount": "integer", "extra": "string"}
    assert query(db, "SELECT id, amount, extra FROM t ORDER BY id") == [
        (1, 5, None), (2, 6, None), (4, 8, None)]
    status = run_cli("status", "--into", into, cwd=tmp_path, env=env)
    assert status.code == 0 and "extra" in status.out, status.out
    history = run_cli("schema", "t", "--history", "--json", "--into", into, cwd=tmp_path,
                      env=env).json()
    assert [v["version"] for v in history["versions"]] == [1, 2]
    # --force loads the file again against the remembered schema: the same rows, no new version
    code, rep = load(tmp_path, env, into, "--force", str(later))
    f = rep["files"][0]
    assert code == 0 and (f["rows_written"], f["rows_rejected"], f["schema_version"]) == (1, 1, 2)
    assert query(db, "SELECT count(*) FROM t") == [(3,)]


def test_infer_none_and_infer_rows(tmp_path: Path, env: dict[str, str]) -> None:
    db = tmp_path / "d.db"
    into = f"sqlite:///{db}"
    data = write(tmp_path / "a.csv", "n,v\n1,\n2,b\nx,c\n")
    code, rep = load(tmp_path, env, into, "--infer", "none", str(data))
    assert code == 0 and rep["files"][0]["rows_rejected"] == 0
    assert query(db, "SELECT n, v, typeof(n) FROM t ORDER BY rowid") == [
        ("1", "", "text"), ("2", "b", "text"), ("x", "c", "text")]
    # a sample smaller than the file: the third row does not fit, a rejected row
    r = run_cli("load", "--infer-rows", "2", str(data), "--table", "u", "--into", into,
                "--json", cwd=tmp_path, env=env)
    f = r.json()["files"][0]
    assert r.code == 0 and (f["status"], f["rows_written"], f["rows_rejected"]) == (
        "loaded", 2, 1)
    assert types_of(into, "u")["n"] == "integer"
    # the setting: infer_rows = 0 is text columns
    r = run_cli("load", str(data), "--table", "w", "--into", into, "--json", cwd=tmp_path,
                env={**env, "TALLYCLERK_INFER_ROWS": "0"})
    assert r.code == 0 and query(db, "SELECT typeof(n) FROM w") == [("text",)] * 3


def test_header_only_first_file_is_text_and_says_why(tmp_path: Path, env: dict[str, str]) -> None:
    db = tmp_path / "d.db"
    into = f"sqlite:///{db}"
    code, rep = load(tmp_path, env, into, str(write(tmp_path / "h.csv", "id,amount\n")))
    assert code == 0 and rep["files"][0]["status"] == "loaded"
    current = tallyclerk.table_schema("t", into=into)
    assert current is not None and "no rows to infer types from" in current["reason"]
    assert types_of(into) == {"id": "string", "amount": "string"}


def test_compressed_jsonl_and_validate(tmp_path: Path, env: dict[str, str]) -> None:
    db = tmp_path / "d.db"
    into = f"sqlite:///{db}"
    gz = tmp_path / "a.csv.gz"
    gz.write_bytes(gzip.compress(b"id,amount\n1,1.5\n2,2\n"))
    code, rep = load(tmp_path, env, into, str(gz))
    assert code == 0 and rep["files"][0]["rows_written"] == 2
    assert types_of(into) == {"id": "integer", "amount": "number"}
    lines = [{"k": 1, "v": "2026-01-01", "o": {"a": 1}}, {"k": 2, "v": "2026-01-02", "o": {}}]
    jl = write(tmp_path / "e.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    r = run_cli("load", str(jl), "--table", "e", "--into", into, "--json", cwd=tmp_path, env=env)
    assert r.code == 0, r.err
    assert types_of(into, "e") == {"k": "integer", "v": "date", "o": "object"}
    assert query(db, "SELECT typeof(k), v FROM e ORDER BY k") == [
        ("integer", "2026-01-01"), ("integer", "2026-01-02")]
    # validate without --schema checks as a load would: against the first file's types
    a = write(tmp_path / "v1.csv", "id,amount\n1,2\n")
    b = write(tmp_path / "v2.csv", "id,amount\n2,much\n")
    v = run_cli("validate", str(a), str(b), "--json", cwd=tmp_path, env=env)
    assert v.code == 1, v.err
    assert [(Path(x["path"]).name, x["line"], x["column"]) for x in v.json()["rejects"]] == [
        ("v2.csv", 2, "amount")]
    v = run_cli("validate", str(a), str(b), "--infer", "none", "--json", cwd=tmp_path, env=env)
    assert v.code == 0, v.out
    report = tallyclerk.validate([str(a), str(b)], infer_rows=0)
    assert report.exit_code == 0


def test_api_folder_of_csvs(tmp_path: Path) -> None:
    d = folder(tmp_path)
    into = f"sqlite:///{tmp_path / 'd.db'}"
    report = tallyclerk.load(sorted(str(p) for p in d.iterdir()), table="t", into=into)
    assert [f.rows_rejected for f in report.files] == [0, 2]
    assert query(tmp_path / "d.db", "SELECT SUM(amount) FROM t") == [(19.5,)]
    report = tallyclerk.load(sorted(str(p) for p in d.iterdir()), table="raw", into=into,
                             infer="none")
    assert [f.rows_rejected for f in report.files] == [0, 0]
    assert query(tmp_path / "d.db", "SELECT DISTINCT typeof(amount) FROM raw") == [("text",)]


def test_workers_agree_on_one_inferred_schema(tmp_path: Path, env: dict[str, str]) -> None:
    """Every worker checks against the schema the parent inferred from the first path: the
    other files (integers only, or strings) would infer other types on their own."""
    db = tmp_path / "d.db"
    into = f"sqlite:///{db}"
    paths = [write(tmp_path / "p0.csv", "id,amount\n1,1.5\n")]
    paths += [write(tmp_path / f"p{i}.csv", f"id,amount\n{i + 1},{i}\n") for i in range(1, 6)]
    paths.append(write(tmp_path / "p6.csv", "id,amount\nseven,x\n"))
    code, rep = load(tmp_path, env, into, "--workers", "3", *map(str, paths))
    assert code == 0, rep
    assert rep["rows_written"] == 6 and rep["rows_rejected"] == 1
    history = tallyclerk.table_schema("t", into=into, history=True)
    assert isinstance(history, list) and len(history) == 1
    assert types_of(into) == {"id": "integer", "amount": "number"}
    assert query(db, "SELECT DISTINCT typeof(amount) FROM t") == [("real",)]


@pytest.mark.postgres
def test_postgresql_typed_columns(tmp_path: Path, env: dict[str, str], pg_url: str) -> None:
    import sqlalchemy as sa

    d = folder(tmp_path)
    code, rep = load(tmp_path, env, pg_url, "--workers", "2",
                     *sorted(str(p) for p in d.iterdir()))
    assert code == 0, rep
    assert rep["rows_written"] == 3 and rep["rows_rejected"] == 2
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            kinds = dict(conn.exec_driver_sql(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 't'").all())
            total = conn.exec_driver_sql("SELECT SUM(amount) FROM t").scalar()
    finally:
        engine.dispose()
    assert kinds["id"] == "bigint" and kinds["amount"] == "double precision"
    assert kinds["day"] == "date" and kinds["paid"] == "boolean"
    assert total == 19.5
    history = tallyclerk.table_schema("t", into=pg_url, history=True)
    assert isinstance(history, list) and len(history) == 1


def test_watch_infers_from_the_first_file(tmp_path: Path) -> None:
    """``tallyclerk.watch()``: the first file's sample types the table; a file dropped later is
    checked against the remembered schema (and ``infer: none`` keeps text)."""
    inbox = tmp_path / "inbox"
    write(inbox / "a.csv", "id,amount\n1,2.5\n2,3\n")
    db = tmp_path / "d.db"
    tallyclerk.watch(str(inbox), "t", into=f"sqlite:///{db}", settle=0, max_cycles=1)
    write(inbox / "b.csv", "id,amount\n3,x\n4,1\n")
    tallyclerk.watch(str(inbox), "t", into=f"sqlite:///{db}", settle=0, max_cycles=1)
    assert query(db, "SELECT id, typeof(amount) FROM t ORDER BY id") == [
        (1, "real"), (2, "real"), (4, "real")]
    assert query(db, "SELECT line, column_name, rule FROM tallyclerk_rejects") == [
        (2, "amount", "type")]
    tallyclerk.watch(str(inbox), "raw", into=f"sqlite:///{db}", settle=0, max_cycles=1,
                     options={"infer": "none"})
    assert query(db, "SELECT DISTINCT typeof(id) FROM raw") == [("text",)]
