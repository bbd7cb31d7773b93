"""What a watched source holds now: the small interface ``tallyclerk watch`` lists through.

A :class:`Listing` answers two questions: which files are there (path, size, modification
time, and for objects the ETag) and whether a given path exists (for marker files).
:func:`open_listing` picks one by the source's form: a local folder (its files, not recursing),
a local glob (``*``, ``?``, ``[...]``, ``**`` recursive), an object-store prefix or glob
(``s3://``, ``gs://``, ``az://``: :mod:`tallyclerk.objlisting` registers them when imported,
as :mod:`tallyclerk.watcher` does), or a URL whose scheme another module registered with
:func:`register_listing`.

Names that are never data are left out: hidden files (``.name``), names starting with ``_``
(``_SUCCESS``, ``_temporary``: Hadoop/Spark conventions), and partial downloads or temporary
files (``.tmp``, ``.part``, ``.partial``, ``.crdownload``, ``.swp``, ``~``).
"""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tallyclerk.errors import ConfigError, TallyclerkError

__all__ = ["Entry", "Listing", "ListingError", "LocalListing", "is_data_name", "open_listing",
           "register_listing"]

_TEMP_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp", "~")


class ListingError(TallyclerkError):
    """A source could not be listed now (an endpoint down, access denied, a timeout): the
    watcher backs off and lists it again. The message never holds a credential."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(message)
        self.source = source


@dataclass(frozen=True)
class Entry:
    """One file of a source: its path as loads name it, its size and modification time, and
    for an object its ETag (a rewrite with the same size and second is still a change)."""

    path: str
    size: int
    mtime: float
    etag: str | None = None

    @property
    def stamp(self) -> tuple[int, float, str | None]:
        """What must stay the same for the file to be the same file (size, mtime, ETag)."""
        return (self.size, self.mtime, self.etag)


class Listing(Protocol):
    """A source that can be listed (a folder, a glob, an object-store prefix)."""

    source: str

    def entries(self) -> list[Entry]:
        """The data files there now (see :func:`is_data_name`), in path order; raises
        :class:`ListingError` when the source cannot be listed now."""
        ...

    def exists(self, path: str) -> bool:
        """Whether ``path`` (a marker file beside a data file) exists now."""
        ...


def is_data_name(name: str) -> bool:
    """Whether a file name can be data (not hidden, not ``_``-prefixed, not temporary)."""
    base = os.path.basename(name)
    return bool(base) and not base.startswith((".", "_")) and not base.endswith(_TEMP_SUFFIXES)


class LocalListing:
    """A local folder (its regular files, not recursing) or a glob of local paths."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._is_glob = glob.has_magic(source)
        if not self._is_glob and not os.path.isdir(source):
            raise ConfigError(f"watch source {source!r} is neither a folder nor a glob")

    def _paths(self) -> list[str]:
        if self._is_glob:
            return glob.glob(self.source, recursive=True)
        try:
            with os.scandir(self.source) as it:
                return [os.path.join(self.source, e.name) for e in it]
        except OSError:
            return []  # the folder vanished (unmounted, renamed): nothing to load this round

    def entries(self) -> list[Entry]:
        out: list[Entry] = []
        for path in self._paths():
            if not is_data_name(path):
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue  # removed between the listing and the stat
            if stat.S_ISREG(st.st_mode):
                out.append(Entry(path, st.st_size, st.st_mtime))
        out.sort(key=lambda e: e.path)
        return out

    def exists(self, path: str) -> bool:
        return os.path.exists(path)


ListingFactory = Callable[[str], Listing]
_SCHEMES: dict[str, ListingFactory] = {}


def register_listing(scheme: str, factory: ListingFactory) -> None:
    """Make ``SCHEME://...`` sources listable with ``factory(source)``."""
    _SCHEMES[scheme.lower()] = factory


def open_listing(source: str) -> Listing:
    """The listing of ``source``; :class:`ConfigError` when it cannot be watched."""
    if "://" in source:
        scheme = source.split("://", 1)[0].lower()
        factory = _SCHEMES.get(scheme)
        if factory is None:
            raise ConfigError(
                f"cannot watch {source!r}: no listing for {scheme}:// sources "
                f"(known: local folders and globs{''.join(', ' + s for s in sorted(_SCHEMES))})"
            )
        return factory(source)
    return LocalListing(source)
