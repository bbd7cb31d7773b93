"""Watching object-store prefixes: the listing of ``s3://``, ``gs://`` and ``az://`` sources.

``tallyclerk watch 's3://bucket/in/'`` lists the objects directly under the prefix (not
recursing, as for a local folder); ``'s3://bucket/in/*.csv'`` (``*``, ``?``, ``[...]``, ``**``)
lists the matching objects. Both go through the same fsspec back-ends, storage options and
credential chains as loads (:mod:`tallyclerk.objstore`), so ``gs://`` and ``az://`` take the
same path as ``s3://``.

* **Fresh every time.** fsspec back-ends cache directory listings (s3fs keeps them for the life
  of the filesystem object): the cache of the listed prefix is invalidated before every
  listing, so a new object is seen at the next listing, a deleted one is gone.
* **Identity.** Each :class:`~tallyclerk.listing.Entry` carries the object's URL, size,
  LastModified and ETag; the watcher takes an object again only when one of them changed, and
  the ledger decides by content whether it is new (an object rewritten with new content is a
  new file, with the same content it is skipped).
* **Markers** (``_SUCCESS``, ``{name}.done``): answered from the listing itself when the marker
  is under the listed prefix; otherwise (a glob source) asked of the store.
* **Failures** (endpoint down, access denied, timeouts after the back-end's retries) raise
  :class:`~tallyclerk.listing.ListingError` with a message scrubbed of credentials; the
  watcher backs off and keeps watching (see :mod:`tallyclerk.watcher`).
"""

from __future__ import annotations

import re
from typing import Any

from tallyclerk import objstore
from tallyclerk.errors import ConfigError
from tallyclerk.listing import Entry, ListingError, is_data_name, register_listing

__all__ = ["SCHEMES", "ObjectListing", "is_object_source", "register"]

SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss")
"""The schemes listed here (object stores; ``https://`` cannot be listed)."""

_GLOB = re.compile(r"[*?\[]")


def is_object_source(source: str) -> bool:
    """Whether ``source`` is an object-store prefix or glob this module lists."""
    head, sep, _ = source.partition("://")
    return bool(sep) and head.lower() in SCHEMES


class ObjectListing:
    """The objects under an object-store prefix, or matching an object-store glob."""

    def __init__(self, source: str, settings: Any = None) -> None:
        if not is_object_source(source):
            raise ConfigError(f"cannot watch {source!r}: not an object-store prefix")
        objstore.check_url(source)
        if settings is None:
            from tallyclerk.settings import load_settings

            settings = load_settings()
        self.source = source
        self._scheme = source.partition("://")[0]
        self._fs, self._path = objstore._filesystem(source, settings)
        self._is_glob = bool(_GLOB.search(self._path))
        # the folder listed in full (a prefix source): markers there are answered from it
        self._folder = None if self._is_glob else f"{self._scheme}://{self._path.rstrip('/')}"
        self._names: set[str] = set()

    def _url(self, name: str) -> str:
        return f"{self._scheme}://{name}"

    def _list(self) -> list[dict[str, Any]]:
        fs = self._fs
        try:
            if self._is_glob:
                fs.invalidate_cache()
                found = fs.glob(self._path, detail=True)
                return list(found.values()) if isinstance(found, dict) else []
            fs.invalidate_cache(self._path)
            return list(fs.ls(self._path, detail=True))
        except FileNotFoundError:
            return []  # an empty prefix (S3 has no folders) or a bucket not created yet
        except Exception as exc:  # noqa: BLE001 - any back-end's network/auth error
            raise ListingError(f"listing {self.source} failed: {objstore._describe(exc)}",
                               source=self.source) from None

    def entries(self) -> list[Entry]:
        out: list[Entry] = []
        names: set[str] = set()
        for raw in self._list():
            name = str(raw.get("name") or "")
            if not name or raw.get("type") == "directory":
                continue
            url = self._url(name)
            names.add(url)
            if not is_data_name(name):
                continue
            info = objstore._info(url, raw)
            out.append(Entry(url, info.size, info.mtime, info.etag))
        self._names = names
        out.sort(key=lambda e: e.path)
        return out

    def exists(self, path: str) -> bool:
        if self._folder is not None and path.rpartition("/")[0] == self._folder:
            return path in self._names
        try:
            self._fs.invalidate_cache(path.partition("://")[2])
            return bool(self._fs.exists(path.partition("://")[2]))
        except Exception:  # noqa: BLE001 - not ready yet; the next listing reports an outage
            return False


def register() -> None:
    """Make the object-store schemes listable through :func:`tallyclerk.listing.open_listing`
    (with the settings of the environment and config file; the watcher passes its own)."""
    for scheme in SCHEMES:
        register_listing(scheme, ObjectListing)


register()
