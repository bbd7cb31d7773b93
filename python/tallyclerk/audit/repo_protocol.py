"""What every audit repository offers: the SQLAlchemy Core one
(:class:`~tallyclerk.audit.repository.AuditRepository`: PostgreSQL, and a SQLite store being
migrated) and the DB-API one (:class:`~tallyclerk.audit.dbapi_repository.DbapiRepository`:
SQLite without SQLAlchemy). No SQLAlchemy import.

The units of work (service, ledger, claims, chain, reports) take a :class:`Repository`; mypy
checks below that both classes satisfy it. Raw SQL in the same transaction goes through
:attr:`Repository.dialect_name`, :meth:`Repository.executor` and
:meth:`Repository.driver_cursor`, never a driver connection (design: ``audit/README.md``).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from tallyclerk.audit.rows import AuditEvent, Batch, FileManifest, RejectRecord
from tallyclerk.audit.types import StoredSchema

if TYPE_CHECKING:
    from tallyclerk.audit.types import RejectRow
    from tallyclerk.protocols import SqlExecutor

__all__ = ["SHADOW_LIKE", "ClaimCandidate", "Repository", "is_candidate"]

SHADOW_LIKE = "\\_tc\\_replace\\_%"
"""A replace's shadow tables (``tallyclerk.modes.SHADOW_PREFIX``) as a LIKE pattern (escape
``\\``): :meth:`Repository.stale_shadow_tables`."""


class ClaimCandidate(Protocol):
    """A manifest row a claim considers (a row of ``tallyclerk_files``; read only)."""

    @property
    def id(self) -> int: ...
    @property
    def batch_id(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def lease_expires_at(self) -> datetime | None: ...
    @property
    def error_class(self) -> str | None: ...
    @property
    def cleaned_by(self) -> int | None: ...


def is_candidate(row: ClaimCandidate) -> bool:
    """Whether a row of ``claim_history`` is a claim candidate."""
    return row.status in ("loading", "loaded") or (row.status == "failed"
                                                    and row.cleaned_by is None)


class Repository(Protocol):
    """Database operations on batches, manifest rows, rejects and events, inside the caller's
    transaction (see ``AuditRepository`` for each method's contract).

    Code that needs raw SQL in the same transaction (the chain, schemas, ledger statements)
    uses :attr:`dialect_name`, :meth:`executor`, :meth:`driver_cursor` and
    :meth:`stream_query`, never a
    SQLAlchemy connection, so it runs on both implementations.
    """

    @property
    def dialect_name(self) -> str:
        """``"sqlite"`` or ``"postgresql"`` (SQL uses the driver's positional style:
        ``?`` for SQLite, ``%s`` for psycopg)."""
        ...

    def executor(self) -> SqlExecutor:
        """A :class:`~tallyclerk.protocols.SqlExecutor` in this repository's transaction."""
        ...

    def driver_cursor(self) -> Any:
        """A DB-API cursor in this repository's transaction (the caller closes it): for
        reading or updating many rows without per-row wrapping (the chain's seal)."""
        ...

    def stream_query(self, sql: str,
                     params: Sequence[Any] = ()) -> Generator[Sequence[Any], None, None]:
        """The rows of ``sql`` (driver style, as :meth:`executor`'s), read as iterated (a
        server-side cursor on PostgreSQL), in this repository's transaction; the statement
        runs at the first ``next``, and ``close()`` lets go of the cursor early (the chain's
        ``verify`` walks five of these at once)."""
        ...

    def add_batch(self, *, batch_id: str, target_table: str, started_at: datetime, host: str,
                  pid: int, user: str | None, options: Mapping[str, Any]) -> None: ...
    def get_batch(self, batch_id: str) -> Batch | None: ...
    def latest_batch(self) -> Batch | None: ...
    def list_batches(self, limit: int = 20) -> list[Batch]: ...
    def running_batches_on_host(self, host: str) -> list[Batch]: ...
    def update_batch(self, batch_id: str, *, only_if_status: str | None = None,
                     only_if_unsealed: bool = False, **values: Any) -> int: ...
    def lock_identity(self, target_table: str, fingerprint: str) -> None: ...
    def claim_candidates(self, target_table: str,
                         fingerprint: str) -> Sequence[ClaimCandidate]: ...
    def claim_history(self, target_table: str, fingerprint: str) -> Sequence[ClaimCandidate]: ...
    def claim_history_of(self, target_table: str,
                         fingerprints: Sequence[str]) -> Sequence[ClaimCandidate]: ...
    def count_attempts(self, target_table: str, fingerprint: str) -> int: ...
    def add_file(self, **values: Any) -> FileManifest: ...
    def add_files(self, rows: Sequence[Mapping[str, Any]]) -> list[int]: ...
    def get_file(self, file_id: int) -> FileManifest | None: ...
    def fail_loading_file(self, file_id: int, *, error: str, error_class: str,
                          finished_at: datetime) -> bool: ...
    def release_batch_files(self, batch_id: str, *, error: str, error_class: str,
                            finished_at: datetime, keep: Sequence[int] = ()) -> list[int]: ...
    def drop_unstarted_claims(self, claims: Sequence[tuple[int, str]]) -> int: ...
    def renew_leases(self, batch_id: str, *, owner: str, until: datetime) -> int: ...
    def files_of_batch(self, batch_id: str) -> list[FileManifest]: ...
    def file_status_counts(self, batch_id: str) -> dict[str, int]: ...
    def files_of_identity(self, target_table: str, fingerprint: str) -> list[FileManifest]: ...
    def add_rejects(self, *, file_id: int, batch_id: str,
                    rejects: Sequence[RejectRow]) -> int: ...
    def list_rejects(self, *, path: str | None = None, batch_id: str | None = None,
                     limit: int | None = None) -> list[tuple[RejectRecord, FileManifest]]: ...
    def add_event(self, *, type: str, created_at: datetime, batch_id: str | None = None,
                  file_id: int | None = None, payload: Mapping[str, Any] | None = None,
                  correlation_id: str | None = None) -> int: ...
    def list_events(self, *, batch_id: str | None = None, limit: int | None = None,
                    type: str | None = None, newest: bool = False) -> list[AuditEvent]: ...
    def count_events(self) -> int: ...
    def latest_schema(self, table: str) -> StoredSchema | None: ...
    def schema_history(self, table: str) -> list[StoredSchema]: ...
    def stale_shadow_tables(self, table: str) -> list[str]: ...
    def loading_files(self, *, table: str | None = None, path: str | None = None
                      ) -> list[tuple[FileManifest, dict[str, Any] | None]]: ...


if TYPE_CHECKING:
    from tallyclerk.audit.dbapi_repository import DbapiRepository
    from tallyclerk.audit.repository import AuditRepository

    def _both_are_repositories(core: AuditRepository,
                               dbapi: DbapiRepository) -> tuple[Repository, Repository]:
        return core, dbapi  # mypy (strict, in CI) checks both against the protocol
