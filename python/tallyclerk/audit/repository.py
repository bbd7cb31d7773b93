"""Pure database operations of the audit store, on an injected SQLAlchemy Core connection.

:class:`AuditRepository` never begins, commits or rolls back: the caller (the service's unit
of work) owns the transaction, so manifest changes can commit together with other writes.
Rows read come back as the named tuples of :mod:`tallyclerk.audit.rows` (snapshots:
re-read after a change). Every method translates database errors in one place
(:func:`~tallyclerk.audit.translate.wrap_db_errors`) into
:class:`~tallyclerk.errors.RepositoryError` subclasses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import ReturningInsert

from tallyclerk.audit.executor import SqlAlchemyExecutor
from tallyclerk.audit.models import batches, events, files
from tallyclerk.audit.models import rejects as reject_rows
from tallyclerk.audit.repo_protocol import SHADOW_LIKE, ClaimCandidate, is_candidate
from tallyclerk.audit.rows import AuditEvent, Batch, FileManifest, RejectRecord
from tallyclerk.audit.translate import wrap_db_errors
from tallyclerk.audit.types import StoredSchema

if TYPE_CHECKING:
    from tallyclerk.audit.types import RejectRow

__all__ = ["AuditRepository", "ClaimCandidate", "is_candidate"]

P = ParamSpec("P")
R = TypeVar("R")


def _translated(method: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with wrap_db_errors():
            return method(*args, **kwargs)

    return wrapper


class AuditRepository:
    """Database operations on batches, manifest rows, rejects and events.

    Args:
        connection: the connection whose transaction every operation joins (keyword-only).
    """

    def __init__(self, *, connection: Connection) -> None:
        self.connection = connection

    @property
    def dialect_name(self) -> str:
        return str(self.connection.dialect.name)

    def executor(self) -> SqlAlchemyExecutor:
        return SqlAlchemyExecutor(self.connection)

    def driver_cursor(self) -> Any:
        return self.connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

    def stream_query(self, sql: str,
                     params: Sequence[Any] = ()) -> Generator[Sequence[Any], None, None]:
        result = self.connection.execution_options(stream_results=True).exec_driver_sql(
            sql, tuple(params) if params else None)
        try:
            yield from result
        finally:
            result.close()

    # --- batches -------------------------------------------------------------------------------

    @_translated
    def add_batch(
        self,
        *,
        batch_id: str,
        target_table: str,
        started_at: datetime,
        host: str,
        pid: int,
        user: str | None,
        options: Mapping[str, Any],
    ) -> None:
        self.connection.execute(insert(batches).values(
            id=batch_id,
            target_table=target_table,
            status="running",
            started_at=started_at,
            host=host,
            pid=pid,
            user=user,
            options=dict(options),
        ))

    @_translated
    def get_batch(self, batch_id: str) -> Batch | None:
        row = self.connection.execute(select(batches).where(batches.c.id == batch_id)).first()
        return None if row is None else Batch._make(row)

    @_translated
    def latest_batch(self) -> Batch | None:
        found = self.list_batches(1)
        return found[0] if found else None

    @_translated
    def list_batches(self, limit: int = 20) -> list[Batch]:
        stmt = (select(batches).order_by(batches.c.started_at.desc(), batches.c.id.desc())
                .limit(limit))
        return [Batch._make(r) for r in self.connection.execute(stmt)]

    @_translated
    def running_batches_on_host(self, host: str) -> list[Batch]:
        """Batches still marked ``running`` that were started on ``host``."""
        # the literal (not a parameter) lets SQLite use the partial index of running batches
        running = text("tallyclerk_batches.status = 'running'")
        stmt = select(batches).where(running, batches.c.host == host)
        return [Batch._make(r) for r in self.connection.execute(stmt)]

    @_translated
    def update_batch(
        self,
        batch_id: str,
        *,
        only_if_status: str | None = None,
        only_if_unsealed: bool = False,
        **values: Any,
    ) -> int:
        """Set columns of a batch; with ``only_if_status``, only while it has that status;
        with ``only_if_unsealed``, only while it is not in the hash chain (a sealed row is
        never rewritten). Returns how many rows changed (0 or 1)."""
        stmt = update(batches).where(batches.c.id == batch_id).values(**values)
        if only_if_status is not None:
            stmt = stmt.where(batches.c.status == only_if_status)
        if only_if_unsealed:
            stmt = stmt.where(batches.c.chain_hash.is_(None))
        return _rowcount(self.connection.execute(stmt))

    # --- manifest ------------------------------------------------------------------------------

    @_translated
    def lock_identity(self, target_table: str, fingerprint: str) -> None:
        """Serialise, until the end of the transaction, the claims of one file identity.

        On PostgreSQL a transaction-scoped advisory lock: without it a claim that read no
        candidates could insert its ``loading`` row after another process claimed, loaded and
        finished the same content in between (the partial unique index on ``loading`` rows
        then no longer objects), load the file a second time and fail at its finish. SQLite
        claims already run one at a time (``BEGIN IMMEDIATE``)."""
        if self.connection.dialect.name == "postgresql":
            self.connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                                 {"key": f"tallyclerk:claim:{target_table}:{fingerprint}"})

    @_translated
    def claim_candidates(self, target_table: str, fingerprint: str) -> list[ClaimCandidate]:
        """Rows of this identity a new claim must consider, oldest first, locked for update.

        ``loading`` and ``loaded`` rows, and ``failed`` rows not yet cleaned (their rows may
        still be in the target table when data and audit live in different databases).
        """
        params = {"table": target_table, "fingerprint": fingerprint}
        return _candidates(self.connection.execute(_candidate_stmt(), params))

    @_translated
    def claim_history(self, target_table: str, fingerprint: str) -> list[ClaimCandidate]:
        """Every earlier claim of this identity (every row except ``skipped`` and
        ``pending``), oldest first, locked for update: its claim candidates and, by their
        number, its attempts, in one query (issue 16.4)."""
        params = {"table": target_table, "fingerprint": fingerprint}
        return _candidates(self.connection.execute(_history_stmt(), params))

    @_translated
    def claim_history_of(
        self, target_table: str, fingerprints: Sequence[str]
    ) -> list[ClaimCandidate]:
        """:meth:`claim_history` of several identities in one query, oldest first."""
        params = {"table": target_table, "fingerprints": list(fingerprints)}
        return _candidates(self.connection.execute(_histories_stmt(), params))

    @_translated
    def count_attempts(self, target_table: str, fingerprint: str) -> int:
        """Earlier claims of this identity (every row except ``skipped`` and ``pending``)."""
        params = {"table": target_table, "fingerprint": fingerprint}
        return int(self.connection.execute(_attempts_stmt(), params).scalar() or 0)

    @_translated
    def add_file(self, **values: Any) -> FileManifest:
        """Insert a manifest row and return it as stored (with its id and defaults)."""
        (file_id,) = self.add_files([values])
        row = self.get_file(file_id)
        assert row is not None
        return row

    @_translated
    def add_files(self, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Insert manifest rows in one statement; their ids, in the order of ``rows``."""
        if not rows:
            return []
        conn = self.connection
        if len(rows) == 1:  # a claim's row: one plain INSERT, not the executemany machinery
            return [int(conn.execute(_insert_file_stmt(), dict(rows[0])).scalar_one())]
        ids = conn.execute(_insert_files_stmt(), [dict(r) for r in rows]).scalars()
        return [int(i) for i in ids]

    @_translated
    def get_file(self, file_id: int) -> FileManifest | None:
        row = self.connection.execute(select(files).where(files.c.id == file_id)).first()
        return None if row is None else FileManifest._make(row)

    @_translated
    def fail_loading_file(
        self, file_id: int, *, error: str, error_class: str, finished_at: datetime
    ) -> bool:
        """Mark a ``loading`` row ``failed`` (no-op, returning False, if it is not loading)."""
        stmt = (
            update(files)
            .where(files.c.id == file_id, files.c.status == "loading")
            .values(
                status="failed",
                error=error,
                error_class=error_class,
                finished_at=finished_at,
                lease_expires_at=None,
            )
        )
        return _rowcount(self.connection.execute(stmt)) == 1

    @_translated
    def release_batch_files(
        self, batch_id: str, *, error: str, error_class: str, finished_at: datetime,
        keep: Sequence[int] = (),
    ) -> list[int]:
        """Mark every ``loading`` row of a batch ``failed`` (but the ids in ``keep``: claims
        taken ahead and not started, see :meth:`drop_unstarted_claims`); returns their ids."""
        kept = set(keep)
        ids = [
            int(i) for i in self.connection.execute(
                select(files.c.id).where(files.c.batch_id == batch_id, files.c.status == "loading")
            ).scalars()
            if int(i) not in kept
        ]
        if ids:
            self.connection.execute(
                update(files)
                .where(files.c.id.in_(ids), files.c.status == "loading")
                .values(
                    status="failed",
                    error=error,
                    error_class=error_class,
                    finished_at=finished_at,
                    lease_expires_at=None,
                )
            )
        return ids

    @_translated
    def drop_unstarted_claims(self, claims: Sequence[tuple[int, str]]) -> int:
        """Delete ``loading`` rows, each fenced by its (id, claim token): claims taken ahead
        for files the batch never started (no row, reject or event names them; a row still
        ``loading`` is never sealed into the hash chain). Returns how many."""
        deleted = 0
        for file_id, token in claims:
            deleted += _rowcount(self.connection.execute(
                delete(files)
                .where(files.c.id == file_id, files.c.claim_token == token,
                       files.c.status == "loading")))
        return deleted

    @_translated
    def renew_leases(self, batch_id: str, *, owner: str, until: datetime) -> int:
        """Extend the lease of this batch's ``loading`` rows held by ``owner``."""
        stmt = (
            update(files)
            .where(
                files.c.batch_id == batch_id,
                files.c.status == "loading",
                files.c.owner == owner,
            )
            .values(lease_expires_at=until)
        )
        return _rowcount(self.connection.execute(stmt))

    @_translated
    def files_of_batch(self, batch_id: str) -> list[FileManifest]:
        stmt = select(files).where(files.c.batch_id == batch_id).order_by(files.c.id)
        return [FileManifest._make(r) for r in self.connection.execute(stmt)]

    @_translated
    def file_status_counts(self, batch_id: str) -> dict[str, int]:
        """How many manifest rows of the batch have each status."""
        stmt = (select(files.c.status, func.count()).where(files.c.batch_id == batch_id)
                .group_by(files.c.status))
        return {str(status): int(n) for status, n in self.connection.execute(stmt)}

    @_translated
    def files_of_identity(self, target_table: str, fingerprint: str) -> list[FileManifest]:
        stmt = (
            select(files)
            .where(files.c.target_table == target_table)
            .where(files.c.fingerprint == fingerprint)
            .order_by(files.c.id)
        )
        return [FileManifest._make(r) for r in self.connection.execute(stmt)]

    # --- rejects -------------------------------------------------------------------------------

    @_translated
    def add_rejects(self, *, file_id: int, batch_id: str, rejects: Sequence[RejectRow]) -> int:
        if not rejects:
            return 0
        rows = [
            {
                "file_id": file_id,
                "batch_id": batch_id,
                "record_number": r.record_number,
                "line": r.line,
                "column_name": r.column,
                "rule": r.rule,
                "reason": r.reason,
                "raw": r.raw,
                "masked": r.masked,
            }
            for r in rejects
        ]
        self.connection.execute(insert(reject_rows), rows)
        return len(rows)

    @_translated
    def list_rejects(
        self, *, path: str | None = None, batch_id: str | None = None, limit: int | None = None
    ) -> list[tuple[RejectRecord, FileManifest]]:
        """Rejects (with their file), filtered by file path and/or batch, in file order."""
        stmt = select(reject_rows, files).join(files, files.c.id == reject_rows.c.file_id)
        if path is not None:
            stmt = stmt.where(files.c.path == path)
        if batch_id is not None:
            stmt = stmt.where(reject_rows.c.batch_id == batch_id)
        stmt = stmt.order_by(reject_rows.c.file_id, reject_rows.c.record_number, reject_rows.c.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        split = len(reject_rows.columns)
        return [(RejectRecord._make(row[:split]), FileManifest._make(row[split:]))
                for row in self.connection.execute(stmt)]

    # --- events --------------------------------------------------------------------------------

    @_translated
    def add_event(
        self,
        *,
        type: str,
        created_at: datetime,
        batch_id: str | None = None,
        file_id: int | None = None,
        payload: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> int:
        stmt = insert(events).values(
            type=type,
            batch_id=batch_id,
            file_id=file_id,
            payload=None if payload is None else dict(payload),
            created_at=created_at,
            correlation_id=correlation_id,
        ).returning(events.c.id)
        return int(self.connection.execute(stmt).scalar_one())

    @_translated
    def list_events(
        self,
        *,
        batch_id: str | None = None,
        limit: int | None = None,
        type: str | None = None,
        newest: bool = False,
    ) -> list[AuditEvent]:
        """Events in recording order (``newest``: the last ``limit`` ones, newest first)."""
        stmt = select(events).order_by(events.c.id.desc() if newest else events.c.id)
        if batch_id is not None:
            stmt = stmt.where(events.c.batch_id == batch_id)
        if type is not None:
            stmt = stmt.where(events.c.type == type)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [AuditEvent._make(r) for r in self.connection.execute(stmt)]

    @_translated
    def count_events(self) -> int:
        return int(self.connection.execute(select(func.count()).select_from(events)).scalar()
                   or 0)

    # --- target table schemas ------------------------------------------------------------------

    def latest_schema(self, table: str) -> StoredSchema | None:
        """The table's current (highest) schema version, or None (``schemas.latest``)."""
        from tallyclerk.audit import schemas

        return schemas.latest(self.connection, table)

    def schema_history(self, table: str) -> list[StoredSchema]:
        """Every version of the table's schema, oldest first (``schemas.history``)."""
        from tallyclerk.audit import schemas

        return schemas.history(self.connection, table)

    # --- the ledger's reads (replaces, uncertain files) ------------------------------------------

    @_translated
    def stale_shadow_tables(self, table: str) -> list[str]:
        """The shadow tables (``SHADOW_LIKE``) holding ``loaded`` files of batches into
        ``table`` that are no longer running (their replace was never swapped in)."""
        params = {"table": table}
        return [str(t) for t in self.connection.execute(stale_shadows_stmt(), params).scalars()]

    @_translated
    def loading_files(self, *, table: str | None = None, path: str | None = None
                      ) -> list[tuple[FileManifest, dict[str, Any] | None]]:
        """The ``loading`` manifest rows (optionally of batches into ``table`` and/or of
        ``path``) with their batch's options, in no order."""
        stmt = loading_files_stmt(table is not None, path is not None)
        rows = self.connection.execute(stmt, {"table": table, "path": path}).all()
        return [(FileManifest._make(r[:-1]), r[-1]) for r in rows]


# The ledger's reads, built once; the DB-API repository runs them compiled (the catalogue).


@functools.cache
def stale_shadows_stmt() -> Select[Any]:
    """:meth:`AuditRepository.stale_shadow_tables` (parameter ``table``)."""
    return (
        select(files.c.target_table)
        .join(batches, batches.c.id == files.c.batch_id)
        .where(batches.c.target_table == bindparam("table"))
        .where(batches.c.status != "running")
        .where(files.c.target_table.like(SHADOW_LIKE, escape="\\"))
        .where(files.c.status == "loaded")
        .distinct()
    )


@functools.cache
def loading_files_stmt(by_table: bool, by_path: bool) -> Select[Any]:
    """:meth:`AuditRepository.loading_files` (parameters ``table`` and ``path`` when used).

    The literal ``status = 'loading'`` lets the planner use the partial unique index of
    ``loading`` rows; no ORDER BY (SQLite would scan the table in id order rather than use
    the index)."""
    stmt = (
        select(files, batches.c.options)
        .join(batches, batches.c.id == files.c.batch_id)
        .where(text("tallyclerk_files.status = 'loading'"))
    )
    if by_table:  # the batch's table: a replace loads its files into a shadow
        stmt = stmt.where(batches.c.target_table == bindparam("table"))
    if by_path:
        stmt = stmt.where(files.c.path == bindparam("path"))
    return stmt


# The claim's statements, built once with bound parameters (building a SQLAlchemy statement
# for every claim cost about as much as running it: issue 16.4).


@functools.cache
def _candidate_stmt() -> Select[Any]:
    """The claim candidates of one identity, as Core rows (a claim only reads them; loading
    them as entities cost more than the query: issue 16.4)."""
    return (
        select(files)
        .where(files.c.target_table == bindparam("table"))
        .where(files.c.fingerprint == bindparam("fingerprint"))
        .where(
            # equalities, not IN: a literal IN list is an expanding parameter, rendered
            # again at every execution
            or_(
                files.c.status == "loading",
                files.c.status == "loaded",
                and_(files.c.status == "failed", files.c.cleaned_by.is_(None)),
            )
        )
        .order_by(files.c.id)
        .with_for_update()
    )


@functools.cache
def _history_stmt() -> Select[Any]:
    return _history_where(files.c.fingerprint == bindparam("fingerprint"))


@functools.cache
def _histories_stmt() -> Select[Any]:
    return _history_where(files.c.fingerprint.in_(bindparam("fingerprints", expanding=True)))


def _history_where(fingerprint: Any) -> Select[Any]:
    return (
        select(files)
        .where(files.c.target_table == bindparam("table"))
        .where(fingerprint)
        .where(files.c.status != "skipped", files.c.status != "pending")
        .order_by(files.c.id)
        .with_for_update()
    )




def _candidates(rows: Iterable[Any]) -> list[ClaimCandidate]:
    return list(rows)


@functools.cache
def _insert_file_stmt() -> ReturningInsert[Any]:
    return insert(files).returning(files.c.id)


@functools.cache
def _insert_files_stmt() -> ReturningInsert[Any]:
    # on the Core table: the ORM's bulk-insert machinery cost more than the INSERT itself
    return insert(files).returning(files.c.id, sort_by_parameter_order=True)


@functools.cache
def _attempts_stmt() -> Select[int]:
    return (
        select(func.count())
        .select_from(files)
        .where(files.c.target_table == bindparam("table"))
        .where(files.c.fingerprint == bindparam("fingerprint"))
        .where(files.c.status != "skipped", files.c.status != "pending")
    )


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
