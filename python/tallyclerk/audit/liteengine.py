"""The audit store's SQLite engine on plain ``sqlite3``: what :mod:`tallyclerk.audit.engine`
sets up through SQLAlchemy, without importing it (issue 16.1): the engine of every SQLite audit
store (:mod:`tallyclerk.audit.backend`).

* One connection, taken in turns (SQLAlchemy's pool of one, ``pool_timeout = 2 * busy + 1``
  s; a turn not given in time is the transient error SQLAlchemy's pool ``TimeoutError`` was).
* Every connection: driver transactions off (``isolation_level=None``), the
  :func:`~tallyclerk.audit.sqlitebusy.connection_pragmas` (WAL, busy timeout,
  ``synchronous``, foreign keys), each retried while the WAL switch answers "locked".
* :meth:`LiteEngine.begin`: ``BEGIN IMMEDIATE`` (under
  :func:`~tallyclerk.audit.sqlitebusy.busy_timeout`'s wait when set), ``COMMIT`` at the end
  of the block, ``ROLLBACK`` when it raises (or when ``COMMIT`` fails).
* As SQLAlchemy's pool: a connection found closed (:func:`is_disconnect`) is dropped and its
  transaction raised as transient (the runner retries it on a new connection);
  :meth:`LiteEngine.dispose` waits for a turn another thread holds (bounded), else leaves the
  connection to its holder, who closes it when the turn ends.
* :func:`ensure_schema_lite`: a new store gets the catalogue's DDL, the lineage view and its
  version row in one transaction; a store that is current is left alone; anything else (an
  older store, a store of a 0.2.0 development build lacking a column or an index) answers
  None, and the caller runs SQLAlchemy's :func:`~tallyclerk.audit.engine.ensure_schema`,
  whose migrations stay the one implementation.

The in-process file gate (:func:`tallyclerk.sqlitegate.gate_for` ``(engine.path)``) and the
retries are the transaction runner's (:class:`~tallyclerk.audit.txn.LiteTransactionRunner`).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from tallyclerk.audit.catalogue import DDL, INDEXES, QUOTED, SCHEMA_VERSION, STATEMENTS, VIEWS
from tallyclerk.audit.rows import to_epoch_us
from tallyclerk.audit.sqlitebusy import begin_immediate, connection_pragmas, retry_busy
from tallyclerk.audit.translate import wrap_db_errors
from tallyclerk.dburl import DbUrl
from tallyclerk.errors import AuditStoreError, ConfigError, TransientRepositoryError
from tallyclerk.settings import Settings

__all__ = ["LiteEngine", "ensure_schema_lite", "is_disconnect"]


class LiteEngine:
    """The audit store of a SQLite file on one ``sqlite3`` connection, taken in turns."""

    def __init__(self, db: DbUrl, settings: Settings) -> None:
        if db.dialect != "sqlite":
            raise ConfigError(f"LiteEngine is for SQLite, not {db.dialect}")
        if db.in_memory or db.path is None:
            raise ConfigError(
                "the audit store needs a database file or server, not an in-memory SQLite "
                "database"
            )
        self.db = db
        self.path: str = db.path
        self.settings = settings
        self._busy_ms = int(settings.busy_timeout_ms)
        self._turn_timeout_s = 2 * settings.busy_timeout_ms / 1000.0 + 1.0
        self._turn = threading.Lock()
        self._state = threading.Lock()  # guards _connection between a turn and dispose()
        self._connection: sqlite3.Connection | None = None

    @property
    def dialect_name(self) -> str:
        return "sqlite"

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._busy_ms / 1000.0,
                               isolation_level=None, check_same_thread=False)
        try:
            cursor = conn.cursor()
            try:
                for pragma in connection_pragmas(self.settings):
                    retry_busy(cursor, pragma, self._busy_ms / 1000.0)
            finally:
                cursor.close()
        except BaseException:
            conn.close()
            raise
        return conn

    def _take(self) -> sqlite3.Connection:
        if not self._turn.acquire(timeout=self._turn_timeout_s):
            raise TransientRepositoryError(
                f"the audit store's connection was not free within {self._turn_timeout_s:.1f} s"
            )
        try:
            with self._state:
                conn = self._connection
            if conn is None:
                conn = self._connect()
                with self._state:
                    self._connection = conn
        except BaseException:
            self._turn.release()
            raise
        return conn

    def _give_back(self, conn: sqlite3.Connection, exc: BaseException | None = None) -> None:
        """End a turn. The connection is dropped (the next turn opens a new one) when ``exc``
        says it is unusable, as SQLAlchemy's pool invalidates it; and closed when
        :meth:`dispose` detached it meanwhile."""
        try:
            with self._state:
                drop = is_disconnect(exc) or self._connection is not conn
                if drop and self._connection is conn:
                    self._connection = None
            if drop:
                conn.close()
        finally:
            self._turn.release()

    @contextmanager
    def raw(self) -> Iterator[sqlite3.Connection]:
        """The connection outside any transaction, for its turn (the event writer's
        ``engine.raw_connection()``: it autocommits, or begins and ends its own)."""
        conn = self._take()
        failed: BaseException | None = None
        try:
            yield conn
        except BaseException as exc:
            failed = exc
            raise
        finally:
            try:
                if not is_disconnect(failed) and conn.in_transaction:
                    conn.execute("ROLLBACK")  # a transaction left open is not the next user's
            except sqlite3.ProgrammingError as exc:  # closed by its user: dropped below
                if not is_disconnect(exc):
                    raise
                failed = exc
            finally:
                self._give_back(conn, failed)

    @contextmanager
    def begin(self) -> Iterator[sqlite3.Connection]:
        """The connection, in a write transaction of its own (committed when the block ends,
        rolled back when it raises)."""
        conn = self._take()
        failed: BaseException | None = None
        try:
            begin_immediate(conn.execute, self._busy_ms)
            try:
                yield conn
            except BaseException as inner:
                if not is_disconnect(inner) and conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except BaseException as exc:
                # a COMMIT that failed (busy) leaves it open
                if not is_disconnect(exc) and conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except BaseException as exc:
            failed = exc
            if is_disconnect(exc):  # the retry's transaction gets a new connection
                raise TransientRepositoryError(
                    f"{type(exc).__name__}: {exc} (the connection is reopened)") from exc
            raise
        finally:
            self._give_back(conn, failed)

    def dispose(self, *, close: bool = True, timeout: float | None = None) -> None:
        """Close the connection; the next turn opens a new one.

        A turn held by another thread (a transaction, the event writer) is waited for, at
        most ``timeout`` seconds (default: the turn timeout; ``close=False``: not at all);
        past it the connection is detached and its holder closes it when its turn ends, as
        SQLAlchemy's pool does with a connection checked out during ``dispose``.
        """
        wait = 0.0 if not close else self._turn_timeout_s if timeout is None else timeout
        if not self._turn.acquire(timeout=max(0.0, wait)):
            with self._state:
                self._connection = None  # the holder's _give_back closes it
            return
        try:
            with self._state:
                conn, self._connection = self._connection, None
        finally:
            self._turn.release()
        if conn is not None:
            conn.close()


def is_disconnect(exc: BaseException | None) -> bool:
    """Whether ``exc`` leaves the connection unusable (SQLAlchemy's pysqlite dialect:
    ``ProgrammingError: Cannot operate on a closed database.``): it is dropped and the
    transaction is retried on a new one."""
    return isinstance(exc, sqlite3.ProgrammingError) and "closed database" in str(exc)


def _current(conn: sqlite3.Connection) -> bool:
    """Whether every table, column and index of the catalogue is in the store."""
    names = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master")}
    for table, columns in QUOTED.items():
        if table not in names or not set(INDEXES[table]) <= names:
            return False
        # the table name comes from the catalogue, never from input
        present = {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}
        if not set(columns) <= present:
            return False
    return True


def ensure_schema_lite(engine: LiteEngine) -> int | None:
    """Create a new store, or check a current one; the schema version, or None when the store
    needs SQLAlchemy's :func:`~tallyclerk.audit.engine.ensure_schema` (a migration).

    Raises:
        AuditStoreError: the store was written by a newer tallyclerk.
    """
    with wrap_db_errors(), engine.begin() as conn:
        has_version = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            ("tallyclerk_schema_version",)).fetchone() is not None
        if not has_version:
            own = conn.execute("SELECT count(*) FROM sqlite_master WHERE name IN "
                               f"({', '.join('?' * len(QUOTED))})", tuple(QUOTED)).fetchone()
            if own[0]:
                return None  # tables without a version row: let the migrations decide
            for sql in (*DDL, *VIEWS):
                conn.execute(sql)
            sql, names, consts = STATEMENTS["schema_version_insert"]
            values = {"version": SCHEMA_VERSION,
                      "updated_at": to_epoch_us(datetime.now(timezone.utc)), **consts}
            conn.execute(sql, [values[n] for n in names])
            return SCHEMA_VERSION
        sql, names, consts = STATEMENTS["schema_version_get"]
        row = conn.execute(sql, [consts[n] for n in names]).fetchone()
        found = None if row is None else int(row[0])
        if found is not None and found > SCHEMA_VERSION:
            raise AuditStoreError(
                f"the audit store has schema version {found}, newer than this tallyclerk "
                f"understands ({SCHEMA_VERSION}); upgrade tallyclerk"
            )
        if found != SCHEMA_VERSION or not _current(conn):
            return None
        for sql in VIEWS:
            conn.execute(sql)
        return SCHEMA_VERSION
