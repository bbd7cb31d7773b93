"""The audit service: batch lifecycle, the watchdog and lease heartbeats; it owns the file
ledger and the event log of one audit database.

One :class:`AuditService` per audit database and process. Its concurrency model is explicit:

* the calling threads run short transactions (``BEGIN IMMEDIATE`` on SQLite), retried with
  exponential backoff and jitter on transient errors: on SQLite through plain ``sqlite3``
  (:class:`~tallyclerk.audit.liteengine.LiteEngine`, the DB-API repository; no SQLAlchemy
  import unless an older store needs a migration), on PostgreSQL through SQLAlchemy Core, each
  on its own pooled connection (:mod:`tallyclerk.audit.backend` chooses);
* one Rust watchdog thread (:class:`~tallyclerk.Watchdog`) times out batches (batch
  ``timed_out``, its ``loading`` files released, the accumulator cancelled so the loader stops)
  and renews the leases of this process's claims every ``heartbeat_s``;
* one Rust writer thread drains the :class:`~tallyclerk.WriteBehindQueue` of audit events into
  :class:`~tallyclerk.audit.events.EventWriter`.

On SQLite all three share the engine's one connection and take turns at the file's
:class:`~tallyclerk.sqlitegate.FileGate` with the load's data transaction (so a load opens its
file twice: this connection and the sink's); nothing waits in SQLite's busy handler on a lock
this process holds. A heartbeat that finds a data transaction holding the file does not wait
for it: the renewal is owed and runs the moment that transaction ends (while it lasts nobody
else can write the file, so nobody can take a claim over).

Its parts: ``service.ledger`` (:class:`~tallyclerk.audit.ledger.FileLedger`: exactly-once
claims, each file's outcome, replaces, schema versions) and ``service.events``
(:class:`~tallyclerk.audit.eventlog.EventLog`: ``record()`` never waits on the database).

Counting: the loader counts file events and rows into the batch's
:class:`~tallyclerk.BatchAccumulator` (each attempt at a file through a ``FileTally`` that it
settles when it knows whether its transaction committed); the service creates, watches and
exposes the accumulator and stores its final snapshot in the batch row.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any, TypeVar

import orjson

from tallyclerk._core import (
    BatchAccumulator,
    BatchTimeout,
    MetricsSnapshot,
    Watchdog,
)
from tallyclerk.audit import backend, chain, lineage, reports
from tallyclerk.audit.backend import AuditEngine, Runner
from tallyclerk.audit.claims import Claims, pid_alive
from tallyclerk.audit.compiled import check_identifier
from tallyclerk.audit.eventlog import EventLog
from tallyclerk.audit.events import EventRow
from tallyclerk.audit.ledger import FileLedger
from tallyclerk.audit.repo_protocol import Repository
from tallyclerk.audit.rows import Batch, from_epoch_us
from tallyclerk.dburl import mask_secrets, parse_url
from tallyclerk.errors import (
    BatchCancelled,
    ConfigError,
    QueueClosed,
    RepositoryError,
    TransientRepositoryError,
)
from tallyclerk.settings import Settings, load_settings
from tallyclerk.sqlitegate import GateBusy

__all__ = ["AuditService"]

log = logging.getLogger("tallyclerk.audit")

R = TypeVar("R")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _host_name() -> str:
    """``socket.gethostname()`` without importing ``socket`` (with ``selectors``, ``array``:
    ~3 ms of every start, issue 16.1): on POSIX both are ``uname(2)``'s node name."""
    uname = getattr(os, "uname", None)
    if uname is not None:
        return str(uname().nodename)
    import socket  # pragma: no cover - Windows

    return socket.gethostname()  # pragma: no cover


def _current_user() -> str | None:
    """``getpass.getuser()`` without importing ``getpass`` (and ``termios``): the first of
    ``LOGNAME``, ``USER``, ``LNAME``, ``USERNAME`` set, else the password database's name of
    the real user id; None when there is none (some containers)."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        user = os.environ.get(name)
        if user:
            return user
    try:
        import pwd
    except ImportError:  # pragma: no cover - Windows: getpass says why
        import getpass

        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return None
    try:
        return pwd.getpwuid(os.getuid())[0]
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        return None


class AuditService:
    """The audit store of one database (see the module docstring).

    Args:
        url: the audit database (``sqlite:///path.db`` or ``postgresql://...``).
        settings: defaults to :func:`~tallyclerk.settings.load_settings`.
        on_batch_timeout: called as ``on_batch_timeout(batch_id, "operation" | "idle")`` on the
            watchdog thread after a timed-out batch has been recorded.

    Raises:
        ConfigError: a bad URL (the message masks its password).
        AuditStoreError: the store was written by a newer tallyclerk.
        RepositoryError: the store cannot be reached or created.
    """

    def __init__(
        self,
        url: str,
        *,
        settings: Settings | None = None,
        on_batch_timeout: Callable[[str, str], object] | None = None,
    ) -> None:
        self.settings = settings if settings is not None else load_settings()
        self._db = parse_url(url)
        self.url_masked: str = self._db.masked
        self._on_batch_timeout = on_batch_timeout
        # SQLite: plain sqlite3, no SQLAlchemy import; a server: SQLAlchemy Core (backend.py)
        self._engine: AuditEngine = backend.open_engine(self._db, self.settings)
        self._dialect: str = self._db.dialect
        # TALLYCLERK_HOST overrides the host name in claim owners (containers that share a
        # host name, simulated hosts in tests)
        self._host = os.environ.get("TALLYCLERK_HOST") or _host_name()
        self._pid = os.getpid()
        self._owner = f"{self._host}:{self._pid}"
        self._user = _current_user()
        self._lock = threading.Lock()
        self._batches: dict[str, BatchAccumulator] = {}
        self._closed = False
        self._claims = Claims(host=self._host, pid=self._pid, lease_s=self.settings.lease_s)
        # SQLite: this process's turn at the file comes before every write transaction
        self._gate = backend.gate(self._engine)
        self._runner: Runner = backend.runner(self._engine, self.settings,
                                              label=self.url_masked, gate=self._gate)
        # Lease heartbeats run on the watchdog thread: one attempt, waiting briefly for a turn
        # (an event batch or a ledger transaction) and for another process's write lock, so
        # a long transaction never stalls the watchdog (renewed at the next heartbeat; nobody
        # can reclaim while the lock is held); a data transaction of this process is not
        # waited for at all (see _heartbeat).
        hb_ms = min(self.settings.busy_timeout_ms, int(self.settings.heartbeat_s * 500), 250)
        self._hb_wait_s = hb_ms / 1000.0
        self._hb_runner: Runner = backend.runner(
            self._engine,
            self.settings,
            label=self.url_masked,
            max_retries=0,
            give_up_level=logging.WARNING,
            gate=self._gate,
            gate_timeout_s=self._hb_wait_s,
            busy_timeout_ms=hb_ms,  # another process's long transaction: give up quickly
        )
        try:
            self._runner.retrying(
                lambda: backend.ensure_schema(self._engine), what="create the audit schema"
            )
        except BaseException:
            backend.dispose(self._engine)
            raise
        s = self.settings
        self._watchdog = Watchdog(
            on_timeout=self._on_timeout, tick_s=min(0.05, s.watchdog_interval_s)
        )
        self.events = EventLog(self._engine, s, label=self.url_masked,
                               insert_sync=self._insert_event_sync)
        """The event log (``tallyclerk_events``): ``events.record(...)`` never waits."""
        self.ledger = FileLedger(self._runner, self._claims, accumulator=self._running,
                                 check_open=self._check_open)
        """The file ledger: claims, each file's outcome, replaces, schema versions."""
        log.debug("audit store %s ready", self.url_masked)

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> AuditService:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self, timeout: float = 1.0) -> None:
        """Stop the watchdog, drain the event queue (bounded by ``timeout``), release the engine.

        Returns within about ``timeout`` seconds. Events not written by then are dead-lettered
        and logged at error level with their count; nothing is dropped silently. Idempotent.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        deadline = time.monotonic() + max(0.0, timeout)
        self._watchdog.stop()
        self._abandon_running_batches()
        writer_stopped = self.events.close(timeout=max(0.0, deadline - time.monotonic()))
        if writer_stopped:
            # the events written since the batch finished; one short attempt (close is bounded)
            self._seal_with(self._hb_runner, level=logging.WARNING)
        # bounded like the rest of close: a turn still held past the deadline keeps its
        # connection until it ends (then closed by its holder)
        backend.dispose(self._engine, close=writer_stopped,
                        timeout=max(0.0, deadline - time.monotonic()))

    def _abandon_running_batches(self) -> None:
        """Batches never finished (the caller died mid-batch): ``failed``, files released.

        One short attempt each (the heartbeat's runner), so close stays bounded; a failure is
        logged, and the next claim of their files treats them as dead owners anyway.
        """
        with self._lock:
            abandoned = list(self._batches)
            self._batches.clear()
        reason = "the audit service closed before the batch finished"
        for batch_id in abandoned:
            now = _utcnow()

            unstarted = self.ledger.forget_batch(batch_id)

            def work(repo: Repository, batch_id: str = batch_id, now: datetime = now,
                     unstarted: list[tuple[int, str]] = unstarted) -> None:
                repo.drop_unstarted_claims(unstarted)  # claims taken ahead: never started
                repo.release_batch_files(
                    batch_id, error=reason, error_class="Interrupted", finished_at=now
                )
                repo.update_batch(
                    batch_id,
                    only_if_status="running",
                    status="failed",
                    finished_at=now,
                    error_class="Interrupted",
                    error_message=reason,
                )

            try:
                self._hb_runner.run(work, what=f"close running batch {batch_id}")
            except RepositoryError as exc:
                log.error("batch %s left running in the audit store: %s", batch_id, exc)
                continue
            log.error("batch %s was still running at close: marked failed", batch_id)

    def seal(self) -> int:
        """Append every final unsealed ledger row to the hash chain (see
        :mod:`tallyclerk.audit.chain`); returns how many. A failure is logged, not raised:
        the rows stay unsealed (``verify`` counts them) until the next seal."""
        return self._seal_with(self._runner)

    def _seal_with(self, runner: Runner, level: int = logging.ERROR) -> int:
        if not self.settings.audit_chain:
            return 0
        try:
            return runner.run(lambda repo: chain.seal(repo),
                              what="seal ledger rows into the hash chain")
        except RepositoryError as exc:
            log.log(level, "audit store %s: sealing ledger rows failed (they stay unsealed "
                    "until the next seal): %s", self.url_masked, exc)
            return 0

    def file_history(self, path: str) -> list[dict[str, Any]]:
        """Every manifest row of ``path``, oldest first (``tallyclerk status --file``)."""
        return self._runner.run(
            lambda repo: lineage.file_history(repo, path),
            what=f"read the history of {path}",
        )

    def verify(self, *, since_anchor: str | None = None) -> chain.VerifyReport:
        """Recompute the hash chain (read-only); see :func:`tallyclerk.audit.chain.verify`."""
        return self._runner.run(
            lambda repo: chain.verify(repo, since_anchor=since_anchor),
            what="verify the hash chain",
        )

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def engine(self) -> AuditEngine:
        """The audit store's engine: on SQLite a
        :class:`~tallyclerk.audit.liteengine.LiteEngine` (one ``sqlite3`` connection, taken in
        turns), else a SQLAlchemy ``Engine`` (a work list of the same server store in this
        process shares it)."""
        return self._engine

    def _check_open(self) -> None:
        if self._closed:
            raise QueueClosed(f"audit service for {self.url_masked} is closed")

    # --- transactions ------------------------------------------------------------------------

    def _tx(self, work: Callable[[Repository], R], *, what: str) -> R:
        """Run ``work`` in one transaction of its own, retried on transient errors."""
        return self._runner.run(work, what=what)

    # --- batches -----------------------------------------------------------------------------

    def start_batch(self, table: str, options: Mapping[str, Any]) -> str:
        """Record a running batch; returns its id. Its accumulator is watched for timeouts."""
        self._check_open()
        check_identifier(table)
        s = self.settings
        batch_id = uuid.uuid4().hex
        acc = BatchAccumulator(
            batch_id,
            BatchTimeout(s.operation_timeout_s, s.idle_timeout_s, s.watchdog_interval_s),
        )
        now = _utcnow()

        def start(repo: Repository) -> None:
            self._close_dead_batches(repo, batch_id, now)
            repo.add_batch(
                batch_id=batch_id,
                target_table=table,
                started_at=now,
                host=self._host,
                pid=self._pid,
                user=self._user,
                options=_jsonable(options),
            )

        self._tx(start, what="start a batch")
        self.seal()  # rows left unsealed by earlier runs (events written after their seal)
        with self._lock:
            self._batches[batch_id] = acc
        self._watchdog.watch(acc)
        self._watchdog.add_heartbeat(
            f"lease:{batch_id}", s.heartbeat_s, lambda: self._heartbeat(batch_id)
        )
        log.info("batch %s started: table %r", batch_id, table)
        return batch_id

    def _close_dead_batches(self, repo: Repository, batch_id: str, now: datetime) -> None:
        """Close batches of this host whose process is gone (killed while holding no claim).

        Their files need nothing here: a claim left ``loading`` is cleaned by the next claim of
        that file. Batches of other hosts are left to their own hosts (and to lease expiry).
        """
        for stale in repo.running_batches_on_host(self._host):
            if stale.pid == self._pid or pid_alive(stale.pid):
                continue
            log.warning("batch %s (pid %d) was interrupted; closed by batch %s",
                        stale.id, stale.pid, batch_id)
            repo.update_batch(
                stale.id,
                only_if_status="running",
                status="failed",
                finished_at=now,
                error_class="Interrupted",
                error_message=f"interrupted (process {stale.pid} gone); closed by batch {batch_id}",
            )

    def accumulator(self, batch_id: str) -> BatchAccumulator:
        """The live metrics of a running batch of this service."""
        with self._lock:
            acc = self._batches.get(batch_id)
        if acc is None:
            raise KeyError(f"no running batch {batch_id!r} in this audit service")
        return acc

    def _running(self, batch_id: str) -> BatchAccumulator | None:
        with self._lock:
            return self._batches.get(batch_id)

    def get_metrics_snapshot(self, batch_id: str) -> MetricsSnapshot:
        return self.accumulator(batch_id).snapshot()

    def active_batches(self) -> list[MetricsSnapshot]:
        with self._lock:
            accs = list(self._batches.values())
        return [acc.snapshot() for acc in accs]

    def finish_batch(
        self,
        batch_id: str,
        *,
        error: BaseException | None = None,
        status: str | None = None,
    ) -> dict[str, Any]:
        """Record the end of a batch and return its report (:meth:`batch_report`).

        The status is ``status`` when given; else ``timed_out`` if the watchdog fired,
        ``cancelled`` for an interrupt or a cancelled accumulator, ``failed`` for another
        error or when every file failed, ``partial`` when some did, else ``succeeded``.
        Files of the batch still ``loading`` are released as ``failed``.
        """
        with self._lock:
            acc = self._batches.pop(batch_id, None)
        unstarted = self.ledger.forget_batch(batch_id)
        if acc is None:
            raise KeyError(f"no running batch {batch_id!r} in this audit service")
        if not self._closed:
            self._watchdog.unwatch(acc)
            self._watchdog.remove_heartbeat(f"lease:{batch_id}")
        if self._gate is not None:
            self._gate.forgive(f"lease:{batch_id}")
        snap = acc.snapshot()
        now = _utcnow()

        def work(repo: Repository) -> tuple[str, dict[str, Any] | None]:
            batch = repo.get_batch(batch_id)
            if batch is None:
                raise KeyError(f"no batch {batch_id!r} in the audit store")
            # claims taken ahead for files the batch did not reach (FileLedger.skip_ahead):
            # not attempted, as if never claimed
            repo.drop_unstarted_claims(unstarted)
            repo.release_batch_files(
                batch_id,
                error="the batch ended while the file was loading",
                error_class="Interrupted",
                finished_at=now,
            )
            counts = repo.file_status_counts(batch_id)
            final = self._final_status(batch, counts, snap, error, status)
            values: dict[str, Any] = {
                "status": final,
                "finished_at": now,
                "files_started": snap.files_started,
                "files_loaded": snap.files_loaded,
                "files_skipped": snap.files_skipped,
                "files_failed": snap.files_failed,
                "rows_read": snap.rows_read,
                "rows_written": snap.rows_written,
                "rows_rejected": snap.rows_rejected,
                # a failed file counts its rolled-back rows as read, not written or rejected
                "rows_rolled_back": snap.rows_rolled_back,
                "bytes_read": snap.bytes_read,
            }
            if error is not None:
                values["error_class"] = type(error).__name__
                values["error_message"] = mask_secrets(str(error))[:4000]
            elif final == "cancelled" and snap.cancel_reason and batch.error_message is None:
                values["error_message"] = snap.cancel_reason
            if repo.update_batch(batch_id, only_if_unsealed=True, **values):
                return final, None
            # closed by another worker (our lease expired) or the watchdog, and already sealed
            # into the hash chain: the sealed row stays as it is (rewriting it would break the
            # chain); how this worker ended is recorded as a (chained) event instead
            closed = repo.get_batch(batch_id)
            late = {"status": final, "closed_as": None if closed is None else closed.status,
                    **{k: v for k, v in values.items() if k not in ("status", "finished_at")}}
            return final, late

        final, late = self._tx(work, what="finish a batch")
        if late is not None:
            log.warning("batch %s finished (%s) after it was closed as %s and sealed: its row "
                        "is kept, the ending is recorded as event batch_finished_late",
                        batch_id, final, late["closed_as"])
            self._record_internal("batch_finished_late", batch_id, late)
            final = str(late["closed_as"])
        self.seal()
        log_at = logging.INFO if final in ("succeeded", "partial") else logging.ERROR
        log.log(log_at, "batch %s finished: %s", batch_id, final)
        return self.batch_report(batch_id)

    @staticmethod
    def _final_status(
        batch: Batch,
        files: Mapping[str, int],
        snap: MetricsSnapshot,
        error: BaseException | None,
        status: str | None,
    ) -> str:
        if batch.status == "timed_out":
            return "timed_out"  # recorded by the watchdog; nothing overrides it
        if status is not None:
            if status not in ("succeeded", "partial", "failed", "cancelled", "timed_out"):
                raise ValueError(f"not a final batch status: {status!r}")
            return status
        if snap.expired is not None:
            return "timed_out"
        if isinstance(error, (KeyboardInterrupt, BatchCancelled)) or snap.cancelled:
            return "cancelled"
        if error is not None:
            return "failed"
        # ``files``: the batch's manifest rows by status (a count, not the rows: issue 16.4)
        failed = files.get("failed", 0)
        done = sum(files.get(s, 0) for s in ("loaded", "replaced", "skipped"))
        if failed and not done:
            return "failed"
        return "partial" if failed else "succeeded"

    # --- timeouts and leases (watchdog thread) -----------------------------------------------

    def _on_timeout(self, acc: BatchAccumulator, kind: str) -> None:
        batch_id = acc.batch_id
        reason = f"batch timed out ({kind})"
        now = _utcnow()

        def work(repo: Repository) -> list[int]:
            repo.update_batch(
                batch_id,
                only_if_status="running",
                status="timed_out",
                timeout_kind=kind,
                error_class="BatchTimeout",
                error_message=reason,
            )
            return repo.release_batch_files(
                batch_id, error=reason, error_class="BatchTimeout", finished_at=now,
                # claims taken ahead and not started: the batch's end deletes them
                keep=self.ledger.unstarted_claims(batch_id),
            )

        acc.cancel(reason)  # the watchdog cancelled it already; make sure regardless
        try:
            released = self._tx(work, what="record a batch timeout")
        except RepositoryError as exc:
            log.error("batch %s timed out (%s) but recording it failed: %s", batch_id, kind, exc)
            raise
        log.error(
            "batch %s timed out (%s); %d loading file(s) released", batch_id, kind, len(released)
        )
        self._record_internal("batch_timed_out", batch_id, {"kind": kind, "released": released})
        if self._on_batch_timeout is not None:
            self._on_batch_timeout(batch_id, kind)

    def _heartbeat(self, batch_id: str) -> None:
        gate = self._gate
        if gate is not None:
            # a short wait for an event batch or a ledger transaction; none for a data
            # transaction (it may last minutes): the renewal is owed to its end instead
            try:
                gate.acquire(self._hb_wait_s, not_after_data=True)
            except GateBusy as exc:
                if gate.data_open:
                    self._owe_renewal(batch_id)
                else:
                    log.warning("batch %s: leases not renewed (the next heartbeat renews): %s",
                                batch_id, exc)
                return
        try:
            self.renew_leases(batch_id)
        except TransientRepositoryError:
            pass  # the database is busy (logged at warning); the next heartbeat renews
        except RepositoryError as exc:
            log.error("batch %s: renewing file leases failed: %s", batch_id, exc)
            raise
        finally:
            if gate is not None:
                gate.release()

    def _owe_renewal(self, batch_id: str) -> None:
        """Renew the batch's leases as soon as this process's data transaction on the audit
        store's file ends (on the thread that ends it): the heartbeat does not wait for it."""
        assert self._gate is not None
        self._gate.owe(f"lease:{batch_id}", lambda: self._renew_owed(batch_id))

    def _renew_owed(self, batch_id: str) -> None:
        if self._closed or self._running(batch_id) is None:
            return
        try:
            self.renew_leases(batch_id)
        except RepositoryError as exc:  # logged; the next heartbeat renews
            log.warning("batch %s: renewing file leases after a data transaction failed: %s",
                        batch_id, exc)

    def renew_leases(self, batch_id: str) -> int:
        """Extend the lease of this batch's ``loading`` files (the watchdog heartbeat calls it).

        One attempt with a short busy timeout: raises ``TransientRepositoryError`` when the
        database stays locked.
        """
        until = _utcnow() + timedelta(seconds=self.settings.lease_s)
        return self._hb_runner.run(
            lambda repo: repo.renew_leases(batch_id, owner=self._owner, until=until),
            what=f"renew the leases of batch {batch_id}",
        )

    @property
    def dialect(self) -> str:
        """The audit store's dialect name (``sqlite``, ``postgresql``)."""
        return self._dialect

    def shares_database_with(self, data_url: str) -> bool:
        """True when ``data_url`` names the audit store's database (one transaction can hold
        a file's rows and its manifest row). URLs tallyclerk cannot parse never share."""
        try:
            other = parse_url(data_url)
        except ConfigError:
            return False
        return self._db.same_database(other)

    def _insert_event_sync(self, row: EventRow) -> int:
        event_type, batch_id, file_id, data, created, correlation_id = row
        return self._tx(
            lambda repo: repo.add_event(
                type=event_type,
                batch_id=batch_id,
                file_id=file_id,
                payload=None if data is None else orjson.loads(data),
                created_at=from_epoch_us(created),
                correlation_id=correlation_id,
            ),
            what=f"record event {event_type}",
        )

    def _record_internal(self, event_type: str, batch_id: str, payload: Mapping[str, Any]) -> None:
        try:
            self.events.record(event_type, batch_id=batch_id, payload=payload)
        except QueueClosed:
            log.error("audit event %s of batch %s lost: service closed", event_type, batch_id)

    # --- reports -----------------------------------------------------------------------------

    def batch_report(self, batch_id: str | None = None) -> dict[str, Any]:
        """The CLI ``--json`` report of a batch (the latest when None); ``{}`` if there is none.

        See :func:`tallyclerk.audit.reports.batch_report` for the shape.
        """
        return self._tx(lambda repo: reports.batch_report(repo, batch_id), what="read a report")

    def list_batches(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest batches, newest first, as JSON-ready dicts."""
        return self._tx(
            lambda repo: [reports.batch_dict(b) for b in repo.list_batches(limit)],
            what="list batches",
        )

    def list_events(
        self,
        *,
        batch_id: str | None = None,
        type: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """The latest ``limit`` audit events (newest first), by batch and/or type."""
        return self._tx(
            lambda repo: [
                reports.event_dict(e)
                for e in repo.list_events(batch_id=batch_id, type=type, limit=limit, newest=True)
            ],
            what="list events",
        )

    def list_rejects(
        self, *, path: str | None = None, batch_id: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Rejected records, by file path and/or batch, in file and record order."""
        return self._tx(
            lambda repo: [
                reports.reject_dict(r, f)
                for r, f in repo.list_rejects(path=path, batch_id=batch_id, limit=limit)
            ],
            what="list rejects",
        )


def _jsonable(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` as plain JSON values (anything else becomes its ``str``)."""
    data: dict[str, Any] = orjson.loads(
        orjson.dumps(dict(options), default=str, option=orjson.OPT_NON_STR_KEYS)
    )
    return data
