"""The observation hooks (test_hook_<hook name>): rows written and pipeline stats.

Each test registers a temporary plugin on a fresh plugin manager, runs a real load into a real
SQLite file in-process (the CLI's code path) and unregisters the plugin in ``finally``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pluggy

from tallyclerk.errors import SinkError
from tallyclerk.hookspecs import hookimpl
from tests.loader.conftest import count_rows, load, registered, write_csv


def test_hook_tallyclerk_rows_written(pm: pluggy.PluginManager, good_csv: Path, db: Path) -> None:
    calls: list[tuple[Any, int, float, str]] = []

    class Plugin:
        @hookimpl
        def tallyclerk_rows_written(self, context: Any, rows: int, seconds: float) -> None:
            calls.append((context, rows, seconds, threading.current_thread().name))

    with registered(pm, Plugin()):
        report = load(pm, [good_csv], db, overrides={"batch_rows": 3})
    assert report["files"][0]["status"] == "loaded"
    # 10 records in batches of 3: four writes adding up to the rows written
    assert [rows for _c, rows, _s, _t in calls] == [3, 3, 3, 1]
    assert sum(rows for _c, rows, _s, _t in calls) == report["rows_written"] == count_rows(db, "t")
    assert all(seconds >= 0 for _c, _r, seconds, _t in calls)
    contexts = {(c.batch_id, c.file_id, c.path, c.table) for c, _r, _s, _t in calls}
    assert len(contexts) == 1
    batch_id, _file_id, path, table = contexts.pop()
    assert (batch_id, path, table) == (report["batch_id"], str(good_csv), "t")
    # called from the writer thread, not the reader
    assert {t for *_x, t in calls} != {threading.current_thread().name}


def test_hook_tallyclerk_rows_written_counts_only_valid_rows(
    pm: pluggy.PluginManager, bad_csv: Path, db: Path, schema_file: Path
) -> None:
    written: list[int] = []

    class Plugin:
        @hookimpl
        def tallyclerk_rows_written(self, rows: int) -> None:
            written.append(rows)

    with registered(pm, Plugin()):
        report = load(pm, [bad_csv], db, schema=str(schema_file))
    assert report["rows_rejected"] == 2
    assert sum(written) == report["rows_written"] == 8


class FlakySink:
    """Wraps the real SQLite sink; the first ``begin_file`` fails with a transient error."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.url = inner.url
        self.failures_left = 1

    def prepare(self, table: str, schema: Any) -> None:
        self.inner.prepare(table, schema)

    def begin_file(self, claim: Any) -> Any:
        if self.failures_left:
            self.failures_left -= 1
            raise SinkError("database is locked (test)", transient=True)
        return self.inner.begin_file(claim)

    def close(self) -> None:
        self.inner.close()


def test_hook_tallyclerk_pipeline_stats(
    pm: pluggy.PluginManager, tmp_path: Path, db: Path
) -> None:
    samples: list[tuple[str, dict[str, Any]]] = []
    files = [
        write_csv(tmp_path / f"f{n}.csv", [(i, f"n{n}-{i}", i) for i in range(1, 8)])
        for n in range(2)
    ]

    class Plugin:
        @hookimpl
        def tallyclerk_pipeline_stats(self, batch_id: str, stats: Mapping[str, Any]) -> None:
            samples.append((batch_id, dict(stats)))

        @hookimpl(tryfirst=True)
        def tallyclerk_open_sink(self, url: str, options: Mapping[str, Any]) -> Any:
            from tallyclerk.builtins.sqlite_sink import tallyclerk_open_sink

            return FlakySink(tallyclerk_open_sink(url=url, options=options))

    with registered(pm, Plugin()):
        report = load(pm, files, db, overrides={"batch_rows": 2, "backoff_initial_ms": 1.0,
                                                "backoff_max_ms": 2.0})
    assert [f["status"] for f in report["files"]] == ["loaded", "loaded"]
    assert {b for b, _s in samples} == {report["batch_id"]}
    # one sample per record batch (4 per file), one per file, one as each attempt starts (the
    # two files and the flaky first attempt's retry) and the batch's final one
    assert len(samples) == 2 * 4 + 2 + (2 + 1) + 1
    keys = {
        "sink_queue_depth", "sink_queue_high_water", "sink_retries", "sink_dead_letters",
        "audit_queue_depth", "audit_queue_high_water", "audit_retries", "audit_dead_letters",
        "file_retries", "breaker_state", "breaker_opened",
    }
    assert all(keys <= set(s) for _b, s in samples)
    last = samples[-1][1]
    assert last["file_retries"] == 1  # the flaky first attempt
    assert last["breaker_state"] == "closed" and last["breaker_opened"] == 0
    assert last["sink_queue_high_water"] >= 1
    assert last["sink_dead_letters"] == 0 and last["audit_dead_letters"] == 0
    # counts are cumulative: they never go down from one sample to the next
    for key in ("file_retries", "sink_queue_high_water", "sink_retries", "breaker_opened"):
        values = [s[key] for _b, s in samples]
        assert values == sorted(values), key


def test_pipeline_stats_are_not_sampled_for_a_plugin_that_wants_none_now(
    pm: pluggy.PluginManager, tmp_path: Path, db: Path
) -> None:
    """``pipeline_stats_wanted()`` (as the built-in metrics plugin defines it): samples are
    built only while some implementation wants them (issue 16.4)."""
    samples: list[dict[str, Any]] = []
    wanted = {"now": False}
    files = [write_csv(tmp_path / f"g{n}.csv", [(i, f"n{n}-{i}", i) for i in range(1, 4)])
             for n in range(2)]

    class Plugin:
        @hookimpl
        def tallyclerk_pipeline_stats(self, batch_id: str, stats: Mapping[str, Any]) -> None:
            samples.append(dict(stats))

        def pipeline_stats_wanted(self) -> bool:
            return wanted["now"]

    with registered(pm, Plugin()):
        report = load(pm, files[:1], db)
        assert [f["status"] for f in report["files"]] == ["loaded"]
        assert samples == []
        wanted["now"] = True
        report = load(pm, files[1:], db)
    assert [f["status"] for f in report["files"]] == ["loaded"]
    assert samples and samples[-1]["metrics"].files_loaded == 1
