"""``tallyclerk.replay()`` in the Python API: JSONL rejects, parse failures, filters."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import tallyclerk

SCHEMA = {"fields": [{"name": "id", "type": "integer"},
                     {"name": "v", "type": "integer", "constraints": {"minimum": 0}}]}
LOOSE = {"fields": [{"name": "id", "type": "integer"}, {"name": "v", "type": "integer"}]}


def _ids(db: Path) -> list[int]:
    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute("SELECT id FROM t ORDER BY id")]
    finally:
        con.close()


def test_jsonl_rejects_replay_through_the_api(tmp_path: Path) -> None:
    src = tmp_path / "d.jsonl"
    src.write_text('{"id": 1, "v": 1}\n{"id": 2, "v": -2}\n{"id": 3, "v": -3}\n{"id": 4,\n',
                   encoding="utf-8")
    into = f"sqlite:///{tmp_path / 't.db'}"
    load = tallyclerk.load(src, table="t", into=into, schema=SCHEMA)
    assert load.files[0].rows_rejected == 3
    other = tallyclerk.replay(batch="not-this-one", into=into, schema=LOOSE)
    assert other.records == [] and other.exit_code == 0
    report = tallyclerk.replay(file=str(src), into=into, schema=LOOSE)
    assert isinstance(report, tallyclerk.ReplayReport)
    data = report.as_dict()
    assert (data["records_loaded"], data["records_rejected"], data["records_masked"]) == (2, 1, 0)
    (still,) = [r for r in report.records if r["outcome"] == "rejected"]
    assert still["line"] == 4 and still["rule"] == "json"  # a broken line stays broken
    assert _ids(tmp_path / "t.db") == [1, 2, 3]
    assert tallyclerk.replay(file=str(src), into=into, schema=LOOSE).records == []
    assert _ids(tmp_path / "t.db") == [1, 2, 3]
    json.dumps(data)  # the CLI's --json


def test_a_bad_table_name_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(tallyclerk.ConfigError):
        tallyclerk.replay(table="bad name;", into=f"sqlite:///{tmp_path / 't.db'}")
    with pytest.raises(tallyclerk.ConfigError, match="no tallyclerk database"):
        tallyclerk.replay(into=f"sqlite:///{tmp_path / 'missing.db'}")


def test_tsv_rejects_replay_with_their_own_format(tmp_path: Path) -> None:
    src = tmp_path / "d.tsv"
    src.write_text("id\tv\n1\t1\n2\t-2\n", encoding="utf-8")
    into = f"sqlite:///{tmp_path / 't.db'}"
    assert tallyclerk.load(src, table="t", into=into, schema=SCHEMA).files[0].rows_rejected == 1
    report = tallyclerk.replay(table="t", into=into, schema=LOOSE)
    assert report.as_dict()["records_loaded"] == 1, report.records
    assert _ids(tmp_path / "t.db") == [1, 2]


def test_replay_into_postgresql_loads_each_row_once(tmp_path: Path, pg_url: str) -> None:
    import sqlalchemy as sa

    src = tmp_path / "d.csv"
    src.write_text("id,v\n1,1\n2,-2\n3,x\n", encoding="utf-8")
    assert tallyclerk.load(src, table="t", into=pg_url, schema=SCHEMA).files[0].rows_rejected == 2
    first = tallyclerk.replay(table="t", into=pg_url, schema=LOOSE).as_dict()
    assert (first["records_loaded"], first["records_rejected"]) == (1, 1)
    assert tallyclerk.replay(table="t", into=pg_url, schema=LOOSE).as_dict()["records_loaded"] == 0
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM t ORDER BY id")]
            marked = conn.exec_driver_sql(
                "SELECT replay_outcome FROM tallyclerk_rejects WHERE file_id = 1 ORDER BY id"
            ).scalars().all()
    finally:
        engine.dispose()
    assert ids == [1, 2]
    assert marked == ["loaded", "rejected"]


def test_a_fixed_schema_becomes_the_tables_next_version_and_a_type_change_is_refused(
    tmp_path: Path,
) -> None:
    src = tmp_path / "d.csv"
    src.write_text("id,v\n1,1\n2,-2\n", encoding="utf-8")
    into = f"sqlite:///{tmp_path / 't.db'}"
    assert tallyclerk.load(src, table="t", into=into, schema=SCHEMA).files[0].rows_rejected == 1
    retyped = {"fields": [{"name": "id", "type": "integer"}, {"name": "v", "type": "string"}]}
    with pytest.raises(tallyclerk.ConfigError, match="type"):
        tallyclerk.replay(table="t", into=into, schema=retyped)
    assert _ids(tmp_path / "t.db") == [1]
    assert tallyclerk.replay(table="t", into=into, schema=LOOSE).as_dict()["records_loaded"] == 1
    history = tallyclerk.table_schema("t", into=into, history=True)
    assert [h["version"] for h in history] == [1, 2]
    assert "revised" in history[-1]["reason"]
    assert history[-1]["schema"]["fields"][1].get("constraints") in (None, {})
    # a later load checks against the fix: -5 is no longer below a minimum
    later = tmp_path / "e.csv"
    later.write_text("id,v\n5,-5\n", encoding="utf-8")
    assert tallyclerk.load(later, table="t", into=into).files[0].rows_rejected == 0
