"""Fixtures of the audit store tests: real SQLite files under tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tallyclerk import SqliteWriter
from tallyclerk.audit import AuditService
from tallyclerk.audit.engine import create_audit_engine, ensure_schema
from tallyclerk.dburl import parse_url
from tallyclerk.settings import Settings
from tests.audit.helpers import create_target


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


@pytest.fixture()
def db_path(tmp_path: Path) -> str:
    """An audit store file shared with the target table (the default deployment)."""
    return str(tmp_path / "tc.db")


@pytest.fixture()
def svc(db_path: str) -> Iterator[AuditService]:
    with AuditService(f"sqlite:///{db_path}", settings=Settings()) as service:
        create_target(db_path)
        yield service


@pytest.fixture()
def writer(db_path: str, svc: AuditService) -> Iterator[SqliteWriter]:
    w = SqliteWriter(db_path)
    yield w
    w.close()
