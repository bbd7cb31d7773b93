"""Fixtures for the loader tests: sample files, a fresh plugin manager, a temporary plugin."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest

SCHEMA = {
    "fields": [
        {"name": "id", "type": "integer", "constraints": {"required": True}},
        {"name": "name", "type": "string"},
        {"name": "amount", "type": "number", "constraints": {"minimum": 0}},
    ]
}


def write_csv(path: Path, rows: list[tuple[Any, ...]], header: str = "id,name,amount") -> Path:
    lines = [header] + [",".join("" if v is None else str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def schema_file(tmp_path: Path) -> Path:
    p = tmp_path / "schema.json"
    p.write_text(json.dumps(SCHEMA), encoding="utf-8")
    return p


@pytest.fixture()
def good_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "good.csv", [(i, f"n{i}", i * 1.5) for i in range(1, 11)])


@pytest.fixture()
def bad_csv(tmp_path: Path) -> Path:
    """10 records; record 3 has a bad number, record 7 a negative amount."""
    rows: list[tuple[Any, ...]] = [(i, f"n{i}", i * 1.5) for i in range(1, 11)]
    rows[2] = (3, "n3", "oops")
    rows[6] = (7, "n7", -1)
    return write_csv(tmp_path / "bad.csv", rows)


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return tmp_path / "target.db"


@pytest.fixture()
def pm() -> pluggy.PluginManager:
    from tallyclerk.plugins import get_plugin_manager

    return get_plugin_manager()


@contextlib.contextmanager
def registered(pm: pluggy.PluginManager, plugin: object) -> Iterator[object]:
    """Register a temporary plugin; always unregistered (datasette's testing pattern)."""
    pm.register(plugin)
    try:
        yield plugin
    finally:
        pm.unregister(plugin)


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def count_rows(db: Path, table: str) -> int:
    """Rows in ``table``; 0 when a rolled-back first load left no table at all."""
    exists = query(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                   (table,))
    if exists == [(0,)]:
        return 0
    return int(query(db, f'SELECT count(*) FROM "{table}"')[0][0])


def load(pm: pluggy.PluginManager, paths: list[Path | str], db: Path, **kw: Any) -> dict[str, Any]:
    """Run a real load in-process (the CLI's own code path) and return the report."""
    from tallyclerk.api import make_request, run

    options = dict(kw.pop("options", None) or {})
    req = make_request(
        [str(p) for p in paths],
        table=kw.pop("table", "t"),
        into=kw.pop("into", f"sqlite:///{db}"),
        format=options.pop("format", None),
        settings=kw.pop("overrides", None),
        options=options,
        **kw,
    )
    return run(req, pm).to_dict()
