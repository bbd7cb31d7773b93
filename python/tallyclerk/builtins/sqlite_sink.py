"""The SQLite fast path: rows go from Rust record batches to SQLite without Python row objects.

Claims ``sqlite:///PATH`` URLs (no query string; other SQLite URLs go to the generic
SQLAlchemy sink). Uses :class:`tallyclerk.SqliteWriter`: the system libsqlite3 (the library
Python's ``sqlite3`` uses, so one process reaches a file through one SQLite library), WAL,
a busy timeout, and one ``BEGIN IMMEDIATE`` transaction per file. The writer itself is the
file's :class:`~tallyclerk.protocols.SqlExecutor`, so when the audit store lives in the same
file, the rows, the rejects and the manifest row commit in that one transaction.

Write modes (:mod:`tallyclerk.modes`): ``merge`` creates a unique index on the key columns
(in the file's transaction) and writes with ``INSERT ... ON CONFLICT (key) DO UPDATE``
(``SqliteWriter.upsert_batch``); rows inserted = the table's row count after the file minus
before (the file's ``BEGIN IMMEDIATE`` transaction holds the write lock, so nobody else
changes it), the rest were updates. The schema's ``primaryKey`` and ``unique`` fields get a
unique index each; outside ``merge`` the rows of a batch whose key is already in the table
become rejected rows (``SqliteWriter.reject_existing``, in the file's transaction) before the
insert. ``replace``: :meth:`SqliteSink.swap_table` drops the table
and renames the shadow table in one transaction.

Each transaction takes this process's turn at the file (:mod:`tallyclerk.sqlitegate`) as a data
transaction, so the audit store's writers in the same process (events, heartbeats) wait for it
on an in-process condition instead of in SQLite's busy handler.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from tallyclerk import SqliteWriter, modes
from tallyclerk.dburl import mask_url
from tallyclerk.errors import ConfigError
from tallyclerk.hookspecs import hookimpl
from tallyclerk.settings import settings_of
from tallyclerk.sqlitegate import DataTurn, gate_for

if TYPE_CHECKING:
    from tallyclerk._core import RecordBatch, TableSchema
    from tallyclerk.audit import FileClaim
    from tallyclerk.protocols import SqlExecutor

FILE_ID_COLUMN = "_tc_file_id"
# The writer's page cache (KiB; SQLite's default is 2000). Appending a file's rows touches the
# right edge of the table's and each index's B-tree, and a cache spill writes a page to the
# WAL once, as the commit would: 512 KiB loads as fast as 2 MB and 8 MB (measured) and keeps
# ~1.5 MB off the peak RSS (benches/README.md, "Whole-process CSV, round two").
WRITER_CACHE_KIB = 512
_PREFIX = "sqlite:///"


_SQLITE_TYPES = frozenset({"TEXT", "INTEGER", "REAL", "NUMERIC", "BLOB"})


def quote(name: str) -> str:
    """A quoted SQLite identifier (callers checked the name)."""
    return '"' + name.replace('"', '""') + '"'


def sqlite_path(url: str) -> str | None:
    """The file path of a plain ``sqlite:///PATH`` URL, else None."""
    if not url.startswith(_PREFIX) or "?" in url:
        return None
    path = url[len(_PREFIX) :]
    if path in ("", ":memory:"):
        return None
    return path


def create_table(writer: SqliteWriter, table: str, schema: TableSchema) -> None:
    """The table (if missing) with ``_tc_file_id``, and the index on it (if missing)."""
    writer.create_table(table, schema, [(FILE_ID_COLUMN, "INTEGER")])
    writer.execute(
        f"CREATE INDEX IF NOT EXISTS {quote(modes.file_id_index_name(table))} "
        f"ON {quote(table)} ({quote(FILE_ID_COLUMN)})"
    )


class WriterExecutor:
    """The :class:`~tallyclerk.protocols.SqlExecutor` face of a :class:`SqliteWriter`."""

    dialect_name = "sqlite"

    def __init__(self, writer: SqliteWriter) -> None:
        self.writer = writer

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.writer.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        return self.writer.executemany(sql, rows)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.writer.query(sql, params)


def schema_version(writer: SqliteWriter) -> int:
    """The database's schema cookie: every change to its schema by any connection (a table
    created, dropped, renamed or altered, an index created or dropped) changes it."""
    return int(writer.query("PRAGMA schema_version")[0][0])


class TableChecks:
    """What one writer connection knows of its target table between files.

    After a file's transaction committed with the table, its ``_tc_file_id`` index and its key
    indexes checked (created if missing; every planned column present), ``record`` keeps the
    target (table, schema JSON, keys) and the schema cookie read just before that commit,
    while the transaction still held the write lock. A later file's transaction
    (``BEGIN IMMEDIATE`` holds the lock again) that finds the same target and the same cookie
    skips the ``CREATE ... IF NOT EXISTS`` round-trips: nobody changed any table or index in
    between. Any other cookie (the table dropped, altered or replaced by anyone, this sink's
    own ``swap_table``/``drop_table``/``add_columns``) or another target checks again. A
    rolled-back file records nothing (its DDL rolled back with it, so the last record still
    describes the schema at its cookie).
    """

    def __init__(self) -> None:
        self._known: tuple[tuple[str, str, tuple[str, ...]], int] | None = None

    def fresh(self, target: tuple[str, str, tuple[str, ...]], cookie: int) -> bool:
        """True when this target was checked by a committed file at this schema cookie."""
        return self._known == (target, cookie)

    def record(self, target: tuple[str, str, tuple[str, ...]], cookie: int) -> None:
        self._known = (target, cookie)


class SqliteFileWrite:
    """One file's ``BEGIN IMMEDIATE`` transaction."""

    def __init__(
        self,
        writer: SqliteWriter,
        turn: DataTurn,
        table: str,
        schema: TableSchema,
        file_id: int,
        keys: Sequence[str] = (),
        checks: TableChecks | None = None,
    ) -> None:
        self._writer = writer
        self._checks = checks
        self._target = (table, schema.to_json(), tuple(keys))
        self._turn = turn
        self._table = table
        self._extra = (file_id,)
        self._keys = list(keys)
        # append/replace: the schema's primaryKey and unique fields are checked against the
        # rows already in the table before each insert (merge upserts by its key instead)
        self._unique = [] if self._keys else [(list(c), r) for c, r in schema.keys]
        self._before = 0
        self._written = 0
        self.executor = WriterExecutor(writer)
        turn.take()
        try:
            writer.begin()
            if checks is None or not checks.fresh(self._target, schema_version(writer)):
                # inside the file's transaction: a file that fails leaves no table behind
                create_table(writer, table, schema)
                for key in modes.unique_keys(schema, self._keys):
                    cols = ", ".join(quote(k) for k in key)
                    writer.execute(
                        f"CREATE UNIQUE INDEX IF NOT EXISTS "
                        f"{quote(modes.key_index_name(table, key))} ON {quote(table)} ({cols})"
                    )
            if self._keys:
                self._before = self._count()
        except BaseException:
            self.rollback()
            raise

    def _count(self) -> int:
        return int(self._writer.query(f"SELECT count(*) FROM {quote(self._table)}")[0][0])

    def add_columns(self, fields: Sequence[Mapping[str, Any]]) -> None:
        """Add nullable columns (``TableSchema.fields()`` dicts) to the table in this
        transaction; columns it already has are left alone (a repaired crash may have added
        them). Used by ``--columns evolve``."""
        writer, table = self._writer, self._table
        have = {str(n).lower() for (n,) in
                writer.query("SELECT name FROM pragma_table_info(?)", [table])}
        for f in fields:
            name = str(f["name"])
            if name.lower() in have:
                continue
            sql_type = str(f.get("sqlite_type") or "TEXT")
            if sql_type not in _SQLITE_TYPES:
                sql_type = "TEXT"
            writer.execute(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(name)} {sql_type}")
            have.add(name.lower())

    def write(self, batch: RecordBatch) -> int:
        if self._keys:
            n = self._writer.upsert_batch(self._table, batch, self._keys, self._extra)
        else:
            if self._unique:
                self._writer.reject_existing(self._table, batch, self._unique)
            n = self._writer.insert_batch(self._table, batch, self._extra)
        self._written += n
        return n

    def counts(self) -> tuple[int, int]:
        """(rows inserted, rows updated) by this file so far."""
        if not self._keys:
            return self._written, 0
        inserted = self._count() - self._before
        return inserted, self._written - inserted

    def commit(self) -> None:
        checks = self._checks
        if checks is None:
            self._writer.commit()
        else:
            # read under this transaction's write lock: nobody changes the schema before the
            # commit; recorded only once the commit succeeded
            cookie = schema_version(self._writer)
            self._writer.commit()
            checks.record(self._target, cookie)
        self._turn.give_back()

    def rollback(self) -> None:
        try:
            if self._writer.in_transaction:
                self._writer.rollback()
        finally:
            self._turn.give_back()


class SqliteSink:
    """A SQLite database file written through :class:`tallyclerk.SqliteWriter`."""

    write_modes = modes.MODES
    # rows whose primaryKey / unique value is already in the table become rejected rows
    checks_unique = True

    def __init__(
        self,
        path: str,
        *,
        busy_timeout_ms: int = 5000,
        synchronous: str = "NORMAL",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = path
        self._options = dict(options or {})
        self._keys: tuple[str, ...] = ()
        self.url = mask_url(_PREFIX + path)
        sync = synchronous.upper()
        if sync not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ConfigError(
                f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}"
            )
        self._writer = SqliteWriter(
            path,
            busy_timeout_ms=busy_timeout_ms,
            synchronous=cast(Literal["OFF", "NORMAL", "FULL", "EXTRA"], sync),
        )
        self._writer.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        self._gate = gate_for(path)
        self._busy_s = busy_timeout_ms / 1000.0
        self._target: tuple[str, TableSchema] | None = None
        self._checks = TableChecks()

    def prepare(self, table: str, schema: TableSchema) -> None:
        """Name the target; the table is created (if missing) in each file's transaction.

        SQLite table names ignore ASCII case, the audit manifest's do not: ``--table orders``
        into a file holding ``Orders`` would load a file already loaded into ``Orders`` a
        second time into the same table. Refused (ConfigError, exit 2), naming the table.
        """
        if self._target is None or self._target[0] != table:
            found = self._writer.query(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name = ? COLLATE NOCASE AND name <> ?",
                [table, table],
            )
            if found:
                raise ConfigError(
                    f"table {table!r} is the existing table {found[0][0]!r} (SQLite table "
                    f"names ignore case); use --table {found[0][0]!r}"
                )
        self._target = (table, schema)
        self._keys = modes.resolve(self._options, schema).primary_key

    def begin_file(self, claim: FileClaim) -> SqliteFileWrite:
        if self._target is None:
            raise RuntimeError("SqliteSink.prepare() must be called before begin_file()")
        table, schema = self._target
        return SqliteFileWrite(self._writer, self._turn(), table, schema, claim.file_id,
                               self._keys, self._checks)

    def _turn(self) -> DataTurn:
        return DataTurn(self._gate, self._busy_s)

    def swap_table(
        self, shadow: str, table: str, in_txn: Callable[[SqlExecutor | None], None]
    ) -> None:
        """In one transaction: drop ``table``, rename ``shadow`` to it, run ``in_txn`` (the
        manifest update) with this transaction's executor, commit. Readers see the old table
        or the new one."""
        w = self._writer
        turn = self._turn()
        turn.take()
        try:
            w.begin()
            if self._target is not None and not w.query(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [shadow]
            ):
                create_table(w, shadow, self._target[1])
            w.execute(f"DROP TABLE IF EXISTS {quote(table)}")
            w.execute(f"ALTER TABLE {quote(shadow)} RENAME TO {quote(table)}")
            in_txn(WriterExecutor(w))
            w.commit()
        except BaseException:
            if w.in_transaction:
                w.rollback()
            raise
        finally:
            turn.give_back()

    def drop_table(self, name: str) -> None:
        """Drop a table if it exists (an abandoned replace's shadow), in its own transaction."""
        w = self._writer
        turn = self._turn()
        turn.take()
        try:
            w.begin()
            w.execute(f"DROP TABLE IF EXISTS {quote(name)}")
            w.commit()
        except BaseException:
            if w.in_transaction:
                w.rollback()
            raise
        finally:
            turn.give_back()

    def close(self) -> None:
        self._writer.close()


@hookimpl(trylast=True)
def tallyclerk_open_sink(url: str, options: Mapping[str, Any]) -> SqliteSink | None:
    """Open ``sqlite:///PATH`` with the Rust writer."""
    path = sqlite_path(url)
    if path is None:
        return None
    settings = settings_of(options.get("settings"))
    return SqliteSink(
        path,
        busy_timeout_ms=settings.busy_timeout_ms,
        synchronous=settings.synchronous,
        options=options,
    )
