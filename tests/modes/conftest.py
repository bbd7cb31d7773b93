"""Fixtures of the write-mode suite: a target per database, the daily-snapshot files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.modes.targets import (
    CUSTOMERS_SCHEMA,
    Target,
    duckdb_target,
    postgres_target,
    sqlalchemy_sqlite_target,
    sqlite_target,
)

TARGETS = ["sqlite", "sqlite-separate", "sqlite-generic", "postgres", "duckdb"]


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    name = request.param
    if name == "sqlite":
        return sqlite_target(tmp_path)
    if name == "sqlite-separate":
        return sqlite_target(tmp_path, separate_audit=True)
    if name == "sqlite-generic":
        return sqlalchemy_sqlite_target(tmp_path)
    if name == "postgres":
        request.applymarker(pytest.mark.postgres)
        return postgres_target(request.getfixturevalue("pg_url"))
    if name == "duckdb":
        return duckdb_target(tmp_path)
    raise AssertionError(name)


@pytest.fixture()
def snapshots(tmp_path: Path) -> Path:
    """``schema.json`` and two daily customer snapshots in ``tmp_path``."""
    (tmp_path / "schema.json").write_text(json.dumps(CUSTOMERS_SCHEMA), encoding="utf-8")
    (tmp_path / "day1.csv").write_text(
        "customer_id,name,tier\n1,Ada,gold\n2,Bob,silver\n3,Cy,bronze\n", encoding="utf-8")
    (tmp_path / "day2.csv").write_text(
        "customer_id,name,tier\n2,Bob,gold\n4,Dee,silver\n", encoding="utf-8")
    return tmp_path
