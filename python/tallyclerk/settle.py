"""Settling uncertain files: ``tallyclerk repair`` / ``tallyclerk.repair()``, and the same check
a load runs before it claims anything.

An *uncertain* file (:mod:`tallyclerk.audit.uncertain`) was killed between its data commit in
the target and its manifest commit in a separate audit store. The target says which side of
the window the kill fell on: the file's load marker (:mod:`tallyclerk.audit.marker`) commits
in the same transaction as its rows. For each uncertain file:

* **marker present, nothing rejected** -> ``committed``: the rows are there, the marker's
  counts match the rows tagged with its ``_tc_file_id`` (append and replace; merge updates
  rows in place, so there only the marker counts), and the manifest row is finished
  ``loaded`` with the marker's counts (fenced like a normal commit, the attempts it replaced
  marked cleaned); the row is sealed into the hash chain like any final row.
* **marker present, rows rejected** -> ``rolled_back``: the rejected rows lived only in the
  killed process's memory, so the load cannot be recorded truthfully; its rows and marker
  are deleted in one target transaction and the manifest row becomes ``failed`` (its rows
  ``rows_rolled_back``), so the next load of the file loads it whole, rejects included. A
  merge cannot be undone row by row: its rows stay, and the next load merges it again.
* **no marker** -> ``not_committed`` (rows tagged with its id and no marker, from a version
  without markers: deleted, ``rolled_back``): the manifest row becomes ``failed``.
* anything else (a marker of another claim, a row count that disagrees with the marker, a
  file loaded into another target than ``into``) -> ``unsettled`` with the reason; nothing
  is changed (exit 1).

Each settled file gets a ``file_settled`` audit event. A crash while settling is safe: the
target side (delete rows and marker) and the manifest side are each one transaction, and the
next run decides again from what the target then holds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from tallyclerk.audit.datatarget import OPTION as DATA_TARGET
from tallyclerk.audit.datatarget import target_key as data_target
from tallyclerk.audit.types import FileClaim, FileResult
from tallyclerk.errors import ConfigError, LeaseLost, SinkError
from tallyclerk.protocols import SqlExecutor

if TYPE_CHECKING:
    from tallyclerk.audit.uncertain import Uncertain
    from tallyclerk.repairreport import RepairReport

__all__ = ["DATA_TARGET", "RepairReport", "data_target", "mark_loaded", "repair",
           "settle_before_load"]

log = logging.getLogger("tallyclerk.settle")

OUTCOMES = ("committed", "rolled_back", "not_committed", "unsettled")




def mark_loaded(ex: SqlExecutor | None, claim: FileClaim, result: FileResult, mode: str) -> None:
    """In a file's target transaction (audit store elsewhere): its load marker, when the
    sink's executor can write one (SQLite, PostgreSQL, DuckDB)."""
    # imported here: a load whose audit store is the target's database writes no marker
    # (start-up, issue 16.1)
    from tallyclerk.audit import marker

    if marker.supported(ex):
        marker.mark_in(ex, claim, result, mode)


class _DuckExecutor:
    """A :class:`SqlExecutor` over a DuckDB connection (``?`` parameters)."""

    dialect_name = "duckdb"

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.conn.execute(sql, list(params))
        return -1

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        self.conn.executemany(sql, [list(r) for r in rows])
        return -1

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.conn.execute(sql, list(params)).fetchall()]


class _Target:
    """Short transactions on the target database (SQLite on plain ``sqlite3``, PostgreSQL
    through SQLAlchemy, or DuckDB)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._duck: Any = None
        self._sqlite: sqlite3.Connection | None = None
        self._engine: Any = None
        if url.startswith("duckdb:///"):
            try:
                import duckdb
            except ImportError:
                raise ConfigError("a duckdb:/// target needs tallyclerk[duckdb]") from None
            self._duck = duckdb.connect(url[len("duckdb:///"):])
            return
        from tallyclerk.dburl import parse_url

        db = parse_url(url)  # ConfigError for a URL tallyclerk cannot open
        if db.dialect == "sqlite":
            if db.path is None or not os.path.exists(db.path):
                raise ConfigError(f"no database at {db.masked}")
            # driver transactions off: each transaction is BEGIN IMMEDIATE ... COMMIT
            self._sqlite = sqlite3.connect(db.path, timeout=30, isolation_level=None,
                                           check_same_thread=False)
            return
        from sqlalchemy import create_engine

        self._engine = create_engine(db.url, poolclass=_null_pool())

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SqlExecutor]:
        from tallyclerk.dburl import mask_secrets

        if self._duck is not None:
            self._duck.begin()
            try:
                yield _DuckExecutor(self._duck)
            except BaseException:
                self._duck.rollback()
                raise
            self._duck.commit()
            return
        if self._sqlite is not None:
            from tallyclerk.audit.dbapi_executor import DbapiExecutor

            conn = self._sqlite
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield DbapiExecutor(conn)
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise SinkError(f"target database: {mask_secrets(str(exc))}",
                                transient=False) from None
            return
        from sqlalchemy.exc import SQLAlchemyError

        from tallyclerk.audit.executor import SqlAlchemyExecutor

        try:
            with self._engine.begin() as server:
                yield SqlAlchemyExecutor(server)
        except SQLAlchemyError as exc:
            raise SinkError(f"target database: {mask_secrets(str(exc))}", transient=False) \
                from None

    def close(self) -> None:
        if self._duck is not None:
            self._duck.close()
        if self._sqlite is not None:
            self._sqlite.close()
        if self._engine is not None:
            self._engine.dispose()


def _null_pool() -> Any:
    from sqlalchemy.pool import NullPool

    return NullPool


def _decide(ex: SqlExecutor, u: Uncertain) -> tuple[str, str, FileResult, bool]:
    """(outcome, reason, manifest result, delete rows?) for one uncertain file, from the
    target's marker and its rows tagged ``_tc_file_id``."""
    from tallyclerk.audit import marker

    mark = marker.read(ex, u.file_id, u.token)
    if mark is None:
        present = marker.count_rows(ex, u.table, u.file_id)
        if present:
            return ("rolled_back",
                    f"{present} rows tagged with its id but no load marker: deleted",
                    FileResult(0, 0, 0, 0, error_class="Interrupted"), True)
        return ("not_committed", "no load marker in the target: its data never committed",
                FileResult(0, 0, 0, 0, error_class="Interrupted"), True)
    if mark.claim_token != u.token:
        return ("unsettled", f"the target's marker of file {u.file_id} belongs to another "
                "claim (another audit store writes this target?)",
                FileResult(0, 0, 0, 0), False)
    merge = mark.mode == "merge"
    if not marker.table_exists(ex, mark.target_table):
        # an abandoned replace's shadow table, dropped since: the rows went with it
        return ("rolled_back", f"the table {mark.target_table!r} it was loaded into is gone",
                FileResult(mark.rows_read, 0, 0, mark.bytes_read,
                           rows_rolled_back=mark.rows_read, error_class="Interrupted"), True)
    if not merge:
        present = marker.count_rows(ex, mark.target_table, u.file_id)
        if present != mark.rows_written:
            return ("unsettled", f"the target holds {present} rows of this file, its marker "
                    f"says {mark.rows_written}", FileResult(0, 0, 0, 0), False)
    if mark.rows_rejected:
        kept = " (merged rows stay; the next load merges the file again)" if merge else ""
        return ("rolled_back",
                f"its data committed but its {mark.rows_rejected} rejected rows were never "
                f"recorded: rolled back{kept}",
                FileResult(mark.rows_read, 0, 0, mark.bytes_read,
                           rows_rolled_back=mark.rows_read, error_class="Interrupted"),
                not merge)
    return ("committed", "its load marker is in the target: its data committed",
            FileResult(mark.rows_read, mark.rows_written, 0, mark.bytes_read,
                       rows_inserted=mark.rows_inserted, rows_updated=mark.rows_updated,
                       schema_version=mark.schema_version), False)


def _settle(audit: Any, target: _Target, u: Uncertain, key: str, *, dry_run: bool,
            by: str) -> dict[str, Any]:
    from tallyclerk.audit import marker

    entry = u.as_dict()
    if u.target != key:
        entry.update(outcome="unsettled",
                     reason=f"loaded into {u.target}, not into this target: repair it there")
        return entry
    with target.transaction() as ex:
        outcome, reason, result, delete = _decide(ex, u)
        version = result.schema_version
        if outcome == "committed" and version is not None:
            stored = audit.ledger.table_schema(u.table)
            if stored is None or stored.version < version:
                # the file planned a new schema version, recorded after its data commit: the
                # ledger cannot describe its rows, so they go and the next load plans again
                outcome, reason, delete = ("rolled_back", f"its data committed but the schema "
                                           f"version {version} it planned was never recorded: "
                                           "rolled back", True)
                result = FileResult(result.rows_read, 0, 0, result.bytes_read,
                                    rows_rolled_back=result.rows_read)
        if outcome in ("rolled_back", "not_committed") and not dry_run:
            entry["rows_deleted"] = marker.remove_in(ex, u.table, u.file_id, u.token, rows=delete)
    entry.update(outcome=outcome, reason=reason, rows_read=result.rows_read,
                 rows_written=result.rows_written, rows_rolled_back=result.rows_rolled_back)
    if outcome == "unsettled" or dry_run:
        return entry
    status = "loaded" if outcome == "committed" else "failed"
    if status == "failed":
        result = FileResult(result.rows_read, 0, 0, result.bytes_read,
                            rows_rolled_back=result.rows_rolled_back,
                            error=f"interrupted; settled by {by}: {reason}",
                            error_class="Interrupted")
    try:
        held = audit.ledger.settle_uncertain(u, status, result, f"file {u.path} settled by {by}")
    except LeaseLost:
        held = False
    if not held:
        entry.update(outcome="unsettled", reason="settled by another process meanwhile")
        return entry
    audit.events.record("file_settled", batch_id=u.batch_id, file_id=u.file_id,
                        payload={"path": u.path, "outcome": outcome, "reason": reason, "by": by,
                                 "rows_read": result.rows_read,
                                 "rows_written": result.rows_written,
                                 "rows_rolled_back": result.rows_rolled_back})
    return entry


def settle_all(audit: Any, into: str, *, table: str | None = None, path: str | None = None,
               dry_run: bool = False, by: str = "tallyclerk repair") -> RepairReport:
    """Settle the uncertain files of ``audit`` (an open :class:`AuditService`) against the
    target ``into``."""
    from tallyclerk.repairreport import RepairReport

    report = RepairReport(dry_run=dry_run)
    found = audit.ledger.uncertain_files(table=table, path=path)
    if not found:
        return report
    key = data_target(into)
    if key is None:
        from tallyclerk.dburl import mask_url

        raise ConfigError(f"tallyclerk cannot check the target {mask_url(into)} (SQLite, "
                          "PostgreSQL and DuckDB targets only)")
    target = _Target(into)
    try:
        for u in found:
            report.files.append(_settle(audit, target, u, key, dry_run=dry_run, by=by))
    finally:
        target.close()
    return report


def settle_before_load(audit: Any, into: str, table: str, batch_id: str) -> None:
    """What a load into ``table`` does first when its audit store is another database: settle
    the table's uncertain files (logged, and a ``file_settled`` event each), so that no file
    is silently reloaded or skipped. One it cannot settle stops the load (``SinkError``,
    exit 3) naming it and ``tallyclerk repair``."""
    if not audit.ledger.uncertain_files(table=table):
        return
    report = settle_all(audit, into, table=table, by=f"batch {batch_id}")
    for f in report.files:
        level = logging.ERROR if f["outcome"] == "unsettled" else logging.WARNING
        log.log(level, "file %s (file %d of batch %s) was uncertain (killed between its data "
                "commit and its manifest commit): %s; %s", f["path"], f["file_id"],
                f["batch_id"], f["outcome"], f["reason"])
    stuck = [f for f in report.files if f["outcome"] == "unsettled"]
    if stuck:
        names = ", ".join(f"{f['path']} ({f['reason']})" for f in stuck)
        raise SinkError(f"uncertain file(s) of table {table!r} cannot be settled: {names}; "
                        "see `tallyclerk repair --dry-run`")


def repair(
    *,
    into: str = "sqlite:///tallyclerk.db",
    audit: str | None = None,
    table: str | None = None,
    file: str | None = None,
    dry_run: bool = False,
    settings: Any = None,
) -> RepairReport:
    """Settle every uncertain file (killed between its data commit in ``into`` and its
    manifest commit in a separate ``audit`` store): check the target and record the outcome.

    Args:
        into: the target database the files were loaded into.
        audit: the audit store (default: ``into``'s; a shared store has no uncertain files).
        table: only files of this table.
        file: only this file (its path as loaded).
        dry_run: decide and report, change nothing.
        settings: a :class:`~tallyclerk.settings.Settings` (default: loaded as usual).

    Returns:
        a :class:`RepairReport` (``exit_code`` 1 when a file could not be settled).

    Raises:
        ConfigError: a bad argument or URL, or no audit store at ``audit``.
        StoreError: the target or the audit store failed.
    """
    from dataclasses import replace

    from tallyclerk.audit import AuditService
    from tallyclerk.dburl import default_audit_url, parse_url
    from tallyclerk.names import check_table_name
    from tallyclerk.settings import load_settings

    if table is not None:
        check_table_name(table)
    audit_url = audit or default_audit_url(into)
    db = parse_url(audit_url)
    if db.dialect == "sqlite" and db.path is not None and not os.path.exists(db.path):
        raise ConfigError(f"no tallyclerk database at {db.masked} (nothing loaded yet?)")
    base = settings if settings is not None else load_settings()
    with AuditService(audit_url, settings=replace(base, audit_async=False)) as service:
        return settle_all(service, into, table=table, path=file, dry_run=dry_run)


def __getattr__(name: str) -> Any:
    """:class:`RepairReport` is defined in :mod:`tallyclerk.repairreport` and imported when
    first asked for: only ``repair`` builds one, and the dataclass costs ~0.3 ms of every
    start (issue 16.1)."""
    if name == "RepairReport":
        from tallyclerk.repairreport import RepairReport

        return RepairReport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
