"""A tallyclerk loader plugin for Apache Parquet files.

Registered through the entry point ``parquet = "tallyclerk_parquet"`` in the ``tallyclerk``
group (see this distribution's ``pyproject.toml``); it uses only tallyclerk's public plugin
API: :data:`tallyclerk.hookspecs.hookimpl`, :class:`tallyclerk.RecordBatch` and
:class:`tallyclerk.errors.SourceError`.

Claims a file when ``--format parquet`` is given, or, without ``--format``, when its name ends
in ``.parquet`` or ``.pq``. The file is streamed with
:meth:`pyarrow.parquet.ParquetFile.iter_batches`: at most ``batch_rows`` rows at a time, one
row group read at a time, so memory stays bounded whatever the file size. A record's number
and its "line" are both its 1-based row position in the file.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tallyclerk import RecordBatch
from tallyclerk.errors import ConfigError, SourceError
from tallyclerk.hookspecs import hookimpl

__all__ = ["SUFFIXES", "ParquetSource", "tallyclerk_addoption", "tallyclerk_open_source"]
__version__ = "0.1.0"

FORMAT = "parquet"
SUFFIXES = (".parquet", ".pq")
DEFAULT_BATCH_ROWS = 10_000


def _cell(value: Any) -> Any:
    """A Parquet value as something a RecordBatch holds: str, int, float, bool or None."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value.total_seconds())
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def _plain(type_: pa.DataType) -> bool:
    """Whether a column's Python values need no conversion (text, numbers, booleans)."""
    t = pa.types
    return bool(
        t.is_string(type_) or t.is_large_string(type_) or t.is_integer(type_)
        or t.is_floating(type_) or t.is_boolean(type_) or t.is_null(type_)
    )


def _column(column: pa.Array) -> list[Any]:
    values = column.to_pylist()
    if _plain(column.type):
        return values  # type: ignore[no-any-return]
    return [_cell(v) for v in values]


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


class ParquetSource:
    """A Parquet file read in record batches (a :class:`tallyclerk.protocols.Source`)."""

    def __init__(
        self,
        path: str,
        *,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        columns: list[str] | None = None,
    ) -> None:
        self.path = path
        self.batch_rows = batch_rows
        try:
            # pre_buffer=False: read one row group at a time (pre-buffering reads ahead many)
            self._file: pq.ParquetFile | None = pq.ParquetFile(path, pre_buffer=False)
        except FileNotFoundError:
            raise SourceError(f"{path}: no such file", path=path) from None
        except IsADirectoryError:
            raise SourceError(f"{path}: is a directory", path=path) from None
        except (OSError, pa.ArrowException) as exc:
            raise SourceError(f"{path}: not a readable Parquet file: {exc}", path=path) from None
        names = list(self._file.schema_arrow.names)
        if columns:
            missing = [c for c in columns if c not in names]
            if missing:
                self.close()
                raise SourceError(
                    f"{path}: no column {', '.join(repr(c) for c in missing)} "
                    f"(the file has {', '.join(names)})",
                    path=path,
                )
            names = list(columns)
        self._columns = names
        self._size = os.path.getsize(path)
        self._total = max(0, self._file.metadata.num_rows)
        self._rows = 0
        self._done = False

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    @property
    def bytes_read(self) -> int:
        """The file's size in proportion to the rows yielded (the whole file at the end)."""
        if self._done:
            return self._size
        if self._total == 0:
            return 0
        return self._size * self._rows // self._total

    def __iter__(self) -> Iterator[RecordBatch]:
        if self._file is None:
            return
        columns = self._columns
        try:
            for chunk in self._file.iter_batches(
                batch_size=max(1, self.batch_rows), columns=columns, use_threads=False
            ):
                values = [_column(column) for column in chunk.columns]
                rows = list(zip(*values, strict=True))
                first = self._rows + 1
                numbers = list(range(first, first + len(rows)))
                self._rows += len(rows)
                yield RecordBatch.from_rows(columns, rows, numbers, numbers)
            self._done = True
        except (OSError, pa.ArrowException) as exc:
            raise SourceError(
                f"{self.path}: line {self._rows + 1}: cannot read the Parquet data: {exc}",
                path=self.path,
                line=self._rows + 1,
            ) from None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _claims(path: str, options: Mapping[str, Any]) -> bool:
    fmt = options.get("format")
    if fmt:
        return str(fmt).lower() == FORMAT
    return path.lower().endswith(SUFFIXES)


@hookimpl
def tallyclerk_addoption(parser: Any, pluginmanager: Any) -> None:
    """``--parquet-columns a,b,c``: read only these columns."""
    parser.add_argument(
        "--parquet-columns",
        default=None,
        metavar="A,B,...",
        help="Parquet: read only these columns (comma-separated, in this order)",
    )


@hookimpl
def tallyclerk_open_source(path: str, options: Mapping[str, Any]) -> ParquetSource | None:
    """Open a Parquet file (``--format parquet`` or a ``.parquet`` / ``.pq`` name)."""
    if not _claims(path, options):
        return None
    wanted = options.get("parquet_columns")
    columns = [c.strip() for c in str(wanted).split(",") if c.strip()] if wanted else None
    if wanted and not columns:
        raise ConfigError("--parquet-columns needs at least one column name")
    return ParquetSource(
        path,
        batch_rows=int(options.get("batch_rows") or DEFAULT_BATCH_ROWS),
        columns=columns,
    )
