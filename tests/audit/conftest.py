"""Fixtures of the audit store tests: real SQLite files under tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tallyclerk.audit.engine import create_audit_engine, ensure_schema
from tallyclerk.dburl import parse_url
from tallyclerk.settings import Settings


@pytest.fixture()
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'audit.db'}"


@pytest.fixture()
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_audit_engine(parse_url(db_url), Settings())
    ensure_schema(eng)
    try:
        yield eng
    finally:
        eng.dispose()
