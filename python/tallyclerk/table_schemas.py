"""``tallyclerk.table_schema()``: a target table's remembered schema, from the audit store."""

from __future__ import annotations

import os
from typing import Any, Literal, overload

from tallyclerk.errors import ConfigError

__all__ = ["table_schema"]

DEFAULT_INTO = "sqlite:///tallyclerk.db"


@overload
def table_schema(
    table: str, *, into: str = ..., audit: str | None = ..., history: Literal[False] = ...
) -> dict[str, Any] | None: ...


@overload
def table_schema(
    table: str, *, into: str = ..., audit: str | None = ..., history: Literal[True]
) -> list[dict[str, Any]]: ...


def table_schema(
    table: str, *, into: str = DEFAULT_INTO, audit: str | None = None, history: bool = False
) -> dict[str, Any] | list[dict[str, Any]] | None:
    """The schema ``table`` is loaded with, as kept in the audit store (``tallyclerk_schemas``).

    Returns the current version as ``{"table", "version", "fingerprint", "reason",
    "created_at", "batch_id", "file_id", "schema"}`` (``schema`` is the Table Schema as a dict),
    or None when the table has none (never loaded, or no audit store at that URL); with
    ``history=True``, every version, oldest first (``[]`` when there is none).

    Raises:
        ConfigError: a bad URL. AuditStoreError: the store cannot be read.
    """
    from tallyclerk.audit import AuditService
    from tallyclerk.dburl import default_audit_url, parse_url
    from tallyclerk.settings import load_settings

    url = audit or default_audit_url(into)
    parsed = parse_url(url)
    if parsed.dialect == "sqlite" and (parsed.path is None or not os.path.exists(parsed.path)):
        if parsed.path is None:
            raise ConfigError(f"the audit store needs a database file, not {parsed.masked}")
        return [] if history else None  # nothing loaded there: do not create a database
    with AuditService(url, settings=load_settings()) as service:
        if history:
            return [s.as_dict() for s in service.ledger.table_schema_history(table)]
        current = service.ledger.table_schema(table)
        return None if current is None else current.as_dict()
