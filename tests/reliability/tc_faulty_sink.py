"""Test plugin (``-p tc_faulty_sink``): the built-in SQLite sink, failing on chosen write calls.

Environment (read when the sink opens):

``TC_FAIL_AT``         the 1-based write call that fails first (required to fail at all)
``TC_FAIL_UNTIL``      the last call that fails (default: only ``TC_FAIL_AT``; ``always``:
                       every call from ``TC_FAIL_AT`` on)
``TC_FAIL_TRANSIENT``  ``1``: the failure is transient (retried), ``0``: permanent (default 1)
``TC_CALLS_FILE``      a file the plugin appends one line per write call to (for the tests)

With ``TC_FAIL_AT`` set, each file's end (``tallyclerk_file_finish``) takes 2 ms: the breaker
tests' 1 ms cool-down must pass between one file and the next, and since new files are
claimed ahead and the audit store runs on Core, a failed file (or one failed fast) can end
in less (issue 16.4).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from tallyclerk.builtins.sqlite_sink import SqliteSink
from tallyclerk.builtins.sqlite_sink import tallyclerk_open_sink as open_sqlite
from tallyclerk.errors import SinkError
from tallyclerk.hookspecs import hookimpl


class FaultyWrite:
    def __init__(self, inner: Any, sink: FaultySink) -> None:
        self._inner = inner
        self._sink = sink
        self.executor = inner.executor

    def write(self, batch: Any) -> int:
        self._sink.calls += 1
        n = self._sink.calls
        calls_file = os.environ.get("TC_CALLS_FILE")
        if calls_file:
            with open(calls_file, "a", encoding="utf-8") as f:
                f.write(f"{n}\n")
        if self._sink.fails(n):
            raise SinkError(f"injected sink failure on write call {n}",
                            transient=self._sink.transient)
        return int(self._inner.write(batch))

    def commit(self) -> None:
        self._inner.commit()

    def rollback(self) -> None:
        self._inner.rollback()


class FaultySink:
    def __init__(self, inner: SqliteSink) -> None:
        self._inner = inner
        self.url = inner.url
        self.calls = 0
        at = os.environ.get("TC_FAIL_AT")
        self.first = int(at) if at else None
        until = os.environ.get("TC_FAIL_UNTIL")
        self.last: int | None
        if until == "always":
            self.last = None
        else:
            self.last = int(until) if until else self.first
        self.transient = os.environ.get("TC_FAIL_TRANSIENT", "1") == "1"

    def fails(self, n: int) -> bool:
        if self.first is None or n < self.first:
            return False
        return self.last is None or n <= self.last

    def prepare(self, table: str, schema: Any) -> None:
        self._inner.prepare(table, schema)

    def begin_file(self, claim: Any) -> FaultyWrite:
        return FaultyWrite(self._inner.begin_file(claim), self)

    def close(self) -> None:
        self._inner.close()


@hookimpl(tryfirst=True)
def tallyclerk_open_sink(url: str, options: Mapping[str, Any]) -> FaultySink | None:
    inner = open_sqlite(url=url, options=options)
    return None if inner is None else FaultySink(inner)


@hookimpl
def tallyclerk_file_finish(status: str) -> None:
    if os.environ.get("TC_FAIL_AT"):
        time.sleep(0.002)
