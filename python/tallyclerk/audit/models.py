"""The audit store's tables: batches, the file manifest, rejects, events, and the schema version.

SQLAlchemy Core ``Table`` objects on one :data:`metadata` (no ORM: importing
``sqlalchemy.orm`` cost about 60 ms of every start, issue 16.1), every table prefixed
``tallyclerk_``. Rows read back are the named tuples of :mod:`tallyclerk.audit.rows`. The
tables are dialect-neutral (SQLite and PostgreSQL):

* timestamps are timezone-aware UTC datetimes in Python (:class:`UTCDateTime`): PostgreSQL
  stores ``timestamptz``; SQLite stores integer microseconds since the Unix epoch (sortable,
  exact, cheap to write in bulk; ``datetime(col / 1e6, 'unixepoch')`` shows one in the shell);
* JSON (batch options, event payloads) is text serialized with orjson (:class:`JSONText`).

``tallyclerk_schemas`` keeps every version of each target table's Table Schema (the one it was
first loaded with, then each evolution); a manifest row names the version its file was checked
against (``schema_version``) and what the column contract did to its columns
(``column_changes``: ``{"added": [...], "dropped": [...], "missing": [...]}``).

Manifest statuses (``tallyclerk_files.status``):

``pending``   registered, not yet claimed (reserved for work lists of many workers);
``loading``   claimed by a worker (``owner``, ``claim_token``, ``lease_expires_at``);
``loaded``    its rows are in the target table, tagged ``_tc_file_id = id``;
``failed``    the load failed or was interrupted; its rows, if any survived, are deleted by the
              next claim of the same content (``cleaned_by`` then names that claim);
``skipped``   the content was already loaded (or was being loaded) by ``earlier_batch_id``;
``replaced``  was ``loaded``, then superseded by a forced reload (``cleaned_by`` names it).

At most one row per (target table, fingerprint) is ``loaded`` and at most one is ``loading``:
two partial unique indexes enforce it, so two processes racing for one file cannot both
claim or both commit it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Final

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy.sql.base import _DialectArgDict
from sqlalchemy.sql.elements import ColumnElement, TextClause
from sqlalchemy.types import TypeEngine

from tallyclerk.audit.rows import from_epoch_us, to_epoch_us

__all__ = [
    "BATCH_STATUSES",
    "FILE_STATUSES",
    "SCHEMA_VERSION",
    "JSONText",
    "PartialIndex",
    "UTCDateTime",
    "batches",
    "chain_head",
    "events",
    "files",
    "from_epoch_us",
    "metadata",
    "rejects",
    "schema_version",
    "table_schemas",
    "to_epoch_us",
]

SCHEMA_VERSION: Final = 2
"""The schema version this code writes; stored in ``tallyclerk_schema_version``.

2 (0.2.0): additive only (new columns, tables and indexes); see ``engine.add_missing``."""

BATCH_STATUSES: Final = ("running", "succeeded", "partial", "failed", "cancelled", "timed_out")
FILE_STATUSES: Final = ("pending", "loading", "loaded", "failed", "skipped", "replaced")

class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every dialect.

    PostgreSQL: ``TIMESTAMP WITH TIME ZONE``. SQLite: ``BIGINT`` microseconds since the epoch.
    Naive datetimes are refused (``ValueError``): their zone would be a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: audit timestamps must be timezone-aware")
        if dialect.name == "sqlite":
            return to_epoch_us(value)
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return value.replace(tzinfo=timezone.utc)
            return value.astimezone(timezone.utc)
        return from_epoch_us(value)


class JSONText(TypeDecorator[Any]):
    """A JSON document stored as text, serialized with orjson (same on every dialect)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return orjson.loads(value)


metadata = MetaData()
"""The audit store's tables (and, once :mod:`tallyclerk.audit.worklist` is imported, the work
list's)."""


def _sealed() -> tuple[Column[Any], Column[Any]]:
    """A ledger row's link in the hash chain (:mod:`tallyclerk.audit.chain`), NULL until the
    row is final and sealed: ``chain_hash = sha256(predecessor's hash, table, id, content)``,
    ``chain_seq`` its position in the one chain over every ledger table. Last in each table."""
    return Column("chain_seq", BigInteger), Column("chain_hash", String(64))


class PartialIndex(Index):
    """An index of the rows matching ``where``, on SQLite and on PostgreSQL.

    The predicate reaches each dialect as its ``where`` option when that dialect's compiler
    asks for it, instead of as ``sqlite_where=`` / ``postgresql_where=`` keywords: SQLAlchemy
    validates such keywords by importing the dialect's package, and PostgreSQL's (with its
    asyncpg driver and asyncio) cost about 35 ms of every SQLite process's start-up.
    """

    _partial_dialects = frozenset({"sqlite", "postgresql"})

    def __init__(self, name: str, *columns: str | Column[Any],
                 where: ColumnElement[bool] | TextClause, unique: bool = False) -> None:
        self.partial_where = where
        super().__init__(name, *columns, unique=unique)

    def _kw_reg_for_dialect_cls(  # type: ignore[override]
        self, dialect_name: str
    ) -> _DialectArgDict:
        options = super()._kw_reg_for_dialect_cls(dialect_name)
        if dialect_name in self._partial_dialects:
            options["where"] = self.partial_where
        return options


def _unsealed(table: str) -> Index:
    """A partial index of the rows not sealed yet: the sealer finds them without a scan."""
    return PartialIndex(f"ix_{table}_unsealed", "id", where=text("chain_hash IS NULL"))


def _counter(name: str, kind: type[Integer] = BigInteger, default: int = 0) -> Column[int]:
    return Column(name, kind(), nullable=False, default=default)


chain_head = Table(
    "tallyclerk_chain_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)
"""One row: the last link of the hash chain (its position and hash). Sealers lock it, so
links are appended one transaction at a time (``SELECT ... FOR UPDATE`` on PostgreSQL)."""

schema_version = Table(
    "tallyclerk_schema_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)
"""One row: the schema version of this audit store (checked at start-up)."""

batches = Table(
    "tallyclerk_batches",
    metadata,
    Column("id", String(32), primary_key=True),  # uuid4 hex
    Column("target_table", String(255), nullable=False),
    Column("status", String(16), nullable=False, index=True),  # one of BATCH_STATUSES
    Column("started_at", UTCDateTime(), nullable=False, index=True),
    Column("finished_at", UTCDateTime()),
    _counter("files_started", Integer),
    _counter("files_loaded", Integer),
    _counter("files_skipped", Integer),
    _counter("files_failed", Integer),
    _counter("rows_read"),
    _counter("rows_written"),
    _counter("rows_rejected"),
    # rows read by files that failed and were rolled back, less their rejected rows
    Column("rows_rolled_back", BigInteger, nullable=False, default=0, server_default="0"),
    _counter("bytes_read"),  # the counts come from the accumulator's final snapshot
    Column("error_class", String(255)),
    Column("error_message", Text),
    Column("timeout_kind", String(16)),  # operation | idle: the watchdog timed the batch out
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("user", String(255)),
    Column("options", JSONText(), nullable=False),
    *_sealed(),
    # the next batch on a host looks for its dead running batches: a partial index stays
    # as small as the running batches however long the ledger grows (queried with the
    # literal 'running', which is what lets SQLite's planner use it)
    PartialIndex("ix_tallyclerk_batches_running", "host", where=text("status = 'running'")),
    _unsealed("tallyclerk_batches"),
)
"""One run of the loader over a set of files into one table."""

files = Table(
    "tallyclerk_files",
    metadata,
    # also the _tc_file_id of the rows this attempt writes
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", String(32), ForeignKey("tallyclerk_batches.id"), nullable=False,
           index=True),
    Column("path", Text, nullable=False, index=True),  # as given to the loader
    Column("size", BigInteger, nullable=False),
    Column("mtime", Float, nullable=False),
    # xxh3-128:<hex>: with target_table, the identity of a file
    Column("fingerprint", String(64), nullable=False),
    Column("target_table", String(255), nullable=False),
    Column("status", String(16), nullable=False),  # one of FILE_STATUSES
    _counter("rows_read"),
    _counter("rows_written"),
    # rows that failed validation (each has a tallyclerk_rejects row, up to 10,000 for a
    # failed file)
    _counter("rows_rejected"),
    # rows of a failed file that were read, not rejected, and rolled back:
    # rows_read = rows_written + rows_rejected + rows_rolled_back
    Column("rows_rolled_back", BigInteger, nullable=False, default=0, server_default="0"),
    _counter("bytes_read"),
    Column("first_error_line", Integer),
    # of rows_written: rows new to the table (NULL for files loaded before 0.2.0)
    Column("rows_inserted", BigInteger),
    # of rows_written: existing rows a --mode merge updated (0 in other modes)
    Column("rows_updated", BigInteger),
    _counter("attempt", Integer, 1),  # 1 + the earlier claims of the same identity
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("duration_s", Float),
    Column("error", Text),
    Column("error_class", String(255)),
    Column("claim_token", String(32)),  # fencing token: the commit of a claim presents it
    Column("owner", String(255)),  # host:pid of the claiming process
    Column("lease_expires_at", UTCDateTime()),
    # skipped rows: the batch that loaded (or is loading) the same content
    Column("earlier_batch_id", String(32)),
    Column("earlier_file_id", Integer),
    # failed/replaced rows: the claim whose committed load deleted this one's rows
    Column("cleaned_by", Integer),
    # object-store/HTTP sources: the object's URL (s3://bucket/key); NULL for local files
    Column("object_url", Text),
    Column("object_etag", String(255)),  # the object's ETag (quotes removed), if given
    # the object's version (S3 VersionId, GCS generation, Azure version id), if any
    Column("object_version", String(255)),
    # the version of the table's schema (tallyclerk_schemas) this file was checked against
    Column("schema_version", Integer),
    # what the column contract did: {"added", "dropped", "missing"} lists of column names
    # (added under evolve, dropped under discard, missing: schema fields absent from the file,
    # NULL in every row); NULL when the file matched the table
    Column("column_changes", JSONText()),
    *_sealed(),
    Index("ix_tallyclerk_files_identity", "target_table", "fingerprint"),
    _unsealed("tallyclerk_files"),
    # never reuse an id: target rows carry it as _tc_file_id
    sqlite_autoincrement=True,
)
"""One attempt to load one file into one table (see the module docstring for statuses)."""
PartialIndex("uq_tallyclerk_files_loaded", files.c.target_table, files.c.fingerprint,
             unique=True, where=files.c.status == "loaded")
PartialIndex("uq_tallyclerk_files_loading", files.c.target_table, files.c.fingerprint,
             unique=True, where=files.c.status == "loading")

rejects = Table(
    "tallyclerk_rejects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_id", Integer, ForeignKey("tallyclerk_files.id"), nullable=False, index=True),
    Column("batch_id", String(32), nullable=False, index=True),
    Column("record_number", BigInteger, nullable=False),  # 1-based record number in the file
    Column("line", BigInteger, nullable=False),  # 1-based physical line where it starts
    Column("column_name", Text),
    Column("rule", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw", Text, nullable=False),
    # sensitive values were masked in raw and reason: raw is not the record as read, so the
    # row cannot be replayed from it (schema version 2)
    Column("masked", Boolean, nullable=False, default=False, server_default=false()),
    # tallyclerk replay: the batch that replayed this record (NULL: not replayed)
    Column("replayed_by_batch", String(32)),
    Column("replayed_at", UTCDateTime()),
    # the replay's file claim: the rows it loaded carry _tc_file_id = replay_file_id
    Column("replay_file_id", Integer),
    # the record's number within the replay (its new reject, if it failed again, is the
    # reject of replay_file_id with this record_number)
    Column("replay_record_number", BigInteger),
    # loaded (now in the table) or rejected (failed again: see its new reject)
    Column("replay_outcome", String(16)),
    *_sealed(),
    _unsealed("tallyclerk_rejects"),
)
"""One rejected record of one file."""

events = Table(
    "tallyclerk_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("type", String(64), nullable=False),
    # not indexed on purpose: the event log is written in bulk, read rarely
    Column("batch_id", String(32)),
    Column("file_id", Integer),
    Column("payload", JSONText()),
    Column("created_at", UTCDateTime(), nullable=False),  # when it was recorded
    Column("correlation_id", String(64)),
    *_sealed(),
    _unsealed("tallyclerk_events"),
)
"""One audit event, written behind the caller."""

table_schemas = Table(
    "tallyclerk_schemas",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("target_table", String(255), nullable=False),
    Column("version", Integer, nullable=False),  # 1, 2, ... per table
    Column("schema_json", Text, nullable=False),  # the Table Schema, as JSON text
    # sha256:<hex> of the canonical JSON (sorted keys): equal schemas, equal fingerprints
    Column("fingerprint", String(80), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("batch_id", String(32)),
    # the manifest row of the file whose load introduced this version
    Column("file_id", Integer),
    Column("reason", Text, nullable=False),
    *_sealed(),
    Index("uq_tallyclerk_schemas_version", "target_table", "version", unique=True),
    _unsealed("tallyclerk_schemas"),
)
"""One version of a target table's Table Schema: the first load's (given, inferred, or the
header's text columns), then one per evolution (``--columns evolve``, a wider ``--schema``).
Written in the transaction of the file that introduced it (when the audit store shares the
data's database), so a rolled-back file leaves no version behind."""
