"""Which paths are object-store or HTTP URLs (``s3://``, ``gs://``, ``az://``, ``https://``).

Kept apart from :mod:`tallyclerk.objstore` (fsspec, spools, retries) so that a load of local
files tells its paths apart without importing the object-store machinery (issue 16.1);
:mod:`tallyclerk.objstore` re-exports both names.
"""

from __future__ import annotations

from tallyclerk.errors import TallyclerkError

__all__ = ["EXTRAS", "FetchStopped", "is_remote"]

EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure",
          "abfss": "azure", "http": "http", "https": "http"}
"""URL scheme -> the extra that installs its back-end."""


class FetchStopped(TallyclerkError):
    """The load was asked to stop (signal, batch timeout) while an object was being copied."""


def is_remote(path: str) -> bool:
    """Whether ``path`` is an object-store or HTTP URL :mod:`tallyclerk.objstore` reads."""
    head, sep, _ = path.partition("://")
    return bool(sep) and head.lower() in EXTRAS
