"""Everything the CLI writes goes through :class:`Output` (library code never prints).

stdout carries the result (a JSON object with ``--json``, else a table); stderr carries the
progress bar and error lines.
"""

from __future__ import annotations

import sys
from typing import IO, Any

import orjson

from tallyclerk.redact import redact as mask_secrets
from tallyclerk.textfmt import format_table

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
