"""A SQLAlchemy Core engine on a :class:`~tallyclerk.audit.liteengine.LiteEngine`'s one
connection, for the Core statements of the work list (:mod:`tallyclerk.audit.worklist`) in a
worker process whose audit service is on plain ``sqlite3``: the process still opens its
SQLite file once for the audit store (and once for the sink).

:meth:`BorrowedEngine.begin` takes the LiteEngine's turn (``raw()``), lends its connection to
SQLAlchemy for one ``BEGIN IMMEDIATE`` transaction, and gives it back when the block ends.
SQLAlchemy's pool (a ``StaticPool`` of a proxy) never closes the connection: it stays the
LiteEngine's. Only the work list uses it, so only worker processes import SQLAlchemy for it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.pool import StaticPool

from tallyclerk.audit.liteengine import LiteEngine
from tallyclerk.audit.sqlitebusy import begin_immediate

__all__ = ["BorrowedEngine"]


class _Lent:
    """The connection of the current turn, as SQLAlchemy's pool sees it (closing it is the
    LiteEngine's business, not the pool's)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def lend(self, connection: Any) -> None:
        self._local.target = connection

    def _target(self) -> Any:
        target = getattr(self._local, "target", None)
        if target is None:
            raise RuntimeError("the audit store's connection is used outside its turn")
        return target

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_local":
            object.__setattr__(self, name, value)
        else:  # e.g. isolation_level: the connection's, not the proxy's
            setattr(self._target(), name, value)

    def close(self) -> None:
        pass


class BorrowedEngine:
    """Core transactions on the LiteEngine's connection, in its turns (see the module)."""

    def __init__(self, lite: LiteEngine) -> None:
        self.lite = lite
        self._lent = _Lent()
        self._core = create_engine("sqlite+pysqlite://", creator=lambda: self._lent,
                                   poolclass=StaticPool)
        busy_ms = int(lite.settings.busy_timeout_ms)

        @event.listens_for(self._core, "begin")
        def on_begin(connection: Connection) -> None:
            begin_immediate(connection.exec_driver_sql, busy_ms)

    @property
    def dialect(self) -> Dialect:
        return self._core.dialect

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction on the LiteEngine's connection (committed when the block ends,
        rolled back when it raises)."""
        with self.lite.raw() as connection:
            self._lent.lend(connection)
            try:
                with self._core.begin() as conn:
                    yield conn
            finally:
                self._lent.lend(None)

    def dispose(self, close: bool = True) -> None:
        """Forget SQLAlchemy's pool; the connection stays open (it is the LiteEngine's)."""
        self._core.dispose(close=close)
