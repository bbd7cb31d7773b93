"""Streaming a Parquet file as tallyclerk record batches (imports pyarrow).

Kept apart from the hook module so that loading the plugin costs nothing until a Parquet file
is actually claimed.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import os
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tallyclerk import RecordBatch
from tallyclerk.errors import SourceError

__all__ = ["DEFAULT_BATCH_ROWS", "ParquetSource"]

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
