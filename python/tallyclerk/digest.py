"""SHA-256 without loading OpenSSL: CPython's own implementation when it is there.

``hashlib.sha256`` loads ``_hashlib`` (OpenSSL's libcrypto: ~2.5 ms of CPU at every start,
issue 16.1) for a digest CPython also implements itself (``_sha2`` since 3.12, ``_sha256``
before); the digests are the same bytes. Without either module, :data:`sha256` is
``hashlib.sha256``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, cast

__all__ = ["sha256"]


def _sha256() -> Callable[..., Any]:
    for name in ("_sha2", "_sha256"):
        try:
            return cast(Callable[..., Any], importlib.import_module(name).sha256)
        except (ImportError, AttributeError):
            continue
    from hashlib import sha256  # pragma: no cover - a CPython built without them

    return sha256  # pragma: no cover


sha256: Callable[..., Any] = _sha256()
"""``sha256(data=b"")``: an object with ``update``, ``digest`` and ``hexdigest``."""
