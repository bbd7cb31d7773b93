"""The conformance suite on a sink that declares no write modes: ``--mode merge`` and
``replace`` must be refused (ConfigError), never served as appends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tallyclerk.builtins import sqlite_sink
from tallyclerk.hookspecs import hookimpl
from tallyclerk.testing import SinkConformance


class _AppendOnlySink:
    """The built-in SQLite sink without ``write_modes``, ``swap_table`` or ``drop_table``."""

    def __init__(self, inner: sqlite_sink.SqliteSink) -> None:
        self._inner = inner
        self.url = inner.url

    def prepare(self, table: str, schema: Any) -> None:
        self._inner.prepare(table, schema)

    def begin_file(self, claim: Any) -> Any:
        return self._inner.begin_file(claim)

    def close(self) -> None:
        self._inner.close()


class AppendOnlyPlugin:
    @hookimpl
    def tallyclerk_open_sink(self, url: str, options: Mapping[str, Any]) -> Any:
        if not url.startswith("sqlite:///") or "?" in url:
            return None
        plain = {k: v for k, v in options.items() if k not in ("mode", "primary_key")}
        inner = sqlite_sink.tallyclerk_open_sink(url=url, options=plain)
        return None if inner is None else _AppendOnlySink(inner)


class TestAppendOnlySink(SinkConformance):
    plugin = AppendOnlyPlugin()
    foreign_urls = ("nosuchscheme://host/db", "postgresql://u:p@h/db")
