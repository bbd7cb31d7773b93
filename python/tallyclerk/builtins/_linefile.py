"""Plumbing shared by the line-oriented Python readers (the TSV loader, JSON Lines inference;
the JSONL loader itself reads in Rust).

Not a plugin: opening a file through :func:`tallyclerk.open_input` with the loaders' errors,
skipping the rest of an over-long line, and turning the collected rows of one batch into a
:class:`tallyclerk.RecordBatch` with its rejected records marked.
"""

from __future__ import annotations

import io
import os
from typing import IO, Any

from tallyclerk import RecordBatch
from tallyclerk.errors import SourceError
from tallyclerk.inputs import open_input

_CHUNK = 1 << 20


def open_lines(path: str, compression: str) -> io.BufferedReader:
    """``path`` opened for reading (decompressed); a directory or an unreadable file is a
    :class:`SourceError` naming the path. ``compression`` is already checked."""
    if os.path.isdir(path):
        raise SourceError(f"{path}: is a directory", path=path)
    try:
        return open_input(path, compression)
    except OSError as exc:
        raise SourceError(f"{path}: cannot open: {exc.strerror or exc}", path=path) from exc


def skip_rest(file: IO[bytes]) -> int:
    """Skip the rest of an over-long line without keeping it; returns the bytes skipped."""
    skipped = 0
    while True:
        rest = file.readline(_CHUNK)
        skipped += len(rest)
        if not rest or rest.endswith(b"\n"):
            return skipped


def build_batch(
    columns: list[str],
    rows: list[Any],
    numbers: list[int],
    lines: list[int],
    raws: list[str],
    verdicts: list[tuple[int, str, str]],
) -> RecordBatch:
    """One batch of ``rows``; each ``(index, rule, reason)`` of ``verdicts`` rejects a record."""
    batch = RecordBatch.from_rows(columns, rows, numbers, lines, raws)
    for index, rule, reason in verdicts:
        batch.reject(index, None, rule, reason)
    return batch
