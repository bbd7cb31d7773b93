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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tallyclerk.errors import ConfigError
from tallyclerk.hookspecs import hookimpl

if TYPE_CHECKING:
    from tallyclerk_parquet.source import ParquetSource

__all__ = [
    "SUFFIXES",
    "ParquetSource",
    "tallyclerk_addoption",
    "tallyclerk_formats",
    "tallyclerk_open_source",
]
__version__ = "0.2.0"

FORMAT = "parquet"
SUFFIXES = (".parquet", ".pq")


def _claims(path: str, options: Mapping[str, Any]) -> bool:
    fmt = options.get("format")
    if fmt:
        return str(fmt).lower() == FORMAT
    return path.lower().endswith(SUFFIXES)


@hookimpl
def tallyclerk_formats() -> dict[str, tuple[str, ...]]:
    """The format this loader reads, and its suffixes (``--format parquet`` is checked
    against it)."""
    return {FORMAT: SUFFIXES}


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
    from tallyclerk_parquet import source  # pyarrow loads only when a file is claimed

    return source.ParquetSource(
        path,
        batch_rows=int(options.get("batch_rows") or source.DEFAULT_BATCH_ROWS),
        columns=columns,
    )


def __getattr__(name: str) -> Any:
    """``ParquetSource`` and ``DEFAULT_BATCH_ROWS`` are imported (with pyarrow) on first use."""
    if name in {"ParquetSource", "DEFAULT_BATCH_ROWS"}:
        from tallyclerk_parquet import source

        return getattr(source, name)
    raise AttributeError(f"module 'tallyclerk_parquet' has no attribute {name!r}")
