"""The schema contract through the real command on real SQLite files and a real PostgreSQL
server: remembered, versioned schemas; --columns evolve|freeze|discard on drift in a second
file, visible in the report, the manifest and `tallyclerk status`; --schema conflicts (exit 2);
`tallyclerk schema` and `tallyclerk.table_schema()`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tallyclerk
from tests.clirun import SCHEMA, env_for, query, run_cli


@pytest.fixture()
def env() -> dict[str, str]:
    return env_for()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp: Path, env: dict[str, str], into: str, *args: str) -> tuple[int, dict[str, Any]]:
    r = run_cli("load", *args, "--table", "t", "--into", into, "--json", cwd=tmp, env=env)
    assert "Traceback" not in r.err, r.err
    return r.code, (r.json() if r.out.strip() else {})


def target_rows(into: str, sql: str) -> list[tuple[Any, ...]]:
    if into.startswith("sqlite:///"):
        return query(Path(into[len("sqlite:///"):]), sql)
    import sqlalchemy as sa

    engine = sa.create_engine(into)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql)]
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def into(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'd.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def drift_files(tmp: Path) -> tuple[Path, Path]:
    first = write(tmp / "first.csv", "id,name\n1,ann\n2,bob\n")
    second = write(tmp / "second.csv", "id,name,extra\n3,cy,x\n4,di,y\n")
    return first, second


def test_evolve_adds_the_column_as_a_new_schema_version(
    tmp_path: Path, env: dict[str, str], into: str
) -> None:
    first, second = drift_files(tmp_path)
    code, rep = load(tmp_path, env, into, str(first))
    assert code == 0 and rep["files"][0]["schema_version"] == 1
    code, rep = load(tmp_path, env, into, str(second))  # evolve is the default
    assert code == 0, rep
    f = rep["files"][0]
    assert (f["status"], f["schema_version"], f["columns_added"]) == ("loaded", 2, ["extra"])
    # id was inferred an integer from the first file; the added column is text
    assert target_rows(into, 'SELECT id, name, extra FROM t ORDER BY id') == [
        (1, "ann", None), (2, "bob", None), (3, "cy", "x"), (4, "di", "y")]
    manifest = target_rows(
        into, "SELECT path, schema_version, column_changes FROM tallyclerk_files ORDER BY id")
    assert [(Path(p).name, v, c and json.loads(c)) for p, v, c in manifest] == [
        ("first.csv", 1, None), ("second.csv", 2, {"added": ["extra"]})]
    status = run_cli("status", "--into", into, cwd=tmp_path, env=env)
    assert status.code == 0 and "v2" in status.out and "added extra" in status.out, status.out
    hist = run_cli("schema", "t", "--history", "--json", "--into", into, cwd=tmp_path, env=env)
    versions = hist.json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert [f["name"] for f in versions[1]["schema"]["fields"]] == ["id", "name", "extra"]
    assert "second.csv adds column(s) 'extra'" in versions[1]["reason"]
    assert versions[0]["fingerprint"] != versions[1]["fingerprint"]
    # the Python API reads the same store
    assert tallyclerk.table_schema("t", into=into) == versions[1]
    assert tallyclerk.table_schema("t", into=into, history=True) == versions


def test_freeze_fails_the_drifting_file_naming_the_columns(
    tmp_path: Path, env: dict[str, str], into: str
) -> None:
    first, second = drift_files(tmp_path)
    assert load(tmp_path, env, into, str(first))[0] == 0
    code, rep = load(tmp_path, env, into, "--columns", "freeze", str(second), str(first))
    assert code == 1
    bad, again = rep["files"]
    assert bad["status"] == "failed" and "'extra'" in bad["error"] and "freeze" in bad["error"]
    assert again["status"] == "skipped"
    assert target_rows(into, "SELECT count(*) FROM t") == [(2,)]
    assert tallyclerk.table_schema("t", into=into)["version"] == 1  # type: ignore[index]
    status = run_cli("status", "--into", into, cwd=tmp_path, env=env)
    assert "freeze" in status.out


def test_discard_loads_the_rest_and_records_the_dropped_columns(
    tmp_path: Path, env: dict[str, str], into: str
) -> None:
    first, second = drift_files(tmp_path)
    assert load(tmp_path, env, into, str(first))[0] == 0
    code, rep = load(tmp_path, env, into, "--columns", "discard", str(second))
    assert code == 0
    f = rep["files"][0]
    assert (f["rows_written"], f["columns_dropped"], f["schema_version"]) == (2, ["extra"], 1)
    assert target_rows(into, "SELECT id, name FROM t ORDER BY id")[2:] == [(3, "cy"),
                                                                        (4, "di")]
    changes = target_rows(into, "SELECT column_changes FROM tallyclerk_files ORDER BY id")
    assert json.loads(changes[-1][0]) == {"dropped": ["extra"]}
    status = run_cli("status", "--into", into, cwd=tmp_path, env=env)
    assert "dropped extra" in status.out, status.out


def test_a_missing_field_is_null_and_noted_a_missing_required_one_fails(
    tmp_path: Path, env: dict[str, str]
) -> None:
    into = f"sqlite:///{tmp_path / 'd.db'}"
    schema = write(tmp_path / "s.json", json.dumps(SCHEMA))
    no_amount = write(tmp_path / "a.csv", "id,name\n1,ann\n")
    no_id = write(tmp_path / "b.csv", "name,amount\nbob,2\n")
    code, rep = load(tmp_path, env, into, "--schema", str(schema), str(no_amount), str(no_id))
    assert code == 1
    ok, bad = rep["files"]
    assert ok["status"] == "loaded" and ok["columns_missing"] == ["amount"]
    assert bad["status"] == "failed" and "required field(s) 'id'" in bad["error"]
    assert query(tmp_path / "d.db", "SELECT id, name, amount FROM t") == [(1, "ann", None)]


def test_a_column_the_schema_lacks_is_never_dropped_silently(
    tmp_path: Path, env: dict[str, str]
) -> None:
    into = f"sqlite:///{tmp_path / 'd.db'}"
    schema = write(tmp_path / "s.json", json.dumps(SCHEMA))
    data = write(tmp_path / "a.csv", "id,name,amount,extra\n1,ann,2,e\n")
    code, rep = load(tmp_path, env, into, "--schema", str(schema), str(data))
    assert code == 0 and rep["files"][0]["columns_added"] == ["extra"]
    assert query(tmp_path / "d.db", "SELECT id, extra FROM t") == [(1, "e")]
    # the same --schema again is compatible with the stored (wider) one
    more = write(tmp_path / "b.csv", "id,name,amount\n2,bob,3\n")
    code, rep = load(tmp_path, env, into, "--schema", str(schema), str(more))
    assert code == 0 and rep["files"][0]["schema_version"] == 1, rep


def test_a_conflicting_schema_is_refused_before_loading_with_the_diff(
    tmp_path: Path, env: dict[str, str]
) -> None:
    into = f"sqlite:///{tmp_path / 'd.db'}"
    schema = write(tmp_path / "s.json", json.dumps(SCHEMA))
    assert load(tmp_path, env, into, "--schema", str(schema),
                str(write(tmp_path / "a.csv", "id,name,amount\n1,a,1\n")))[0] == 0
    changed = json.loads(json.dumps(SCHEMA))
    changed["fields"][2]["type"] = "integer"
    other = write(tmp_path / "s2.json", json.dumps(changed))
    data = write(tmp_path / "b.csv", "id,name,amount\n2,b,2\n")
    r = run_cli("load", str(data), "--table", "t", "--into", into, "--schema", str(other),
                cwd=tmp_path, env=env)
    assert r.code == 2 and r.out == ""
    assert "field 'amount': type \"number\" -> \"integer\"" in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert query(tmp_path / "d.db", "SELECT count(*) FROM tallyclerk_files") == [(1,)]
    # a schema that only adds a nullable field evolves the table under evolve ...
    wider = json.loads(json.dumps(SCHEMA))
    wider["fields"].append({"name": "note", "type": "string"})
    wide = write(tmp_path / "s3.json", json.dumps(wider))
    r = run_cli("load", str(data), "--table", "t", "--into", into, "--schema", str(wide),
                "--columns", "freeze", cwd=tmp_path, env=env)
    assert r.code == 2 and "'note' (allowed with --columns evolve)" in r.err
    code, rep = load(tmp_path, env, into, "--schema", str(wide), str(data))
    assert code == 0 and rep["files"][0]["schema_version"] == 2
    assert query(tmp_path / "d.db", "SELECT id, note FROM t ORDER BY id") == [(1, None),
                                                                              (2, None)]
    # ... and a later load without --schema validates against the stored one
    bad = write(tmp_path / "c.csv", "id,name,amount\nx,c,-1\n")
    code, rep = load(tmp_path, env, into, str(bad))
    assert code == 0 and rep["files"][0]["rows_rejected"] == 1
    assert rep["files"][0]["schema_version"] == 2


def test_a_schema_spelling_out_the_spec_defaults_is_the_same_schema(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # a field without "type" is a string field (Table Schema's default), "primaryKey": "id"
    # is ["id"], "missingValues": [""] the default: writing a default out is no conflict
    into = f"sqlite:///{tmp_path / 'd.db'}"
    terse = write(tmp_path / "terse.json", json.dumps(
        {"fields": [{"name": "id", "type": "integer"}, {"name": "name"}], "primaryKey": "id"}))
    spelled = write(tmp_path / "spelled.json", json.dumps(
        {"fields": [{"name": "id", "type": "integer", "constraints": {}},
                    {"name": "name", "type": "string", "format": "default"}],
         "primaryKey": ["id"], "missingValues": [""]}))
    first = write(tmp_path / "a.csv", "id,name\n1,ann\n")
    second = write(tmp_path / "b.csv", "id,name\n2,bob\n")
    code, rep = load(tmp_path, env, into, "--schema", str(terse), str(first))
    assert code == 0, rep
    code, rep = load(tmp_path, env, into, "--schema", str(spelled), str(second))
    assert code == 0 and rep["files"][0]["status"] == "loaded", rep
    assert rep["files"][0]["schema_version"] == 1
    # a real difference is still a conflict
    typed = write(tmp_path / "typed.json", json.dumps(
        {"fields": [{"name": "id", "type": "integer"}, {"name": "name", "type": "date"}]}))
    r = run_cli("load", str(second), "--table", "t", "--into", into, "--schema", str(typed),
                cwd=tmp_path, env=env)
    assert r.code == 2 and "field 'name': type \"string\" -> \"date\"" in r.err, r.err
    assert "primaryKey" in r.err


def test_a_column_differing_only_in_letter_case_is_never_added(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # SQLite takes "A" and "a" for one column: the evolve used to record 'A' as added while
    # the value went nowhere (a NULL in 'a', the file "loaded")
    into = f"sqlite:///{tmp_path / 'd.db'}"
    assert load(tmp_path, env, into, str(write(tmp_path / "one.csv", "id,a\n1,x\n")))[0] == 0
    for name, text in (("two.csv", "id,A\n2,y\n"), ("three.jsonl", '{"id": 3, "A": "z"}\n')):
        code, rep = load(tmp_path, env, into, str(write(tmp_path / name, text)))
        assert code == 1, rep
        (f,) = rep["files"]
        assert f["status"] == "failed" and "only in letter case" in f["error"], f
    assert query(tmp_path / "d.db", "SELECT id, a FROM t ORDER BY id") == [(1, "x")]
    hist = run_cli("schema", "t", "--history", "--json", "--into", into, cwd=tmp_path, env=env)
    assert len(hist.json()["versions"]) == 1  # no version naming 'A'
    code, rep = load(tmp_path, env, into, "--columns", "discard", str(tmp_path / "two.csv"))
    assert code == 0 and rep["files"][0]["columns_dropped"] == ["A"]
    twin = write(tmp_path / "twin.json", json.dumps(
        {"fields": [{"name": "id", "type": "integer"}, {"name": "a"}, {"name": "A"}]}))
    r = run_cli("load", str(tmp_path / "one.csv"), "--table", "t", "--into", into,
                "--schema", str(twin), cwd=tmp_path, env=env)
    assert r.code == 2 and "new field 'A' differs from the field 'a'" in r.err, r.err


def test_schema_command_without_a_schema_and_the_api_without_a_store(
    tmp_path: Path, env: dict[str, str]
) -> None:
    into = f"sqlite:///{tmp_path / 'd.db'}"
    assert tallyclerk.table_schema("t", into=into) is None
    assert tallyclerk.table_schema("t", into=into, history=True) == []
    assert not (tmp_path / "d.db").exists()  # reading does not create a database
    assert load(tmp_path, env, into, str(write(tmp_path / "a.csv", "id\n1\n")))[0] == 0
    r = run_cli("schema", "nope", "--into", into, cwd=tmp_path, env=env)
    assert r.code == 2 and "no schema for table 'nope'" in r.err
    r = run_cli("schema", "t", "--into", into, cwd=tmp_path, env=env)
    assert r.code == 0 and "schema version 1" in r.out
    assert "inferred from a sample of 1 row of" in r.out and "integer" in r.out
    r = run_cli("load", str(write(tmp_path / "b.csv", "id\n1\n")), "--table", "u",
                "--into", into, "--infer", "none", cwd=tmp_path, env=env)
    assert r.code == 0, r.err
    r = run_cli("schema", "u", "--into", into, cwd=tmp_path, env=env)
    assert r.code == 0 and "text columns of" in r.out and "integer" not in r.out


def test_columns_setting_and_bad_value(tmp_path: Path, env: dict[str, str]) -> None:
    into = f"sqlite:///{tmp_path / 'd.db'}"
    first, second = drift_files(tmp_path)
    assert load(tmp_path, env, into, str(first))[0] == 0
    r = run_cli("load", str(second), "--table", "t", "--into", into, "--json", cwd=tmp_path,
                env={**env, "TALLYCLERK_COLUMNS": "freeze"})
    assert r.code == 1 and "freeze" in r.json()["files"][0]["error"]
    r = run_cli("load", str(second), "--table", "t", "--into", into, cwd=tmp_path,
                env={**env, "TALLYCLERK_COLUMNS": "sometimes"})
    assert r.code == 2 and "TALLYCLERK_COLUMNS" in r.err


def test_python_api_columns_keyword_and_report(tmp_path: Path, into: str) -> None:
    first, second = drift_files(tmp_path)
    report = tallyclerk.load(first, table="t", into=into)
    assert report.ok and report.files[0].schema_version == 1
    frozen = tallyclerk.load(second, table="t", into=into, columns="freeze")
    assert frozen.exit_status == 1 and "'extra'" in (frozen.files[0].error or "")
    kept = tallyclerk.load(second, table="t", into=into, columns="discard")
    f = kept.files[0]
    assert kept.ok and f.columns_dropped == ("extra",) and f.schema_version == 1
    assert f.to_dict()["columns_dropped"] == ["extra"]
    assert "dropped extra" in str(kept)
    with pytest.raises(tallyclerk.ConfigError, match="--columns must be one of"):
        tallyclerk.load(second, table="t", into=into, columns="sometimes")
    current = tallyclerk.table_schema("t", into=into)
    assert current is not None and current["version"] == 1


def test_validate_checks_against_the_remembered_schema(
    tmp_path: Path, env: dict[str, str]
) -> None:
    into = f"sqlite:///{tmp_path / 'd.db'}"
    schema = write(tmp_path / "s.json", json.dumps(SCHEMA))
    assert load(tmp_path, env, into, "--schema", str(schema),
                str(write(tmp_path / "a.csv", "id,name,amount\n1,a,1\n")))[0] == 0
    before = (tmp_path / "d.db").read_bytes()
    bad = write(tmp_path / "b.csv", "id,name,amount\nx,b,-1\n2,c,3\n")
    r = run_cli("validate", str(bad), "--table", "t", "--into", into, "--json",
                cwd=tmp_path, env=env)
    assert r.code == 1, r.out + r.err  # no --schema: checked as a load would, against v1
    assert r.json()["files"][0]["rows_rejected"] == 1
    assert (tmp_path / "d.db").read_bytes() == before


def test_sensitive_fields_of_the_remembered_schema_stay_masked(
    tmp_path: Path, env: dict[str, str]
) -> None:
    into = f"sqlite:///{tmp_path / 'd.db'}"
    doc = {"fields": [{"name": "id", "type": "integer"},
                      {"name": "card", "type": "string", "sensitive": True,
                       "constraints": {"pattern": "[0-9]{4}"}}]}
    schema = write(tmp_path / "s.json", json.dumps(doc))
    assert load(tmp_path, env, into, "--schema", str(schema),
                str(write(tmp_path / "a.csv", "id,card\n1,1234\n")))[0] == 0
    # no --schema: the table's remembered schema, "sensitive" included, checks the file
    code, rep = load(tmp_path, env, into, str(write(tmp_path / "b.csv", "id,card\n2,98x7\n")))
    assert code == 0 and rep["files"][0]["rows_rejected"] == 1
    raw, reason = query(tmp_path / "d.db", "SELECT raw, reason FROM tallyclerk_rejects")[0]
    assert "98x7" not in raw and "98x7" not in reason


def test_watch_takes_the_columns_contract(tmp_path: Path, env: dict[str, str]) -> None:
    into = f"sqlite:///{tmp_path / 'd.db'}"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    first, second = drift_files(inbox)
    assert load(tmp_path, env, into, str(first))[0] == 0
    r = run_cli("watch", str(inbox), "--table", "t", "--into", into, "--once", "--settle", "0",
                "--columns", "discard", "--json", cwd=tmp_path, env=env)
    assert r.code == 0, r.out + r.err
    changes = query(tmp_path / "d.db",
                    "SELECT column_changes FROM tallyclerk_files WHERE path LIKE '%second.csv'")
    assert [json.loads(c) for (c,) in changes] == [{"dropped": ["extra"]}]


def test_infer_types_a_new_table_and_later_misfits_are_rejected_rows(
    tmp_path: Path, env: dict[str, str], into: str
) -> None:
    first = write(tmp_path / "a.csv", "id,amount,day,name\n1,2.5,2026-01-02,ann\n2,3,2026-01-03,\n")
    code, rep = load(tmp_path, env, into, "--infer", "auto", str(first))
    assert code == 0, rep
    current = tallyclerk.table_schema("t", into=into)
    assert current is not None and "inferred from a sample of 2 rows" in current["reason"]
    types = {f["name"]: f["type"] for f in current["schema"]["fields"]}
    assert types == {"id": "integer", "amount": "number", "day": "date", "name": "string"}
    assert all("required" not in (f.get("constraints") or {})
               for f in current["schema"]["fields"])
    later = write(tmp_path / "b.csv", "id,amount,day,name\nx,1,2026-01-04,bo\n3,,,\n")
    code, rep = load(tmp_path, env, into, str(later))
    f = rep["files"][0]
    assert code == 0 and (f["rows_written"], f["rows_rejected"]) == (1, 1)
    assert target_rows(into, "SELECT id, amount FROM t ORDER BY id") == [(1, 2.5), (2, 3.0),
                                                                        (3, None)]
    rejects = run_cli("rejects", "--into", into, "--json", cwd=tmp_path, env=env).json()
    assert [(r["column"], r["rule"]) for r in rejects["rejects"]] == [("id", "type")]


def test_infer_rows_through_the_api_and_infer_none(tmp_path: Path) -> None:
    into = f"sqlite:///{tmp_path / 'd.db'}"
    data = write(tmp_path / "a.csv", "n\n1\n2\nx\n")
    report = tallyclerk.load(data, table="t", into=into, infer_rows=2)  # the sample: 1, 2
    assert report.files[0].rows_rejected == 1  # "x" does not fit the inferred integer
    schema = tallyclerk.table_schema("t", into=into)
    assert schema is not None and schema["schema"]["fields"][0]["type"] == "integer"
    report = tallyclerk.load(data, table="u", into=into, infer="none")
    assert report.files[0].rows_rejected == 0
    assert query(tmp_path / "d.db", "SELECT n FROM u") == [("1",), ("2",), ("x",)]
    with pytest.raises(tallyclerk.ConfigError, match="--infer must be auto or none"):
        tallyclerk.load(data, table="v", into=into, infer="always")
