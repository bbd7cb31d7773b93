"""tallyclerk: stream files into a database in batches, validate every record, audit everything.

The concurrency primitives and the data path live in the compiled core (``tallyclerk._core``,
Rust); this package re-exports them. They are imported on first use, so ``import tallyclerk``
and the CLI start fast and ``tallyclerk.errors`` never depends on the compiled module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tallyclerk.errors import (
    BatchCancelled,
    ConfigError,
    FlushTimeout,
    QueueClosed,
    QueueFull,
    TallyclerkError,
)
from tallyclerk.hookspecs import hookimpl

if TYPE_CHECKING:
    from tallyclerk._core import (
        BatchAccumulator,
        BatchTimeout,
        CsvReader,
        FileEvent,
        InputStream,
        MetricsSnapshot,
        QueueStats,
        RecordBatch,
        Reject,
        SqliteWriter,
        TableSchema,
        Watchdog,
        WriteBehindQueue,
        file_fingerprint,
    )
    from tallyclerk.dryrun import ValidateReport, validate
    from tallyclerk.inputs import open_input

__version__ = "0.2.0"

_CORE_NAMES = frozenset(
    {
        "BatchAccumulator",
        "BatchTimeout",
        "CsvReader",
        "FileEvent",
        "InputStream",
        "MetricsSnapshot",
        "QueueStats",
        "RecordBatch",
        "Reject",
        "SqliteWriter",
        "TableSchema",
        "Watchdog",
        "WriteBehindQueue",
        "file_fingerprint",
    }
)


# The Python API, imported on first use (module of each public name).
_API_NAMES = {
    "open_input": "tallyclerk.inputs",
    "validate": "tallyclerk.dryrun",
    "ValidateReport": "tallyclerk.dryrun",
}


def __getattr__(name: str) -> Any:
    if name in _API_NAMES:
        value = getattr(importlib.import_module(_API_NAMES[name]), name)
        globals()[name] = value
        return value
    if name in _CORE_NAMES:
        value = getattr(importlib.import_module("tallyclerk._core"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tallyclerk' has no attribute {name!r}")


__all__ = [
    "BatchAccumulator",
    "BatchCancelled",
    "BatchTimeout",
    "ConfigError",
    "CsvReader",
    "FileEvent",
    "FlushTimeout",
    "InputStream",
    "MetricsSnapshot",
    "QueueClosed",
    "QueueFull",
    "QueueStats",
    "RecordBatch",
    "Reject",
    "SqliteWriter",
    "TableSchema",
    "TallyclerkError",
    "ValidateReport",
    "Watchdog",
    "WriteBehindQueue",
    "file_fingerprint",
    "hookimpl",
    "open_input",
    "validate",
]
