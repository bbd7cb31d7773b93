"""Pipeline behaviour through real loads: retries, the circuit breaker, write failures,
accounting, JSONL streaming. Faults come from a wrapping sink plugin."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pluggy
import pytest

from tallyclerk import RecordBatch
from tallyclerk.builtins.sqlite_sink import SqliteSink, sqlite_path
from tallyclerk.errors import SinkError
from tallyclerk.hookspecs import hookimpl
from tests.loader.conftest import load, query, registered, write_csv


class FlakySink:
    """Wraps the real SQLite sink; fails ``begin_file`` or ``write`` as told."""

    def __init__(self, url: str, *, fail_begin: int = 0, fail_write_on: int = 0,
                 transient: bool = True, write_failures: int = 10**9) -> None:
        path = sqlite_path(url)
        assert path is not None
        self.inner = SqliteSink(path)
        self.url = self.inner.url
        self.fail_begin = fail_begin  # fail this many begin_file calls (-1: always)
        self.fail_write_on = fail_write_on  # fail the Nth write call of each file
        self.transient = transient
        self.write_failures = write_failures  # stop failing writes after this many
        self.begins = 0

    def prepare(self, table: str, schema: Any) -> None:
        self.inner.prepare(table, schema)

    def begin_file(self, claim: Any) -> Any:
        self.begins += 1
        if self.fail_begin == -1 or self.begins <= self.fail_begin:
            raise SinkError("database is locked (injected)", transient=self.transient)
        inner = self.inner.begin_file(claim)
        outer = self

        class Write:
            executor = inner.executor
            writes = 0

            def write(self, batch: RecordBatch) -> int:
                self.writes += 1
                if (outer.fail_write_on and self.writes == outer.fail_write_on
                        and outer.write_failures > 0):
                    outer.write_failures -= 1
                    raise SinkError("disk I/O error (injected)", transient=outer.transient)
                return inner.write(batch)

            def commit(self) -> None:
                inner.commit()

            def rollback(self) -> None:
                inner.rollback()

        return Write()

    def close(self) -> None:
        self.inner.close()


def sink_plugin(**kw: Any) -> tuple[Any, list[FlakySink]]:
    made: list[FlakySink] = []

    class Plugin:
        @hookimpl(tryfirst=True)
        def tallyclerk_open_sink(self, url: str, options: Mapping[str, Any]) -> Any:
            made.append(FlakySink(url, **kw))
            return made[-1]

    return Plugin(), made


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLYCLERK_BACKOFF_INITIAL_MS", "1")
    monkeypatch.setenv("TALLYCLERK_BACKOFF_MAX_MS", "2")
    monkeypatch.setenv("TALLYCLERK_MAX_RETRIES", "3")
    monkeypatch.setenv("TALLYCLERK_BREAKER_THRESHOLD", "3")
    monkeypatch.setenv("TALLYCLERK_BREAKER_COOLDOWN_S", "3600")


def test_transient_failure_is_retried_and_loads_once(
    pm: pluggy.PluginManager, good_csv: Path, db: Path
) -> None:
    plugin, made = sink_plugin(fail_begin=2)
    with registered(pm, plugin):
        report = load(pm, [good_csv], db)
    assert report["files"][0]["status"] == "loaded"
    assert made[0].begins == 3
    assert query(db, 'SELECT count(*) FROM "t"') == [(10,)]


def test_permanent_failure_is_not_retried(
    pm: pluggy.PluginManager, good_csv: Path, db: Path
) -> None:
    plugin, made = sink_plugin(fail_begin=1, transient=False)
    with registered(pm, plugin):
        report = load(pm, [good_csv], db)
    f = report["files"][0]
    assert f["status"] == "failed" and "locked" in f["error"]
    assert made[0].begins == 1


def test_breaker_opens_and_fails_later_files_fast(
    pm: pluggy.PluginManager, tmp_path: Path, db: Path
) -> None:
    files = [write_csv(tmp_path / f"f{i}.csv", [(i, "x", 1)]) for i in range(4)]
    plugin, made = sink_plugin(fail_begin=-1)
    with registered(pm, plugin):
        report = load(pm, files, db)
    assert [f["status"] for f in report["files"]] == ["failed"] * 4
    assert made[0].begins == 3  # threshold 3: the breaker opened during the first file's retries
    assert all("circuit breaker open" in f["error"] for f in report["files"][1:])
    assert report["status"] == "failed"


def test_write_failure_mid_file_rolls_back_everything(
    pm: pluggy.PluginManager, tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALLYCLERK_BATCH_ROWS", "10")
    big = write_csv(tmp_path / "big.csv", [(i, "x", 1) for i in range(100)])
    ok = write_csv(tmp_path / "ok.csv", [(1, "y", 2)])
    plugin, _ = sink_plugin(fail_write_on=3, transient=False)
    with registered(pm, plugin):
        report = load(pm, [big, ok], db)
    f = report["files"][0]
    assert f["status"] == "failed" and "disk I/O error" in f["error"]
    assert f["rows_written"] == 0 and f["rows_rejected"] == 0
    assert f["rows_read"] == f["rows_rolled_back"] >= 20
    assert report["files"][1]["status"] == "loaded"  # one write: never reaches the 3rd
    assert query(db, 'SELECT id, name FROM "t"') == [(1, "y")]  # nothing of big.csv


def test_adaptive_batch_size_loads_everything(
    pm: pluggy.PluginManager, tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALLYCLERK_BATCH_ROWS", "0")
    big = write_csv(tmp_path / "big.csv", [(i, "x", 1) for i in range(30_000)])
    report = load(pm, [big], db)
    assert report["rows_written"] == 30_000
    assert query(db, 'SELECT count(DISTINCT id) FROM "t"') == [(30_000,)]


def test_jsonl_without_schema_takes_the_union_of_keys(
    pm: pluggy.PluginManager, tmp_path: Path, db: Path
) -> None:
    f = tmp_path / "x.jsonl"
    f.write_text('{"b": 1, "a": "x"}\n{"c": [1, 2], "a": "y"}\n{"a": 123456789012345678901234}\n',
                 encoding="utf-8")
    report = load(pm, [f], db)
    assert report["rows_written"] == 3
    # inferred from the file: b an integer, a text (a number beyond 64 bits among strings is
    # kept as its digits), c an array (stored as JSON text)
    assert query(db, 'SELECT b, a, c FROM "t" ORDER BY rowid') == [
        (1, "x", None), (None, "y", "[1,2]"), (None, "123456789012345678901234", None)
    ]


def test_transient_write_failure_retries_the_whole_file(
    pm: pluggy.PluginManager, tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer thread's failure reaches the reader intact (still transient): the file is
    rolled back and loaded again from its first byte, exactly once."""
    monkeypatch.setenv("TALLYCLERK_BATCH_ROWS", "10")
    big = write_csv(tmp_path / "big.csv", [(i, "x", 1) for i in range(100)])
    plugin, made = sink_plugin(fail_write_on=3, transient=True, write_failures=1)
    with registered(pm, plugin):
        report = load(pm, [big], db)
    assert report["files"][0]["status"] == "loaded", report
    assert made[0].begins == 2
    assert query(db, 'SELECT count(*), count(DISTINCT id) FROM "t"') == [(100, 100)]
