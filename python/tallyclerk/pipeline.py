"""The load pipeline: claim each file, stream it through the plugins into the sink, audit it.

For each path, in order:

1. A missing path, a directory or an unreadable file fails (the other files still load).
2. ``audit.claim_file``: a file whose content is already loaded into the table is *skipped*
   (naming the earlier batch) unless ``force``.
3. One transaction per file: ``sink.begin_file(claim)``; ``audit.prepare_file_in`` deletes
   the rows of an earlier crashed (or forced) load of the same file; the source's record
   batches go through the validate and transform hooks in this (the reader) thread and into
   a :class:`tallyclerk.WriteBehindQueue` (a few batches deep, so memory stays bounded) whose
   writer thread writes them with ``FileWrite.write`` -- reading and validating overlap with
   writing. When the audit store is the sink's database, the rejects and the manifest row
   (``audit.commit_file_in``) are written in the same transaction, so a file's rows and its
   ``loaded`` status commit together or not at all; otherwise the data commits first and
   ``audit.finish_file`` records it (a crash in between is repaired by the next run: the
   file's claim is found dead and its rows are deleted before it is loaded again).

Row accounting, for every loaded or failed file:
``rows_read = rows_written + rows_rejected + rows_rolled_back``. ``rows_read`` counts the
records read (a JSONL blank line is not a record); ``rows_rejected`` the rows that failed
validation (quarantined in the rejects table with their reasons). A *loaded* file rolls
nothing back. A *failed* file is rolled back, so ``rows_written`` is 0 and the rows it read
that were not rejected are ``rows_rolled_back`` (never judged bad: the file's ``error`` says
why they were not written).

Errors: ``--on-error continue`` (default) quarantines bad rows and loads the rest;
``skip-file`` fails (rolls back) a file at its first rejected row and goes on with the next;
``abort`` does the same and then stops the batch. ``--max-rejects N`` fails a file with more
than N rejected rows. Transient sink or audit errors retry the whole file with exponential
backoff and jitter (``settings.max_retries``); a circuit breaker opens after
``settings.breaker_threshold`` consecutive failures and fails the following files fast until
``settings.breaker_cooldown_s`` has passed.

Stopping: :class:`StopToken` (set by the CLI's SIGINT/SIGTERM handlers) and the watchdog's
batch timeout are checked between record batches and while waiting on the queue; the current
file is rolled back and marked failed (``interrupted`` / ``batch timed out``), and the batch
ends ``cancelled`` / ``timed_out``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

from tallyclerk import TableSchema, WriteBehindQueue, faults, modes, objstore
from tallyclerk._core import BatchAccumulator, FileEvent, KeyCheck, RecordBatch
from tallyclerk.audit import AuditService, FileClaim, FileResult, FileSkip, RejectRow
from tallyclerk.batch_size import AdaptiveBatchSize, FixedBatchSize
from tallyclerk.contract import (
    COLUMN_MODES,
    ContractViolation,
    FilePlan,
    check_given,
    plan_file,
)
from tallyclerk.errors import (
    BatchCancelled,
    BatchTimedOut,
    ConfigError,
    FlushTimeout,
    Interrupted,
    LeaseLost,
    QueueFull,
    RejectLimit,
    SinkError,
    SourceError,
    TallyclerkError,
)
from tallyclerk.first_schema import first_schema
from tallyclerk.logs import bind, current_context
from tallyclerk.names import check_table_name
from tallyclerk.protocols import BatchContext, FileWrite, Sink, Source, SqlExecutor
from tallyclerk.report import LoadProgress
from tallyclerk.retry import Backoff, CircuitBreaker, CircuitOpen, is_transient
from tallyclerk.settings import Settings
from tallyclerk.settle import DATA_TARGET, data_target, mark_loaded, settle_before_load

__all__ = ["ON_ERROR", "Pipeline", "StopToken"]

log = logging.getLogger("tallyclerk.pipeline")

ON_ERROR = ("continue", "skip-file", "abort")
_POLL_S = 0.05
_QUEUE_ITEMS = 3  # batches between the reader and the writer: bounds memory with max_bytes
_QUEUE_BYTES = 64 * 1024 * 1024
_KEEP_REJECTS = 10_000
_EVENT_FLUSH_S = 1.0
SKIP_AHEAD = 64  # files whose skips are decided in one audit transaction (issue 16.4)


class StopToken:
    """A stop request (Ctrl-C, SIGTERM); set from a signal handler, read by the pipeline."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None
        self.signum: int | None = None

    def stop(self, reason: str = "interrupted", signum: int | None = None) -> None:
        if not self._event.is_set():
            self.reason, self.signum = reason, signum
            self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)


@dataclass
class _FileState:
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    bytes_read: int = 0
    first_error_line: int | None = None
    rows_inserted: int | None = None
    rows_updated: int | None = None
    rejects: list[RejectRow] = field(default_factory=list)
    writer_error: BaseException | None = None
    abandon: bool = False
    plan: FilePlan | None = None  # the schema contract's decisions for this file
    # held by the writer thread around each write: the reader thread takes it before rolling
    # back, so a write still in flight (after a timed-out close) never overlaps the rollback
    writing: threading.Lock = field(default_factory=threading.Lock)
    # guards rows_rejected and rejects: the reader thread counts validation rejects, the
    # writer thread the rows a sink rejects while writing (a key already in the table)
    counting: threading.Lock = field(default_factory=threading.Lock)

    def result(self, error: BaseException | None = None) -> FileResult:
        plan = self.plan
        version = None if plan is None else plan.version
        changes = None if plan is None else plan.changes
        if error is None:
            return FileResult(
                rows_read=self.rows_read,
                rows_written=self.rows_written,
                rows_rejected=self.rows_rejected,
                bytes_read=self.bytes_read,
                first_error_line=self.first_error_line,
                rows_inserted=self.rows_inserted,
                rows_updated=self.rows_updated,
                schema_version=version,
                column_changes=changes,
            )
        line = self.first_error_line
        if isinstance(error, SourceError) and error.line is not None:
            line = error.line
        return FileResult(
            rows_read=self.rows_read,
            rows_written=0,
            rows_rejected=self.rows_rejected,
            rows_rolled_back=self.rows_read - self.rows_rejected,
            bytes_read=self.bytes_read,
            first_error_line=line,
            error=_message(error),
            error_class=type(error).__name__,
            schema_version=version,
            column_changes=changes,
        )


def _message(exc: BaseException) -> str:
    from tallyclerk.dburl import mask_secrets

    text = str(exc) or type(exc).__name__
    return mask_secrets(text.splitlines()[0] if text else text)


@dataclass
class _Outcome:
    status: str  # loaded | skipped | failed
    stop_batch: bool = False


class Pipeline:
    """Loads files into one table through one sink, recording everything in the audit store.

    :param settings: a :class:`tallyclerk.settings.Settings`.
    :param pm: the plugin manager (loaders, validators, transforms, event hooks).
    :param audit: the audit service.
    :param sink: the opened sink (``tallyclerk_open_sink``'s result).
    :param into_url: the sink's URL (to learn whether the audit store shares its database).
    :param stop: a stop token the caller sets to interrupt the load.
    :param progress: called with a :class:`~tallyclerk.report.LoadProgress` after each
        record batch and each file (on the reader thread).
    """

    def __init__(
        self,
        settings: Settings,
        pm: pluggy.PluginManager,
        audit: AuditService,
        sink: Sink,
        *,
        into_url: str,
        stop: StopToken | None = None,
        progress: Callable[[LoadProgress], None] | None = None,
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        self.settings = settings
        self._timeout_fired = False
        self.pm = pm
        self.hook = pm.hook
        self.audit = audit
        self.sink = sink
        self.stop = stop or StopToken()
        self.progress = progress
        self._shared = audit.shares_database_with(into_url)
        # another database: its files get a load marker, and uncertain ones are settled first
        self._into_url = into_url
        self._data_target = None if self._shared else data_target(into_url)
        self._wait = sleep or self.stop.wait
        self.breaker = CircuitBreaker(
            threshold=settings.breaker_threshold,
            cooldown_s=settings.breaker_cooldown_s,
        )
        self.backoff = Backoff(
            initial_ms=settings.backoff_initial_ms,
            max_ms=settings.backoff_max_ms,
            max_retries=settings.max_retries,
        )
        rows = settings.batch_rows
        self.sizer: AdaptiveBatchSize | FixedBatchSize = (
            FixedBatchSize(rows) if rows > 0 else AdaptiveBatchSize()
        )
        self._acc: BatchAccumulator | None = None
        self._files_total = 0
        self._file_retries = 0
        self._sink_totals = {"retried": 0, "dead_lettered": 0, "high_water": 0}
        self._correlation_id: str | None = None
        self._events = settings.audit_events
        self._local: dict[str, str] = {}  # object URL -> its spool (tallyclerk.objstore)

    # -- batch ------------------------------------------------------------------------------

    def run(
        self,
        paths: Sequence[str],
        table: str,
        schema: TableSchema | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        on_error: str = "continue",
        max_rejects: int | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        """Load ``paths`` into ``table``; returns the batch report (the CLI's ``--json``)."""
        check_table_name(table)
        if on_error not in ON_ERROR:
            raise ConfigError(f"--on-error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
        if max_rejects is not None and max_rejects < 0:
            raise ConfigError("--max-rejects must be 0 or more")
        opts: dict[str, Any] = dict(options or {})
        opts.setdefault("settings", self.settings)
        mode = str(opts.get("columns") or getattr(self.settings, "columns", "evolve"))
        if mode not in COLUMN_MODES:
            raise ConfigError(f"--columns must be one of {', '.join(COLUMN_MODES)}, got {mode!r}")
        opts["columns"] = self._columns = mode
        # a --schema that conflicts with the table's remembered one: exit 2 before any file
        self._revise = bool(opts.get("revise_schema"))
        check_given(table, self.audit.table_schema(table), schema, mode,
                    str(opts.get("schema_path") or ""), revise=self._revise)
        opts["schema"] = schema
        self._on_error, self._max_rejects, self._force = on_error, max_rejects, force
        self._table, self._schema, self._options = table, schema, opts
        # masked in every reject's raw text and reason, by the Rust batch that makes them
        self._sensitive = sensitive_columns(schema, self.settings)
        self._files_total = len(paths)
        self._mode = self._check_mode(modes.resolve(opts, schema))
        self._any_failed = False
        self._swapped = False

        audit_options = {
            k: v
            for k, v in opts.items()
            if isinstance(v, (str, int, float, bool)) or v is None
        }
        audit_options.update(on_error=on_error, max_rejects=max_rejects, force=force)
        if self._data_target is not None:
            audit_options[DATA_TARGET] = self._data_target
        batch_id = self.audit.start_batch(table, audit_options)
        self._batch_id = batch_id
        self._timeout_fired = False
        # replace: every file loads into a shadow table, swapped in at the end of the batch
        self._target = modes.shadow_table(batch_id) if self._mode.replace else table
        self._acc = self.audit.accumulator(batch_id)
        unclaimed: list[dict[str, Any]] = []
        status: str | None = None
        error: BaseException | None = None
        # one correlation id per run: the caller's (CLI --correlation-id) or a new one
        cid = str(current_context().get("correlation_id") or uuid.uuid4().hex)
        self._correlation_id = cid
        with bind(batch_id=batch_id, correlation_id=cid):
            log.info("batch %s: loading %d file(s) into %r", batch_id, len(paths), table)
            self._record("batch_started", batch_id=batch_id,
                              payload={"table": table, "files": len(paths)})
            self.hook.tallyclerk_batch_start(batch_id=batch_id, table=table, paths=list(paths))
            try:
                if self._data_target is not None:
                    settle_before_load(self.audit, self._into_url, table, batch_id)
                if self._mode.replace:
                    self._drop_stale_shadows()
                ahead_at = 0  # the next index to skip ahead from
                for index, path in enumerate(paths):
                    why = self._why_stop()
                    if why is not None:
                        status = self._stop_status()
                        self._unstarted(paths[index:], why, unclaimed)
                        break
                    if index >= ahead_at and not self._force and not self._mode.replace:
                        local = list(itertools.takewhile(lambda p: not objstore.is_remote(p),
                                                         paths[index:index + SKIP_AHEAD]))
                        n = self.audit.skip_ahead(batch_id, local, self._target)
                        # the whole chunk skipped: on from its end; cut short by a file to
                        # claim: right after that file; none: a chunk later (a load of new
                        # files pays one lookup per chunk)
                        ahead_at = index + (n if n == len(local) and n else
                                            n + 1 if n else SKIP_AHEAD)
                    outcome = self._load_path(path, unclaimed)
                    self._tick()
                    self._sample(None)
                    if outcome.stop_batch:
                        status = self._stop_status()
                        why = self._why_stop() or f"--on-error {self._on_error}"
                        self._unstarted(paths[index + 1 :], why, unclaimed)
                        break
                if self._mode.replace:
                    self._finish_replace(status, unclaimed)
            except BaseException as exc:
                error = exc
                if self._mode.replace:
                    self._abandon_replace(f"{type(exc).__name__}: {_message(exc)}")
                raise
            finally:
                if self.stop.stopped:
                    status = "cancelled"
                kind = self._timed_out()
                if kind is not None and status != "cancelled":
                    status = "timed_out"
                if kind is not None:
                    self._fire_timeout(kind, None)  # between files: no file was in flight
                report = self.audit.finish_batch(batch_id, error=error, status=status)
                report = _merge_unclaimed(report, unclaimed, paths)
                self._record("batch_finished", batch_id=batch_id,
                                  payload={"status": report.get("status")})
                self.hook.tallyclerk_batch_finish(batch_id=batch_id, report=report)
        return report

    def _check_mode(self, mode: modes.WriteMode) -> modes.WriteMode:
        """Refuse a write mode the sink does not declare (exit 2): never append silently."""
        supported = modes.sink_modes(self.sink)
        if mode.mode not in supported:
            raise ConfigError(
                f"the sink for {getattr(self.sink, 'url', '?')} does not support --mode "
                f"{mode.mode} (it supports: {', '.join(supported)})"
            )
        if mode.replace and not callable(getattr(self.sink, "swap_table", None)):
            raise ConfigError("--mode replace needs a sink with swap_table()")
        return mode

    def _finish_replace(self, status: str | None, unclaimed: list[dict[str, Any]]) -> None:
        """Swap the shadow table in when every file loaded; else abandon the replace."""
        why = self._why_stop()
        if status is not None or why is not None:
            self._abandon_replace(why or f"the batch stopped ({status})")
            return
        if self._any_failed or unclaimed:
            self._abandon_replace("a file failed")
            return
        shadow, table = self._target, self._table
        shared = self._shared

        def in_txn(ex: SqlExecutor | None) -> None:
            if shared:
                if ex is None:
                    raise SinkError("the sink's swap transaction cannot run SQL")
                self.audit.swap_in(ex, shadow, table)
            faults.point("replace-before-swap-commit")

        self.sink.swap_table(shadow, table, in_txn)  # type: ignore[attr-defined]
        self._swapped = True
        if not shared:
            faults.point("after-swap-before-manifest")
            self.audit.swap_done(shadow, table)
        loaded = self._acc.snapshot().files_loaded if self._acc is not None else 0
        log.info("table %r replaced by the %d file(s) loaded by batch %s", table, loaded,
                 self._batch_id)

    def _drop_stale_shadows(self) -> None:
        """Drop the shadow tables of replaces of this table that died before their swap."""
        drop = getattr(self.sink, "drop_table", None)
        for shadow in self.audit.stale_shadows(self._table):
            if callable(drop):
                drop(shadow)
            self.audit.abandon_replace(
                shadow, f"replace interrupted before its swap; table {self._table!r} was left "
                "as it was"
            )
            log.warning("replace of %r: dropped %r, left by an interrupted replace",
                        self._table, shadow)

    def _abandon_replace(self, why: str) -> None:
        """The table stays as it was: the shadow's files become failed, the shadow is dropped."""
        shadow = self._target
        if self._swapped:  # the table is the new one; only its manifest update failed
            log.error("replace of %r: the table was swapped in but recording it failed (%s); "
                      "its files still name %r", self._table, why, shadow)
            return
        try:
            n = self.audit.abandon_replace(
                shadow, f"replace abandoned ({why}); table {self._table!r} left as it was"
            )
        finally:
            drop = getattr(self.sink, "drop_table", None)
            if callable(drop):
                try:
                    drop(shadow)
                except (TallyclerkError, OSError) as exc:
                    log.error("replace of %r: cannot drop the shadow table %r: %s",
                              self._table, shadow, _message(exc))
        log.error("replace of %r abandoned (%s): %d loaded file(s) marked failed",
                  self._table, why, n)

    def _flush_events(self) -> None:
        """Write the events recorded so far before the file's transaction takes the database's
        write lock (when the audit store shares it): otherwise the event writer waits out the
        whole file in SQLite's busy handler, whose sleeps (up to 100 ms) then delay the final
        flush -- measured: ``close()`` took about 50 ms with events on, 1 ms with them off.
        A flush that times out only leaves the events queued (written after the file)."""
        if self._events and self._shared:
            with contextlib.suppress(FlushTimeout):
                self.audit.flush(timeout=_EVENT_FLUSH_S)

    def _record(self, event_type: str, **fields: Any) -> None:
        if self._events:  # settings.audit_events; the manifest is written either way
            self.audit.record(event_type, correlation_id=self._correlation_id, **fields)

    def _sample(self, queue: WriteBehindQueue | None) -> None:
        """Report queue, retry and breaker figures to ``tallyclerk_pipeline_stats``."""
        hook = self.hook.tallyclerk_pipeline_stats
        if not hook.get_hookimpls():
            return
        sink = dict(self._sink_totals)
        if queue is not None:
            q = queue.stats()
            sink["retried"] += q.retried
            sink["dead_lettered"] += q.dead_lettered
            sink["high_water"] = max(sink["high_water"], q.high_water)
            depth = q.depth
        else:
            depth = 0
        audit = self.audit.queue_stats()
        stats: dict[str, Any] = {
            "sink_queue_depth": depth,
            "sink_queue_high_water": sink["high_water"],
            "sink_retries": sink["retried"],
            "sink_dead_letters": sink["dead_lettered"],
            "file_retries": self._file_retries,
            "breaker_state": self.breaker.state,
            "breaker_opened": self.breaker.opened_count,
        }
        if audit:
            stats.update(
                audit_queue_depth=audit.get("depth", 0),
                audit_queue_high_water=audit.get("high_water", 0),
                audit_retries=audit.get("retried", 0),
                audit_dead_letters=audit.get("dead_lettered", 0),
            )
        hook(batch_id=self._batch_id, stats=stats)

    def _why_stop(self) -> str | None:
        if self.stop.stopped:
            return self.stop.reason or "interrupted"
        kind = self._timed_out()
        if kind is not None:
            return f"batch timed out ({kind} timeout)"
        return None

    def _stop_status(self) -> str | None:
        if self.stop.stopped:
            return "cancelled"
        if self._timed_out() is not None:
            return "timed_out"
        return None

    def _timed_out(self) -> str | None:
        acc = self._acc
        if acc is None or not acc.cancelled:
            return None
        return acc.snapshot().expired or "operation"

    def _tick(self, extra_rows: int = 0) -> None:
        """Progress from the accumulator's snapshot (the one count of files and rows), plus
        ``extra_rows``: the rows read so far of the file being loaded (counted at its end)."""
        if self.progress is not None and self._acc is not None:
            snap = self._acc.snapshot()
            done = snap.files_loaded + snap.files_skipped + snap.files_failed
            self.progress(LoadProgress(done, self._files_total, snap.rows_read + extra_rows,
                                       snap))

    def _count(self, kind: FileEvent, st: _FileState | None = None, failed: bool = False) -> None:
        assert self._acc is not None
        try:
            if st is None:
                self._acc.add_file_event(kind)
            else:
                self._acc.add_file_event(
                    kind,
                    rows_read=st.rows_read,
                    rows_written=0 if failed else st.rows_written,
                    rows_rejected=st.rows_rejected,  # a failed file's others: rolled back
                    bytes_read=st.bytes_read,
                )
        except BatchCancelled:
            log.info("batch cancelled; file event not counted")

    # -- one path ---------------------------------------------------------------------------

    def _skipped(self, path: str, claim: FileSkip) -> _Outcome:
        log.info("file %s skipped: %s", path, claim.reason)
        self._count(FileEvent.SKIPPED)
        self.hook.tallyclerk_file_skipped(
            context=self._context(path, claim.file_id, 0), skip=claim)
        self._record("file_skipped", batch_id=self._batch_id, file_id=claim.file_id,
                     payload={"path": path, "reason": claim.reason})
        return _Outcome("skipped")

    def _unstarted(self, rest: Sequence[str], why: str, unclaimed: list[dict[str, Any]]) -> None:
        """The files a stopping batch does not reach: not attempted, except those
        ``skip_ahead`` already skipped (their rows are committed: reported as skipped)."""
        for p in rest:
            skip = self.audit.skipped_ahead(self._batch_id, p)
            if skip is None:
                unclaimed.append(_not_attempted(p, why))
            else:
                self._skipped(p, skip)

    def _load_path(self, path: str, unclaimed: list[dict[str, Any]]) -> _Outcome:
        claim: FileClaim | FileSkip
        with contextlib.ExitStack() as stack:
            try:
                if objstore.is_remote(path):
                    # copied to a private spool first (see tallyclerk.objstore): claimed by the
                    # spool's fingerprint, loaded from it, removed when the file is done
                    fetched = stack.enter_context(objstore.fetch(
                        path, self.settings, should_stop=self._why_stop, sleep=self._wait))
                    claim = self.audit.claim_file(self._batch_id, path, self._target,
                                                  force=self._force, fetched=fetched)
                    self._local[path] = fetched.local
                    stack.callback(self._local.pop, path, None)
                else:
                    problem = _unreadable(path)
                    if problem is not None:
                        raise SourceError(f"{path}: {problem}", path=path)
                    claim = self.audit.claim_file(self._batch_id, path, self._target,
                                                  force=self._force)
            except (BatchCancelled, objstore.FetchStopped):
                why = self._why_stop() or "batch cancelled"
                unclaimed.append(_not_attempted(path, why))
                return _Outcome("failed", stop_batch=True)
            except SourceError as exc:
                log.error("file %s failed (%s): %s", path, type(exc).__name__, _message(exc),
                          extra={"error_class": type(exc).__name__})
                unclaimed.append(_failed_entry(path, exc))
                self._count(FileEvent.FAILED)
                self._record("file_failed", batch_id=self._batch_id,
                                  payload={"path": path, "error": _message(exc)})
                stop = self._on_error == "abort"
                return _Outcome("failed", stop_batch=stop)
            if isinstance(claim, FileSkip):
                return self._skipped(path, claim)
            with bind(file_id=claim.file_id):
                return self._load_claimed(claim)
        raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow

    def _load_claimed(self, claim: FileClaim) -> _Outcome:
        path = claim.path
        self._count(FileEvent.STARTED)
        attempt = 0
        last: BaseException | None = None  # the transient failure this file is retrying after
        while True:
            attempt += 1
            st = _FileState()
            ctx = self._context(path, claim.file_id, attempt)
            try:
                self.breaker.check()
                self._record("file_started", batch_id=self._batch_id, file_id=claim.file_id,
                                  payload={"path": path, "attempt": attempt})
                self.hook.tallyclerk_file_start(context=ctx)
                self._flush_events()
                self._attempt(claim, st, ctx)
            except ConfigError as exc:
                # a configuration problem (bad option for a loader): fail, stop, exit 2
                self._fail(claim, st, exc, ctx)
                raise
            except (TallyclerkError, OSError) as exc:
                if is_transient(exc):
                    self.breaker.record_failure()
                    if self.backoff.should_retry(attempt) and not self.stop.stopped:
                        delay = self.backoff.delay_s(attempt)
                        log.warning("file %s: transient failure (%s); retry %d in %.2f s",
                                    path, _message(exc), attempt, delay)
                        self._file_retries += 1
                        last = exc
                        if not self._wait(delay):  # True: a stop request ended the wait
                            continue
                        exc = Interrupted(self.stop.reason or "interrupted")
                elif isinstance(exc, CircuitOpen) and last is not None:
                    # the breaker opened while this file was retrying: keep the cause in sight
                    exc = CircuitOpen(f"{exc}; last error: {_message(last)}")
                elif not isinstance(exc, (CircuitOpen, RejectLimit, Interrupted, BatchTimedOut)):
                    if isinstance(exc, SinkError):
                        self.breaker.record_failure()
                return self._fail(claim, st, exc, ctx)
            except BaseException as exc:
                # a bug in a plugin or in tallyclerk: record the file as failed, then let the
                # exception reach the CLI (exit 70 with one line, the traceback in the log)
                self._fail(claim, st, exc, ctx)
                raise
            self.breaker.record_success()
            return self._loaded(claim, st, ctx)

    def _context(self, path: str, file_id: int, attempt: int) -> BatchContext:
        """The context every file-level hook of one attempt receives (one object)."""
        opts = dict(self._options)
        opts["batch_rows"] = self.sizer.rows
        return BatchContext(
            batch_id=self._batch_id, file_id=file_id, path=path, table=self._table,
            schema=self._schema, options=opts, attempt=attempt,
            stores_nan=bool(getattr(self.sink, "stores_nan", False)),
            stores_big_int=bool(getattr(self.sink, "stores_big_int", False)),
        )

    def _fire_timeout(self, kind: str, ctx: BatchContext | None) -> None:
        """``tallyclerk_timeout``, once per batch, wherever the timeout ended the work."""
        if not self._timeout_fired:
            self._timeout_fired = True
            self.hook.tallyclerk_timeout(batch_id=self._batch_id, kind=kind, context=ctx)

    def _loaded(self, claim: FileClaim, st: _FileState, ctx: BatchContext) -> _Outcome:
        result = st.result()
        if not self._shared:
            faults.point("after-data-commit-before-manifest")
            if st.plan is not None and st.plan.new_version is not None:
                self.audit.record_schema(st.plan.new_version)
            self.audit.finish_file(claim, "loaded", result, st.rejects)
        faults.point("after-commit-before-event")
        self._count(FileEvent.LOADED, st)
        self._record("file_loaded", batch_id=self._batch_id, file_id=claim.file_id,
                          payload={"path": claim.path, "rows_read": st.rows_read,
                                   "rows_written": st.rows_written,
                                   "rows_rejected": st.rows_rejected,
                                   "rows_rolled_back": 0})
        log.info("file %s loaded: %d read, %d written, %d rejected", claim.path,
                 st.rows_read, st.rows_written, st.rows_rejected)
        self.hook.tallyclerk_file_finish(context=ctx, status="loaded", result=result)
        return _Outcome("loaded")

    def _fail(
        self, claim: FileClaim, st: _FileState, exc: BaseException, ctx: BatchContext
    ) -> _Outcome:
        self._any_failed = True
        if isinstance(exc, BatchTimedOut):
            self._fire_timeout(self._timed_out() or "operation", ctx)
        result = st.result(exc)
        local = self._local.get(claim.path)
        if local is not None and result.error:  # name the object, not its temporary copy
            result = dataclasses.replace(result, error=result.error.replace(local, claim.path))
        # a ConfigError ends the command with exit 2 and that one message: log it quietly
        level = logging.INFO if isinstance(exc, ConfigError) else logging.ERROR
        log.log(level, "file %s failed (%s): %s", claim.path, type(exc).__name__, result.error,
                extra={"error_class": type(exc).__name__})
        try:
            self.audit.finish_file(claim, "failed", result, st.rejects[:_KEEP_REJECTS])
        except LeaseLost:
            log.error("file %s: claim taken over by another worker", claim.path)
        self._count(FileEvent.FAILED, st, failed=True)
        self._record("file_failed", batch_id=self._batch_id, file_id=claim.file_id,
                          payload={"path": claim.path, "error": result.error,
                                   "error_class": result.error_class,
                                   "rows_read": result.rows_read,
                                   "rows_rejected": result.rows_rejected,
                                   "rows_rolled_back": result.rows_rolled_back})
        self.hook.tallyclerk_file_finish(context=ctx, status="failed", result=result)
        stop = (
            isinstance(exc, (Interrupted, BatchTimedOut))
            or (isinstance(exc, RejectLimit) and exc.stop_batch)
            or self._on_error == "abort"
        )
        return _Outcome("failed", stop_batch=stop)

    # -- one attempt: one transaction ---------------------------------------------------------

    def _attempt(self, claim: FileClaim, st: _FileState, ctx: BatchContext) -> None:
        source = self._open_source(self._local.get(claim.path, claim.path), ctx.options)
        try:
            columns = list(source.columns)
            plan = st.plan = plan_file(
                table=self._table, path=claim.path, columns=columns,
                stored=self.audit.table_schema(self._table), given=self._schema,
                mode=self._columns, first_schema=lambda: self._first_schema(claim.path, columns,
                                                         self._local.get(claim.path)),
                batch_id=self._batch_id, file_id=claim.file_id, revise=self._revise,
            )
            # every later hook of this attempt validates against the planned schema (a plain
            # text table with nothing to drop: no validation, values load as read)
            ctx.schema = plan.schema if plan.validate else None
            if (not self._mode.merge and ctx.schema is not None and ctx.schema.keys
                    and not getattr(self.sink, "checks_unique", False)):
                raise ConfigError(
                    f"the sink for {getattr(self.sink, 'url', '?')} cannot check the schema's "
                    "primaryKey/unique against the rows already in the table (the SQLite and "
                    "PostgreSQL sinks can; --mode merge upserts by the key instead)"
                )
            if self._mode.merge:
                missing = [k for k in self._mode.primary_key if k not in columns]
                if missing and self._schema is None:
                    raise SourceError(
                        f"{claim.path}: no primary key column(s) "
                        f"{', '.join(map(repr, missing))} in its header",
                        path=claim.path,
                    )
            self.sink.prepare(self._target, plan.create_schema)
            try:
                fw = self.sink.begin_file(claim)
            except ConfigError as exc:
                if self._schema is not None and plan.create_schema is plan.schema:
                    raise  # the given schema's columns: a configuration error (exit 2)
                # the columns come from this file's header (too long, too many, clashing with
                # _tc_file_id): this file fails, the other files still load
                raise SourceError(
                    f"{claim.path}: its header cannot be the columns of table "
                    f"{self._table!r}: {exc}",
                    path=claim.path,
                ) from exc
            try:
                ex = fw.executor
                # merge: a re-run upserts the same rows again (idempotent), an earlier load's
                # rows are not deleted (later files may have updated them since)
                if claim.replaces and not self._mode.merge:
                    if ex is None:
                        raise SinkError("this sink cannot delete the rows of an earlier load")
                    self.audit.prepare_file_in(ex, claim, self._target)
                shared = ex if self._shared else None
                if shared is not None and plan.new_version is not None:
                    self._check_schema_unchanged(shared, plan)
                if plan.added_fields:
                    _add_columns(fw, claim.path, self._table, plan.added_fields)
                self._stream(source, fw, claim, ctx, st, shared)
                self._write_counts(fw, st)
                if shared is not None:
                    if plan.new_version is not None:
                        self.audit.record_schema_in(shared, plan.new_version)
                    self.audit.commit_file_in(shared, claim, st.result())
                elif self._data_target is not None:
                    mark_loaded(ex, claim, st.result(), self._mode.mode)
                faults.point("before-data-commit")
                fw.commit()
            except BaseException:
                st.abandon = True
                with st.writing:
                    fw.rollback()
                raise
        finally:
            source.close()

    def _write_counts(self, fw: FileWrite, st: _FileState) -> None:
        """Rows inserted and updated, from the sink's ``counts()`` (merge) or the mode."""
        counts = getattr(fw, "counts", None)
        if callable(counts):
            inserted, updated = counts()
            if inserted + updated != st.rows_written:
                raise SinkError(
                    f"the sink counted {inserted} inserted + {updated} updated rows, but wrote "
                    f"{st.rows_written}"
                )
            st.rows_inserted, st.rows_updated = int(inserted), int(updated)
        elif not self._mode.merge:
            st.rows_inserted, st.rows_updated = st.rows_written, 0

    def _check_schema_unchanged(self, ex: SqlExecutor, plan: FilePlan) -> None:
        """Another load recorded a schema version since this file was planned (two workers
        evolving one table): retry the file, which plans again on the new version."""
        found = self.audit.schema_version_in(ex, self._table)
        if found != plan.version - 1:
            raise SinkError(
                f"the schema of table {self._table!r} changed while this file was planned "
                f"(now version {found}); the file is planned and loaded again",
                transient=True,
            )

    def _first_schema(
        self, path: str, columns: Sequence[str], local: str | None = None
    ) -> tuple[TableSchema, str]:
        """The first schema of a table loaded without ``--schema`` (see
        :mod:`tallyclerk.first_schema`): inferred from a sample of this file by default."""
        return first_schema(path, self._table, columns, self._options, self.settings,
                            local=local)

    def _open_source(self, path: str, opts: Mapping[str, Any]) -> Source:
        source = self.hook.tallyclerk_open_source(path=path, options=opts)
        if source is None:
            fmt = opts.get("format")
            if fmt:
                raise ConfigError(f"no loader for --format {fmt!r} (csv, jsonl, or a plugin's)")
            raise SourceError(
                f"{path}: no loader recognises this file (use --format csv|jsonl, or a plugin)",
                path=path,
            )
        return source  # type: ignore[no-any-return]

    def _check(self, st: _FileState) -> None:
        if st.writer_error is not None:
            raise st.writer_error
        if self.stop.stopped:
            raise Interrupted(self.stop.reason or "interrupted")
        kind = self._timed_out()
        if kind is not None:
            raise BatchTimedOut(f"batch timed out ({kind} timeout)")

    def _stream(
        self,
        source: Source,
        fw: FileWrite,
        claim: FileClaim,
        ctx: BatchContext,
        st: _FileState,
        shared: SqlExecutor | None,
    ) -> None:
        audit, sizer = self.audit, self.sizer
        keys = self._key_check(ctx.schema)

        def drain(items: list[tuple[RecordBatch, list[RejectRow]]]) -> None:
            for batch, rejects in items:
                if st.writer_error is not None:
                    return
                with st.writing:
                    if st.abandon:
                        return
                    started = time.perf_counter()
                    try:
                        known = len(rejects)
                        written = fw.write(batch)
                        elapsed = time.perf_counter() - started
                        late = (_late_rejects(batch, rejects)
                                if batch.num_rejected > known else [])
                        if late:
                            self._count_rejects(st, late, ctx, shared)
                            rejects = [*rejects, *late]
                        if rejects and shared is not None:
                            audit.add_rejects_in(shared, claim, rejects)
                        faults.point("batch-written")
                    except BaseException as exc:  # noqa: BLE001 - re-raised by the reader
                        # handed to the reader thread, which fails the file with it (logged
                        # once, there); not through the queue's dead-letter path, which would
                        # log it again with a traceback on the user's terminal
                        st.writer_error = exc
                        return
                sizer.observe(batch.num_rows, elapsed, batch.bytes)
                st.rows_written += written
                self.hook.tallyclerk_rows_written(context=ctx, rows=written, seconds=elapsed)

        def dead_letter(items: list[Any], exc: BaseException) -> None:
            if st.writer_error is None:
                st.writer_error = exc

        queue = WriteBehindQueue(
            drain,
            max_items=_QUEUE_ITEMS,
            max_bytes=_QUEUE_BYTES,
            max_batch=1,
            linger_ms=0.0,
            max_retries=0,
            dead_letter=dead_letter,
            flush_at_exit=False,
            name="tallyclerk-sink",
        )
        hook = self.hook
        done = False
        try:
            # the sensitive fields of the schema the file is checked against (a table's
            # remembered schema keeps its "sensitive": true fields)
            sensitive = (self._sensitive if st.plan is None
                         else sensitive_columns(st.plan.schema, self.settings))
            for batch in source:
                self._check(st)
                if sensitive:
                    batch.set_sensitive(sensitive)
                hook.tallyclerk_validate_batch(batch=batch, context=ctx)
                hook.tallyclerk_transform_batch(batch=batch, context=ctx)
                if keys is not None:
                    keys.check(batch)
                rejects = [_reject_row(r) for r in batch.rejects()] if batch.num_rejected else []
                st.rows_read += batch.num_rows
                st.bytes_read = source.bytes_read
                if rejects:
                    self._count_rejects(st, rejects, ctx, shared)
                self._put(queue, (batch, rejects), batch.bytes, st)
                self._sample(queue)
                with contextlib.suppress(AttributeError):  # a source may keep its own size
                    source.batch_rows = sizer.rows
                if self._acc is not None:
                    self._acc.touch()
                self._tick(st.rows_read)
            st.bytes_read = source.bytes_read
            self._flush(queue, st)
            self._check(st)
            done = True
        finally:
            if not done:
                st.abandon = True  # the pending batches are not written: the file rolls back
            with contextlib.suppress(FlushTimeout):
                queue.close(timeout=1.0)
            q = queue.stats()
            totals = self._sink_totals
            totals["retried"] += q.retried
            totals["dead_lettered"] += q.dead_lettered
            totals["high_water"] = max(totals["high_water"], q.high_water)
        valid = st.rows_read - st.rows_rejected
        if st.rows_written != valid:
            raise SinkError(f"the sink wrote {st.rows_written} of {valid} valid rows")

    def _count_rejects(self, st: _FileState, rejects: list[RejectRow], ctx: BatchContext,
                       shared: SqlExecutor | None) -> None:
        """Count and keep rejected rows (validation's, in the reader thread; a sink's, found
        while writing, in the writer thread), tell the hooks, apply ``--on-error``."""
        with st.counting:
            st.rows_rejected += len(rejects)
            if st.first_error_line is None:
                st.first_error_line = rejects[0].line
            if shared is None or len(st.rejects) < _KEEP_REJECTS:
                st.rejects.extend(rejects)
        self.hook.tallyclerk_rows_rejected(context=ctx, rejects=rejects)
        self._reject_policy(st, rejects[0])

    def _key_check(self, schema: TableSchema | None) -> KeyCheck | None:
        """The file's uniqueness check (in Rust): the schema's ``primaryKey`` and ``unique``
        fields; under ``--mode merge`` the merge key instead of the schema's primary key."""
        specs = [(list(cols), rule) for cols, rule in schema.keys] if schema is not None else []
        if self._mode.merge:
            key = list(self._mode.primary_key)
            specs = [(key, modes.PRIMARY_KEY_RULE)] + [
                s for s in specs if s[1] == modes.UNIQUE_RULE and s[0] != key]
        return KeyCheck(specs) if specs else None

    def _reject_policy(self, st: _FileState, first: RejectRow) -> None:
        where = f"record {first.record_number} (line {first.line})"
        why = f"{first.column + ': ' if first.column else ''}{first.reason}"
        if self._on_error == "abort":
            raise RejectLimit(f"{where} rejected: {why}; --on-error abort stops the load",
                              stop_batch=True)
        if self._on_error == "skip-file":
            raise RejectLimit(f"{where} rejected: {why}; --on-error skip-file rolled the file back")
        if self._max_rejects is not None and st.rows_rejected > self._max_rejects:
            raise RejectLimit(
                f"{st.rows_rejected} rows rejected, more than --max-rejects {self._max_rejects}; "
                "the file was rolled back"
            )

    def _put(self, queue: WriteBehindQueue, item: Any, size: int, st: _FileState) -> None:
        while True:
            try:
                queue.put(item, size=max(1, size), timeout=_POLL_S)
                return
            except QueueFull:
                self._check(st)

    def _flush(self, queue: WriteBehindQueue, st: _FileState) -> None:
        while True:
            try:
                queue.flush(timeout=_POLL_S)
                return
            except FlushTimeout:
                self._check(st)


def _add_columns(fw: FileWrite, path: str, table: str, fields: Sequence[Mapping[str, Any]]) -> None:
    """``--columns evolve``: the sink adds the columns in the file's transaction."""
    add = getattr(fw, "add_columns", None)
    if add is None:
        names = ", ".join(repr(f["name"]) for f in fields)
        raise ContractViolation(
            f"{path}: column(s) {names} would be added to table {table!r}, but this sink "
            "cannot add columns (use --columns discard or freeze)",
            path=path,
        )
    add(list(fields))


def _late_rejects(batch: RecordBatch, earlier: Sequence[RejectRow]) -> list[RejectRow]:
    """The rows of ``batch`` the sink rejected while writing it (not among ``earlier``)."""
    seen = {r.record_number for r in earlier}
    return [_reject_row(r) for r in batch.rejects() if r.record_number not in seen]


def _reject_row(r: Any) -> RejectRow:
    return RejectRow(
        record_number=r.record_number, line=r.line, column=r.column,
        rule=r.rule, reason=r.reason, raw=r.raw, masked=r.masked,
    )


def sensitive_columns(schema: TableSchema | None, settings: Any) -> list[str]:
    """The sensitive columns of a load: the schema's ``"sensitive": true`` fields and the
    ``sensitive_columns`` setting."""
    names = list(schema.sensitive_names) if schema is not None else []
    names += [n for n in getattr(settings, "sensitive_columns", ()) if n not in names]
    return names


def _unreadable(path: str) -> str | None:
    if objstore.is_remote(path):
        return None  # known when it is fetched
    if not os.path.lexists(path):
        return "no such file"
    if os.path.isdir(path):
        return "is a directory"
    if not os.path.exists(path):
        return "broken symbolic link"
    if not os.access(path, os.R_OK):
        return "permission denied"
    return None


_NO_SCHEMA: dict[str, Any] = {"schema_version": None, "columns_added": [],
                               "columns_dropped": [], "columns_missing": []}


def _failed_entry(path: str, exc: BaseException) -> dict[str, Any]:
    return {"path": path, "status": "failed", "rows_read": 0, "rows_written": 0,
            "rows_rejected": 0, "rows_rolled_back": 0, "rows_inserted": None,
            "rows_updated": None, "error": _message(exc), **_NO_SCHEMA}


def _not_attempted(path: str, why: str) -> dict[str, Any]:
    return {"path": path, "status": "failed", "rows_read": 0, "rows_written": 0,
            "rows_rejected": 0, "rows_rolled_back": 0, "rows_inserted": None,
            "rows_updated": None,
            "error": f"not attempted: the batch stopped ({why})", **_NO_SCHEMA}


def _merge_unclaimed(
    report: dict[str, Any], unclaimed: list[dict[str, Any]], paths: Sequence[str]
) -> dict[str, Any]:
    """Add the paths that could not even be claimed (missing, directory) to the report."""
    if not unclaimed:
        return report
    order = {p: i for i, p in reversed(list(enumerate(paths)))}
    files = list(report.get("files", [])) + unclaimed
    files.sort(key=lambda f: order.get(f["path"], len(paths)))
    out = dict(report)
    out["files"] = files
    if out.get("status") == "succeeded":
        out["status"] = "partial" if any(f["status"] == "loaded" for f in files) else "failed"
    return out
