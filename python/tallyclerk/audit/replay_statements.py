"""The statements of ``tallyclerk replay`` on the audit store, built with SQLAlchemy Core: the
one definition. A server store runs them through Core
(:class:`tallyclerk.audit.replay_store.CoreReplayStore`); a SQLite store runs their SQLite
compilation from :mod:`tallyclerk.audit.catalogue` (entries ``replay_*``, written by
:mod:`tallyclerk.audit.statements`) on plain ``sqlite3``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, Update, bindparam, select, update

from tallyclerk.audit.models import batches, files, rejects

__all__ = ["again", "loaded_claim", "mark", "rejects_to_replay"]


def rejects_to_replay(batch: bool, path: bool, table: bool) -> Select[Any]:
    """The rejects not yet replayed of ``loaded`` files, each with its file row and its batch's
    options, in file and record order; filtered by ``:batch_id``, ``:path``, ``:table`` when
    the flag is set."""
    stmt = (
        select(rejects, files, batches.c.options)
        .join(files, files.c.id == rejects.c.file_id)
        .join(batches, batches.c.id == files.c.batch_id)
        .where(rejects.c.replayed_by_batch.is_(None))
        .where(files.c.status == "loaded")
        .order_by(rejects.c.file_id, rejects.c.record_number, rejects.c.id)
    )
    if batch:
        stmt = stmt.where(rejects.c.batch_id == bindparam("batch_id"))
    if path:
        stmt = stmt.where(files.c.path == bindparam("path"))
    if table:
        stmt = stmt.where(files.c.target_table == bindparam("table"))
    return stmt


def loaded_claim() -> Select[Any]:
    """``(id, batch_id)`` of the ``loaded`` row of ``(:table, :fingerprint)``."""
    return (
        select(files.c.id, files.c.batch_id)
        .where(files.c.target_table == bindparam("table"))
        .where(files.c.fingerprint == bindparam("fingerprint"))
        .where(files.c.status == "loaded")
    )


def again() -> Select[Any]:
    """The rejects of the replay's own file ``:file_id`` (records that failed again)."""
    return (
        select(rejects.c.record_number, rejects.c.rule, rejects.c.reason, rejects.c.column_name)
        .where(rejects.c.file_id == bindparam("file_id"))
        .order_by(rejects.c.id)
    )


def mark() -> Update:
    """Mark the rejects ``:ids`` replayed, only where still unmarked."""
    return (
        update(rejects)
        .where(rejects.c.id.in_(bindparam("ids", expanding=True)))
        .where(rejects.c.replayed_by_batch.is_(None))
        .values(replayed_by_batch=bindparam("replayed_by_batch"),
                replayed_at=bindparam("replayed_at"),
                replay_file_id=bindparam("replay_file_id"),
                replay_record_number=bindparam("replay_record_number"),
                replay_outcome=bindparam("replay_outcome"))
    )


CALLER: dict[str, tuple[str, ...]] = {
    "loaded_claim": ("table", "fingerprint"),
    "again": ("file_id",),
    "mark": ("ids", "replayed_by_batch", "replayed_at", "replay_file_id",
             "replay_record_number", "replay_outcome"),
}
"""Each statement's caller parameters (``rejects_to_replay``'s: its flags' names)."""
