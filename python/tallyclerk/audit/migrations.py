"""Data migrations of the audit store: value changes the additive schema migration
(``engine.add_missing``) cannot make. Each runs inside
:func:`~tallyclerk.audit.engine.ensure_schema`'s write transaction (under the PostgreSQL
advisory lock), after the missing columns were added.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

__all__ = ["recount_rolled_back"]


def recount_rolled_back(conn: Connection) -> None:
    """Version 1 -> 2: ``rows_rolled_back`` on files and batches.

    Version 1 counted every row read by a failed file as rejected. The rows that really failed
    validation are the file's stored rejects (a failed file kept at most 10,000 of them); the
    rest were rolled back unjudged, and are moved to ``rows_rolled_back``.
    """
    conn.exec_driver_sql(
        "UPDATE tallyclerk_files SET rows_rejected = ("
        " SELECT CASE WHEN COUNT(*) < tallyclerk_files.rows_rejected THEN COUNT(*)"
        " ELSE tallyclerk_files.rows_rejected END"
        " FROM tallyclerk_rejects r WHERE r.file_id = tallyclerk_files.id)"
        " WHERE status IN ('failed', 'loading')"
    )
    conn.exec_driver_sql(
        "UPDATE tallyclerk_files SET rows_rolled_back = rows_read - rows_written - rows_rejected"
        " WHERE status IN ('failed', 'loading') AND rows_read > rows_written + rows_rejected"
    )
    conn.exec_driver_sql(
        "UPDATE tallyclerk_batches SET rows_rolled_back = COALESCE(("
        " SELECT SUM(f.rows_rolled_back) FROM tallyclerk_files f"
        " WHERE f.batch_id = tallyclerk_batches.id), 0)"
    )
    conn.exec_driver_sql(
        "UPDATE tallyclerk_batches SET rows_rejected = rows_rejected - rows_rolled_back"
        " WHERE rows_rejected >= rows_rolled_back"
    )
