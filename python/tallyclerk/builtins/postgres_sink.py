"""The PostgreSQL fast path: each record batch goes to the target table with ``COPY FROM STDIN``.

Claims ``postgresql://``, ``postgresql+psycopg://`` and ``postgres://`` URLs (``tryfirst``, so it
answers before the generic SQLAlchemy sink). Uses psycopg 3 directly, one connection per sink:

* identifiers (table and column names, which come from users and data) are composed with
  :mod:`psycopg.sql` only, never formatted into SQL text;
* the target table is created from the Table Schema (``string`` text, ``integer`` bigint,
  ``number`` double precision, ``boolean``, ``date``, ``datetime`` timestamptz) plus
  ``_tc_file_id BIGINT``, inside the file's transaction (a file that fails leaves no table
  behind). Concurrent workers creating the same table are serialized by a transaction-scoped
  advisory lock, taken only while the table is missing;
* the rows go as COPY text encoded by the Rust core (:meth:`RecordBatch.copy_text`, detached
  from the interpreter), UTF-8 bytes as they are when the client encoding is UTF-8;
* one transaction per file. The connection is the file's
  :class:`~tallyclerk.protocols.SqlExecutor` (``%s`` parameters), so when the audit store is
  the same database, the rows, the rejects and the fenced manifest update commit together;
* timeouts: ``connect_timeout_s`` is libpq's ``connect_timeout``; ``read_timeout_s`` is the
  server's ``statement_timeout`` for every statement (one COPY per record batch). The session
  time zone is UTC, so a datetime without a zone is read as UTC.

Write modes (:mod:`tallyclerk.modes`): ``merge`` creates a unique index on the key (in the
file's transaction, under the advisory lock), COPYs the file's rows into a temporary table
(``ON COMMIT DROP``) and, once the file is read, moves them with one
``INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE ... RETURNING (xmax = 0)``: the rows that
come back true were inserted, the others updated. ``replace``: :meth:`PostgresSink.swap_table`
drops the table and renames the shadow table in one transaction.

Errors become :class:`~tallyclerk.errors.SinkError` with the password masked, ``transient`` for
serialization failures, deadlocks, lock or statement timeouts and lost connections.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from tallyclerk import modes
from tallyclerk.dburl import mask_secrets, parse_url
from tallyclerk.errors import ConfigError, SinkError
from tallyclerk.hookspecs import hookimpl
from tallyclerk.settings import settings_of

if TYPE_CHECKING:
    import psycopg

    from tallyclerk._core import RecordBatch, TableSchema
    from tallyclerk.audit import FileClaim
    from tallyclerk.protocols import SqlExecutor

__all__ = ["PostgresFileWrite", "PostgresSink", "tallyclerk_open_sink"]

log = logging.getLogger("tallyclerk.sink.postgres")

FILE_ID_COLUMN = "_tc_file_id"
_SCHEMES = ("postgresql://", "postgresql+psycopg://", "postgres://")
STAGE_TABLE = "_tc_merge_stage"
UNIQUE_STAGE = "_tc_unique_stage"
ROW_COLUMN = "_tc_row"

PG_TYPES: Mapping[str, str] = {
    "string": "text",
    "integer": "bigint",
    "year": "bigint",
    "number": "double precision",
    "boolean": "boolean",
    "date": "date",
    "datetime": "timestamptz",
}



def pg_type(field: Mapping[str, Any]) -> str:
    """The column type of a ``TableSchema.fields()`` dict: ``numeric`` for a big integer
    field (a bound beyond 64 bits), else :data:`PG_TYPES` (``text`` for the others)."""
    if field.get("big"):
        return "numeric"
    return PG_TYPES.get(str(field["type"]), "text")


def claims_url(url: str) -> bool:
    """Whether ``url`` is a PostgreSQL URL this sink handles."""
    return isinstance(url, str) and url.startswith(_SCHEMES)


def sink_error(exc: BaseException, action: str) -> SinkError:
    """A psycopg error as a :class:`SinkError`, transient when retrying the file may help."""
    from tallyclerk.dberrors import is_transient

    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return SinkError(mask_secrets(f"{action}: {text}"),
                     transient=is_transient(exc))


def connect_kwargs(url: str, settings: Any) -> dict[str, Any]:
    """psycopg ``connect()`` arguments for a tallyclerk PostgreSQL URL and the settings."""
    db = parse_url(url)
    u = db.url
    kwargs: dict[str, Any] = {
        key: value
        for key, value in (
            ("host", u.host),
            ("port", u.port),
            ("user", u.username),
            ("password", u.password),
            ("dbname", u.database),
        )
        if value is not None
    }
    for key, value in u.query.items():
        kwargs[key] = value if isinstance(value, str) else value[-1]
    s = settings_of(settings)
    connect_s, read_s = s.connect_timeout_s, s.read_timeout_s
    kwargs["connect_timeout"] = max(1, round(connect_s))
    options = [str(kwargs.pop("options", "")).strip(), "-c timezone=UTC"]
    if read_s > 0:
        options.append(f"-c statement_timeout={max(1, round(read_s * 1000))}")
    kwargs["options"] = " ".join(o for o in options if o)
    return kwargs


class PgExecutor:
    """The :class:`~tallyclerk.protocols.SqlExecutor` face of the file's connection (``%s``).

    ``before`` runs ahead of every statement (the file's open COPY must end first).
    """

    dialect_name = "postgresql"

    def __init__(self, conn: psycopg.Connection[Any], before: Callable[[], None]) -> None:
        self.conn = conn
        self._before = before

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._before()
        with self.conn.cursor() as cur:
            cur.execute(sql.encode(), tuple(params))
            return cur.rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        self._before()
        with self.conn.cursor() as cur:
            cur.executemany(sql.encode(), [tuple(r) for r in rows])
            return cur.rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._before()
        with self.conn.cursor() as cur:
            cur.execute(sql.encode(), tuple(params))
            return [tuple(row) for row in cur.fetchall()]


class PostgresFileWrite:
    """One file's transaction: the table created if missing, then one COPY for the file's rows.

    The COPY stays open across record batches (the server parses while the next batch is
    read and validated) and ends before any other statement runs in the transaction (the
    executor ends it) and at commit; a rollback aborts it.
    """

    def __init__(
        self,
        sink: PostgresSink,
        table: str,
        schema: TableSchema,
        file_id: int,
        keys: Sequence[str] = (),
    ) -> None:
        self._sink = sink
        self._conn = sink.connection()
        self._file_id = file_id
        self._table = table
        self._keys = tuple(keys)
        # append/replace with a primaryKey or unique fields: each batch is COPYed into a
        # temporary table, the rows whose key is already in the table are rejected, the rest
        # inserted (merge upserts by its key instead)
        self._unique = [] if keys else [(list(c), r) for c, r in schema.keys]
        self._staged = False
        self._copy_into = STAGE_TABLE if keys else UNIQUE_STAGE if self._unique else table
        self._written = 0
        self._merged: tuple[int, int] | None = None
        self._names = tuple(str(f["name"]) for f in schema.fields())
        self.executor = PgExecutor(self._conn, self._end_copy)
        self._open: ExitStack | None = None
        self._copy: Any = None
        self._copy_missing: tuple[str, ...] = ()  # the open COPY's NULL columns
        # psycopg sends bytes as they are: UTF-8 text needs a UTF-8 client encoding
        self._utf8 = self._conn.info.encoding == "utf-8"
        try:
            sink.ensure_table(self._conn, table, schema)
            sink.ensure_unique(self._conn, table, modes.unique_keys(schema, self._keys))
            if self._keys:
                sink.ensure_merge(self._conn, table, self._keys)
        except BaseException:
            self.rollback()
            raise

    def add_columns(self, fields: Sequence[Mapping[str, Any]]) -> None:
        """Add nullable columns (``TableSchema.fields()`` dicts) to the table in this
        transaction (``ADD COLUMN IF NOT EXISTS``: a worker that evolved the table first, or a
        repaired crash, already added them). Used by ``--columns evolve``."""
        import psycopg
        from psycopg import sql

        self._end_copy()
        try:
            with self._conn.cursor() as cur:
                for f in fields:
                    name = str(f["name"])
                    cur.execute(
                        sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                            sql.Identifier(self._table), sql.Identifier(name),
                            sql.SQL(pg_type(f)),  # fixed words only
                        )
                    )
                    if name not in self._names:
                        self._names = (*self._names, name)
        except psycopg.Error as exc:
            raise sink_error(exc, f"cannot add columns to {self._sink.table_label}") from exc

    def write(self, batch: RecordBatch) -> int:
        """COPY the batch's valid rows, each tagged with the file id; returns how many.

        The rows are encoded as COPY text in Rust (:meth:`RecordBatch.copy_text`). A field the
        batch lacks (a batch not validated against the schema) is NULL: such fields go after
        the batch's own in the COPY's column list, written as constants like the file id.
        """
        import psycopg
        from psycopg.copy import QueuedLibpqWriter

        present = set(batch.columns)
        missing = tuple(n for n in self._names if n not in present)
        columns = [n for n in self._names if n in present] if missing else self._names
        data = batch.copy_text(columns, (*(None for _ in missing), self._file_id))
        if not data:
            return 0
        # psycopg encodes text for the connection's encoding
        payload: bytes | str = data if self._utf8 else data.decode()
        if self._unique:
            return self._write_checked(batch, columns, missing, payload)
        try:
            if self._open is not None and missing != self._copy_missing:
                self._end_copy()  # other columns than the open COPY's: a COPY of their own
            if self._open is None:
                stack = ExitStack()
                cur = stack.enter_context(self._conn.cursor())
                self._copy = stack.enter_context(
                    cur.copy(self._copy_sql(columns, missing), writer=QueuedLibpqWriter(cur))
                )
                self._open, self._copy_missing = stack, missing
            self._copy.write(payload)
        except psycopg.Error as exc:
            self._abort_copy()
            raise sink_error(exc, f"COPY into {self._sink.table_label} failed") from exc
        self._written += batch.num_valid
        return batch.num_valid

    def _write_checked(self, batch: RecordBatch, columns: Sequence[str],
                       missing: Sequence[str], payload: bytes | str) -> int:
        """COPY the batch into the temporary stage (numbered in COPY order), reject the rows
        whose key is already in the table, insert the others; returns rows inserted."""
        import psycopg
        from psycopg import sql

        stage, table = sql.Identifier(UNIQUE_STAGE), sql.Identifier(self._table)
        names = [*columns, *missing, FILE_ID_COLUMN]
        cols = sql.SQL(", ").join(sql.Identifier(n) for n in names)
        try:
            with self._conn.cursor() as cur:
                if not self._staged:
                    cur.execute(sql.SQL(
                        "CREATE TEMPORARY TABLE IF NOT EXISTS {} (LIKE {}, {} bigserial) "
                        "ON COMMIT DROP").format(stage, table, sql.Identifier(ROW_COLUMN)))
                    self._staged = True
                cur.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(stage))
                with cur.copy(self._copy_sql(columns, missing)) as cp:
                    cp.write(payload)
                found: dict[int, tuple[str | None, str, str]] = {}  # the first verdict wins
                for key, rule in self._unique:
                    match = sql.SQL(" AND ").join(
                        sql.SQL("t.{k} = s.{k}").format(k=sql.Identifier(k)) for k in key)
                    shown = sql.SQL(", ").join(
                        sql.SQL("s.{}::text").format(sql.Identifier(k)) for k in key)
                    cur.execute(sql.SQL(
                        "SELECT s.{row}, {shown} FROM {stage} s WHERE EXISTS "
                        "(SELECT 1 FROM {table} t WHERE {match}) ORDER BY 1").format(
                            row=sql.Identifier(ROW_COLUMN), shown=shown, stage=stage,
                            table=table, match=match))
                    for rec in cur.fetchall():
                        found.setdefault(int(rec[0]), (
                            key[0] if len(key) == 1 else None, rule,
                            modes.key_reason(key, rule, [str(v) for v in rec[1:]],
                                             "already in the table")))
                if found:
                    # COPY numbered the batch's valid rows 1, 2, ... in order
                    valid = [i for i in range(batch.num_rows) if not batch.is_rejected(i)]
                    for row, (column, rule, reason) in sorted(found.items()):
                        batch.reject(valid[row - 1], column, rule, reason)
                    cur.execute(sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(
                        stage, sql.Identifier(ROW_COLUMN)), (sorted(found),))
                cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                    table, cols, cols, stage))
                inserted = cur.rowcount
        except psycopg.Error as exc:
            raise sink_error(exc, f"COPY into {self._sink.table_label} failed") from exc
        self._written += inserted
        return int(inserted)

    def counts(self) -> tuple[int, int]:
        """(rows inserted, rows updated): a merge moves its staged rows into the table now."""
        if not self._keys:
            return self._written, 0
        if self._merged is None:
            self._merged = self._merge()
        return self._merged

    def _merge(self) -> tuple[int, int]:
        """``INSERT ... SELECT`` the staged rows ``ON CONFLICT (key) DO UPDATE``; the staging
        table is emptied (a later batch stages again)."""
        import psycopg
        from psycopg import sql

        self._end_copy()
        names = [*self._names, FILE_ID_COLUMN]
        cols = sql.SQL(", ").join(sql.Identifier(n) for n in names)
        updates = sql.SQL(", ").join(
            sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(n), sql.Identifier(n))
            for n in names
            if n not in self._keys
        )
        stmt = sql.SQL(
            "WITH up AS (INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} "
            "ON CONFLICT ({keys}) DO UPDATE SET {updates} RETURNING (xmax = 0) AS inserted) "
            "SELECT count(*) FILTER (WHERE inserted), count(*) FROM up"
        ).format(
            table=sql.Identifier(self._table),
            cols=cols,
            stage=sql.Identifier(STAGE_TABLE),
            keys=sql.SQL(", ").join(sql.Identifier(k) for k in self._keys),
            updates=updates,
        )
        try:
            with self._conn.cursor() as cur:
                cur.execute(stmt)
                row = cur.fetchone()
                cur.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(STAGE_TABLE)))
        except psycopg.Error as exc:
            raise sink_error(exc, f"merge into {self._sink.table_label} failed") from exc
        inserted, total = (int(row[0]), int(row[1])) if row is not None else (0, 0)
        return inserted, total - inserted

    def _copy_sql(self, columns: Sequence[str], missing: Sequence[str]) -> psycopg.sql.Composed:
        """``COPY table (columns..., missing..., _tc_file_id) FROM STDIN``, names quoted."""
        from psycopg import sql

        names = sql.SQL(", ").join(
            sql.Identifier(name) for name in [*columns, *missing, FILE_ID_COLUMN]
        )
        return sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(self._copy_into), names)

    def _end_copy(self) -> None:
        """End the open COPY (the server reports bad data here)."""
        import psycopg

        stack, self._open, self._copy = self._open, None, None
        if stack is None:
            return
        try:
            stack.close()
        except psycopg.Error as exc:
            raise sink_error(exc, f"COPY into {self._sink.table_label} failed") from exc

    def _abort_copy(self) -> None:
        import psycopg

        stack, self._open, self._copy = self._open, None, None
        if stack is None:
            return
        reason = SinkError("the file's transaction is rolled back")
        try:
            stack.__exit__(SinkError, reason, None)
        except (psycopg.Error, SinkError) as exc:
            log.debug("COPY aborted: %s", mask_secrets(str(exc)))

    def commit(self) -> None:
        import psycopg

        if self._keys and self._merged is None:
            self._merged = self._merge()
        self._end_copy()
        try:
            self._conn.commit()
        except psycopg.Error as exc:
            self._sink.discard()
            raise sink_error(exc, "commit failed") from exc

    def rollback(self) -> None:
        import psycopg

        self._abort_copy()
        try:
            self._conn.rollback()
        except psycopg.Error as exc:
            log.warning("rollback failed (%s); the connection is dropped", mask_secrets(str(exc)))
            self._sink.discard()


class PostgresSink:
    """A PostgreSQL database written with COPY through one psycopg 3 connection.

    Args:
        url: ``postgresql://``, ``postgresql+psycopg://`` or ``postgres://``.
        settings: a :class:`tallyclerk.settings.Settings` (timeouts).

    Raises:
        ConfigError: psycopg is not installed, or the URL is not a usable PostgreSQL URL.
    """

    write_modes = modes.MODES
    # rows whose primaryKey / unique value is already in the table become rejected rows
    checks_unique = True
    stores_nan = True  # a double column keeps NaN (validation lets it through)
    stores_big_int = True  # a big integer field's column holds 128 bits

    def __init__(
        self, url: str, *, settings: Any = None, options: Mapping[str, Any] | None = None
    ) -> None:
        self._options = dict(options or {})
        self._keys: tuple[str, ...] = ()
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ConfigError(
                "--into postgresql:// needs psycopg 3: pip install 'tallyclerk[postgres]'"
            ) from None
        self.url = parse_url(url).masked
        self._kwargs = connect_kwargs(url, settings)
        self._conn: psycopg.Connection[Any] | None = None
        self._target: tuple[str, TableSchema] | None = None
        self._ready: set[str] = set()
        self.table_label = "?"

    def connection(self) -> psycopg.Connection[Any]:
        """The sink's connection (opened on first use, again after it was lost)."""
        import psycopg

        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        self.discard()
        try:
            conn = psycopg.connect(**self._kwargs)
        except psycopg.Error as exc:
            raise sink_error(exc, f"cannot connect to {self.url}") from exc
        self._conn = conn
        self._ready.clear()
        return conn

    def discard(self) -> None:
        """Close the connection (a new one is opened by the next file)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def prepare(self, table: str, schema: TableSchema) -> None:
        """Name the target; the table is created (if missing) in each file's transaction."""
        self._target = (table, schema)
        self.table_label = repr(table)
        self._keys = modes.resolve(self._options, schema).primary_key

    def begin_file(self, claim: FileClaim) -> PostgresFileWrite:
        if self._target is None:
            raise RuntimeError("PostgresSink.prepare() must be called before begin_file()")
        table, schema = self._target
        return PostgresFileWrite(self, table, schema, claim.file_id, self._keys)

    def ensure_unique(
        self, conn: psycopg.Connection[Any], table: str, keys: Sequence[Sequence[str]]
    ) -> None:
        """In the file's transaction: a unique index on each of ``keys`` (the schema's
        ``primaryKey`` and ``unique`` fields, the merge key), serialized like table creation.
        A table already holding duplicates cannot take it: the file fails, saying so."""
        import psycopg
        from psycopg import sql

        if not keys:
            return
        ident = sql.Identifier(table).as_string(conn)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", ("tallyclerk:table:" + ident,)
                )
                for key in keys:
                    cur.execute(
                        sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({})").format(
                            sql.Identifier(modes.key_index_name(table, key)),
                            sql.Identifier(table),
                            sql.SQL(", ").join(sql.Identifier(k) for k in key),
                        )
                    )
        except psycopg.Error as exc:
            raise sink_error(exc, f"cannot create the unique indexes of {table!r}") from exc

    def ensure_merge(self, conn: psycopg.Connection[Any], table: str, keys: Sequence[str]) -> None:
        """In the file's transaction: the unique index on ``keys`` (serialized like table
        creation) and the temporary staging table the file's COPY goes to."""
        import psycopg
        from psycopg import sql

        ident = sql.Identifier(table).as_string(conn)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", ("tallyclerk:table:" + ident,)
                )
                cur.execute(
                    sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({})").format(
                        sql.Identifier(modes.key_index_name(table, keys)),
                        sql.Identifier(table),
                        sql.SQL(", ").join(sql.Identifier(k) for k in keys),
                    )
                )
                cur.execute(
                    sql.SQL(
                        "CREATE TEMPORARY TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DROP"
                    ).format(sql.Identifier(STAGE_TABLE), sql.Identifier(table))
                )
        except psycopg.Error as exc:
            raise sink_error(exc, f"cannot prepare the merge into {table!r}") from exc

    def swap_table(
        self, shadow: str, table: str, in_txn: Callable[[SqlExecutor | None], None]
    ) -> None:
        """In one transaction: drop ``table``, rename ``shadow`` to it, run ``in_txn`` (the
        manifest update) with this transaction's executor, commit."""
        import psycopg
        from psycopg import sql

        conn = self.connection()
        try:
            if self._target is not None and self._target[0] == shadow:
                self.ensure_table(conn, shadow, self._target[1])
            with conn.cursor() as cur:
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
                cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                    sql.Identifier(shadow), sql.Identifier(table)))
            in_txn(PgExecutor(conn, lambda: None))
            conn.commit()
        except psycopg.Error as exc:
            self._rollback(conn)
            raise sink_error(exc, f"cannot replace table {table!r}") from exc
        except BaseException:
            self._rollback(conn)
            raise
        self._ready.clear()

    def drop_table(self, name: str) -> None:
        """Drop a table if it exists (an abandoned replace's shadow), in its own transaction."""
        import psycopg
        from psycopg import sql

        conn = self.connection()
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
            conn.commit()
        except psycopg.Error as exc:
            self._rollback(conn)
            raise sink_error(exc, f"cannot drop table {name!r}") from exc
        self._ready.discard(name)

    def _rollback(self, conn: psycopg.Connection[Any]) -> None:
        import psycopg

        try:
            conn.rollback()
        except psycopg.Error as exc:
            log.warning("rollback failed (%s); the connection is dropped", mask_secrets(str(exc)))
            self.discard()

    def ensure_table(self, conn: psycopg.Connection[Any], table: str, schema: TableSchema) -> None:
        """Create ``table`` in the open transaction unless it exists.

        ``CREATE TABLE IF NOT EXISTS`` is not safe against a concurrent creator, so while the
        table is missing a transaction-scoped advisory lock on its name serializes the
        creators; the lock is not taken once the table exists.
        """
        import psycopg
        from psycopg import sql

        if table in self._ready:
            return
        ident = sql.Identifier(table).as_string(conn)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT to_regclass(%s) IS NOT NULL", (ident,))
                found = cur.fetchone()
                if found is not None and found[0]:
                    # a table created before the sinks indexed _tc_file_id gets the index now
                    # (in this transaction: a rollback drops it again, so only an index found
                    # in place marks the table ready)
                    if self._ensure_file_id_index(conn, cur, table):
                        self._ready.add(table)
                    return
                cur.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", ("tallyclerk:table:" + ident,)
                )
                columns = [
                    sql.SQL("{} {}").format(
                        sql.Identifier(str(f["name"])),
                        sql.SQL(pg_type(f)),  # fixed words only
                    )
                    for f in schema.fields()
                ]
                columns.append(sql.SQL("{} bigint").format(sql.Identifier(FILE_ID_COLUMN)))
                cur.execute(
                    sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                        sql.Identifier(table), sql.SQL(", ").join(columns)
                    )
                )
                cur.execute(
                    sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                        sql.Identifier(modes.file_id_index_name(table)), sql.Identifier(table),
                        sql.Identifier(FILE_ID_COLUMN),
                    )
                )
        except psycopg.Error as exc:
            raise sink_error(exc, f"cannot create table {table!r}") from exc
        # not added to _ready: a rollback of this file drops the table again

    @staticmethod
    def _ensure_file_id_index(conn: psycopg.Connection[Any], cur: psycopg.Cursor[Any],
                              table: str) -> bool:
        """True if the index on ``table``'s ``_tc_file_id`` was already there; else create it
        (serialized with other creators by the table's advisory lock) and return False."""
        from psycopg import sql

        ident = sql.Identifier(table).as_string(conn)
        index = modes.file_id_index_name(table)
        cur.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = to_regclass(%s) AND c.relname = %s)", (ident, index))
        found = cur.fetchone()
        if found is not None and found[0]:
            return True
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("tallyclerk:table:" + ident,))
        cur.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                sql.Identifier(index), sql.Identifier(table), sql.Identifier(FILE_ID_COLUMN),
            )
        )
        return False

    def close(self) -> None:
        self.discard()


@hookimpl(trylast=True)
def tallyclerk_open_sink(url: str, options: Mapping[str, Any]) -> PostgresSink | None:
    """Open ``postgresql://`` (and ``postgresql+psycopg://``, ``postgres://``) URLs with COPY."""
    if not claims_url(url):
        return None
    return PostgresSink(url, settings=options.get("settings"), options=options)
