"""The typed shapes plugins exchange with the pipeline: sources, sinks and their contexts.

A *source* is what a loader plugin returns from ``tallyclerk_open_source``: an iterable of
:class:`~tallyclerk.RecordBatch` that knows its columns and how many bytes it has read. A *sink*
is what ``tallyclerk_open_sink`` returns: it creates the target table and opens one transaction
per file (a :class:`FileWrite`). Everything here is a :class:`typing.Protocol`, so a plugin never
has to inherit from tallyclerk classes; it only has to have the right attributes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import argparse

    import pluggy

    from tallyclerk._core import RecordBatch, TableSchema
    from tallyclerk.audit import FileClaim

__all__ = [
    "BatchContext",
    "Config",
    "FileWrite",
    "Sink",
    "Source",
    "SqlExecutor",
]


@runtime_checkable
class SqlExecutor(Protocol):
    """Runs SQL inside the caller's open transaction (the audit store's unit of work)."""

    dialect_name: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


@runtime_checkable
class Source(Protocol):
    """A file opened by a loader: iterate it for record batches, then close it.

    ``columns`` is known before the first batch (the header of a CSV file, the schema's field
    names or the keys of a JSONL file). ``bytes_read`` grows as batches are produced.
    ``batch_rows`` may be assigned between batches (the adaptive batch-size controller does);
    a source that cannot change its batch size ignores the assignment.
    """

    path: str

    @property
    def columns(self) -> list[str]: ...

    @property
    def bytes_read(self) -> int: ...

    batch_rows: int

    def __iter__(self) -> Iterator[RecordBatch]: ...

    def close(self) -> None: ...


class FileWrite(Protocol):
    """One file's transaction in a sink.

    ``write`` is called from the pipeline's writer thread, the other methods from the main
    thread, never concurrently. ``executor`` runs SQL inside this transaction (the pipeline
    uses it for the audit manifest when the audit store lives in the same database), or is
    None when the sink cannot run SQL.
    """

    executor: SqlExecutor | None

    def write(self, batch: RecordBatch) -> int:
        """Write the batch's valid (not rejected) rows; returns how many were written."""
        ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class Sink(Protocol):
    """A target database (or anything else rows can go to).

    Write modes (:mod:`tallyclerk.modes`; optional, checked with ``getattr``): a sink that
    supports ``--mode merge`` or ``replace`` lists them in ``write_modes`` (absent: append
    only; the pipeline refuses an undeclared mode with exit 2). A merging sink reads the key
    with ``tallyclerk.modes.resolve(options, schema)`` (its open options, the schema of
    ``prepare``) and upserts; its ``FileWrite`` may report ``counts() -> (inserted, updated)``.
    A replacing sink has ``swap_table(shadow, table, in_txn)`` (in one transaction: drop
    ``table``, rename ``shadow`` to it, call ``in_txn(executor or None)``, commit) and
    ``drop_table(name)``.
    """

    url: str
    """The target's URL with any password masked (safe to show)."""

    def prepare(self, table: str, schema: TableSchema) -> None:
        """Name the target: ``table`` with the schema's columns plus ``_tc_file_id INTEGER``.

        Called before each file. The built-in sinks create the table (if missing) inside the
        file's transaction, so a file that fails leaves no table behind.
        """
        ...

    def begin_file(self, claim: FileClaim) -> FileWrite:
        """Open the transaction one file's rows are written in (tagged ``claim.file_id``)."""
        ...

    def close(self) -> None: ...


@dataclass
class Config:
    """What a command runs with: parsed options, settings and the plugin manager.

    Passed to ``tallyclerk_configure`` / ``tallyclerk_unconfigure``.
    """

    command: str
    options: dict[str, Any]
    pluginmanager: pluggy.PluginManager
    settings: Any = None
    """The :class:`tallyclerk.settings.Settings` in effect (None before they are loaded)."""
    namespace: argparse.Namespace | None = None

    def getoption(self, name: str, default: Any = None) -> Any:
        """An option's value by its ``dest`` name (``--max-rejects`` -> ``max_rejects``)."""
        return self.options.get(name, default)


@dataclass
class BatchContext:
    """The context of one attempt at loading one file: the same object reaches every
    file-level hook of that attempt (``file_start``, ``validate_batch``, ``transform_batch``,
    ``rows_rejected``, ``rows_written``, ``file_finish``; ``file_skipped`` and ``timeout``
    get one too)."""

    batch_id: str
    file_id: int
    path: str
    table: str
    schema: TableSchema | None
    options: Mapping[str, Any] = field(default_factory=dict)
    attempt: int = 1
    #: the target stores NaN in a ``number`` column (the sink's ``stores_nan``: PostgreSQL,
    #: DuckDB); when false (SQLite turns NaN into NULL) the validator rejects NaN
    stores_nan: bool = False
    #: the target stores integers beyond 64 bits of a big integer field (a ``minimum`` /
    #: ``maximum`` beyond 64 bits; the sink's ``stores_big_int``: PostgreSQL ``numeric``,
    #: DuckDB ``HUGEINT``); when false such a value is rejected
    stores_big_int: bool = False
