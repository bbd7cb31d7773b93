"""One error hierarchy for tallyclerk, rooted in :class:`TallyclerkError`.

Every class also derives from the stdlib exception a caller would naturally catch, so
``except RuntimeError`` or ``except ValueError`` keeps working. The Rust core raises these very
classes (it imports them with ``pyo3::import_exception!``); a Rust panic surfaces as
:class:`InternalError`, never as a crash.

Exit codes used by the CLI: 0 success (rejected rows alone do not fail a load), 1 a file
failed (or the batch timed out), 2 usage or configuration error (:class:`ConfigError`, never
bad data), 3 a sink or audit-store failure that stopped the load after retries, 70 an
internal error (:class:`InternalError` or any unexpected exception), 130 interrupted by SIGINT,
143 terminated by SIGTERM.
"""

from __future__ import annotations

import queue

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_STOPPED",
    "EXIT_USAGE",
    "AuditStoreError",
    "BatchCancelled",
    "BatchTimedOut",
    "CircuitOpen",
    "ConfigError",
    "DuplicateKeyError",
    "FlushTimeout",
    "ForkedError",
    "IntegrityError",
    "Interrupted",
    "LeaseLost",
    "InternalError",
    "PermanentRepositoryError",
    "QueueClosed",
    "QueueFull",
    "ReentrantFlush",
    "RejectLimit",
    "RepositoryError",
    "SchemaError",
    "SinkError",
    "SourceError",
    "StoreError",
    "TallyclerkError",
    "TransientRepositoryError",
    "WatchdogStopped",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STOPPED = 3
EXIT_INTERNAL = 70


class TallyclerkError(Exception):
    """Root of every error tallyclerk raises on purpose."""


class InternalError(TallyclerkError, RuntimeError):
    """A bug inside tallyclerk (for example a Rust panic caught at the FFI boundary)."""


# --- configuration -----------------------------------------------------------------------------


class ConfigError(TallyclerkError, ValueError):
    """A setting, option, URL or identifier is invalid. The CLI exits 2 with this message."""


class SchemaError(ConfigError):
    """A Table Schema document is unreadable or invalid."""


# --- core primitives ---------------------------------------------------------------------------


class QueueClosed(TallyclerkError, RuntimeError):
    """``put`` or ``flush`` on a write-behind queue after ``close()``."""


class QueueFull(TallyclerkError, queue.Full):
    """The write-behind queue is full (policy ``raise``, or ``block`` timed out)."""


class FlushTimeout(TallyclerkError, TimeoutError):
    """``flush(timeout)`` or ``close(timeout)`` ran out of time with items still pending."""


class ReentrantFlush(TallyclerkError, RuntimeError):
    """``flush()`` or ``close()`` was called from inside the queue's own sink (a deadlock)."""


class ForkedError(TallyclerkError, RuntimeError):
    """An object owning a thread was used in a child process after ``os.fork()``."""


class BatchCancelled(TallyclerkError, RuntimeError):
    """An event was offered to a batch that was already cancelled (or timed out)."""


# --- data path ---------------------------------------------------------------------------------


class SourceError(TallyclerkError, ValueError):
    """A source file cannot be read as a whole (bad encoding, unterminated quote, missing path).

    The message names the file, the line and the reason.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


class StoreError(TallyclerkError, RuntimeError):
    """A database the load needs (the sink or the audit store) failed after retries.

    The base of :class:`SinkError`, :class:`AuditStoreError` and :class:`RepositoryError`:
    what ``tallyclerk.load()`` raises when it cannot go on (the CLI's exit status 3).
    """


class SinkError(StoreError):
    """Writing to the target database failed after retries."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


# --- audit store -------------------------------------------------------------------------------


class AuditStoreError(StoreError):
    """The audit store cannot be used (not reachable, wrong schema version)."""


class RepositoryError(StoreError):
    """A database operation of the audit repository failed.

    ``transient`` tells whether retrying the same transaction may succeed (database locked,
    deadlock, serialization failure, connection lost).
    """

    transient: bool = False


class TransientRepositoryError(RepositoryError):
    """Retrying may succeed: database locked, deadlock, serialization failure, connection lost."""

    transient = True


class PermanentRepositoryError(RepositoryError):
    """Retrying will not help (bad SQL, missing table, data error)."""


class IntegrityError(PermanentRepositoryError):
    """A constraint was violated."""


class DuplicateKeyError(IntegrityError):
    """A unique constraint was violated."""


class LeaseLost(TallyclerkError, RuntimeError):
    """A file's claim was taken over (its lease expired and another worker reclaimed it).

    Raised inside the committing transaction, which the caller then rolls back: a stalled
    worker can never commit a file someone else now owns.
    """


# --- how a file's load ended (recorded as the failed file's error class) ----------------------


class Interrupted(TallyclerkError):
    """The load was asked to stop (signal, :class:`~tallyclerk.StopToken`); the current file
    was rolled back."""


class BatchTimedOut(TallyclerkError):
    """The watchdog cancelled the batch (operation or idle timeout)."""


class RejectLimit(TallyclerkError):
    """The file's rejected rows broke ``--on-error skip-file|abort`` or ``--max-rejects``."""

    def __init__(self, message: str, *, stop_batch: bool = False) -> None:
        super().__init__(message)
        self.stop_batch = stop_batch


class CircuitOpen(SinkError):
    """The circuit breaker is open: the target failed too often in a row; not attempted."""


class WatchdogStopped(TallyclerkError, RuntimeError):
    """``watch`` or ``add_heartbeat`` on a watchdog after ``stop()``."""


def exit_status_of(exc: BaseException) -> int:
    """The exit status of a command stopped by ``exc``: 2 for a :class:`ConfigError`, 3 for
    any other tallyclerk error (a sink or audit store failing after retries), 130 for
    KeyboardInterrupt, 70 for anything else (a bug)."""
    if isinstance(exc, ConfigError):
        return EXIT_USAGE
    if isinstance(exc, TallyclerkError):
        return EXIT_STOPPED
    if isinstance(exc, KeyboardInterrupt):
        return 130
    return EXIT_INTERNAL
