"""The SQLAlchemy-free statements of ``sqlgen_lite`` are ``sqlgen``'s, function by function,
for SQLite and DuckDB; target table names are quoted as SQLAlchemy quotes them."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tallyclerk.audit import compiled, sqlgen, sqlgen_lite, statements
from tallyclerk.errors import ConfigError

FIXED = sorted(statements.SQLGEN)


@pytest.mark.parametrize("dialect", ["sqlite", "duckdb"])
@pytest.mark.parametrize("name", FIXED)
def test_each_fixed_statement_is_sqlgens(name: str, dialect: str) -> None:
    lite = getattr(sqlgen_lite, f"{name}_sql")(dialect)
    assert lite == getattr(sqlgen, f"{name}_sql")(dialect)
    assert isinstance(lite, compiled.CompiledSql)


def test_every_sqlgen_statement_is_served() -> None:
    served = {n for n in sqlgen_lite.__all__ if n.endswith("_sql")}
    assert served == {n for n in sqlgen.__all__ if n.endswith("_sql")} | {
        "abandon_staged_sql", "retarget_sql", "retire_loaded_sql"}
    assert served == {f"{n}_sql" for n in FIXED} | {"delete_rows_sql"}


@given(st.text(min_size=1, max_size=40))
def test_delete_rows_quotes_any_table_name_as_sqlalchemy(name: str) -> None:
    try:
        expected = sqlgen.delete_rows_sql("sqlite", name)
    except ConfigError:
        with pytest.raises(ConfigError):
            sqlgen_lite.delete_rows_sql("sqlite", name)
        return
    assert sqlgen_lite.delete_rows_sql("sqlite", name) == expected
    assert sqlgen_lite.delete_rows_sql("duckdb", name) == sqlgen.delete_rows_sql("duckdb", name)


@pytest.mark.parametrize("name", ['a"b', "select", "Mixed Case", "__tc_target_table__", "x;y"])
def test_delete_rows_of_awkward_names(name: str) -> None:
    assert sqlgen_lite.delete_rows_sql("sqlite", name) == sqlgen.delete_rows_sql("sqlite", name)


def test_other_dialects_are_refused() -> None:
    with pytest.raises(ConfigError, match="postgresql"):
        sqlgen_lite.supersede_sql("postgresql")


def test_sqlgen_lite_imports_no_sqlalchemy() -> None:
    code = ("import sys, tallyclerk.audit.sqlgen_lite as s; s.delete_rows_sql('sqlite', 't'); "
            "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
