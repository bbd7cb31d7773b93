"""The test setup really starts PostgreSQL, with password authentication over TCP."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.postgres


def test_server_answers_with_password_auth(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select 1").scalar() == 1
    engine.dispose()


def test_wrong_password_is_refused(pg_url: str) -> None:
    bad = sa.engine.make_url(pg_url).set(password="wrong")
    engine = sa.create_engine(bad)
    with pytest.raises(sa.exc.OperationalError):
        engine.connect()
    engine.dispose()
