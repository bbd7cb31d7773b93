"""The SQLAlchemy-free statements of ``sqlgen_lite`` are the Core builders' (``sqlgen_core``),
function by function, for SQLite and DuckDB; target table names are quoted as SQLAlchemy quotes
them. ``sqlgen`` serves SQLite and DuckDB from ``sqlgen_lite`` and PostgreSQL from
``sqlgen_core``."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tallyclerk.audit import compiled, sqlgen, sqlgen_lite, statements
from tallyclerk.audit import sqlgen_core as core
from tallyclerk.errors import ConfigError

FIXED = sorted(statements.SQLGEN)


@pytest.mark.parametrize("dialect", ["sqlite", "duckdb"])
@pytest.mark.parametrize("name", FIXED)
def test_each_fixed_statement_is_sqlgens(name: str, dialect: str) -> None:
    lite = getattr(sqlgen_lite, f"{name}_sql")(dialect)
    assert lite == getattr(core, f"{name}_sql")(dialect)
    assert isinstance(lite, compiled.CompiledSql)


def test_every_sqlgen_statement_is_served() -> None:
    served = {n for n in sqlgen_lite.__all__ if n.endswith("_sql")}
    assert served == {n for n in core.__all__ if n.endswith("_sql")} | {
        "abandon_staged_sql", "retarget_sql", "retire_loaded_sql"}
    assert served == {f"{n}_sql" for n in FIXED} | {"delete_rows_sql"}


@given(st.text(min_size=1, max_size=40))
def test_delete_rows_quotes_any_table_name_as_sqlalchemy(name: str) -> None:
    try:
        expected = core.delete_rows_sql("sqlite", name)
    except ConfigError:
        with pytest.raises(ConfigError):
            sqlgen_lite.delete_rows_sql("sqlite", name)
        return
    assert sqlgen_lite.delete_rows_sql("sqlite", name) == expected
    assert sqlgen_lite.delete_rows_sql("duckdb", name) == core.delete_rows_sql("duckdb", name)


@pytest.mark.parametrize("name", ['a"b', "select", "Mixed Case", "__tc_target_table__", "x;y"])
def test_delete_rows_of_awkward_names(name: str) -> None:
    assert sqlgen_lite.delete_rows_sql("sqlite", name) == core.delete_rows_sql("sqlite", name)


def test_other_dialects_are_refused() -> None:
    with pytest.raises(ConfigError, match="postgresql"):
        sqlgen_lite.supersede_sql("postgresql")


def test_sqlgen_lite_imports_no_sqlalchemy() -> None:
    code = ("import sys, tallyclerk.audit.sqlgen_lite as s; s.delete_rows_sql('sqlite', 't'); "
            "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("dialect", ["sqlite", "duckdb", "postgresql"])
@pytest.mark.parametrize("name", FIXED)
def test_sqlgen_serves_each_dialect_its_statement(name: str, dialect: str) -> None:
    served = getattr(sqlgen, f"{name}_sql")(dialect)
    assert served == getattr(core, f"{name}_sql")(dialect)
    if dialect != "postgresql":
        assert served is getattr(sqlgen_lite, f"{name}_sql")(dialect)  # the catalogue's


def test_sqlgen_delete_rows_per_dialect() -> None:
    assert sqlgen.delete_rows_sql("postgresql", 'a"b') == core.delete_rows_sql("postgresql", 'a"b')
    assert sqlgen.delete_rows_sql("postgresql", "t").sql.endswith("= %s")  # psycopg's style
    assert sqlgen.delete_rows_sql("duckdb", 'a"b') == sqlgen_lite.delete_rows_sql("duckdb", 'a"b')


def test_sqlgen_refuses_unknown_dialects() -> None:
    with pytest.raises(ConfigError, match="mysql"):
        sqlgen.supersede_sql("mysql")


def test_sqlgen_on_sqlite_imports_no_sqlalchemy() -> None:
    code = ("import sys, tallyclerk.audit.sqlgen as s\n"
            "for d in ('sqlite', 'duckdb'):\n"
            "    s.delete_rows_sql(d, 't'); s.fenced_commit_sql(d); s.insert_events_sql(d)\n"
            "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
