"""The report entries of files the pipeline could not claim, and their merge into the report.

A missing path, a directory or an unreadable file fails before it has a claim (so the audit
store's batch report does not name it); the files after a batch stopped are *not attempted*.
Both are added to the batch report in the order of the paths.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from typing import Any

from tallyclerk.redact import redact as mask_secrets
from tallyclerk.remote import is_remote

__all__ = ["failed_entry", "merge_unclaimed", "message", "not_attempted", "unreadable"]


def message(exc: BaseException) -> str:
    """An exception's first line, secrets masked: the ``error`` of a file."""
    text = str(exc) or type(exc).__name__
    return mask_secrets(text.splitlines()[0] if text else text)


def unreadable(path: str) -> str | None:
    """Why a local path cannot be loaded (missing, a directory...), or None."""
    if is_remote(path):
        return None  # known when it is fetched
    if not os.path.lexists(path):
        return "no such file"
    if os.path.isdir(path):
        return "is a directory"
    if not os.path.exists(path):
        return "broken symbolic link"
    if not os.access(path, os.R_OK):
        return "permission denied"
    if not stat.S_ISREG(os.stat(path).st_mode):
        # a FIFO, a socket, a device, /dev/fd/N of `<(...)`: a file is read twice (its
        # fingerprint, then its rows), and opening a FIFO without a writer never returns
        return ("not a regular file (a pipe, socket or device): it would be read twice, for "
                "its fingerprint and for its rows; save it to a file first")
    return None


_NO_SCHEMA: dict[str, Any] = {"schema_version": None, "columns_added": [],
                               "columns_dropped": [], "columns_missing": []}


def failed_entry(path: str, exc: BaseException) -> dict[str, Any]:
    return {"path": path, "status": "failed", "rows_read": 0, "rows_written": 0,
            "rows_rejected": 0, "rows_rolled_back": 0, "rows_inserted": None,
            "rows_updated": None, "error": message(exc), **_NO_SCHEMA}


def not_attempted(path: str, why: str) -> dict[str, Any]:
    return {"path": path, "status": "failed", "rows_read": 0, "rows_written": 0,
            "rows_rejected": 0, "rows_rolled_back": 0, "rows_inserted": None,
            "rows_updated": None,
            "error": f"not attempted: the batch stopped ({why})", **_NO_SCHEMA}


def merge_unclaimed(
    report: dict[str, Any], unclaimed: list[dict[str, Any]], paths: Sequence[str]
) -> dict[str, Any]:
    """Add the paths that could not even be claimed (missing, directory) to the report."""
    if not unclaimed:
        return report
    order = {p: i for i, p in reversed(list(enumerate(paths)))}
    files = list(report.get("files", [])) + unclaimed
    files.sort(key=lambda f: order.get(f["path"], len(paths)))
    out = dict(report)
    out["files"] = files
    if out.get("status") == "succeeded":
        out["status"] = "partial" if any(f["status"] == "loaded" for f in files) else "failed"
    return out
