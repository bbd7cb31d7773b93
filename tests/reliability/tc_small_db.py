"""Test plugin (``-p tc_small_db``): the built-in SQLite sink on a database limited to
``TC_MAX_PAGES`` pages (``PRAGMA max_page_count``): a full disk, deterministically."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from tallyclerk.builtins.sqlite_sink import SqliteSink
from tallyclerk.builtins.sqlite_sink import tallyclerk_open_sink as open_sqlite
from tallyclerk.hookspecs import hookimpl


@hookimpl(tryfirst=True)
def tallyclerk_open_sink(url: str, options: Mapping[str, Any]) -> SqliteSink | None:
    sink = open_sqlite(url=url, options=options)
    if sink is not None:
        pages = int(os.environ["TC_MAX_PAGES"])
        sink._writer.query(f"PRAGMA max_page_count = {pages}")
    return sink
