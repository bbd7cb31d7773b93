"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import pgserver


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pgserver.PgServer]:
    """A real PostgreSQL server for the session (skips, saying why, only if none can start)."""
    with pgserver.server_for_tests() as server:
        yield server


@pytest.fixture()
def pg_url(pg_server: pgserver.PgServer) -> Iterator[str]:
    """A fresh, empty database on the session's server, as a SQLAlchemy URL (with password)."""
    import uuid

    import sqlalchemy as sa

    name = "tc_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(pg_server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield pg_server.url(name)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
