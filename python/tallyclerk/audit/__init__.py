"""The audit store: batches, the exactly-once file manifest, rejects and the event log.

``from tallyclerk.audit import AuditService, FileClaim, FileSkip, FileResult, RejectRow,
SqlExecutor``. Names are imported on first use, so the models and the repository can be used
without loading the compiled core.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tallyclerk.audit.executor import SqlAlchemyExecutor, SqlExecutor
    from tallyclerk.audit.repository import AuditRepository
    from tallyclerk.audit.service import AuditService
    from tallyclerk.audit.types import FileClaim, FileResult, FileSkip, RejectRow, StoredSchema

_WHERE = {
    "AuditRepository": "tallyclerk.audit.repository",
    "AuditService": "tallyclerk.audit.service",
    "FileClaim": "tallyclerk.audit.types",
    "FileResult": "tallyclerk.audit.types",
    "FileSkip": "tallyclerk.audit.types",
    "RejectRow": "tallyclerk.audit.types",
    "SqlAlchemyExecutor": "tallyclerk.audit.executor",
    "SqlExecutor": "tallyclerk.audit.executor",
    "StoredSchema": "tallyclerk.audit.types",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'tallyclerk.audit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AuditRepository",
    "AuditService",
    "FileClaim",
    "FileResult",
    "FileSkip",
    "RejectRow",
    "SqlAlchemyExecutor",
    "SqlExecutor",
    "StoredSchema",
]
