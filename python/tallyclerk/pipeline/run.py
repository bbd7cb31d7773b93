"""One batch's shared state: what every file of it needs (the table, the options, the write
mode, the audit service and the sink) and what every file reports to (the accumulator that
counts files and rows, the progress callback, the events, the stop and timeout checks).

The batch loop (:mod:`tallyclerk.pipeline.batch`) makes one; the file policy, each attempt
and each file's stream read it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from tallyclerk import TableSchema, WriteBehindQueue, modes
from tallyclerk._core import BatchAccumulator, FileEvent
from tallyclerk.audit import AuditService, StoredSchema
from tallyclerk.batch_size import AdaptiveBatchSize, FixedBatchSize
from tallyclerk.errors import BatchCancelled, BatchTimedOut, Interrupted
from tallyclerk.pipeline.filestate import FileState
from tallyclerk.pipeline.reader import ReaderPool
from tallyclerk.pipeline.rejects import RejectPolicy
from tallyclerk.pipeline.stats import PipelineStats
from tallyclerk.pipeline.stop import StopToken
from tallyclerk.pipeline.writer import SinkQueues
from tallyclerk.protocols import BatchContext, Sink
from tallyclerk.settings import Settings

if TYPE_CHECKING:
    from tallyclerk.progress import LoadProgress

__all__ = ["BatchRun"]

log = logging.getLogger("tallyclerk.pipeline")

class BatchRun:
    # A plain class, not a dataclass: ``@dataclass`` compiles its generated methods at import
    # (~1.5 ms for this one on every start, issue 16.1); nothing compares or prints a run.
    settings: Settings
    hook: Any  # the plugin manager's hook relay
    audit: AuditService
    sink: Sink
    stop: StopToken
    wait: Callable[[float], bool]  # sleeps; True when a stop request ended the wait
    shared: bool  # the audit store is the sink's database: one transaction per file
    progress: Callable[[LoadProgress], None] | None
    sizer: AdaptiveBatchSize | FixedBatchSize
    stats: PipelineStats
    batch_id: str
    table: str
    target: str  # the table written: ``table``, or a replace's shadow table
    schema: TableSchema | None
    options: dict[str, Any]
    columns: str  # --columns evolve|freeze|discard
    revise: bool  # --schema revises the remembered schema (replay)
    policy: RejectPolicy
    force: bool
    sensitive: list[str]
    mode: modes.WriteMode
    acc: BatchAccumulator
    correlation_id: str
    files_total: int
    # the audit store is another database: the sink's URL, its files get a load marker
    data_target: str | None
    events: bool  # settings.audit_events
    local: dict[str, str]  # object URL -> its spool
    readers: ReaderPool  # closed when the batch ends
    writers: SinkQueues  # the sink's queue; closed when the batch ends
    any_failed: bool
    timeout_fired: bool
    # the table's stored schema as last read or committed by this batch (``shared`` only:
    # each file's transaction checks its version before writing; see ``table_schema``)
    stored_schema: StoredSchema | None
    schema_known: bool

    def __init__(
        self, *, settings: Settings, hook: Any, audit: AuditService, sink: Sink,
        stop: StopToken, wait: Callable[[float], bool], shared: bool,
        progress: Callable[[LoadProgress], None] | None,
        sizer: AdaptiveBatchSize | FixedBatchSize, stats: PipelineStats, batch_id: str,
        table: str, target: str, schema: TableSchema | None, options: dict[str, Any],
        columns: str, revise: bool, policy: RejectPolicy, force: bool, sensitive: list[str],
        mode: modes.WriteMode, acc: BatchAccumulator, correlation_id: str, files_total: int,
        data_target: str | None = None, events: bool = True,
    ) -> None:
        self.settings, self.hook, self.audit, self.sink = settings, hook, audit, sink
        self.stop, self.wait, self.shared, self.progress = stop, wait, shared, progress
        self.sizer, self.stats, self.batch_id, self.table = sizer, stats, batch_id, table
        self.target, self.schema, self.options, self.columns = target, schema, options, columns
        self.revise, self.policy, self.force, self.sensitive = revise, policy, force, sensitive
        self.mode, self.acc, self.correlation_id = mode, acc, correlation_id
        self.files_total, self.data_target, self.events = files_total, data_target, events
        self.local = {}
        self.readers = ReaderPool()
        self.writers = SinkQueues(self.stats.add_queue)
        self.any_failed = self.timeout_fired = False
        self.stored_schema, self.schema_known = None, False

    # -- the table's schema -------------------------------------------------------------------

    def table_schema(self) -> tuple[StoredSchema | None, bool]:
        """The table's stored schema, and whether it comes from this batch's memory.

        Issue 16.4: reading it costs a transaction a file. When the audit store is the sink's
        database, the version a file was planned on is checked in the file's own transaction
        (``attempt``), so the schema is read once and then remembered: a version another
        worker recorded since is found there, and the file is planned again on it. Otherwise
        it is read for every file."""
        if self.shared and self.schema_known:
            return self.stored_schema, True
        stored = self.audit.ledger.table_schema(self.table)
        self.remember_schema(stored)
        return stored, False

    def remember_schema(self, stored: StoredSchema | None) -> None:
        """``stored`` is the table's current version (read, or committed with a file)."""
        if self.shared:
            self.stored_schema, self.schema_known = stored, True

    def forget_schema(self) -> None:
        self.stored_schema, self.schema_known = None, False

    # -- stopping ---------------------------------------------------------------------------

    def timed_out(self) -> str | None:
        """The kind of the watchdog's timeout that cancelled the batch, or None."""
        if not self.acc.cancelled:
            return None
        return self.acc.snapshot().expired or "operation"

    def why_stop(self) -> str | None:
        if self.stop.stopped:
            return self.stop.reason or "interrupted"
        kind = self.timed_out()
        if kind is not None:
            return f"batch timed out ({kind} timeout)"
        return None

    def stop_status(self) -> str | None:
        if self.stop.stopped:
            return "cancelled"
        if self.timed_out() is not None:
            return "timed_out"
        return None

    def raise_if_stopped(self) -> None:
        """:class:`Interrupted` after a stop request, :class:`BatchTimedOut` after a timeout."""
        if self.stop.stopped:
            raise Interrupted(self.stop.reason or "interrupted")
        kind = self.timed_out()
        if kind is not None:
            raise BatchTimedOut(f"batch timed out ({kind} timeout)")

    def fire_timeout(self, kind: str, ctx: BatchContext | None) -> None:
        """``tallyclerk_timeout``, once per batch, wherever the timeout ended the work."""
        if not self.timeout_fired:
            self.timeout_fired = True
            self.hook.tallyclerk_timeout(batch_id=self.batch_id, kind=kind, context=ctx)

    # -- reporting --------------------------------------------------------------------------

    def tick(self) -> None:
        """Progress from the accumulator's snapshot, the one count of files and rows: the
        settled files' rows plus the live rows of the file being loaded."""
        if self.progress is not None:
            from tallyclerk.progress import LoadProgress  # not built on a load with no callback

            snap = self.acc.snapshot()
            done = snap.files_loaded + snap.files_skipped + snap.files_failed
            self.progress(LoadProgress(done, self.files_total,
                                       snap.rows_read + snap.live_rows_read, snap))

    def sample(self, queue: WriteBehindQueue | None) -> None:
        # between files: the batch's open sink queue (its figures are counted when it closes)
        self.stats.sample(self.batch_id, queue if queue is not None else self.writers.current,
                          self.acc)

    def begin_file(self) -> FileState:
        """A new attempt at a file: its rows count live in the accumulator until
        :meth:`settle` (see :mod:`tallyclerk.pipeline.filestate`)."""
        return FileState(self.acc.begin_file())

    def settle(self, st: FileState, outcome: Literal["loaded", "failed", "retried"]) -> None:
        """End an attempt in the accumulator: its rows join the batch's totals (loaded,
        failed: rolled back) or leave them (retried)."""
        st.tally.settle(outcome)

    def count(self, kind: FileEvent) -> None:
        """Count a file event with no rows (started, skipped, failed before its claim)."""
        try:
            self.acc.add_file_event(kind)
        except BatchCancelled:
            log.info("batch cancelled; file event not counted")

    def record(self, event_type: str, **fields: Any) -> None:
        """An audit event (``settings.audit_events``; the manifest is written either way)."""
        if self.events:
            self.audit.events.record(event_type, correlation_id=self.correlation_id, **fields)

    def context(self, path: str, file_id: int, attempt: int) -> BatchContext:
        """The context every file-level hook of one attempt receives (one object)."""
        opts = dict(self.options)
        opts["batch_rows"] = self.sizer.rows
        return BatchContext(
            batch_id=self.batch_id, file_id=file_id, path=path, table=self.table,
            schema=self.schema, options=opts, attempt=attempt,
            stores_nan=bool(getattr(self.sink, "stores_nan", False)),
            stores_big_int=bool(getattr(self.sink, "stores_big_int", False)),
        )


def sensitive_columns(schema: TableSchema | None, settings: Settings) -> list[str]:
    """The sensitive columns of a load: the schema's ``"sensitive": true`` fields and the
    ``sensitive_columns`` setting."""
    names = list(schema.sensitive_names) if schema is not None else []
    names += [n for n in settings.sensitive_columns if n not in names]
    return names


def options_for_audit(opts: Mapping[str, Any]) -> dict[str, Any]:
    """The plain values of a load's options, recorded with its batch."""
    return {k: v for k, v in opts.items() if isinstance(v, (str, int, float, bool)) or v is None}
