"""Everything the CLI writes goes through :class:`Output` (library code never prints).

stdout carries the result (a JSON object with ``--json``, else a table); stderr carries the
progress bar and error lines.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO, Any

import orjson

from tallyclerk.dburl import mask_secrets

__all__ = ["Output", "format_table"]


class Output:
    """The CLI's writer: results on stdout, diagnostics on stderr."""

    def __init__(self, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> None:
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr

    @property
    def stderr_is_tty(self) -> bool:
        isatty = getattr(self.stderr, "isatty", None)
        return bool(isatty and isatty())

    def line(self, text: str = "") -> None:
        self.stdout.write(text + "\n")

    def json(self, obj: Any) -> None:
        """Exactly one JSON document, one line, on stdout."""
        self.stdout.write(orjson.dumps(obj, default=str).decode() + "\n")
        self.stdout.flush()

    def error(self, message: str) -> None:
        """``tallyclerk: error: <first line of message>`` on stderr, passwords masked."""
        first = (message or "").strip().splitlines()
        text = mask_secrets(first[0] if first else "unknown error")
        self.stderr.write(f"tallyclerk: error: {text}\n")
        self.stderr.flush()

    def note(self, message: str) -> None:
        self.stderr.write(mask_secrets(message) + "\n")
        self.stderr.flush()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    text = str(value).replace("\n", " ").replace("\r", " ")
    return text


def format_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    right: Sequence[int] = (),
    max_width: int = 60,
    full: Sequence[int] = (),
) -> list[str]:
    """Plain-text columns (no box drawing), numbers right-aligned, long cells cut with "..."
    except in the columns ``full`` (put such a column last: it is shown whole)."""
    cells = [[_cell(v) for v in row] for row in rows]
    for row in cells:
        for i, text in enumerate(row):
            if len(text) > max_width and i not in full:
                row[i] = text[: max_width - 3] + "..."
    widths = [len(h) for h in headers]
    for row in cells:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))

    def fmt(row: Sequence[str]) -> str:
        parts = [
            text.rjust(widths[i]) if i in right else text.ljust(widths[i])
            for i, text in enumerate(row)
        ]
        return "  ".join(parts).rstrip()

    return [fmt(list(headers))] + [fmt(row) for row in cells]
