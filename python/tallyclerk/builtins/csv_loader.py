"""CSV loader over the Rust reader (:class:`tallyclerk.CsvReader`).

Claims a file when ``--format csv`` is given, or without ``--format`` when its name ends in
``.csv`` (``--delimiter`` chooses another separator, ``--delimiter tab`` a tab; ``.tsv`` files,
which have no quoting, are the TSV loader's: :mod:`tallyclerk.builtins.tsv_loader`), also
followed by a compression suffix (``orders.csv.gz``: gzip, bzip2, xz and zstd are decompressed
in Rust, detected from the content, or forced with ``--compression``). A header row names
the columns; RFC 4180 quoting with embedded newlines, a UTF-8 BOM and CRLF/LF/CR line ends are
handled in Rust, and every record keeps its record number and physical line. Options:
``delimiter``, ``encoding``, ``max_field_bytes``, ``batch_rows``, ``compression``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tallyclerk import CsvReader, RecordBatch
from tallyclerk.errors import ConfigError
from tallyclerk.hookspecs import hookimpl
from tallyclerk.inputs import check_compression, strip_compression_suffix

SUFFIXES = (".csv",)
DEFAULT_BATCH_ROWS = 10_000
DEFAULT_MAX_FIELD_BYTES = 16 * 1024 * 1024


class CsvSource:
    """Adapts :class:`tallyclerk.CsvReader` to the :class:`~tallyclerk.protocols.Source` shape."""

    def __init__(self, path: str, **kwargs: Any) -> None:
        self.path = path
        # the next batch is parsed while this one is validated and written
        kwargs.setdefault("read_ahead", True)
        self._reader = CsvReader(path, **kwargs)
        self.batch_rows = int(kwargs.get("batch_rows", DEFAULT_BATCH_ROWS))

    @property
    def columns(self) -> list[str]:
        return list(self._reader.header)

    @property
    def bytes_read(self) -> int:
        return self._reader.bytes_read

    def __iter__(self) -> Iterator[RecordBatch]:
        reader = self._reader
        settable = hasattr(type(reader), "batch_rows")
        for batch in reader:
            yield batch
            if settable and getattr(reader, "batch_rows", None) != self.batch_rows:
                reader.batch_rows = self.batch_rows  # type: ignore[attr-defined,misc,unused-ignore]

    def close(self) -> None:
        """The Rust reader closes its file when it is exhausted or dropped."""
        close = getattr(self._reader, "close", None)
        if callable(close):
            close()


def _claims(path: str, options: Mapping[str, Any]) -> bool:
    fmt = options.get("format")
    if fmt:
        return str(fmt).lower() == "csv"
    return strip_compression_suffix(path).lower().endswith(SUFFIXES)


@hookimpl
def tallyclerk_formats() -> dict[str, tuple[str, ...]]:
    """The formats this loader reads, with their suffixes."""
    return {"csv": SUFFIXES}


@hookimpl(trylast=True)
def tallyclerk_open_source(path: str, options: Mapping[str, Any]) -> CsvSource | None:
    """Open a CSV file (by ``--format csv`` or its suffix)."""
    if not _claims(path, options):
        return None
    delimiter = options.get("delimiter") or ","
    if delimiter in ("\\t", "tab"):
        delimiter = "\t"
    if len(delimiter) != 1:
        raise ConfigError(f"--delimiter must be a single character, got {delimiter!r}")
    return CsvSource(
        path,
        delimiter=delimiter,
        encoding=str(options.get("encoding") or "utf-8"),
        batch_rows=int(options.get("batch_rows") or DEFAULT_BATCH_ROWS),
        max_field_bytes=int(options.get("max_field_bytes") or DEFAULT_MAX_FIELD_BYTES),
        compression=check_compression(options.get("compression")),
    )
