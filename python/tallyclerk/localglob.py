"""Local glob patterns in a load's paths (``'orders/*.csv'`` quoted on the command line, or
given to :func:`tallyclerk.load` from Python, where no shell expands it).

A path that names an existing file is taken as it is, even when it holds ``*``, ``?`` or
``[``; otherwise a pattern is replaced by the files it matches, sorted (``**`` recurses;
hidden files and folders are left out, as the shell does). A pattern that matches nothing stays
as given, so its load fails "no such file" like any missing path. Object-store URLs are
expanded by :func:`tallyclerk.objstore.expand`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from tallyclerk.remote import is_remote

__all__ = ["expand_local"]


def expand_local(paths: Sequence[str]) -> list[str]:
    """``paths`` with each local glob pattern replaced by its matching files (see module)."""
    out: list[str] = []
    for path in paths:
        if (is_remote(path) or not any(c in path for c in "*?[")
                or os.path.lexists(path)):
            out.append(path)
            continue
        import glob  # only for a pattern: not on every start (issue 16.1)

        found = sorted(p for p in glob.glob(path, recursive=True) if not os.path.isdir(p))
        out.extend(found or [path])
    return out
