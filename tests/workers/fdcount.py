"""A plugin for worker processes (``-p tests.workers.fdcount``): inside each file's transaction
(``tallyclerk_rows_written``), appends how many descriptors this process has open on the
database file named by ``TC_FDCOUNT_DB`` to the file named by ``TC_FDCOUNT_OUT``."""

from __future__ import annotations

import os
from typing import Any

from tallyclerk.hookspecs import hookimpl


@hookimpl
def tallyclerk_rows_written(context: Any, rows: int, seconds: float) -> None:
    db = os.path.realpath(os.environ["TC_FDCOUNT_DB"])
    n = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == db:
                n += 1
        except OSError:  # closed between listdir and readlink
            continue
    with open(os.environ["TC_FDCOUNT_OUT"], "a", encoding="utf-8") as out:
        out.write(f"{os.getpid()} {n}\n")
