"""The SQLite fast path: rows go from Rust record batches to SQLite without Python row objects.

Claims ``sqlite:///PATH`` URLs (no query string; other SQLite URLs go to the generic
SQLAlchemy sink). Uses :class:`tallyclerk.SqliteWriter`: the system libsqlite3 (the library
Python's ``sqlite3`` uses, so one process reaches a file through one SQLite library), WAL,
a busy timeout, and one ``BEGIN IMMEDIATE`` transaction per file. The writer itself is the
file's :class:`~tallyclerk.protocols.SqlExecutor`, so when the audit store lives in the same
file, the rows, the rejects and the manifest row commit in that one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from tallyclerk import SqliteWriter
from tallyclerk.dburl import mask_url
from tallyclerk.errors import ConfigError
from tallyclerk.hookspecs import hookimpl

if TYPE_CHECKING:
    from tallyclerk._core import RecordBatch, TableSchema
    from tallyclerk.audit import FileClaim

FILE_ID_COLUMN = "_tc_file_id"
_PREFIX = "sqlite:///"


def sqlite_path(url: str) -> str | None:
    """The file path of a plain ``sqlite:///PATH`` URL, else None."""
    if not url.startswith(_PREFIX) or "?" in url:
        return None
    path = url[len(_PREFIX) :]
    if path in ("", ":memory:"):
        return None
    return path


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


class SqliteFileWrite:
    """One file's ``BEGIN IMMEDIATE`` transaction."""

    def __init__(
        self, writer: SqliteWriter, table: str, schema: TableSchema, file_id: int
    ) -> None:
        self._writer = writer
        self._table = table
        self._extra = (file_id,)
        self.executor = WriterExecutor(writer)
        writer.begin()
        try:
            # inside the file's transaction: a file that fails leaves no table behind
            writer.create_table(table, schema, [(FILE_ID_COLUMN, "INTEGER")])
        except BaseException:
            writer.rollback()
            raise

    def write(self, batch: RecordBatch) -> int:
        return self._writer.insert_batch(self._table, batch, self._extra)

    def commit(self) -> None:
        self._writer.commit()

    def rollback(self) -> None:
        if self._writer.in_transaction:
            self._writer.rollback()


class SqliteSink:
    """A SQLite database file written through :class:`tallyclerk.SqliteWriter`."""

    def __init__(
        self,
        path: str,
        *,
        busy_timeout_ms: int = 5000,
        synchronous: str = "NORMAL",
    ) -> None:
        self.path = path
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
        self._target: tuple[str, TableSchema] | None = None

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

    def begin_file(self, claim: FileClaim) -> SqliteFileWrite:
        if self._target is None:
            raise RuntimeError("SqliteSink.prepare() must be called before begin_file()")
        table, schema = self._target
        return SqliteFileWrite(self._writer, table, schema, claim.file_id)

    def close(self) -> None:
        self._writer.close()


@hookimpl(trylast=True)
def tallyclerk_open_sink(url: str, options: Mapping[str, Any]) -> SqliteSink | None:
    """Open ``sqlite:///PATH`` with the Rust writer."""
    path = sqlite_path(url)
    if path is None:
        return None
    settings = options.get("settings")
    return SqliteSink(
        path,
        busy_timeout_ms=int(getattr(settings, "busy_timeout_ms", 5000)),
        synchronous=str(getattr(settings, "synchronous", "NORMAL")),
    )
