"""Reports read from the audit store: the batch report (the CLI's ``--json``), batch and
reject listings. All values are JSON-ready (timestamps as ISO 8601 strings)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tallyclerk.audit.repo_protocol import Repository
from tallyclerk.audit.rows import AuditEvent, Batch, FileManifest, RejectRecord

__all__ = ["batch_dict", "batch_report", "event_dict", "reject_dict"]

# a superseded load was still loaded by its batch; 'replaced' never shows in a report
_REPORT_FILE_STATUS = {"replaced": "loaded"}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def batch_report(repo: Repository, batch_id: str | None) -> dict[str, Any]:
    """``{"batch_id", "status", "table", "rows_read", "rows_written", "rows_rejected",
    "rows_rolled_back", "files": [{"path", "status", "rows_read", "rows_written",
    "rows_rejected", "rows_rolled_back", "rows_inserted", "rows_updated", "error",
    "schema_version", "columns_added", "columns_dropped", "columns_missing"}]}``
    for a batch (the latest when None), or ``{}`` when there is no such batch.

    File status is ``loaded``, ``skipped`` or ``failed`` (``loading`` while the batch runs);
    the totals are the sums over the batch's files.
    """
    batch = repo.latest_batch() if batch_id is None else repo.get_batch(batch_id)
    if batch is None:
        return {}
    files = repo.files_of_batch(batch.id)
    return {
        "batch_id": batch.id,
        "status": batch.status,
        "table": batch.target_table,
        "rows_read": sum(f.rows_read for f in files),
        "rows_written": sum(f.rows_written for f in files),
        "rows_rejected": sum(f.rows_rejected for f in files),
        "rows_rolled_back": sum(f.rows_rolled_back for f in files),
        "files": [
            {
                "path": f.path,
                "status": _REPORT_FILE_STATUS.get(f.status, f.status),
                "rows_read": f.rows_read,
                "rows_written": f.rows_written,
                "rows_rejected": f.rows_rejected,
                "rows_rolled_back": f.rows_rolled_back,
                "rows_inserted": f.rows_inserted,
                "rows_updated": f.rows_updated,
                "error": f.error,
                "schema_version": f.schema_version,
                "columns_added": _changed(f, "added"),
                "columns_dropped": _changed(f, "dropped"),
                "columns_missing": _changed(f, "missing"),
            }
            for f in files
        ],
    }


def _changed(f: FileManifest, kind: str) -> list[str]:
    changes = f.column_changes or {}
    return list(changes.get(kind) or [])


def batch_dict(b: Batch) -> dict[str, Any]:
    """One batch for ``list_batches`` (counts from the accumulator's final snapshot)."""
    return {
        "batch_id": b.id,
        "status": b.status,
        "table": b.target_table,
        "started_at": _iso(b.started_at),
        "finished_at": _iso(b.finished_at),
        "files": b.files_loaded + b.files_skipped + b.files_failed,
        "files_loaded": b.files_loaded,
        "files_skipped": b.files_skipped,
        "files_failed": b.files_failed,
        "rows_read": b.rows_read,
        "rows_written": b.rows_written,
        "rows_rejected": b.rows_rejected,
        "rows_rolled_back": b.rows_rolled_back,
        "bytes_read": b.bytes_read,
        "host": b.host,
        "pid": b.pid,
        "user": b.user,
        "timeout_kind": b.timeout_kind,
        "error": b.error_message,
    }


def reject_dict(r: RejectRecord, f: FileManifest) -> dict[str, Any]:
    """One reject for ``tallyclerk rejects --json``; ``rolled_back`` when its file failed
    (nothing of that file load was committed; the reject is kept to say why)."""
    return {
        "path": f.path,
        "table": f.target_table,
        "file_status": f.status,
        "rolled_back": f.status == "failed",
        "batch_id": r.batch_id,
        "file_id": r.file_id,
        "record_number": r.record_number,
        "line": r.line,
        "column": r.column_name,
        "rule": r.rule,
        "reason": r.reason,
        "raw": r.raw,
        "masked": bool(r.masked),
        "replayed_by_batch": r.replayed_by_batch,
        "replayed_at": _iso(r.replayed_at),
        "replay_file_id": r.replay_file_id,
        "replay_record_number": r.replay_record_number,
        "replay_outcome": r.replay_outcome,
    }


def event_dict(e: AuditEvent) -> dict[str, Any]:
    """One audit event (the loader's or an application's ``AuditLog.record``)."""
    return {
        "id": e.id,
        "type": e.type,
        "created_at": _iso(e.created_at),
        "batch_id": e.batch_id,
        "file_id": e.file_id,
        "correlation_id": e.correlation_id,
        "payload": e.payload,
    }
