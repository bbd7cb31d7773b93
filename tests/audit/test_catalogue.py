"""The checked-in statement catalogue of the SQLAlchemy-free SQLite audit path is what SQLAlchemy
compiles from the models today (so ``models.py`` stays the one definition), and it creates the
same schema as ``metadata.create_all``."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Table, create_engine

from tallyclerk.audit import catalogue, models, statements
from tallyclerk.audit.models import metadata

CATALOGUE = Path(catalogue.__file__)


def test_checked_in_catalogue_is_a_fresh_compilation() -> None:
    fresh = statements.render_module()
    assert CATALOGUE.read_text(encoding="utf-8") == fresh, (
        "audit/catalogue.py is stale: regenerate it with "
        "`PYTHONPATH=python python3 -m tallyclerk.audit.statements > "
        "python/tallyclerk/audit/catalogue.py`"
    )


def test_catalogue_values_match_the_compiler() -> None:
    # the module's values, not only its text (a hand edit that keeps the text parseable)
    assert catalogue.STATEMENTS == statements.build_all()
    assert catalogue.DDL == statements.ddl()
    assert catalogue.QUOTED == statements.quoted()
    assert catalogue.DEFAULTS == statements.defaults()
    assert catalogue.VIEWS == statements.views()
    assert catalogue.INDEXES == statements.indexes()
    assert catalogue.SCHEMA_VERSION == models.SCHEMA_VERSION


def test_catalogue_covers_every_table_of_the_models() -> None:
    defined = [v for v in vars(models).values() if isinstance(v, Table)]
    assert set(statements.TABLES) == set(defined)
    # in the order create_all creates them (foreign keys first)
    order = [t for t in metadata.sorted_tables if t in set(defined)]
    assert list(statements.TABLES) == order


def _schema(path: Path) -> set[tuple[str, str, str]]:
    with sqlite3.connect(path) as conn:
        return {(kind, name, " ".join(str(sql).split()))
                for kind, name, sql in conn.execute(
                    "SELECT type, name, sql FROM sqlite_master WHERE name LIKE 'tallyclerk_%' "
                    "OR name LIKE 'ix_tallyclerk_%' OR name LIKE 'uq_tallyclerk_%'")}


def test_catalogue_ddl_creates_the_schema_create_all_creates(tmp_path: Path) -> None:
    core = tmp_path / "core.db"
    engine = create_engine(f"sqlite:///{core}")
    try:
        with engine.begin() as conn:
            metadata.create_all(conn, tables=list(statements.TABLES))
    finally:
        engine.dispose()
    plain = tmp_path / "plain.db"
    conn = sqlite3.connect(plain)
    try:
        for sql in catalogue.DDL:
            conn.execute(sql)
        conn.commit()
    finally:
        conn.close()
    assert _schema(plain) == _schema(core)
    assert len(_schema(plain)) == len(catalogue.DDL)


def test_importing_the_catalogue_imports_no_sqlalchemy() -> None:
    code = ("import sys, tallyclerk.audit.catalogue; "
            "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
