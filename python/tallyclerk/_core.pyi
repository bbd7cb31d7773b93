"""Type stubs for tallyclerk's compiled core (``tallyclerk._core``, Rust via PyO3).

Checked against the built module with ``python -m mypy.stubtest tallyclerk._core``.
Every class here is ``@final``: subclassing a Rust type is not supported.
"""

import builtins
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, final

__all__ = [
    "ArrowRows",
    "BatchAccumulator",
    "BatchTimeout",
    "CsvReader",
    "FileEvent",
    "FileTally",
    "InputStream",
    "JsonlReader",
    "KeyCheck",
    "MetricsSnapshot",
    "QueueStats",
    "RecordBatch",
    "Reject",
    "SchemaInference",
    "SqliteWriter",
    "TableSchema",
    "Watchdog",
    "WriteBehindQueue",
    "__version__",
    "file_fingerprint",
    "infer_csv",
    "known_encoding",
]

__version__: str

# ============================================================================================
# Batch metrics
# ============================================================================================

@final
class BatchTimeout:
    """Operation and idle timeouts of one batch, and how often the watchdog looks.

    Args:
        operation_timeout_s: the batch may run at most this long in total.
        idle_timeout_s: the batch may go at most this long without any event.
        watchdog_interval_s: how often a watchdog checks it.

    Raises:
        ValueError: a value is not a finite positive number.
    """

    def __new__(
        cls,
        operation_timeout_s: float = 3600.0,
        idle_timeout_s: float = 1800.0,
        watchdog_interval_s: float = 1.0,
    ) -> BatchTimeout: ...
    @property
    def operation_timeout_s(self) -> float: ...
    @property
    def idle_timeout_s(self) -> float: ...
    @property
    def watchdog_interval_s(self) -> float: ...

@final
class FileEvent:
    """Kinds of file event counted by a :class:`BatchAccumulator`."""

    STARTED: FileEvent
    LOADED: FileEvent
    SKIPPED: FileEvent
    FAILED: FileEvent

@final
class MetricsSnapshot:
    """An immutable, internally consistent view of a batch's counters.

    A snapshot never shows the rows of an event without that event's file count.
    Times are seconds on the monotonic clock (the clock of ``time.monotonic()``). Events
    record ``last_activity_at`` at the coarse clock's resolution (a few milliseconds), so
    ``idle_s`` may read up to one tick long; ``touch()`` and the start are exact.
    """

    @property
    def batch_id(self) -> str: ...
    @property
    def files_started(self) -> int: ...
    @property
    def files_loaded(self) -> int: ...
    @property
    def files_skipped(self) -> int: ...
    @property
    def files_failed(self) -> int: ...
    @property
    def rows_read(self) -> int: ...
    @property
    def rows_written(self) -> int: ...
    @property
    def rows_rejected(self) -> int: ...
    @property
    def bytes_read(self) -> int: ...
    @property
    def rows_rolled_back(self) -> int:
        """Rows of failed files read, not rejected, and rolled back."""
    @property
    def live_rows_read(self) -> int:
        """Rows read by attempts still in flight (not yet in ``rows_read``)."""
    @property
    def live_rows_written(self) -> int: ...
    @property
    def live_rows_rejected(self) -> int: ...
    @property
    def live_bytes_read(self) -> int: ...
    @property
    def rows_sent(self) -> int:
        """Rows handed to the sink, rolled-back attempts included (never decreases)."""
    @property
    def file_attempts(self) -> int:
        """Attempts at files begun (retries included)."""
    @property
    def started_at(self) -> float: ...
    @property
    def last_activity_at(self) -> float: ...
    @property
    def elapsed_s(self) -> float: ...
    @property
    def idle_s(self) -> float: ...
    @property
    def cancelled(self) -> bool: ...
    @property
    def cancel_reason(self) -> str | None: ...
    @property
    def expired(self) -> Literal["operation", "idle"] | None:
        """Which timeout fired, if the watchdog cancelled the batch."""
    def as_dict(self) -> dict[str, Any]: ...

@final
class BatchAccumulator:
    """Per-batch metrics, updated from any thread without a lock on the hot path.

    Args:
        batch_id: the batch's id, carried into snapshots.
        timeout: the batch's timeouts (defaults: 3600 s operation, 1800 s idle).
    """

    def __new__(cls, batch_id: str, timeout: BatchTimeout | None = None) -> BatchAccumulator: ...
    @property
    def batch_id(self) -> str: ...
    @property
    def timeout(self) -> BatchTimeout: ...
    def add_file_event(
        self,
        kind: FileEvent,
        rows_read: int = 0,
        rows_written: int = 0,
        rows_rejected: int = 0,
        bytes_read: int = 0,
    ) -> None:
        """Count one file event and its rows atomically (as one unit for snapshots).

        Raises:
            BatchCancelled: the batch was cancelled or timed out; nothing was counted.
            ValueError: a count is negative (OverflowError: above 2**63 - 1).
        """
    def add_rows(
        self, rows_read: int = 0, rows_written: int = 0, rows_rejected: int = 0, bytes_read: int = 0
    ) -> None:
        """Count progress within a file (no file count changes); refreshes last activity.

        Raises:
            BatchCancelled: the batch was cancelled or timed out; nothing was counted.
        """
    def touch(self) -> None:
        """Record activity without counting anything (resets the idle clock)."""
    def unload(self, files: int, rows_written: int) -> None:
        """Undo ``files`` files counted loaded with ``rows_written`` rows (an abandoned
        ``--mode replace``): counted failed, their rows rolled back, as one unit for
        snapshots. Allowed after cancel.

        Raises:
            ValueError: a negative count, or more than the batch counted loaded/written.
        """
    def begin_file(self) -> FileTally:
        """Begin an attempt at a file (counted in ``file_attempts``); its rows are live
        until the tally settles. Allowed after cancel (it accounts for started work)."""
    def snapshot(self) -> MetricsSnapshot: ...
    def cancel(self, reason: str) -> bool:
        """Cancel the batch. Returns True if this call cancelled it, False if it already was.

        When it returns, no event can be counted any more (events racing it either were
        counted before it returned or raise ``BatchCancelled``).
        """
    @property
    def cancelled(self) -> bool: ...
    @property
    def cancel_reason(self) -> str | None: ...
    def is_expired(self) -> Literal["operation", "idle"] | None:
        """Which timeout the batch has passed now, if any (does not cancel)."""

@final
class FileTally:
    """The rows of one attempt at one file: its own counts (what its manifest row records)
    and its batch's live counters, until it settles once.

    ``settle("loaded")`` moves its rows into the batch totals with one file loaded;
    ``settle("failed")`` adds one file failed, its rows read and rejected, and the others as
    rolled back (nothing written); ``settle("retried")`` removes them (the file is attempted
    again). Each is one event: a snapshot never shows the rows both live and in the totals.
    A tally dropped unsettled is retried. Thread-safe (one small lock per call).
    """

    def add(
        self, rows_read: int = 0, rows_written: int = 0, rows_rejected: int = 0, bytes_read: int = 0
    ) -> bool:
        """Count rows of this attempt; False (nothing counted) once it has settled.

        Raises:
            ValueError: a count is negative.
        """
    @property
    def rows_read(self) -> int: ...
    @property
    def rows_written(self) -> int: ...
    @property
    def rows_rejected(self) -> int: ...
    @property
    def bytes_read(self) -> int: ...
    @property
    def settled(self) -> Literal["loaded", "failed", "retried"] | None: ...
    def settle(self, outcome: Literal["loaded", "failed", "retried"]) -> None:
        """End the attempt.

        Raises:
            ValueError: it was settled already, or ``outcome`` is not one of the three.
        """

# ============================================================================================
# Watchdog
# ============================================================================================

@final
class Watchdog:
    """A Rust thread that watches accumulators and runs heartbeats.

    When a watched accumulator passes its operation or idle timeout, the watchdog cancels it
    (reason ``"operation timeout"`` / ``"idle timeout"``, ``snapshot().expired`` set) and calls
    ``on_timeout(accumulator, kind)`` exactly once for it, then stops watching it. Heartbeat
    callbacks run every ``interval_s`` on the same thread; an exception from a callback is
    reported through ``sys.unraisablehook`` and counted, and never stops the watchdog.

    Args:
        on_timeout: called as ``on_timeout(accumulator, "operation" | "idle")``.
        tick_s: how often the thread wakes at most (default 0.05 s); each accumulator is still
            checked only every ``timeout.watchdog_interval_s``.
    """

    def __new__(
        cls,
        on_timeout: Callable[[BatchAccumulator, str], object] | None = None,
        tick_s: float = 0.05,
    ) -> Watchdog: ...
    def watch(self, accumulator: BatchAccumulator) -> None:
        """Watch an accumulator (no-op if already watched); first check at the next round.

        Raises:
            WatchdogStopped: after ``stop()``.
            ForkedError: in a child process after ``os.fork()`` (the thread is not there).
        """
    def unwatch(self, accumulator: BatchAccumulator) -> bool:
        """Stop watching; True if it was watched. Once this returns True the watchdog never
        fires for it. False also after it fired or was found cancelled (then it is dropped)."""
    def add_heartbeat(self, name: str, interval_s: float, callback: Callable[[], object]) -> None:
        """Run ``callback()`` every ``interval_s`` seconds until removed (replaces same name).

        The first call is one interval from now; a slow callback delays the next one instead
        of causing a burst. Raises ``WatchdogStopped`` / ``ForkedError`` like :meth:`watch`.
        """
    def remove_heartbeat(self, name: str) -> bool: ...
    @property
    def running(self) -> bool:
        """The thread runs and was not told to stop (False in a forked child)."""
    @property
    def fired(self) -> int:
        """How many timeouts fired so far."""
    @property
    def callback_errors(self) -> int: ...
    def stop(self) -> None:
        """Stop the thread; returns within one second. Idempotent.

        Waits (without holding the interpreter) for a callback in progress to finish, but at
        most 0.9 s; the thread then exits after that callback. Called from a callback, it only
        signals. An ``atexit`` hook stops every watchdog still running at interpreter exit.
        """
    def __enter__(self) -> Watchdog: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

# ============================================================================================
# Write-behind queue
# ============================================================================================

@final
class QueueStats:
    """Counters of a :class:`WriteBehindQueue` at one moment (a consistent copy)."""

    @property
    def enqueued(self) -> int: ...
    @property
    def written(self) -> int:
        """Items the sink accepted (never counts dead-lettered items)."""
    @property
    def retried(self) -> int:
        """Sink calls that were retried."""
    @property
    def dead_lettered(self) -> int: ...
    @property
    def depth(self) -> int:
        """Items enqueued and not yet written or dead-lettered (includes the batch in flight)."""
    @property
    def bytes_queued(self) -> int:
        """Sum of the ``size`` of the items counted in ``depth``."""
    @property
    def high_water(self) -> int:
        """The largest ``depth`` seen."""
    @property
    def batches(self) -> int:
        """Batches the sink accepted."""
    @property
    def last_error(self) -> str | None:
        """``"ExceptionType: message"`` of the latest failed sink call."""
    def as_dict(self) -> dict[str, Any]: ...

@final
class WriteBehindQueue:
    """A bounded queue drained in order by one writer thread into ``sink(batch: list)``.

    ``put`` never touches the database: it appends and returns. The writer hands batches of at
    most ``max_batch`` items (waiting at most ``linger_ms`` for a batch to fill) to ``sink``,
    holding the interpreter only for that call. A sink that raises has its batch retried with
    exponential backoff and jitter up to ``max_retries`` times, then handed to
    ``dead_letter(batch, exc)``, counted and logged at error level (logger
    ``tallyclerk.queue``); the writer then goes on with the next batch. An exception raised by
    ``dead_letter`` itself goes to ``sys.unraisablehook``; the batch is still counted.

    The bound counts queued items plus the batch in flight. At interpreter exit an ``atexit``
    hook closes every live queue, bounded by ``exit_timeout_s`` (``flush_at_exit=False``: at
    once, so pending items are dead-lettered); a sink call still running then gets a
    ``FlushTimeout`` raised inside it and one more second to return. After ``os.fork()`` every
    method of an inherited queue raises ``ForkedError`` in the child.

    Args:
        sink: called with a list of items, in enqueue order.
        max_items: bound on queued items.
        max_bytes: bound on the sum of ``size`` given to ``put`` (None: no byte bound).
        max_batch: most items handed to one sink call.
        linger_ms: how long the writer waits for a batch to fill before handing it over
            (``flush`` and ``close`` cut it short).
        on_full: ``"block"`` waits for room (up to ``put_timeout``, then ``QueueFull``);
            ``"raise"`` raises ``QueueFull`` at once.
        put_timeout: default timeout of a blocking ``put`` (None: wait for room).
        max_retries: retries of a failing batch before it is dead-lettered.
        backoff_initial_ms: first retry delay; doubles each retry, with jitter.
        backoff_max_ms: cap on a retry delay.
        dead_letter: receives ``(batch, exception)``; if None, dead batches are only counted
            and logged. Items not delivered when ``close(timeout)`` runs out of time arrive
            here with a ``FlushTimeout`` (its ``__cause__`` is the last sink error, if any).
        flush_at_exit: flush pending items at interpreter exit, bounded by
            ``exit_timeout_s``.
        name: the writer thread's name (also used in messages).
        retry_if: called with the exception of a failed sink call; False dead-letters the
            batch at once, without retries (an error retrying cannot fix). None: retry every
            failure. A ``retry_if`` that raises is reported to ``sys.unraisablehook`` and the
            batch is retried.

    Raises:
        ValueError: an argument is out of range.
        TypeError: ``sink``, ``dead_letter`` or ``retry_if`` is not callable.
    """

    def __new__(
        cls,
        sink: Callable[[list[Any]], object],
        *,
        max_items: int = 10000,
        max_bytes: int | None = None,
        max_batch: int = 1000,
        linger_ms: float = 5.0,
        on_full: Literal["block", "raise"] = "block",
        put_timeout: float | None = None,
        max_retries: int = 5,
        backoff_initial_ms: float = 10.0,
        backoff_max_ms: float = 2000.0,
        dead_letter: Callable[[list[Any], BaseException], object] | None = None,
        flush_at_exit: bool = True,
        exit_timeout_s: float = 5.0,
        name: str = "tallyclerk-writer",
        retry_if: Callable[[BaseException], object] | None = None,
    ) -> WriteBehindQueue: ...
    def put(self, item: Any, size: int | None = None, timeout: float | None = None) -> None:
        """Enqueue one item (``size``: its weight against ``max_bytes``; ``timeout``
        overrides ``put_timeout``).

        Raises:
            QueueClosed: after ``close()``.
            QueueFull: no room (policy ``raise``, or ``block`` timed out).
            ValueError: ``size`` is negative or larger than ``max_bytes``.
            ForkedError: used in a child process after ``os.fork()``.
        """
    def put_many(self, items: Sequence[Any]) -> None:
        """Enqueue several items in order, each of size 0.

        Policy ``raise``: all or none. Policy ``block``: all at once if they fit, else one by
        one as room appears (a ``QueueFull`` then leaves the earlier items enqueued).
        Same errors as ``put``.
        """
    def flush(self, timeout: float | None = None) -> None:
        """Return once every item put before this call was accepted by the sink or dead-lettered.

        The writer keeps running. Raises ``FlushTimeout`` when ``timeout`` passes first,
        ``ReentrantFlush`` when called from inside the sink, ``QueueClosed`` after close.
        """
    def close(self, timeout: float | None = None) -> None:
        """Wake a lingering writer, drain everything, stop the writer. Idempotent.

        Raises ``FlushTimeout`` if the drain did not finish within ``timeout`` (the writer is
        told to stop after its current batch; the undelivered items are dead-lettered), and
        ``ReentrantFlush`` when called from inside the sink.
        """
    @property
    def closed(self) -> bool: ...
    def stats(self) -> QueueStats: ...
    def __len__(self) -> int:
        """The current ``depth``."""
    def __enter__(self) -> WriteBehindQueue: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

# ============================================================================================
# Data path: Table Schema, record batches, CSV reader, SQLite writer, fingerprints
# ============================================================================================

@final
class TableSchema:
    """A compiled Frictionless Table Schema (immutable; share it between threads).

    Types: the fifteen of Table Schema v1 (see README "Table Schema support"); ``year`` is
    stored as an integer, object/array/geojson as JSON text, geopoints as ``lon,lat``;
    ``format`` of geopoint (``default``, ``array``, ``object``) and date/time/datetime (``default``,
    ``any`` or a strptime pattern; ``decimalChar``, ``groupChar``, ``bareNumber``;
    ``trueValues``/``falseValues``; ``missingValues`` for the schema and per field.
    Constraints: required, enum, minimum, maximum (integer, number, date, datetime, year),
    minLength, maxLength (characters), pattern (a full match). Coercion: integers are an
    optional sign and ASCII digits (values beyond 64 bits are rejected); numbers take ``INF``
    and ``-INF`` in any case and reject ``NaN`` (SQLite would store it as NULL); dates, times
    and datetimes are stored normalized (ISO 8601, converted to UTC with ``Z`` when a
    zone was given).
    """

    @staticmethod
    def from_json(text: str) -> TableSchema:
        """Raises SchemaError naming what is wrong (and the field): bad JSON, no fields, an empty
        or duplicate name, an unknown type, format or constraint, a pattern that does not
        compile, a bound of the wrong type."""
    @staticmethod
    def text_columns(names: Sequence[str]) -> TableSchema:
        """A schema of nullable string columns (loading without a schema)."""
    @property
    def field_names(self) -> list[str]: ...
    @property
    def keys(self) -> list[tuple[list[str], str]]:
        """The keys no two rows may share, as ``(columns, rule)``: the ``primaryKey`` (rule
        ``primary-key``), then each ``unique`` field (rule ``unique``)."""
    @property
    def sensitive_names(self) -> list[str]:
        """The fields marked ``"sensitive": true`` (masked in every reject)."""
    def fields(self) -> list[dict[str, Any]]:
        """Each field as ``{"name", "type", "sqlite_type", "constraints": {...},
        "sensitive": bool}``."""
    def to_json(self) -> str: ...

@final
class Reject:
    """One rejected record: where it was, which column and rule, why."""

    @property
    def index(self) -> int:
        """Row index within its batch."""
    @property
    def record_number(self) -> int:
        """1-based data record number within the file (header not counted)."""
    @property
    def line(self) -> int:
        """1-based physical line where the record starts."""
    @property
    def column(self) -> str | None: ...
    @property
    def rule(self) -> str:
        """``type``, ``required``, ``enum``, ``minimum``, ``maximum``, ``minLength``,
        ``maxLength``, ``pattern``, ``row-length``, ``encoding``, or a plugin's own rule."""
    @property
    def reason(self) -> str: ...
    @property
    def raw(self) -> str:
        """The raw record (for the rejects table): as read for rows the reader rejected, as given
        to ``from_rows(raws=...)``, otherwise rebuilt from the fields with RFC 4180 quoting.
        When the batch has sensitive columns it is rebuilt with each sensitive value shown
        as ``***`` (``***`` alone for a record rejected while reading), see ``masked``."""
    @property
    def masked(self) -> bool:
        """The batch had sensitive columns: ``raw`` and ``reason`` had their values masked,
        so ``raw`` is not the record as read and cannot be replayed."""

@final
class RecordBatch:
    """A batch of records from one file, held column-wise in Rust.

    Before validation every value is text (or None for a missing field). ``validate`` coerces
    the columns to the schema's types in place and marks failing rows rejected; rejected rows
    are never written. Python plugins can read rows, reject more rows and replace columns.
    """

    @staticmethod
    def from_rows(
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        record_numbers: Sequence[int],
        lines: Sequence[int],
        raws: Sequence[str] | None = None,
    ) -> RecordBatch:
        """Build a batch from Python values (str, int, float, bool, None; dict and list as
        compact JSON text; others as ``str(obj)``).

        Raises:
            ValueError: a row's length differs from ``columns``, the lengths of ``rows``,
                ``record_numbers``, ``lines`` (and ``raws``) differ, or a column name repeats.
        """
    @property
    def num_rows(self) -> int: ...
    @property
    def columns(self) -> list[str]: ...
    @property
    def num_rejected(self) -> int: ...
    @property
    def num_valid(self) -> int: ...
    @property
    def first_record_number(self) -> int:
        """Record number of the first row (0 for an empty batch)."""
    @property
    def bytes(self) -> int:
        """Source bytes this batch covers (a reader's batches add up to the file size)."""
    def __len__(self) -> int: ...
    def column(self, name: str) -> list[Any]:
        """One column's values (KeyError if there is no such column)."""
    def set_column(self, name: str, values: Sequence[Any]) -> None:
        """Replace or add a column (a transform). Length must equal ``num_rows``."""
    def rows(self) -> list[tuple[Any, ...]]:
        """All rows as tuples, in column order (cells of rejected rows are not meaningful)."""
    def to_pylist(self) -> list[dict[str, Any]]: ...
    def record_numbers(self) -> list[int]: ...
    def lines(self) -> list[int]: ...
    def raw(self, index: int) -> str:
        """The raw record of a row (see :attr:`Reject.raw`). IndexError when out of range."""
    def is_rejected(self, index: int) -> bool: ...
    def reject(self, index: int, column: str | None, rule: str, reason: str) -> None:
        """Mark a row rejected (a Python validator's verdict). First verdict per row wins.

        Every value of the row's sensitive columns (and its quoted preview) found in
        ``reason`` is replaced by ``***``, and the raw text is masked (see ``Reject.raw``)."""
    def set_sensitive(self, names: Sequence[str]) -> None:
        """Mark columns sensitive: their values are masked in the raw text and reason of
        every reject of this batch, made before or after. Names not in the batch are kept
        (they count once a column of that name exists). ``validate`` adds the schema's
        sensitive fields."""
    @property
    def sensitive(self) -> list[str]:
        """The names marked sensitive (``set_sensitive`` and ``validate``)."""
    def rejects(self) -> list[Reject]:
        """Every reject in this batch, in row order."""
    def validate(self, schema: TableSchema, *, nan: bool = False, big_int: bool = False) -> int:
        """Coerce columns to the schema in place; returns how many rows were newly rejected.

        ``nan``: the target stores NaN (PostgreSQL, DuckDB), so a ``number`` NaN is kept;
        otherwise (SQLite turns NaN into NULL) it is a rejected row with that reason.
        ``big_int``: the target stores the values beyond 64 bits of a big integer field (one
        with a ``minimum``/``maximum`` beyond 64 bits, whose column holds digits as text);
        otherwise such a value is a rejected row.

        Columns are matched to fields by name. Afterwards the batch holds exactly the schema's
        fields in schema order: columns not in the schema are dropped (the rejects' raw text
        keeps them); a field missing from the batch is NULL in every row. The first failing
        field of a row is its verdict; rows already rejected keep theirs.

        Raises:
            SourceError: a field the schema marks ``required`` is not a column of the batch
                ("column X required by the schema is missing from the header").
        """
    def copy_text(
        self, columns: Sequence[str], extra_values: Sequence[Any] = ()
    ) -> builtins.bytes:
        """The valid (not rejected) rows as PostgreSQL ``COPY ... FROM STDIN`` text (UTF-8).

        One line per row: the named columns in the given order, then ``extra_values`` (the
        same in every row, e.g. a file id), separated by tabs. NULL is ``\\N``; backslash,
        tab, newline and carriage return in text are escaped (``\\\\``, ``\\t``, ``\\n``,
        ``\\r``); booleans are ``t``/``f``; integers decimal; floats the shortest text that
        reads back as the same double (``repr`` spelling) or ``Infinity``, ``-Infinity``,
        ``NaN``; dates and datetimes their ISO text. Encoded detached from the interpreter.

        Args:
            columns: names of the batch's columns, in the target's column order.
            extra_values: constants appended to every row (converted like
                :meth:`from_rows` values).

        Returns:
            The COPY text; empty when the batch has no valid row.

        Raises:
            KeyError: a name in ``columns`` is not a column of the batch.
        """
    def arrow_rows(
        self, schema: TableSchema, constant: tuple[str, int] | None = None
    ) -> ArrowRows | None:
        """The valid (not rejected) rows as Arrow arrays, built detached from the interpreter.

        One column per field of ``schema``, in its order, typed by the field type:
        ``integer``/``year`` int64, ``number`` float64, ``boolean`` bool, ``date`` date32,
        every other type utf8 (its validated text); a field the batch lacks is all null.
        ``constant`` ``(name, value)`` appends an int64 column holding ``value`` in every row.

        Returns:
            The arrays (``pyarrow.record_batch(rows)`` imports them without copying), or None
            when a column holds values its field's type does not produce (a batch not
            validated against ``schema``).

        Raises:
            ValueError: the constant column's name is also a field of ``schema``.
        """

@final
class ArrowRows:
    """Arrow arrays built in Rust (:meth:`RecordBatch.arrow_rows`): one record batch, handed
    out through the Arrow PyCapsule interface."""

    @property
    def num_rows(self) -> int: ...
    def __arrow_c_array__(
        self, requested_schema: object | None = None
    ) -> tuple[object, object]:
        """``(schema capsule, array capsule)`` of the Arrow C Data Interface (a struct array).
        ``requested_schema`` is ignored."""

@final
class CsvReader:
    """Streams a CSV file as :class:`RecordBatch` objects with bounded memory.

    RFC 4180 quoting (embedded newlines, doubled quotes), a UTF-8 BOM (stripped), CRLF/LF/CR
    line ends. A header row names the columns. Every record keeps its record number and the
    physical line where it starts (blank lines are skipped but counted). Parsing runs detached
    from the interpreter. Text after a closing quote (``"ab"c``) reads as ``abc``; NUL bytes
    load as data.

    Rejected rows (not fatal): the wrong number of fields (rule ``row-length``), invalid UTF-8
    in a utf-8 file (rule ``encoding``).

    Encodings: utf-8 natively; a file starting with a UTF-16 byte order mark is read as UTF-16
    whatever the encoding says; ``latin-1`` is ISO-8859-1; any other WHATWG label (``utf-16``,
    ``utf-16le``, ``cp1252``, ``shift_jis``, ...) is transcoded strictly (``utf-16`` without a
    BOM is little-endian).

    Raises (on construction or iteration) ``SourceError`` naming the file, line and reason:
    missing file, a directory, an unknown encoding, malformed bytes in a transcoded file, a
    field larger than ``max_field_bytes`` (a record over 4x that, at least 64 MiB, or over
    100,000 fields), an unterminated quote at end of file (the whole file fails: the rest of
    it was read into one field), an empty file ("empty file: no header row"), an empty,
    duplicate or non-UTF-8 header, NUL bytes in the header (UTF-16 without a BOM). After an
    error, iteration stops. ``ConfigError`` for bad options (delimiter and quote: one ASCII
    character, quote ``""`` turns quoting off).

    Compression: ``auto`` recognises gzip, bzip2, xz and zstd by the content's magic bytes and
    decompresses as a stream; ``none`` reads the bytes as stored; a named one must match the
    content (``SourceError`` otherwise). Line numbers and ``bytes_read`` are of the
    decompressed text; a corrupt or truncated archive is a ``SourceError``.

    ``read_ahead`` (the built-in loaders turn it on): once a first batch was returned and the
    file is not at its end, a ``tallyclerk-read`` thread reads the next batch while the
    caller works on this one (parsing overlaps validation and writing; one batch more in
    memory). The batches, rejects, errors and counts are the same either way, except that a
    new ``batch_rows`` applies one batch later; a file read in one batch starts no thread.
    """

    def __new__(
        cls,
        path: str,
        *,
        delimiter: str = ",",
        quote: str = '"',
        encoding: str = "utf-8",
        batch_rows: int = 10000,
        max_field_bytes: int = 16777216,
        compression: Literal["auto", "none", "gzip", "bzip2", "xz", "zstd"] | str = "auto",
        read_ahead: bool = False,
    ) -> CsvReader: ...
    @property
    def path(self) -> str: ...
    @property
    def header(self) -> list[str]: ...
    @property
    def bytes_read(self) -> int:
        """Source bytes of the batches returned so far (exact for utf-8; read-buffer
        granular when transcoding)."""
    @property
    def records_read(self) -> int:
        """Records of the batches returned so far."""
    @property
    def batch_rows(self) -> int:
        """Records per batch; settable between batches (``ConfigError`` below 1). With
        read-ahead, a new size applies from the batch after the one being read ahead."""
    @batch_rows.setter
    def batch_rows(self, value: int) -> None: ...
    def __iter__(self) -> Iterator[RecordBatch]: ...
    def __next__(self) -> RecordBatch: ...

@final
class JsonlReader:
    """Streams a JSON Lines file (one JSON object a line) as :class:`RecordBatch` objects.

    Parsing (serde_json) runs detached from the interpreter; no Python object is made per line.
    ``columns`` are the union of the keys of the file's valid objects in first-seen order (a
    first pass over the file reads them). Values: strings, booleans, null, floats as
    themselves; integers as ``int`` within 64 bits, else their exact digits as ``str``;
    objects and arrays as compact JSON text. A line of whitespace only is not a record; a UTF-8
    BOM is skipped; trailing CRs are dropped.

    Rejected rows (not fatal): malformed JSON (invalid UTF-8, a number that overflows to
    infinity, a lone surrogate escape, nesting deeper than 1024 levels), not an object, an
    empty object, or a key that cannot be a column name (rule ``json``, the reason naming the
    key); a line longer than ``max_line_bytes`` (rule ``line-length``). ``encoding`` only
    decodes the raw text kept for rejected lines (JSON is UTF-8).

    Raises ``SourceError`` naming the file (missing, a directory, a corrupt archive) and
    ``ConfigError`` for bad options. ``compression`` and ``read_ahead`` as for
    :class:`CsvReader`.
    """

    def __new__(
        cls,
        path: str,
        *,
        encoding: str = "utf-8",
        batch_rows: int = 10000,
        max_line_bytes: int = 16777216,
        compression: Literal["auto", "none", "gzip", "bzip2", "xz", "zstd"] | str = "auto",
        read_ahead: bool = False,
    ) -> JsonlReader: ...
    @property
    def path(self) -> str: ...
    @property
    def columns(self) -> list[str]: ...
    @property
    def bytes_read(self) -> int:
        """Bytes of the (decompressed) text of the batches returned so far."""
    @property
    def records_read(self) -> int:
        """Records of the batches returned so far."""
    @property
    def batch_rows(self) -> int:
        """Records per batch; settable between batches (``ConfigError`` below 1). With
        read-ahead, a new size applies from the batch after the one being read ahead."""
    @batch_rows.setter
    def batch_rows(self, value: int) -> None: ...
    def __iter__(self) -> Iterator[RecordBatch]: ...
    def __next__(self) -> RecordBatch: ...

@final
class InputStream:
    """The decompressed bytes of a file (see :func:`tallyclerk.open_input`, which wraps it in a
    buffered binary file object). ``compression`` as for :class:`CsvReader`. Reads run
    detached from the interpreter. ``SourceError`` naming the file: missing, a directory,
    unreadable, not in the forced format, or (on read) a corrupt or truncated archive.
    """

    def __new__(
        cls,
        path: str,
        *,
        compression: Literal["auto", "none", "gzip", "bzip2", "xz", "zstd"] | str = "auto",
    ) -> InputStream: ...
    @property
    def path(self) -> str: ...
    @property
    def compression(self) -> str:
        """The compression read: ``none``, ``gzip``, ``bzip2``, ``xz`` or ``zstd``."""
    @property
    def closed(self) -> bool: ...
    def read(self, size: int = 262144) -> bytes:
        """Up to ``size`` bytes (fewer only at the end); ``b""`` at the end."""
    def close(self) -> None: ...

@final
class KeyCheck:
    """The uniqueness check of one file: rejects a row repeating a key value an earlier row
    of the file had (the first kept; rule ``unique`` or ``primary-key``, "... (first seen on
    line 3)"), or with an empty primary key column. Memory: O(distinct keys of the file)."""

    def __new__(cls, keys: Sequence[tuple[Sequence[str], str]]) -> KeyCheck: ...
    def check(self, batch: RecordBatch) -> int:
        """Check one batch (in file order); returns how many rows it rejected."""

@final
class SqliteWriter:
    """One SQLite connection (the system libsqlite3, the same library Python's sqlite3 uses).

    Opened in WAL mode with a busy timeout. All writes of a file happen inside one
    ``BEGIN IMMEDIATE`` transaction: rows, rejects and the manifest row commit together.
    Identifiers are always quoted; an empty name, a name with a NUL byte or longer than 255
    characters, a table name starting with ``sqlite_``, two columns differing only in ASCII
    case, or more columns than SQLite allows is refused with ``ConfigError``. SQLite errors
    raise ``SinkError`` with SQLite's message; ``transient`` is True for SQLITE_BUSY and
    SQLITE_LOCKED only. Satisfies the audit service's ``SqlExecutor`` protocol. Every call that
    touches the database runs detached from the interpreter.
    """

    dialect_name: str
    """Always ``"sqlite"``."""

    def __new__(
        cls,
        path: str,
        *,
        busy_timeout_ms: int = 5000,
        synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "NORMAL",
    ) -> SqliteWriter: ...
    @property
    def path(self) -> str: ...
    @property
    def in_transaction(self) -> bool: ...
    def create_table(
        self, table: str, schema: TableSchema, extra_columns: Sequence[tuple[str, str]] = ()
    ) -> None:
        """CREATE TABLE IF NOT EXISTS with the schema's columns plus ``extra_columns``
        (name, SQL type: INTEGER, REAL, TEXT, BLOB or NUMERIC, optionally NOT NULL), e.g.
        ``("_tc_file_id", "INTEGER")``. An existing table must have all these columns
        (SinkError otherwise)."""
    def begin(self) -> None:
        """BEGIN IMMEDIATE. Raises SinkError(transient=True) when the database stays locked."""
    def insert_batch(
        self,
        table: str,
        batch: RecordBatch,
        extra_values: Sequence[Any] | Mapping[str, Any] = (),
    ) -> int:
        """Insert the batch's valid rows with one cached prepared statement; returns rows
        written. ``extra_values`` are appended to each row: a mapping names its columns, a
        sequence fills the ``extra_columns`` that ``create_table`` declared for ``table``, in
        order. Must be inside ``begin()`` (SinkError otherwise)."""
    def upsert_batch(
        self,
        table: str,
        batch: RecordBatch,
        keys: Sequence[str],
        extra_values: Sequence[Any] | Mapping[str, Any] = (),
    ) -> int:
        """Like :meth:`insert_batch`, but a row whose ``keys`` match an existing row updates
        it (``INSERT ... ON CONFLICT (keys) DO UPDATE SET`` every other column, the extra ones
        included); the table needs a unique index on exactly ``keys``. Returns rows written
        (inserted or updated). ``keys`` must not be empty (ValueError) and must be columns of
        the batch (ConfigError)."""
    def reject_existing(
        self, table: str, batch: RecordBatch, keys: Sequence[tuple[Sequence[str], str]]
    ) -> int:
        """Reject the valid rows of ``batch`` whose key value (``(columns, rule)`` pairs, rule
        ``unique`` or ``primary-key``) is already in ``table`` ("duplicate value 7 for unique
        field "id" (already in the table)"); returns how many. Call in the file's
        transaction, before inserting the batch."""
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement with ``?`` parameters; returns rows changed (0 for non-DML).

        Parameters: None, bool, int, float, str, bytes, ``date``/``datetime`` (ISO text)."""
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int: ...
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def commit(self) -> None: ...
    def rollback(self) -> None:
        """Roll back the open transaction (no-op when none is open)."""
    def close(self) -> None:
        """Close the connection, rolling back an open transaction. Idempotent."""
    def __enter__(self) -> SqliteWriter: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

def file_fingerprint(path: str) -> str:
    """Content fingerprint of a file: ``"xxh3-128:<32 hex digits>"`` (streams the file with a
    1 MiB buffer, detached from the interpreter). The content of a gzip, bzip2, xz or zstd
    file (recognised by its magic bytes) is its decompressed text: ``a.csv`` and ``a.csv.gz``
    of the same text have one fingerprint. SourceError naming the path when it is missing, a
    directory, unreadable, or a corrupt or truncated archive."""

def known_encoding(label: str) -> bool:
    """Whether the CSV reader decodes ``label`` (``--encoding``): utf-8, latin-1 and the
    WHATWG labels (``utf-16``, ``cp1252``, ``shift_jis``...), case and ``_``/``-`` aside."""

def infer_csv(
    paths: Sequence[str],
    *,
    rows: int = 10000,
    delimiter: str = ",",
    quote: str = '"',
    encoding: str = "utf-8",
    missing_values: Sequence[str] | None = None,
    max_field_bytes: int = 16777216,
    compression: str = "auto",
) -> str:
    """The Table Schema (JSON text) inferred from the first ``rows`` valid rows of CSV files
    read in order (see ``tallyclerk.inference`` for the rules), detached from the interpreter;
    ``compression`` as ``CsvReader``'s.
    ConfigError for ``rows`` < 1, no path or bad reader options; SourceError for a file that
    cannot be read."""

@final
class SchemaInference:
    """Infers a Table Schema from record batches added one by one (the JSONL path)."""

    def __new__(cls, *, missing_values: Sequence[str] | None = None) -> SchemaInference: ...
    def add(self, batch: RecordBatch, limit: int | None = None) -> int:
        """Add the batch's valid rows (at most ``limit``); returns how many were added."""
    @property
    def rows(self) -> int:
        """Rows added so far."""
    def schema(self, sources: Sequence[str]) -> str:
        """The inferred Table Schema as JSON text; ``sources`` are named in its description."""
