"""Plain-text tables (the CLI's, ``str(LoadReport)``): no box drawing, numbers right-aligned."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["format_table"]


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
