"""TSV loader: tab-separated values with TSV's rules, not CSV's.

Claims a file when ``--format tsv`` is given, or without ``--format`` when its name ends in
``.tsv`` or ``.tab``, also followed by a compression suffix (``a.tsv.gz``; the bytes come from
:func:`tallyclerk.open_input`, ``compression`` option). The rules (IANA
``text/tab-separated-values`` plus the common backslash escapes of "linear TSV"):

- one record per line (LF or CRLF); the first line is the header naming the columns; a UTF-8
  byte order mark is skipped; an empty line is not a record;
- fields are separated by a tab and are never quoted: a ``"`` is an ordinary character
  (``"quoted"`` loads as ``"quoted"``, quotes included);
- the escapes ``\\t``, ``\\n``, ``\\r`` and ``\\\\`` in a field stand for a tab, a line feed,
  a carriage return and a backslash; a backslash before any other character is kept as it is;
- a record with more or fewer fields than the header is rejected (rule ``row-length``), a
  record that is not valid in the encoding is rejected (rule ``encoding``), and a line longer
  than ``max_field_bytes`` is rejected (rule ``line-length``) without being held in memory;
  the other records load.

``--delimiter`` does not apply (the separator is the tab). Memory is bounded: one batch of
``batch_rows`` records (and at most ``_BATCH_BYTES`` of text).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import IO, Any

from tallyclerk import RecordBatch
from tallyclerk.builtins._linefile import build_batch, open_lines, skip_rest
from tallyclerk.errors import SourceError
from tallyclerk.hookspecs import hookimpl
from tallyclerk.inputs import check_compression, strip_compression_suffix

SUFFIXES = (".tsv", ".tab")
FORMATS = ("tsv",)
DEFAULT_BATCH_ROWS = 10_000
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
_BATCH_BYTES = 16 * 1024 * 1024
_ESCAPE = re.compile(r"\\([tnr\\])")
_UNESCAPED = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}


def unescape(field: str) -> str:
    """A TSV field with its ``\\t``, ``\\n``, ``\\r`` and ``\\\\`` escapes decoded."""
    if "\\" not in field:
        return field
    return _ESCAPE.sub(lambda m: _UNESCAPED[m.group(1)], field)


class TsvSource:
    """A TSV file read in record batches (see the module docstring)."""

    def __init__(
        self,
        path: str,
        *,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        encoding: str = "utf-8",
        compression: str = "auto",
    ) -> None:
        self.path = path
        self.batch_rows = batch_rows
        self._max_line = max_line_bytes
        self._encoding = encoding
        self._file: IO[bytes] | None = open_lines(path, check_compression(compression))
        header = self._file.readline(max_line_bytes + 1)
        self._bytes_read = len(header)
        if header.startswith(b"\xef\xbb\xbf"):
            header = header[3:]
        try:
            text = header.rstrip(b"\r\n").decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            self.close()
            raise SourceError(f"{path}: the header line cannot be decoded: {exc}", path=path,
                              line=1) from exc
        self._columns = [unescape(name) for name in text.split("\t")] if text else []
        if len(set(self._columns)) != len(self._columns):
            self.close()
            raise SourceError(f"{path}: the header names a column twice", path=path, line=1)

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    @property
    def bytes_read(self) -> int:
        return self._bytes_read

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __iter__(self) -> Iterator[RecordBatch]:
        if self._file is None or not self._columns:
            return
        readline, limit = self._file.readline, self._max_line + 1
        columns, ncols, encoding = self._columns, len(self._columns), self._encoding
        empty: tuple[Any, ...] = (None,) * ncols
        rows: list[Any] = []
        numbers: list[int] = []
        lines: list[int] = []
        raws: list[str] = []
        verdicts: list[tuple[int, str, str]] = []
        pending = text_bytes = record = 0
        lineno = 1

        def flush() -> RecordBatch:
            nonlocal rows, numbers, lines, raws, verdicts, pending, text_bytes
            batch = build_batch(columns, rows, numbers, lines, raws, verdicts)
            self._bytes_read += pending
            rows, numbers, lines, raws, verdicts = [], [], [], [], []
            pending = text_bytes = 0
            return batch

        while True:
            line = readline(limit)
            if not line:
                break
            lineno += 1
            pending += len(line)
            if len(line) == limit and line[-1:] != b"\n":
                pending += skip_rest(self._file)
                verdict: tuple[str, str] | None = (
                    "line-length", f"line longer than {limit - 1} bytes")
                text, row = "", empty
            else:
                body = line.rstrip(b"\r\n")
                if not body:
                    continue  # an empty line is not a record
                text_bytes += len(body)
                verdict, row = None, empty
                try:
                    text = body.decode(encoding)
                except UnicodeDecodeError:
                    text = body.decode(encoding, errors="replace")
                    verdict = ("encoding", f"the record is not valid {encoding}")
                if verdict is None:
                    fields = text.split("\t")
                    if len(fields) != ncols:
                        verdict = ("row-length", f"expected {ncols} fields, found {len(fields)}")
                    else:
                        row = tuple(map(unescape, fields))
            record += 1
            if verdict is not None:
                verdicts.append((len(rows), *verdict))
            rows.append(row)
            numbers.append(record)
            lines.append(lineno)
            raws.append(text)
            if len(rows) >= self.batch_rows or text_bytes >= _BATCH_BYTES:
                yield flush()
        if rows:
            yield flush()
        else:
            self._bytes_read += pending


def _claims(path: str, options: Mapping[str, Any]) -> bool:
    fmt = options.get("format")
    if fmt:
        return str(fmt).lower() in FORMATS
    return strip_compression_suffix(path).lower().endswith(SUFFIXES)


@hookimpl
def tallyclerk_formats() -> dict[str, tuple[str, ...]]:
    """The formats this loader reads, with their suffixes."""
    return {"tsv": SUFFIXES}


@hookimpl(trylast=True)
def tallyclerk_open_source(path: str, options: Mapping[str, Any]) -> TsvSource | None:
    """Open a TSV file (by ``--format tsv`` or its suffix)."""
    if not _claims(path, options):
        return None
    return TsvSource(
        path,
        batch_rows=int(options.get("batch_rows") or DEFAULT_BATCH_ROWS),
        max_line_bytes=int(options.get("max_field_bytes") or DEFAULT_MAX_LINE_BYTES),
        encoding=str(options.get("encoding") or "utf-8"),
        compression=str(options.get("compression") or "auto"),
    )
