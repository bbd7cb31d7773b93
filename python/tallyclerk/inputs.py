"""Opening a possibly-compressed input: :func:`open_input` for loaders written in Python.

The bytes come from the compiled core's single input opener (``rust/data/input.rs``, the one
the CSV reader and the content fingerprint use): gzip, bzip2, xz and zstd are recognised by the
content's magic bytes (not the name) and decompressed as a stream, so memory stays bounded
whatever the file's size. A corrupt or truncated archive raises
:class:`~tallyclerk.errors.SourceError` naming the file and the reason while it is read; a
loader that reads inside the file's transaction thus fails the file with nothing loaded.

A plugin's ``tallyclerk_open_source`` can honour ``--compression`` with::

    from tallyclerk import open_input
    fh = open_input(path, compression=options.get("compression") or "auto")
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from tallyclerk.errors import ConfigError

if TYPE_CHECKING:
    from tallyclerk._core import InputStream

__all__ = ["COMPRESSIONS", "SUFFIXES", "open_input", "strip_compression_suffix"]

#: the values of ``--compression`` / ``compression=``
COMPRESSIONS = ("auto", "none", "gzip", "bzip2", "xz", "zstd")
#: suffixes of compressed files, removed before a loader looks at a name's format suffix
SUFFIXES = (".gz", ".gzip", ".bz2", ".xz", ".zst", ".zstd")
_CHUNK = 256 * 1024


def strip_compression_suffix(path: str) -> str:
    """``orders.csv.gz`` -> ``orders.csv`` (a name without such a suffix is returned as is)."""
    lower = path.lower()
    for suffix in SUFFIXES:
        if lower.endswith(suffix):
            return path[: -len(suffix)]
    return path


def check_compression(value: object) -> str:
    """The normalized ``compression`` option; :class:`ConfigError` (exit 2) when unknown."""
    text = "auto" if value is None else str(value).strip().lower()
    aliases = {"": "auto", "gz": "gzip", "bz2": "bzip2", "zst": "zstd"}
    text = aliases.get(text, text)
    if text not in COMPRESSIONS:
        raise ConfigError(
            f"unknown compression {value!r} (expected one of {', '.join(COMPRESSIONS)})"
        )
    return text


class _Raw(io.RawIOBase):
    """The decompressed bytes of an :class:`~tallyclerk._core.InputStream` as a raw stream."""

    def __init__(self, stream: InputStream) -> None:
        super().__init__()
        self._stream = stream
        self.name = stream.path
        self.compression = stream.compression

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(max(1, min(len(buffer), _CHUNK)))
        n = len(data)
        buffer[:n] = data
        return n

    def close(self) -> None:
        self._stream.close()
        super().close()


def open_input(path: str, compression: str = "auto") -> io.BufferedReader:
    """Open ``path`` for reading its (decompressed) bytes.

    Args:
        path: a local file.
        compression: ``auto`` (by the content's magic bytes), ``none`` (the bytes as stored),
            or ``gzip``/``bzip2``/``xz``/``zstd`` (the file must be in that format).

    Returns:
        A binary file object (``read``, ``readline``, ``peek``, iteration, a context manager);
        not seekable. Its ``raw.compression`` is the compression used.

    Raises:
        ConfigError: an unknown ``compression``.
        SourceError: the file is missing, a directory or unreadable, is not in the forced
            format, or (while reading) its archive is corrupt or truncated.
    """
    from tallyclerk._core import InputStream

    stream = InputStream(path, compression=check_compression(compression))
    return io.BufferedReader(_Raw(stream), buffer_size=_CHUNK)
