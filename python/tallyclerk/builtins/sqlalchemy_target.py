"""The generic sink: any database SQLAlchemy 2 can reach (PostgreSQL, SQLite, ...).

Its plugin module is :mod:`tallyclerk.builtins.sqlalchemy_sink`, which imports this one (and
SQLAlchemy) only when a URL reaches its hook: it claims every URL SQLAlchemy has a dialect for
(``trylast``: faster sinks such as the built-in SQLite one go first). Creates the target table
from the Table Schema with SQLAlchemy ``Table`` and ``Column`` objects, every identifier
quoted, plus ``_tc_file_id``; inserts each batch's valid rows with one ``executemany`` of bound
parameters; one transaction per file (SQLite: WAL, busy timeout, ``BEGIN IMMEDIATE``).
Database errors become :class:`SinkError`, marked ``transient`` when retrying may help
(locked, deadlock, serialization, connection lost).

Write modes (:mod:`tallyclerk.modes`): ``merge`` (SQLite and PostgreSQL dialects) creates a
unique index on the key in the file's transaction and inserts with the dialect's
``INSERT ... ON CONFLICT (key) DO UPDATE``; rows inserted are the table's row count after the
file minus before. ``replace``: :meth:`SqlAlchemySink.swap_table` drops the table and renames
the shadow table in one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.sql.elements import quoted_name

from tallyclerk import modes
from tallyclerk.audit import SqlAlchemyExecutor
from tallyclerk.dberrors import is_transient
from tallyclerk.dburl import mask_secrets
from tallyclerk.errors import ConfigError, SinkError
from tallyclerk.settings import settings_of
from tallyclerk.sqlitegate import DataTurn, gate_of

if TYPE_CHECKING:
    from tallyclerk._core import RecordBatch, TableSchema
    from tallyclerk.audit import FileClaim
    from tallyclerk.protocols import SqlExecutor

FILE_ID_COLUMN = "_tc_file_id"

_TYPES: dict[str, Callable[[], sa.types.TypeEngine[Any]]] = {
    "string": sa.Text,
    "integer": sa.BigInteger,
    "year": sa.BigInteger,
    "number": sa.Float,
    "boolean": sa.Boolean,
    "date": sa.Date,
    "datetime": lambda: sa.DateTime(timezone=True),
}

_MERGE_DIALECTS = ("sqlite", "postgresql")

def sink_error(exc: SQLAlchemyError, action: str) -> SinkError:
    """Classify a SQLAlchemy error as a transient or permanent :class:`SinkError`."""
    lines = str(getattr(exc, "orig", None) or exc).splitlines()
    text = lines[0] if lines else type(exc).__name__
    return SinkError(mask_secrets(f"{action}: {text}"),
                     transient=is_transient(exc))


def _to_date(value: Any) -> Any:
    if isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value


def _to_int(value: Any) -> Any:
    """A big integer field's digits (within 64 bits here: this sink does not declare
    ``stores_big_int``) as an int."""
    if isinstance(value, str):
        return int(value)
    return value


def _to_datetime(value: Any) -> Any:
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


class SqlAlchemyFileWrite:
    """One file's transaction on its own connection."""

    def __init__(
        self, sink: SqlAlchemySink, table: sa.Table, file_id: int, keys: Sequence[str] = ()
    ) -> None:
        self._table = table
        self._file_id = file_id
        self._pk = list(keys)
        self._unique = list(sink.unique)
        self._before = 0
        self._written = 0
        self._insert: Any = table.insert()
        self._keys = [c.key for c in table.columns if c.key != FILE_ID_COLUMN]
        self._convert: list[Callable[[Any], Any] | None] = []
        for key in self._keys:
            kind = type(table.columns[key].type)
            self._convert.append(
                _to_date if kind is sa.Date else _to_datetime if kind is sa.DateTime
                else _to_int if kind is sa.BigInteger else None
            )
        # SQLite: this process's turn at the file first (see tallyclerk.sqlitegate)
        self._turn = sink.data_turn()
        self._turn.take()
        try:
            self._conn = sink.engine.connect()
        except SQLAlchemyError as exc:
            self._turn.give_back()
            raise sink_error(exc, "cannot connect") from exc
        try:
            self._trans = self._conn.begin()
            # inside the file's transaction: a file that fails leaves no table behind
            sink.metadata.create_all(self._conn, checkfirst=True)
            for index in sink.unique_indexes:  # an existing table gets them too
                index.create(self._conn, checkfirst=True)
            if self._pk:
                if sink.key_index is not None:  # an existing table gets it too
                    sink.key_index.create(self._conn, checkfirst=True)
                self._insert = _upsert(self._conn.dialect.name, table, self._pk)
                self._before = self._count()
        except SQLAlchemyError as exc:
            self._close()
            raise sink_error(exc, f"cannot create table {table.name!r}") from exc
        except BaseException:
            self._close()
            raise
        self.executor = SqlAlchemyExecutor(self._conn)

    def write(self, batch: RecordBatch) -> int:
        rejected = {r.index for r in batch.rejects()} if batch.num_rejected else set()
        names = batch.columns
        positions = [names.index(k) if k in names else -1 for k in self._keys]
        params: list[dict[str, Any]] = []
        for i, row in enumerate(batch.rows()):
            if i in rejected:
                continue
            record: dict[str, Any] = {FILE_ID_COLUMN: self._file_id}
            for key, pos, conv in zip(self._keys, positions, self._convert, strict=True):
                value = row[pos] if pos >= 0 else None
                record[key] = conv(value) if conv is not None and value is not None else value
            params.append(record)
        if self._unique and params:
            params = self._reject_existing(batch, rejected, params)
        if not params:
            return 0
        try:
            self._conn.execute(self._insert, params)
        except SQLAlchemyError as exc:
            raise sink_error(exc, f"insert into {self._table.name!r} failed") from exc
        self._written += len(params)
        return len(params)

    def _reject_existing(self, batch: RecordBatch, rejected: set[int],
                         params: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Reject the rows whose primaryKey / unique value is already in the table (looked
        up 500 values a statement); returns the others' parameters."""
        rows = [i for i in range(batch.num_rows) if i not in rejected]
        gone: dict[int, tuple[str | None, str, str]] = {}
        for cols, rule in self._unique:
            values = {tuple(p[c] for c in cols) for p in params}
            values = {v for v in values if None not in v}
            found: set[tuple[Any, ...]] = set()
            ordered = sorted(values, key=repr)
            columns = [self._table.c[c] for c in cols]
            for start in range(0, len(ordered), 500):
                chunk = ordered[start:start + 500]
                where = (columns[0].in_([v[0] for v in chunk]) if len(cols) == 1
                         else sa.tuple_(*columns).in_(chunk))
                try:
                    found.update(tuple(r) for r in
                                 self._conn.execute(sa.select(*columns).where(where)))
                except SQLAlchemyError as exc:
                    raise sink_error(exc, f"cannot check keys of {self._table.name!r}") from exc
            if not found:
                continue
            shown = {c: batch.column(c) for c in cols}
            for k, p in enumerate(params):
                key = tuple(p[c] for c in cols)
                if key in found and k not in gone:
                    gone[k] = (cols[0] if len(cols) == 1 else None, rule, modes.key_reason(
                        cols, rule, [str(shown[c][rows[k]]) for c in cols],
                        "already in the table"))
        for k, (column, rule, reason) in sorted(gone.items()):
            batch.reject(rows[k], column, rule, reason)
        return [p for k, p in enumerate(params) if k not in gone]

    def _count(self) -> int:
        return int(self._conn.execute(sa.select(sa.func.count()).select_from(self._table))
                   .scalar_one())

    def counts(self) -> tuple[int, int]:
        """(rows inserted, rows updated) by this file so far."""
        if not self._pk:
            return self._written, 0
        try:
            inserted = self._count() - self._before
        except SQLAlchemyError as exc:
            raise sink_error(exc, f"cannot count the rows of {self._table.name!r}") from exc
        return inserted, self._written - inserted

    def commit(self) -> None:
        try:
            self._trans.commit()
        except SQLAlchemyError as exc:
            raise sink_error(exc, "commit failed") from exc
        finally:
            self._close()

    def rollback(self) -> None:
        try:
            if self._trans.is_active:
                self._trans.rollback()
        finally:
            self._close()

    def _close(self) -> None:
        try:
            self._conn.close()
        finally:
            self._turn.give_back()


def _upsert(dialect: str, table: sa.Table, keys: Sequence[str]) -> Any:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE SET`` every other column."""
    from sqlalchemy.dialects import postgresql, sqlite

    stmt: Any
    if dialect == "sqlite":
        stmt = sqlite.insert(table)
    elif dialect == "postgresql":
        stmt = postgresql.insert(table)
    else:  # refused in prepare()
        raise ConfigError(f"--mode merge is not supported on {dialect}")
    others = {c.key: stmt.excluded[c.key] for c in table.columns if c.key not in keys}
    return stmt.on_conflict_do_update(index_elements=[table.c[k] for k in keys], set_=others)


class SqlAlchemySink:
    """A database reached through a SQLAlchemy engine."""

    write_modes = modes.MODES
    # rows whose primaryKey / unique value is already in the table become rejected rows
    checks_unique = True

    def __init__(
        self, url: str, *, settings: Any = None, options: Mapping[str, Any] | None = None
    ) -> None:
        self._options = dict(options or {})
        self._keys: tuple[str, ...] = ()
        try:
            parsed = sa.make_url(url)
            parsed.get_dialect()
        except (ArgumentError, NoSuchModuleError) as exc:
            raise ConfigError(mask_secrets(f"unusable database URL {url!r}: {exc}")) from exc
        self.url = parsed.render_as_string(hide_password=True)
        s = settings_of(settings)
        busy_ms, connect_s = s.busy_timeout_ms, s.connect_timeout_s
        connect_args: dict[str, Any] = {}
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            connect_args = {"check_same_thread": False, "timeout": busy_ms / 1000.0}
        elif backend == "postgresql":
            connect_args = {"connect_timeout": max(1, int(connect_s))}
        self.engine = sa.create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
        if backend == "sqlite":
            self._sqlite_setup(busy_ms, s.synchronous)
        self._gate = gate_of(self.engine)
        self._busy_s = busy_ms / 1000.0
        self.metadata = sa.MetaData()
        self._table: sa.Table | None = None
        self.key_index: sa.Index | None = None
        self.unique: list[tuple[list[str], str]] = []
        self.unique_indexes: list[sa.Index] = []

    def _sqlite_setup(self, busy_ms: int, synchronous: str) -> None:
        sync = synchronous.upper() if synchronous.upper() in ("OFF", "NORMAL", "FULL") else "NORMAL"

        @event.listens_for(self.engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.close()

        @event.listens_for(self.engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    def prepare(self, table: str, schema: TableSchema) -> None:
        """Describe the target table; it is created (if missing) in each file's transaction.

        On SQLite, a table name differing only in ASCII case from an existing table is refused
        (SQLite would write into that table, under a name the audit manifest sees as another).
        """
        if self.engine.dialect.name == "sqlite" and (
            self._table is None or self._table.name != table
        ):
            self._check_case(table)
        columns = [
            sa.Column(
                quoted_name(f["name"], quote=True),
                _TYPES.get(str(f["type"]), sa.Text)(),
                key=f["name"],
            )
            for f in schema.fields()
        ]
        columns.append(sa.Column(FILE_ID_COLUMN, sa.BigInteger, key=FILE_ID_COLUMN))
        self._keys = modes.resolve(self._options, schema).primary_key
        if self._keys and self.engine.dialect.name not in _MERGE_DIALECTS:
            raise ConfigError(
                f"--mode merge is not supported on {self.engine.dialect.name} "
                "(SQLite and PostgreSQL are)"
            )
        self.metadata.clear()
        self._table = sa.Table(quoted_name(table, quote=True), self.metadata, *columns)
        self.key_index = None
        if self._keys:
            self.key_index = sa.Index(
                quoted_name(modes.key_index_name(table, self._keys), quote=True),
                *[self._table.c[k] for k in self._keys],
                unique=True,
            )
        # the schema's primaryKey / unique fields: a unique index each; outside merge the rows
        # whose key is already in the table are rejected before the insert
        self.unique = [] if self._keys else [(list(c), r) for c, r in schema.keys]
        self.unique_indexes = [
            sa.Index(quoted_name(modes.key_index_name(table, cols), quote=True),
                     *[self._table.c[k] for k in cols], unique=True)
            for cols in modes.unique_keys(schema) if cols != list(self._keys)
        ]

    def _check_case(self, table: str) -> None:
        try:
            with self.engine.connect() as conn:
                found = conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                    "AND name = ? COLLATE NOCASE AND name <> ?",
                    (table, table),
                ).fetchall()
        except SQLAlchemyError as exc:
            raise sink_error(exc, "cannot read the database's tables") from exc
        if found:
            raise ConfigError(
                f"table {table!r} is the existing table {found[0][0]!r} (SQLite table names "
                f"ignore case); use --table {found[0][0]!r}"
            )

    def begin_file(self, claim: FileClaim) -> SqlAlchemyFileWrite:
        if self._table is None:
            raise RuntimeError("SqlAlchemySink.prepare() must be called before begin_file()")
        return SqlAlchemyFileWrite(self, self._table, claim.file_id, self._keys)

    def swap_table(
        self, shadow: str, table: str, in_txn: Callable[[SqlExecutor | None], None]
    ) -> None:
        """In one transaction: drop ``table``, rename ``shadow`` to it, run ``in_txn`` (the
        manifest update) with this transaction's executor, commit."""
        prep = self.engine.dialect.identifier_preparer
        q_shadow = prep.quote_identifier(shadow)
        q_table = prep.quote_identifier(table)
        turn = self.data_turn()
        turn.take()
        try:
            with self.engine.connect() as conn, conn.begin():
                if self._table is not None and self._table.name == shadow:
                    self.metadata.create_all(conn, checkfirst=True)
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {q_table}")
                conn.exec_driver_sql(f"ALTER TABLE {q_shadow} RENAME TO {q_table}")
                in_txn(SqlAlchemyExecutor(conn))
        except SQLAlchemyError as exc:
            raise sink_error(exc, f"cannot replace table {table!r}") from exc
        finally:
            turn.give_back()

    def drop_table(self, name: str) -> None:
        """Drop a table if it exists (an abandoned replace's shadow)."""
        q = self.engine.dialect.identifier_preparer.quote_identifier(name)
        turn = self.data_turn()
        turn.take()
        try:
            with self.engine.connect() as conn, conn.begin():
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {q}")
        except SQLAlchemyError as exc:
            raise sink_error(exc, f"cannot drop table {name!r}") from exc
        finally:
            turn.give_back()

    def data_turn(self) -> DataTurn:
        """A turn at the database file for one transaction (SQLite; a no-op elsewhere)."""
        return DataTurn(self._gate, self._busy_s)

    def close(self) -> None:
        self.engine.dispose()


def has_dialect(url: str) -> bool:
    """True when SQLAlchemy has a dialect (and its driver) for ``url``."""
    try:
        sa.make_url(url).get_dialect()
    except (ArgumentError, NoSuchModuleError):
        return False
    return True


def open_sink(url: str, options: Mapping[str, Any]) -> SqlAlchemySink | None:
    """The sink of ``url``, or None when SQLAlchemy has no dialect for it."""
    if not has_dialect(url):
        return None
    return SqlAlchemySink(url, settings=options.get("settings"), options=options)
