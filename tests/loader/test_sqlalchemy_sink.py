"""The generic SQLAlchemy sink: typed tables from the schema, quoted identifiers, one
transaction per file with the manifest, on SQLite (fast path blocked) and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pluggy
import pytest
import sqlalchemy as sa

from tallyclerk.plugins import get_plugin_manager
from tests.loader.conftest import load

TYPED = {
    "fields": [
        {"name": "id", "type": "integer", "constraints": {"required": True}},
        {"name": "when", "type": "date"},
        {"name": "at", "type": "datetime"},
        {"name": "ok", "type": "boolean"},
        {"name": "x y\"; --", "type": "number"},
    ]
}
CSV = (
    'id,when,at,ok,"x y""; --"\n'
    "1,2026-01-02,2026-01-02T03:04:05Z,true,1.5\n"
    "2,not-a-date,2026-01-02T03:04:05Z,false,2\n"
    "3,2026-12-31,2026-12-31T23:59:59Z,false,\n"
)


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "typed.csv"
    data.write_text(CSV, encoding="utf-8")
    schema = tmp_path / "typed.json"
    schema.write_text(json.dumps(TYPED), encoding="utf-8")
    return data, schema


def generic_pm() -> pluggy.PluginManager:
    return get_plugin_manager(["no:tallyclerk.builtins.sqlite_sink"])


def check_target(url: str, table: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            t = sa.Table(table, sa.MetaData(), autoload_with=conn)
            rows = conn.execute(sa.select(t).order_by(t.c.id)).all()
    finally:
        engine.dispose()
    assert [r[0] for r in rows] == [1, 3]
    assert rows[0][1] == dt.date(2026, 1, 2)
    assert rows[0][3] is True and rows[1][3] is False
    assert rows[0][4] == 1.5 and rows[1][4] is None
    assert isinstance(rows[0][5], int)  # _tc_file_id


def test_generic_sink_on_sqlite(files: tuple[Path, Path], tmp_path: Path) -> None:
    data, schema = files
    db = tmp_path / "g.db"
    pm = generic_pm()
    report = load(pm, [data], db, table="Typed Table", schema=str(schema))
    assert report["files"][0]["status"] == "loaded", report
    assert (report["rows_written"], report["rows_rejected"]) == (2, 1)
    check_target(f"sqlite:///{db}", "Typed Table")
    again = load(pm, [data], db, table="Typed Table", schema=str(schema))
    assert again["files"][0]["status"] == "skipped"


@pytest.mark.postgres
def test_generic_sink_on_postgresql(files: tuple[Path, Path], pg_url: str, tmp_path: Path) -> None:
    data, schema = files
    pm = get_plugin_manager()
    report = load(pm, [data], tmp_path / "unused.db", into=pg_url, table="Typed Table",
                  schema=str(schema))
    assert report["files"][0]["status"] == "loaded", report
    check_target(pg_url, "Typed Table")
    forced = load(pm, [data], tmp_path / "unused.db", into=pg_url, table="Typed Table",
                  schema=str(schema), force=True)
    assert forced["files"][0]["status"] == "loaded"
    check_target(pg_url, "Typed Table")  # replaced, not doubled
