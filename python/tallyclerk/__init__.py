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
    StoreError,
    TallyclerkError,
)

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
    from tallyclerk.api import load
    from tallyclerk.auditlog import AuditLog
    from tallyclerk.dryrun import ValidateReport, validate
    from tallyclerk.hookspecs import hookimpl
    from tallyclerk.inference import infer
    from tallyclerk.inputs import open_input
    from tallyclerk.ledger import VerifyReport, file_history, verify
    from tallyclerk.pipeline import StopToken
    from tallyclerk.replay import ReplayReport, replay
    from tallyclerk.report import FileReport, LoadProgress, LoadReport
    from tallyclerk.settings import Settings
    from tallyclerk.settle import RepairReport, repair
    from tallyclerk.table_schemas import table_schema
    from tallyclerk.watcher import watch

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
    "AuditLog": "tallyclerk.auditlog",
    "FileReport": "tallyclerk.report",
    "LoadProgress": "tallyclerk.report",
    "LoadReport": "tallyclerk.report",
    "RepairReport": "tallyclerk.settle",
    "ReplayReport": "tallyclerk.replay",
    "Settings": "tallyclerk.settings",
    "StopToken": "tallyclerk.pipeline",
    "ValidateReport": "tallyclerk.dryrun",
    "VerifyReport": "tallyclerk.ledger",
    "file_history": "tallyclerk.ledger",
    "hookimpl": "tallyclerk.hookspecs",
    "infer": "tallyclerk.inference",
    "load": "tallyclerk.api",
    "open_input": "tallyclerk.inputs",
    "repair": "tallyclerk.settle",
    "replay": "tallyclerk.replay",
    "validate": "tallyclerk.dryrun",
    "verify": "tallyclerk.ledger",
    "table_schema": "tallyclerk.table_schemas",
    "watch": "tallyclerk.watcher",
}


def __getattr__(name: str) -> Any:
    module = "tallyclerk._core" if name in _CORE_NAMES else _API_NAMES.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tallyclerk' has no attribute {name!r}")


__all__ = [
    "AuditLog",
    "BatchAccumulator",
    "BatchCancelled",
    "BatchTimeout",
    "ConfigError",
    "CsvReader",
    "FileEvent",
    "FileReport",
    "FlushTimeout",
    "InputStream",
    "LoadProgress",
    "LoadReport",
    "MetricsSnapshot",
    "QueueClosed",
    "QueueFull",
    "QueueStats",
    "RecordBatch",
    "Reject",
    "RepairReport",
    "ReplayReport",
    "Settings",
    "SqliteWriter",
    "StopToken",
    "StoreError",
    "TableSchema",
    "TallyclerkError",
    "ValidateReport",
    "VerifyReport",
    "Watchdog",
    "WriteBehindQueue",
    "file_fingerprint",
    "file_history",
    "hookimpl",
    "infer",
    "load",
    "open_input",
    "repair",
    "replay",
    "validate",
    "verify",
    "table_schema",
    "watch",
]
