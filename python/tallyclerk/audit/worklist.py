"""The work list of a load shared by many workers: who takes which file, with leases.

A *load* (``load_id``) is the set of paths given to ``tallyclerk load --workers N`` (on one or
several machines). Each path is one row of ``tallyclerk_work``, registered idempotently by every
command that names the load (``INSERT ... ON CONFLICT DO NOTHING`` on ``(load_id, path)``).
Workers take rows one at a time:

``pending``  nobody holds it (``lease_expires_at``, when set, is a not-before time);
``taken``    a worker holds it: ``owner`` (``host:pid``), a fencing ``token`` and a lease the
             worker's watchdog heartbeat renews every ``heartbeat_s``; ``file_id`` names the
             manifest claim once the worker has one;
``done``     finished: ``outcome`` is ``loaded``, ``skipped`` or ``failed`` and ``file_id``
             the manifest row (claim or skip) that says how.

:meth:`WorkList.take` runs ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL (concurrent
workers never wait for each other and never take the same row; on SQLite ``BEGIN IMMEDIATE``
serializes the takers). It picks the first row, in command-line order, that is ``pending``, or
``taken`` with an expired lease *and* no live manifest claim (the manifest lease of the dead
worker's claim has expired too). Its owner being gone, the row is taken over with a new
token: the dead worker's claim is then reclaimed by :meth:`AuditService.claim_file`, which
cleans its partial rows. A stalled worker that wakes up cannot commit (the manifest's fenced
commit raises :class:`~tallyclerk.errors.LeaseLost`) and cannot finish the row (every update
here is fenced by the token).

Reclaim bound: a dead worker's file is taken over at most ``lease_s + heartbeat_s`` after its
last heartbeat (plus one poll of an idle worker, at most a second), assuming the hosts' clocks
agree (leases are wall-clock times; clock skew between hosts adds to the bound).

Exactly-once does not depend on this list: it is the manifest's (identity, partial unique
indexes, fenced commit). The list only spreads the work and makes sure nothing is left
behind while a worker lives.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

from tallyclerk.audit.borrowed import BorrowedEngine
from tallyclerk.audit.engine import create_audit_engine, ensure_schema
from tallyclerk.audit.liteengine import LiteEngine
from tallyclerk.audit.models import UTCDateTime, metadata
from tallyclerk.audit.models import files as manifest
from tallyclerk.audit.txn import LiteTransactionRunner, TransactionRunner
from tallyclerk.dburl import parse_url
from tallyclerk.errors import RepositoryError
from tallyclerk.settings import Settings
from tallyclerk.sqlitegate import FileGate, gate_for, gate_of

__all__ = ["WorkList", "Taken", "check_load_id", "work_items"]

log = logging.getLogger("tallyclerk.workers")

_REPORT_STATUS = {"replaced": "loaded"}


work_items = Table(
    "tallyclerk_work",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("load_id", String(64), nullable=False),
    # position on the command line that registered it (the order work is taken in)
    Column("seq", Integer, nullable=False),
    Column("path", Text, nullable=False),
    Column("target_table", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("owner", String(255)),
    Column("token", String(32)),
    Column("lease_expires_at", UTCDateTime()),
    Column("takes", Integer, nullable=False, default=0),
    Column("batch_id", String(32)),  # the worker batch that took it last
    Column("file_id", Integer),
    # the latest manifest claim of an earlier holder (it may have committed, then died)
    Column("prior_file_id", Integer),
    Column("outcome", String(16)),
    Column("error", Text),
    Column("registered_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Index("uq_tallyclerk_work_path", "load_id", "path", unique=True),
    Index("ix_tallyclerk_work_take", "load_id", "status", "seq"),
)
"""One path of a load (see the module docstring)."""


def check_load_id(load_id: str) -> str:
    """``load_id`` if usable (1-64 of ``A-Za-z0-9._:-``), else :class:`ConfigError`."""
    from tallyclerk.errors import ConfigError

    ok = 0 < len(load_id) <= 64 and all(c.isascii() and (c.isalnum() or c in "._:-")
                                        for c in load_id)
    if not ok:
        raise ConfigError(f"--load-id must be 1-64 characters of A-Z a-z 0-9 . _ : -, got "
                          f"{load_id!r}")
    return load_id


@dataclass(frozen=True)
class Taken:
    """A work item this worker holds."""

    id: int
    path: str
    token: str


def _now() -> datetime:
    return datetime.now(timezone.utc)


class WorkList:
    """The work list of the audit store at ``url`` (creates its table when missing).

    ``engine``: the audit service's engine of the same store, shared (a worker process then
    opens a SQLite store once; it is not disposed by :meth:`close`): a SQLAlchemy ``Engine``,
    or on SQLite the service's :class:`~tallyclerk.audit.liteengine.LiteEngine`, whose
    connection the work list's Core statements borrow in its turns
    (:class:`~tallyclerk.audit.borrowed.BorrowedEngine`). On SQLite every
    transaction first takes the process's turn at the file (:mod:`tallyclerk.sqlitegate`); a
    lease renewal that finds the process's own data transaction holding it runs when that ends.
    """

    def __init__(self, url: str, *, settings: Settings, owner: str = "",
                 engine: Engine | LiteEngine | None = None) -> None:
        self.settings = settings
        self.owner = owner
        db = parse_url(url)
        self._own_engine = engine is None
        self._engine: Engine | BorrowedEngine
        # the runners' retries and turns (their units of work are this module's ``_tx``)
        self._runner: TransactionRunner | LiteTransactionRunner
        self._beat: TransactionRunner | LiteTransactionRunner
        if isinstance(engine, LiteEngine):
            self._engine = BorrowedEngine(engine)
            self._gate: FileGate | None = gate_for(engine.path)
            self._runner = LiteTransactionRunner(engine, settings, label=db.masked,
                                                 gate=self._gate)
            self._beat = LiteTransactionRunner(
                engine, settings, label=db.masked, max_retries=0,
                give_up_level=logging.WARNING, gate=self._gate,
            )
        else:
            core = create_audit_engine(db, settings) if engine is None else engine
            self._engine = core
            self._gate = gate_of(core)
            self._runner = TransactionRunner(core, settings, label=db.masked, gate=self._gate)
            self._beat = TransactionRunner(
                core, settings, label=db.masked, max_retries=0,
                give_up_level=logging.WARNING, gate=self._gate,
            )
        self._t: Table = work_items
        try:
            if isinstance(self._engine, Engine):  # a LiteEngine's store is the service's
                engine_ = self._engine
                self._runner.retrying(lambda: ensure_schema(engine_), what="create the schema")
            self._runner.retrying(self._create, what="create the work list")
        except BaseException:
            self.close()
            raise

    def _create(self) -> None:
        with self._engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('tallyclerk:schema'))")
            self._t.create(conn, checkfirst=True)

    def close(self) -> None:
        if self._own_engine or isinstance(self._engine, BorrowedEngine):
            self._engine.dispose()

    def _tx(self, fn: Any, *, what: str,
            runner: TransactionRunner | LiteTransactionRunner | None = None) -> Any:
        def once() -> Any:
            with self._engine.begin() as conn:
                return fn(conn)

        return (runner or self._runner).retrying(once, what=what)

    # --- registering -------------------------------------------------------------------------

    def register(self, load_id: str, table: str, paths: Sequence[str]) -> None:
        """Add ``paths`` to the load (paths already in it are left as they are)."""
        now = _now()
        rows = [
            {"load_id": load_id, "seq": i, "path": p, "target_table": table,
             "status": "pending", "takes": 0, "registered_at": now}
            for i, p in enumerate(dict.fromkeys(paths))
        ]

        def work(conn: Connection) -> None:
            if not rows:
                return
            if conn.dialect.name == "postgresql":
                from sqlalchemy.dialects import postgresql  # only for a PostgreSQL store

                conn.execute(postgresql.insert(self._t).on_conflict_do_nothing(), rows)
            else:
                from sqlalchemy.dialects import sqlite

                conn.execute(sqlite.insert(self._t).on_conflict_do_nothing(), rows)

        self._tx(work, what=f"register the files of load {load_id}")

    # --- taking and finishing ----------------------------------------------------------------

    def take(self, load_id: str, batch_id: str) -> Taken | None:
        """Take the next available item (see the module docstring), or None."""
        t = self._t
        f = manifest

        def work(conn: Connection) -> Taken | None:
            now = _now()
            live_claim = exists().where(
                f.c.id == t.c.file_id, f.c.status == "loading", f.c.lease_expires_at > now
            )
            stmt = (
                select(t.c.id, t.c.path)
                .where(t.c.load_id == load_id)
                .where(
                    or_(
                        and_(t.c.status == "pending",
                             or_(t.c.lease_expires_at.is_(None), t.c.lease_expires_at <= now)),
                        and_(t.c.status == "taken", t.c.lease_expires_at <= now, ~live_claim),
                    )
                )
                .order_by(t.c.seq, t.c.id)
                .limit(1)
                .with_for_update(skip_locked=True, of=t)
            )
            found = conn.execute(stmt).first()
            if found is None:
                return None
            token = uuid.uuid4().hex
            conn.execute(
                update(t)
                .where(t.c.id == found.id)
                .values(status="taken", owner=self.owner, token=token, batch_id=batch_id,
                        file_id=None, prior_file_id=func.coalesce(t.c.file_id,
                                                                  t.c.prior_file_id),
                        takes=t.c.takes + 1,
                        lease_expires_at=now + timedelta(seconds=self.settings.lease_s))
            )
            return Taken(found.id, found.path, token)

        taken: Taken | None = self._tx(work, what=f"take work of load {load_id}")
        return taken

    def remaining(self, load_id: str) -> int:
        """Items of the load not done yet (held by someone, or pending)."""
        t = self._t
        count: int = self._tx(
            lambda conn: conn.execute(
                select(func.count()).select_from(t)
                .where(t.c.load_id == load_id, t.c.status != "done")
            ).scalar_one(),
            what=f"count the work of load {load_id}",
        )
        return count

    def _fenced(self, item: Taken, what: str, **values: Any) -> bool:
        t = self._t
        stmt = (
            update(t)
            .where(t.c.id == item.id, t.c.token == item.token, t.c.status == "taken")
            .values(**values)
        )
        changed: int = self._tx(lambda conn: conn.execute(stmt).rowcount, what=what)
        if changed != 1:
            log.warning("work item %s (%s) was taken over; %s not recorded", item.id,
                        item.path, what)
        return changed == 1

    def started(self, item: Taken, file_id: int) -> bool:
        """Record the manifest claim of a held item (its liveness now guards the item)."""
        return self._fenced(item, "claim", file_id=file_id)

    def finish(self, item: Taken, outcome: str, *, file_id: int | None,
               error: str | None = None) -> bool:
        """Mark a held item done (fenced by its token)."""
        return self._fenced(item, f"outcome {outcome}", status="done", outcome=outcome,
                            file_id=file_id, error=error, finished_at=_now(),
                            lease_expires_at=None)

    def finish_skipped(self, item: Taken, *, file_id: int, error: str | None) -> str:
        """Mark a held item done after its claim said "already loaded": ``loaded`` when an
        earlier holder of this item loaded it (committed, then died before saying so), else
        ``skipped``. Returns the outcome."""
        t = self._t
        f = manifest

        def work(conn: Connection) -> str:
            prior = conn.execute(
                select(f.c.id)
                .select_from(t.join(f, f.c.id == t.c.prior_file_id))
                .where(t.c.id == item.id, f.c.status.in_(("loaded", "replaced")))
            ).first()
            outcome, fid = ("loaded", prior.id) if prior is not None else ("skipped", file_id)
            changed = conn.execute(
                update(t)
                .where(t.c.id == item.id, t.c.token == item.token, t.c.status == "taken")
                .values(status="done", outcome=outcome, file_id=fid,
                        error=None if outcome == "loaded" else error,
                        finished_at=_now(), lease_expires_at=None)
            ).rowcount
            if changed != 1:
                log.warning("work item %s (%s) was taken over; outcome not recorded",
                            item.id, item.path)
            return outcome

        outcome: str = self._tx(work, what="record a skipped file")
        return outcome

    def release(self, item: Taken, *, delay_s: float = 0.0) -> bool:
        """Give a held item back (taken again no sooner than ``delay_s`` from now)."""
        not_before = _now() + timedelta(seconds=delay_s) if delay_s > 0 else None
        return self._fenced(item, "release", status="pending", owner=None, token=None,
                            file_id=None, lease_expires_at=not_before)

    def stop_pending(self, load_id: str, reason: str) -> int:
        """End every item nobody holds as ``failed`` with ``reason`` (``--on-error abort``
        stops the whole load, not just one worker); returns how many."""
        t = self._t
        stmt = (
            update(t)
            .where(t.c.load_id == load_id, t.c.status == "pending")
            .values(status="done", outcome="failed", error=reason, finished_at=_now(),
                    lease_expires_at=None)
        )
        stopped: int = self._tx(lambda conn: conn.execute(stmt).rowcount,
                                what=f"stop the pending work of load {load_id}")
        return stopped

    def renew(self, load_id: str) -> int:
        """Extend the lease of every item this owner holds (the heartbeat; one attempt).

        While this process's data transaction holds the SQLite file, the renewal is owed to
        its end instead (returns 0 now)."""
        gate = self._gate
        if gate is not None and gate.data_open:
            gate.owe(f"work:{load_id}:{self.owner}", lambda: self._renew_owed(load_id))
            return 0
        t = self._t
        until = _now() + timedelta(seconds=self.settings.lease_s)
        stmt = (
            update(t)
            .where(t.c.load_id == load_id, t.c.owner == self.owner, t.c.status == "taken")
            .values(lease_expires_at=until)
        )
        renewed: int = self._tx(lambda conn: conn.execute(stmt).rowcount,
                                what=f"renew the work leases of load {load_id}",
                                runner=self._beat)
        return renewed

    def _renew_owed(self, load_id: str) -> None:
        try:
            self.renew(load_id)
        except RepositoryError as exc:  # logged; the next heartbeat renews
            log.warning("load %s: renewing work leases after a data transaction failed: %s",
                        load_id, exc)

    # --- progress and the report -------------------------------------------------------------

    def progress(self, load_id: str) -> tuple[int, int, int]:
        """``(items done, items in all, rows read by the done items)``."""
        t = self._t
        f = manifest

        def work(conn: Connection) -> tuple[int, int, int]:
            done, total = conn.execute(
                select(func.count().filter(t.c.status == "done"), func.count())
                .where(t.c.load_id == load_id)
            ).one()
            rows = conn.execute(
                select(func.coalesce(func.sum(f.c.rows_read), 0))
                .select_from(t.join(f, f.c.id == t.c.file_id))
                .where(t.c.load_id == load_id, t.c.status == "done")
            ).scalar_one()
            return int(done), int(total), int(rows)

        result: tuple[int, int, int] = self._tx(work, what=f"read the progress of {load_id}")
        return result

    def report(self, load_id: str, table: str, paths: Sequence[str], *,
               cancelled: bool = False, unfinished: str = "") -> dict[str, Any]:
        """The load's report in the CLI's ``--json`` shape, one entry per path of ``paths``.

        ``batch_id`` is the load id; ``batches`` lists the worker batches that did the work.
        An item not done is reported ``failed`` with ``unfinished`` as its error.
        """
        t = self._t
        f = manifest

        def work(conn: Connection) -> list[Any]:
            return list(conn.execute(
                select(t.c.path, t.c.status, t.c.outcome, t.c.error, t.c.batch_id,
                       f.c.status.label("file_status"), f.c.rows_read, f.c.rows_written,
                       f.c.rows_rejected, f.c.rows_rolled_back, f.c.rows_inserted,
                       f.c.rows_updated, f.c.error.label("file_error"),
                       f.c.batch_id.label("fb"), f.c.schema_version, f.c.column_changes)
                .select_from(t.outerjoin(f, f.c.id == t.c.file_id))
                .where(t.c.load_id == load_id)
            ))

        by_path = {row.path: row for row in self._tx(work, what=f"report load {load_id}")}
        files: list[dict[str, Any]] = []
        batches: list[str] = []
        for path in paths:
            row = by_path.get(path)
            entry: dict[str, Any] = {"path": path, "status": "failed", "rows_read": 0,
                                     "rows_written": 0, "rows_rejected": 0,
                                     "rows_rolled_back": 0,
                                     "rows_inserted": None, "rows_updated": None,
                                     "error": unfinished or "not loaded",
                                     "schema_version": None, "columns_added": [],
                                     "columns_dropped": [], "columns_missing": []}
            if row is not None and row.status == "done":
                entry["status"] = row.outcome or "failed"
                if row.file_status is not None:
                    entry["status"] = _REPORT_STATUS.get(row.file_status, row.file_status) \
                        if row.outcome != "failed" else "failed"
                    entry.update(rows_read=row.rows_read, rows_written=row.rows_written,
                                 rows_rejected=row.rows_rejected,
                                 rows_rolled_back=row.rows_rolled_back,
                                 rows_inserted=row.rows_inserted, rows_updated=row.rows_updated,
                                 schema_version=row.schema_version,
                                 **_column_changes(row.column_changes))
                entry["error"] = row.file_error if row.file_error is not None else row.error
                if entry["status"] == "loaded":
                    entry["error"] = None
                batch = row.fb or row.batch_id
                if batch and batch not in batches:
                    batches.append(batch)
            files.append(entry)
        failed = sum(1 for e in files if e["status"] == "failed")
        status = "succeeded"
        if cancelled:
            status = "cancelled"
        elif failed and failed == len(files):
            status = "failed"
        elif failed:
            status = "partial"
        return {
            "batch_id": load_id,
            "status": status,
            "table": table,
            "rows_read": sum(e["rows_read"] for e in files),
            "rows_written": sum(e["rows_written"] for e in files),
            "rows_rejected": sum(e["rows_rejected"] for e in files),
            "rows_rolled_back": sum(e["rows_rolled_back"] for e in files),
            "files": files,
            "load_id": load_id,
            "batches": batches,
        }


def _column_changes(stored: Any) -> dict[str, list[str]]:
    """The manifest's ``column_changes`` (JSON text: the light table has no type processing)
    as the report's ``columns_added`` / ``columns_dropped`` / ``columns_missing``."""
    changes = orjson.loads(stored) if isinstance(stored, (str, bytes)) else (stored or {})
    return {f"columns_{k}": list(changes.get(k) or []) for k in ("added", "dropped", "missing")}
