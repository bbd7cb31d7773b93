"""The load report as a summary table, and the progress bar drawn on a terminal."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tallyclerk.cli.output import Output, format_table

if TYPE_CHECKING:
    from tallyclerk.report import LoadProgress, LoadReport

__all__ = ["ProgressBar", "print_rejects", "print_report"]


def print_report(out: Output, report: LoadReport | Mapping[str, Any], *,
                 target: str | None = None) -> None:
    """The batch summary: one line per file and a total (``LoadReport.lines``)."""
    from tallyclerk.report import LoadReport

    if not isinstance(report, LoadReport):
        report = LoadReport.from_dict(report)
    for text in report.lines(target=target):
        out.line(text)


def _replayed(r: Mapping[str, Any]) -> str:
    """``loaded by BATCH`` / ``rejected again by BATCH`` after a replay; empty before one."""
    if not r.get("replayed_by_batch"):
        return ""
    outcome = "loaded" if r.get("replay_outcome") == "loaded" else "rejected again"
    return f"{outcome} by {r.get('replayed_by_batch')}"


def print_rejects(out: Output, rejects: Sequence[Mapping[str, Any]]) -> None:
    """Rejected rows: batch, table, file (marked when it was rolled back), line, record,
    column, rule and the whole reason (the last column, never cut)."""
    if not rejects:
        out.line("no rejected rows")
        return
    rows = [
        [r.get("batch_id"), r.get("table"),
         f"{r.get('path')}{' (rolled back)' if r.get('rolled_back') else ''}",
         r.get("line"), r.get("record_number"), r.get("column") or "", r.get("rule"),
         _replayed(r), r.get("reason")]
        for r in rejects
    ]
    for text in format_table(
        ["BATCH", "TABLE", "FILE", "LINE", "RECORD", "COLUMN", "RULE", "REPLAYED", "REASON"],
        rows, right=(3, 4), full=(8,),
    ):
        out.line(text)
    rolled_back = sum(1 for r in rejects if r.get("rolled_back"))
    if rolled_back:
        out.line(
            f"{rolled_back} of these rejects belong to file loads that were rolled back "
            "(marked \"(rolled back)\": nothing of those loads was committed)"
        )


class ProgressBar:
    """``[#####-----] 3/10 files  120,345 rows  54,321 rows/s`` redrawn on stderr (TTY only)."""

    WIDTH = 24

    def __init__(self, out: Output, *, min_interval_s: float = 0.1) -> None:
        self.out = out
        self.min_interval_s = min_interval_s
        self._started = time.monotonic()
        self._last = 0.0
        self._drawn = False

    def __call__(self, progress: LoadProgress) -> None:
        files_done, files_total, rows = (progress.files_done, progress.files_total,
                                         progress.rows_read)
        now = time.monotonic()
        if now - self._last < self.min_interval_s and files_done < files_total:
            return
        self._last = now
        elapsed = max(now - self._started, 1e-6)
        filled = int(self.WIDTH * files_done / files_total) if files_total else self.WIDTH
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        text = (f"\r[{bar}] {files_done}/{files_total} files  {rows:,} rows  "
                f"{rows / elapsed:,.0f} rows/s")
        self.out.stderr.write(text + "\x1b[K")
        self.out.stderr.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.out.stderr.write("\r\x1b[K")
            self.out.stderr.flush()
            self._drawn = False
