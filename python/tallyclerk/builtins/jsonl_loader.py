"""JSON Lines loader over the Rust reader (:class:`tallyclerk._core.JsonlReader`): one JSON
object a line, parsed, and its values stored, in Rust (serde_json), no Python per line.

Claims a file when ``--format jsonl`` is given, or without ``--format`` when its name ends in
``.jsonl``, ``.ndjson`` or ``.jsonl.txt``, also followed by a compression suffix
(``events.jsonl.zst``): gzip, bzip2, xz and zstd are detected from the content and
decompressed as a stream in Rust (``compression`` option to force one); line numbers are those
of the decompressed text.

Columns: the union of every object's keys in first-seen order, found by a first streaming
pass over the file (only the key set is kept); the schema, when there is one, decides what
becomes of them (validation matches columns to fields by name; see the column contract in
``tallyclerk.contract``). A key that cannot be a column name (empty, a NUL byte, longer than
255 characters, ``_tc_file_id`` in any case, or differing only in ASCII letter case from an
earlier key) is not a column: every record holding it is rejected (rule ``json``, naming the
key and why), the other records load. Records:

- a blank line is not a record (it is not counted);
- a line that is not valid JSON (invalid UTF-8, a number overflowing to infinity such as
  ``1e400``, a lone surrogate escape, nesting deeper than 1024 levels and a truncated last
  line included), is valid JSON but not an object (``[]``, ``0``, ``null``), or is an empty
  object ``{}``, is rejected (rule ``json``), with its line number and the reason; the other
  lines load;
- a line longer than ``max_field_bytes`` is rejected (rule ``line-length``) without being
  held in memory;
- nested arrays and objects load as their compact JSON text (keys in first-seen order,
  orjson's escapes and float spelling, integers exact); integers beyond 64 bits keep their
  exact digits (as text); with duplicate keys the last one wins.

Memory is bounded: one batch of ``batch_rows`` lines (and at most 16 MiB of text).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from tallyclerk._core import JsonlReader
from tallyclerk.hookspecs import hookimpl
from tallyclerk.inputs import check_compression, strip_compression_suffix

if TYPE_CHECKING:
    from tallyclerk._core import RecordBatch, TableSchema

SUFFIXES = (".jsonl", ".ndjson", ".jsonl.txt")
DEFAULT_BATCH_ROWS = 10_000
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024


class JsonlSource:
    """A JSON Lines file read in record batches (see the module docstring)."""

    def __init__(
        self,
        path: str,
        *,
        schema: TableSchema | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        encoding: str = "utf-8",
        compression: str = "auto",
    ) -> None:
        self.path = path
        self.batch_rows = batch_rows
        self._reader: JsonlReader | None = JsonlReader(
            path, encoding=encoding, batch_rows=batch_rows, max_line_bytes=max_line_bytes,
            compression=check_compression(compression),
            read_ahead=True,  # the next batch is parsed while this one is validated and written
        )
        self._columns = self._reader.columns
        self._bytes_read = 0

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    @property
    def bytes_read(self) -> int:
        return self._reader.bytes_read if self._reader is not None else self._bytes_read

    def close(self) -> None:
        """Drop the reader (its file closes with it)."""
        if self._reader is not None:
            self._bytes_read = self._reader.bytes_read
            self._reader = None

    def __enter__(self) -> JsonlSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[RecordBatch]:
        reader = self._reader
        if reader is None:
            return
        for batch in reader:
            yield batch
            if reader.batch_rows != self.batch_rows:
                reader.batch_rows = self.batch_rows


def _claims(path: str, options: Mapping[str, Any]) -> bool:
    fmt = options.get("format")
    if fmt:
        return str(fmt).lower() in ("jsonl", "ndjson")
    return strip_compression_suffix(path).lower().endswith(SUFFIXES)


@hookimpl
def tallyclerk_formats() -> dict[str, tuple[str, ...]]:
    """The formats this loader reads, with their suffixes."""
    return {"jsonl": SUFFIXES, "ndjson": SUFFIXES}


@hookimpl(trylast=True)
def tallyclerk_open_source(path: str, options: Mapping[str, Any]) -> JsonlSource | None:
    """Open a JSON Lines file (by ``--format jsonl`` or its suffix)."""
    if not _claims(path, options):
        return None
    return JsonlSource(
        path,
        schema=options.get("schema"),
        batch_rows=int(options.get("batch_rows") or DEFAULT_BATCH_ROWS),
        max_line_bytes=int(options.get("max_field_bytes") or DEFAULT_MAX_LINE_BYTES),
        encoding=str(options.get("encoding") or "utf-8"),
        compression=str(options.get("compression") or "auto"),
    )
