"""Lineage: a file's whole history in the ledger, and the ``tallyclerk_lineage`` view.

``tallyclerk_lineage`` has one row per manifest row (``file_id`` is the ``_tc_file_id`` the
file's rows carry in their table) with the file, its batch and its load time, so SQL users can
``JOIN tallyclerk_lineage l ON l.file_id = t._tc_file_id``. Timestamps are stored as the audit
store stores them (SQLite: microseconds since the epoch; PostgreSQL: ``timestamptz``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tallyclerk.audit.rows import from_epoch_us

if TYPE_CHECKING:
    from tallyclerk.audit.repo_protocol import Repository
    from tallyclerk.protocols import SqlExecutor

__all__ = ["VIEW", "create_view", "file_history"]

VIEW = "tallyclerk_lineage"

_SELECT = (
    "SELECT f.id AS file_id, f.path AS path, f.fingerprint AS fingerprint, "
    "f.target_table AS target_table, f.status AS file_status, f.attempt AS attempt, "
    "f.rows_read AS rows_read, f.rows_written AS rows_written, "
    "f.rows_rejected AS rows_rejected, f.rows_rolled_back AS rows_rolled_back, "
    "f.started_at AS started_at, f.finished_at AS loaded_at, f.cleaned_by AS cleaned_by, "
    "b.id AS batch_id, b.status AS batch_status, b.started_at AS batch_started_at, "
    'b.host AS host, b."user" AS loaded_by '
    "FROM tallyclerk_files f JOIN tallyclerk_batches b ON b.id = f.batch_id"
)


def create_view(sql: SqlExecutor) -> None:
    """Create the ``tallyclerk_lineage`` view when it is missing (every start checks; only
    the first writes, so starting a load does not change the schema each time). ``sql`` runs
    in the schema's transaction (``SqlAlchemyExecutor`` on Core, ``repo.executor()``)."""
    if sql.dialect_name == "postgresql":
        if sql.query(f"SELECT to_regclass('{VIEW}')")[0][0] is None:
            sql.execute(f"CREATE VIEW {VIEW} AS {_SELECT}")
    else:
        sql.execute(f"CREATE VIEW IF NOT EXISTS {VIEW} AS {_SELECT}")


def file_history(repo: Repository, path: str) -> list[dict[str, Any]]:
    """Every manifest row of ``path`` (any table), oldest first: loads, skips, failures,
    ``--force`` and ``--mode replace`` replacements, with their batches, and the claims of
    ``tallyclerk replay`` that replayed its rejects (``replay`` true). In ``repo``'s
    transaction, on either audit repository."""
    mark = "%s" if repo.dialect_name == "postgresql" else "?"
    rows = repo.executor().query(
        "SELECT f.id, f.batch_id, f.target_table, f.status, f.attempt, f.rows_read, "
        "f.rows_written, f.rows_rejected, f.rows_rolled_back, f.started_at, f.finished_at, "
        "f.earlier_batch_id, f.cleaned_by, f.error, f.fingerprint, b.status "
        "FROM tallyclerk_files f JOIN tallyclerk_batches b ON b.id = f.batch_id "
        # and the replays of its rejects (tallyclerk replay: a claim of their own)
        f"WHERE f.path = {mark} OR f.id IN (SELECT rj.replay_file_id FROM tallyclerk_rejects "
        f"rj JOIN tallyclerk_files o ON o.id = rj.file_id WHERE o.path = {mark}) ORDER BY f.id",
        (path, path),
    )

    def iso(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, int):
            return from_epoch_us(value).isoformat()
        return str(value.isoformat())

    return [
        {
            "file_id": r[0], "batch_id": r[1], "table": r[2], "status": r[3], "attempt": r[4],
            "rows_read": r[5], "rows_written": r[6], "rows_rejected": r[7],
            "rows_rolled_back": r[8], "started_at": iso(r[9]), "finished_at": iso(r[10]),
            "earlier_batch_id": r[11], "replaced_by": r[12], "error": r[13],
            "fingerprint": r[14], "batch_status": r[15],
            "replay": str(r[14]).startswith("replay:"),
        }
        for r in rows
    ]
