"""The DuckDB sink: ``--into duckdb:///warehouse.duckdb`` (optional extra ``tallyclerk[duckdb]``).

Claims ``duckdb:///PATH`` URLs; ``duckdb`` and ``pyarrow`` are imported only then, so other
loads never pay for them. One DuckDB connection per sink, one transaction per file:

* the table is created from the Table Schema (``string`` VARCHAR, ``integer`` BIGINT,
  ``number`` DOUBLE, ``boolean`` BOOLEAN, ``date`` DATE, ``datetime`` TIMESTAMPTZ) plus
  ``_tc_file_id BIGINT``, inside the file's transaction; every identifier is quoted;
* each record batch's valid rows become Arrow arrays in Rust (``RecordBatch.arrow_rows``:
  typed columns, dates as date32, the ``_tc_file_id`` column, rejected rows left out),
  imported by pyarrow through the Arrow C Data Interface without copying or Python objects
  (a batch that is not validated falls back to Python lists); the tables of a file are
  inserted together once they hold :data:`FLUSH_ROWS` rows (and at the end of the file) with
  one ``INSERT INTO ... SELECT ... FROM`` them: DuckDB scans them columnar, no row inserts
  (one large insert costs about two thirds of the same rows in record-batch-sized inserts);
* DuckDB runs one worker thread fewer than the process's cores (:func:`_duckdb_threads`):
  the pipeline's reader thread keeps a core busy parsing and validating;
* the audit store cannot live in a DuckDB file (it is SQLAlchemy on SQLite or PostgreSQL): the
  default is a SQLite file beside the target (``PATH.audit.db``, see
  :func:`tallyclerk.dburl.default_audit_url`). The file's data commits first, then its
  manifest row; a process killed in between leaves the manifest at ``loading`` and the next
  run deletes the file's rows (``DELETE ... WHERE _tc_file_id = ?``, through this sink's
  executor in the file's transaction) before loading it again, so append stays exactly-once;
* write modes: ``merge`` creates a unique index on the key and inserts with
  ``ON CONFLICT (key) DO UPDATE``; ``replace`` drops the table and renames the shadow table in
  one transaction.

DuckDB errors become :class:`~tallyclerk.errors.SinkError` (transient for a transaction
conflict or a locked database file).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tallyclerk import modes
from tallyclerk.dberrors import is_transient
from tallyclerk.errors import ConfigError, SinkError
from tallyclerk.hookspecs import hookimpl

if TYPE_CHECKING:
    from tallyclerk._core import RecordBatch, TableSchema
    from tallyclerk.audit import FileClaim
    from tallyclerk.protocols import SqlExecutor

__all__ = ["DuckDbSink", "duckdb_path", "tallyclerk_open_sink"]

FILE_ID_COLUMN = "_tc_file_id"
PREFIX = "duckdb:///"
FLUSH_ROWS = 131_072

# a big integer field (a bound beyond 64 bits): its digits go as text, cast by DuckDB on insert
BIG_INTEGER = "big-integer"

DUCK_TYPES: Mapping[str, str] = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "year": "BIGINT",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "datetime": "TIMESTAMPTZ",
    BIG_INTEGER: "HUGEINT",
}


def duck_fields(schema: TableSchema) -> list[tuple[str, str]]:
    """(name, type) of the schema's fields; a big integer field's type is ``big-integer``."""
    return [(str(f["name"]), BIG_INTEGER if f.get("big") else str(f["type"]))
            for f in schema.fields()]


def duckdb_path(url: str) -> str | None:
    """The file path of ``duckdb:///PATH`` (None for other URLs)."""
    if not isinstance(url, str) or not url.startswith(PREFIX) or "?" in url:
        return None
    path = url[len(PREFIX):]
    return path or None


def quote(name: str) -> str:
    if not name or "\x00" in name:
        raise ConfigError(f"invalid identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def sink_error(exc: BaseException, action: str) -> SinkError:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return SinkError(f"{action}: {text}", transient=is_transient(exc))


class DuckDbExecutor:
    """The :class:`~tallyclerk.protocols.SqlExecutor` face of the file's transaction (``?``)."""

    dialect_name = "duckdb"

    def __init__(self, conn: Any, before: Callable[[], None] | None = None) -> None:
        self.conn = conn
        self._before = before

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        if self._before is not None:
            self._before()  # the file's queued rows first: statements see them
        rows = self.conn.execute(sql, list(params)).fetchall()
        return int(rows[0][0]) if rows and len(rows[0]) == 1 and isinstance(rows[0][0], int) \
            else 0

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        return sum(self.execute(sql, row) for row in rows)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self._before is not None:
            self._before()
        return [tuple(r) for r in self.conn.execute(sql, list(params)).fetchall()]


class DuckDbFileWrite:
    """One file's transaction on the sink's connection."""

    def __init__(
        self, sink: DuckDbSink, table: str, schema: TableSchema, file_id: int,
        keys: Sequence[str] = (),
    ) -> None:
        import duckdb

        self._sink = sink
        self._conn = sink.conn
        self._table = table
        self._file_id = file_id
        self._keys = tuple(keys)
        self._schema = schema
        self._fields = duck_fields(schema)
        # append/replace: the schema's primaryKey / unique fields are looked up in the table
        # (a semi-join per batch, no index: DuckDB's unique indexes refuse re-inserting a key
        # deleted in the same transaction, which --force does); merge upserts by its key
        self._unique = [] if self._keys else [(list(c), r) for c, r in schema.keys]
        self._written = 0
        self._before = 0
        self._pending: list[Any] = []
        self._pending_rows = 0
        self.executor = DuckDbExecutor(self._conn, self._flush)
        try:
            self._conn.begin()
            sink.create_table(table, self._fields)
            if self._keys:
                self._conn.execute(
                    f"CREATE UNIQUE INDEX IF NOT EXISTS "
                    f"{quote(modes.key_index_name(table, self._keys))} ON {quote(table)} "
                    f"({', '.join(quote(k) for k in self._keys)})"
                )
                self._before = self._count()
        except duckdb.Error as exc:
            self.rollback()
            raise sink_error(exc, f"cannot create table {table!r}") from exc
        except BaseException:
            self.rollback()
            raise

    def _count(self) -> int:
        row = self._conn.execute(f"SELECT count(*) FROM {quote(self._table)}").fetchone()
        return int(row[0]) if row is not None else 0

    def write(self, batch: RecordBatch) -> int:
        """Queue the batch's valid rows as an Arrow table (inserted by :meth:`_flush`, at the
        latest before the file's transaction commits); returns how many."""
        if self._unique:
            self._reject_existing(batch)
        arrow = self._sink.to_arrow(batch, self._fields, self._file_id, self._schema)
        n = int(arrow.num_rows)
        if n == 0:
            return 0
        self._pending.append(arrow)
        self._pending_rows += n
        self._written += n
        if self._pending_rows >= FLUSH_ROWS:
            self._flush()
        return n

    def _reject_existing(self, batch: RecordBatch) -> None:
        """Reject the batch's rows whose primaryKey / unique value is already in the table
        (the rows queued by this file are not: the file's own keys are distinct)."""
        import duckdb
        import pyarrow as pa

        kinds = dict(self._fields)
        cols = sorted({c for key, _ in self._unique for c in key})
        n = batch.num_rows
        arrays = [pa.array(batch.column(c), type=_arrow_type(kinds.get(c, "string")))
                  for c in cols]
        keys = pa.table([*arrays, pa.array(range(n), type=pa.int64())],
                        names=[*cols, "_tc_row"])
        if batch.num_rejected:
            keys = keys.filter(pa.array([not batch.is_rejected(i) for i in range(n)],
                                        type=pa.bool_()))
        found: dict[int, tuple[str | None, str, str]] = {}
        try:
            self._conn.register("_tc_keys", keys)
            try:
                for key, rule in self._unique:
                    match = " AND ".join(
                        f"t.{quote(k)} = CAST(a.{quote(k)} AS "
                        f"{DUCK_TYPES.get(kinds.get(k, 'string'), 'VARCHAR')})" for k in key)
                    shown = ", ".join(f"CAST(a.{quote(k)} AS VARCHAR)" for k in key)
                    rows = self._conn.execute(
                        f"SELECT a._tc_row, {shown} FROM _tc_keys a WHERE EXISTS "
                        f"(SELECT 1 FROM {quote(self._table)} t WHERE {match}) ORDER BY 1"
                    ).fetchall()
                    for r in rows:
                        found.setdefault(int(r[0]), (
                            key[0] if len(key) == 1 else None, rule,
                            modes.key_reason(key, rule, [str(v) for v in r[1:]],
                                             "already in the table")))
            finally:
                self._conn.unregister("_tc_keys")
        except duckdb.Error as exc:
            raise sink_error(exc, f"cannot check keys of {self._table!r}") from exc
        for row, (column, rule, reason) in sorted(found.items()):
            batch.reject(row, column, rule, reason)

    def _flush(self) -> None:
        """Insert the queued rows with one ``INSERT ... SELECT`` (``ON CONFLICT`` to merge)."""
        import duckdb
        import pyarrow as pa

        if not self._pending:
            return
        pending, self._pending, self._pending_rows = self._pending, [], 0
        arrow = pending[0] if len(pending) == 1 else pa.concat_tables(pending)
        names = [n for n, _ in self._fields] + [FILE_ID_COLUMN]
        cols = ", ".join(quote(n) for n in names)
        sql = f"INSERT INTO {quote(self._table)} ({cols}) SELECT {cols} FROM _tc_batch"
        if self._keys:
            updates = ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in names
                                if n not in self._keys)
            keys = ", ".join(quote(k) for k in self._keys)
            sql += f" ON CONFLICT ({keys}) DO UPDATE SET {updates}"
        try:
            self._conn.register("_tc_batch", arrow)
            try:
                self._conn.execute(sql)
            finally:
                self._conn.unregister("_tc_batch")
        except duckdb.Error as exc:
            raise sink_error(exc, f"insert into {self._table!r} failed") from exc

    def counts(self) -> tuple[int, int]:
        """(rows inserted, rows updated) by this file so far."""
        if not self._keys:
            return self._written, 0
        self._flush()
        inserted = self._count() - self._before
        return inserted, self._written - inserted

    def commit(self) -> None:
        import duckdb

        try:
            self._flush()
            self._conn.commit()
        except duckdb.Error as exc:
            self.rollback()
            raise sink_error(exc, "commit failed") from exc

    def rollback(self) -> None:
        import duckdb

        self._pending, self._pending_rows = [], 0
        try:
            self._conn.rollback()
        except duckdb.TransactionException:
            pass  # no transaction is open (it ended with an error already)


class DuckDbSink:
    """A DuckDB database file.

    Raises:
        ConfigError: duckdb or pyarrow is not installed (``pip install 'tallyclerk[duckdb]'``).
    """

    write_modes = modes.MODES
    # rows whose primaryKey / unique value is already in the table become rejected rows
    checks_unique = True
    stores_nan = True  # a double column keeps NaN (validation lets it through)
    stores_big_int = True  # a big integer field's column holds 128 bits

    def __init__(self, path: str, *, options: Mapping[str, Any] | None = None) -> None:
        try:
            import duckdb
            import pyarrow  # noqa: F401
        except ImportError:
            raise ConfigError(
                "--into duckdb:/// needs duckdb and pyarrow: pip install 'tallyclerk[duckdb]'"
            ) from None
        self.path = path
        self.url = PREFIX + path
        self._options = dict(options or {})
        try:
            self.conn = duckdb.connect(path)
            # a SET, not connect(config=...): DuckDB refuses a second connection to the file
            # in this process (tallyclerk.settle's) whose configuration differs
            self.conn.execute(f"SET threads = {int(_duckdb_threads())}")
            self.conn.execute("SET enable_progress_bar = false")  # never on our stderr
        except duckdb.Error as exc:
            raise sink_error(exc, f"cannot open DuckDB database {path}") from exc
        self._target: tuple[str, TableSchema] | None = None
        self._keys: tuple[str, ...] = ()

    def prepare(self, table: str, schema: TableSchema) -> None:
        self._target = (table, schema)
        self._keys = modes.resolve(self._options, schema).primary_key

    def begin_file(self, claim: FileClaim) -> DuckDbFileWrite:
        if self._target is None:
            raise RuntimeError("DuckDbSink.prepare() must be called before begin_file()")
        table, schema = self._target
        return DuckDbFileWrite(self, table, schema, claim.file_id, self._keys)

    def create_table(self, table: str, fields: Sequence[tuple[str, str]]) -> None:
        """CREATE TABLE IF NOT EXISTS (in the caller's transaction); an existing table must
        have every column."""
        defs = [f"{quote(n)} {DUCK_TYPES.get(t, 'VARCHAR')}" for n, t in fields]
        defs.append(f"{quote(FILE_ID_COLUMN)} BIGINT")
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS {quote(table)} ({', '.join(defs)})")
        have = {r[0] for r in self.conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
        ).fetchall()}
        missing = [n for n, _ in fields if n not in have]
        if missing:
            raise SinkError(f"table {table!r} already exists without the columns {missing}")

    def to_arrow(
        self, batch: RecordBatch, fields: Sequence[tuple[str, str]], file_id: int,
        schema: TableSchema | None = None,
    ) -> Any:
        """The batch's valid rows as an Arrow table with the table's columns (a field the batch
        lacks is NULL; datetimes stay ISO text, cast by DuckDB on insert).

        Built in Rust (:meth:`RecordBatch.arrow_rows`, imported by pyarrow through the Arrow
        C Data Interface without copying) when ``schema`` is given and the batch's columns
        hold the values its fields produce (a validated batch); from Python lists otherwise.
        """
        import pyarrow as pa

        if schema is not None:
            rows = batch.arrow_rows(schema, (FILE_ID_COLUMN, file_id))
            if rows is not None:
                return pa.Table.from_batches([pa.record_batch(rows)])
        n = batch.num_rows
        present = set(batch.columns)
        arrays: list[Any] = []
        names: list[str] = []
        for name, kind in fields:
            if name in present:
                values = pa.array(batch.column(name), type=_arrow_type(kind))
                if kind == "date":
                    values = values.cast(pa.date32())  # validated YYYY-MM-DD: Arrow parses it
                arrays.append(values)
            else:
                arrays.append(pa.nulls(n, type=pa.string()))
            names.append(name)
        arrays.append(pa.array([file_id] * n, type=pa.int64()) if n else pa.array([], pa.int64()))
        names.append(FILE_ID_COLUMN)
        table = pa.table(arrays, names=names)
        if batch.num_rejected:
            keep = [not batch.is_rejected(i) for i in range(n)]
            table = table.filter(pa.array(keep, type=pa.bool_()))
        return table

    def swap_table(
        self, shadow: str, table: str, in_txn: Callable[[SqlExecutor | None], None]
    ) -> None:
        """In one transaction: drop ``table``, rename ``shadow`` to it, run ``in_txn`` (the
        manifest update; the audit store is another database, so its executor is unused)."""
        import duckdb

        try:
            self.conn.begin()
            if self._target is not None and self._target[0] == shadow:
                fields = duck_fields(self._target[1])
                self.create_table(shadow, fields)
            self.conn.execute(f"DROP TABLE IF EXISTS {quote(table)}")
            self.conn.execute(f"ALTER TABLE {quote(shadow)} RENAME TO {quote(table)}")
            in_txn(DuckDbExecutor(self.conn))
            self.conn.commit()
        except duckdb.Error as exc:
            self._rollback()
            raise sink_error(exc, f"cannot replace table {table!r}") from exc
        except BaseException:
            self._rollback()
            raise

    def drop_table(self, name: str) -> None:
        import duckdb

        try:
            self.conn.execute(f"DROP TABLE IF EXISTS {quote(name)}")
        except duckdb.Error as exc:
            raise sink_error(exc, f"cannot drop table {name!r}") from exc

    def _rollback(self) -> None:
        import duckdb

        try:
            self.conn.rollback()
        except duckdb.TransactionException:
            pass  # no transaction is open

    def close(self) -> None:
        self.conn.close()


def _duckdb_threads() -> int:
    """DuckDB's worker threads: one core fewer than the process may use (the reader thread,
    parsing and validating, keeps one busy; with every core DuckDB's inserts spent about twice
    the CPU on lock contention for no gain: see benches/README.md), at least one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def _arrow_type(kind: str) -> Any:
    """The Arrow type of a Table Schema type's values in a record batch."""
    import pyarrow as pa

    return {"integer": pa.int64(), "year": pa.int64(), "number": pa.float64(),
            "boolean": pa.bool_()}.get(
        kind, pa.string())


@hookimpl(trylast=True)
def tallyclerk_open_sink(url: str, options: Mapping[str, Any]) -> DuckDbSink | None:
    """Open ``duckdb:///PATH``."""
    path = duckdb_path(url)
    if path is None:
        return None
    return DuckDbSink(path, options=options)
