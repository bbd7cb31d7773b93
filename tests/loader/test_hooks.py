"""One test per hook (test_hook_<hook name>), each through a real load into a real SQLite file.

Each test registers a temporary plugin on a fresh plugin manager and unregisters it in
``finally`` (the ``registered`` helper).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pluggy
import pytest

from tallyclerk import RecordBatch
from tallyclerk.cli import build_parser
from tallyclerk.errors import SchemaError
from tallyclerk.hookspecs import hookimpl
from tests.loader.conftest import count_rows, load, query, registered, write_csv


class Recorder:
    """Records every event hook it receives."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def of(self, name: str) -> list[dict[str, Any]]:
        return [kw for n, kw in self.calls if n == name]

    @hookimpl
    def tallyclerk_configure(self, config: Any) -> None:
        self.calls.append(("configure", {"config": config}))

    @hookimpl
    def tallyclerk_unconfigure(self, config: Any) -> None:
        self.calls.append(("unconfigure", {"config": config}))

    @hookimpl
    def tallyclerk_batch_start(self, batch_id: str, table: str, paths: Sequence[str]) -> None:
        self.calls.append(("batch_start", {"batch_id": batch_id, "table": table, "paths": paths}))

    @hookimpl
    def tallyclerk_batch_finish(self, batch_id: str, report: Mapping[str, Any]) -> None:
        self.calls.append(("batch_finish", {"batch_id": batch_id, "report": report}))

    @hookimpl
    def tallyclerk_file_start(self, context: Any) -> None:
        self.calls.append(("file_start", {"context": context}))

    @hookimpl
    def tallyclerk_file_finish(self, context: Any, status: str, result: Any) -> None:
        self.calls.append(("file_finish", {"context": context, "path": context.path,
                                           "status": status, "result": result}))

    @hookimpl
    def tallyclerk_file_skipped(self, context: Any, skip: Any) -> None:
        self.calls.append(("file_skipped", {"context": context, "path": context.path,
                                            "skip": skip}))

    @hookimpl
    def tallyclerk_timeout(self, batch_id: str, kind: str, context: Any) -> None:
        self.calls.append(("timeout", {"batch_id": batch_id, "kind": kind, "context": context}))

    @hookimpl
    def tallyclerk_rows_rejected(self, context: Any, rejects: Sequence[Any]) -> None:
        self.calls.append(("rows_rejected", {"context": context, "file": context.path,
                                             "rejects": list(rejects)}))

    @hookimpl
    def tallyclerk_validate_batch(self, batch: Any, context: Any) -> None:
        self.calls.append(("validate_batch", {"context": context}))


# -- lifecycle -------------------------------------------------------------------------------


def test_hook_tallyclerk_addoption(pm: pluggy.PluginManager, good_csv: Path, db: Path) -> None:
    seen: dict[str, Any] = {}

    class Plugin:
        @hookimpl
        def tallyclerk_addoption(
            self, parser: argparse.ArgumentParser, pluginmanager: pluggy.PluginManager
        ) -> None:
            parser.add_argument("--demo-shout", action="store_true")

        @hookimpl
        def tallyclerk_open_source(self, path: str, options: Mapping[str, Any]) -> None:
            seen["shout"] = options.get("demo_shout")

    with registered(pm, Plugin()):
        args = build_parser(pm).parse_args(
            ["load", str(good_csv), "--table", "t", "--into", f"sqlite:///{db}", "--demo-shout"]
        )
        assert args.demo_shout is True
        from tallyclerk.api import run
        from tallyclerk.cli.load import request_from_args

        run(request_from_args(args), pm)
    assert seen == {"shout": True}


def test_hook_tallyclerk_configure(pm: pluggy.PluginManager, good_csv: Path, db: Path) -> None:
    rec = Recorder()
    with registered(pm, rec):
        load(pm, [good_csv], db)
    config = rec.of("configure")[0]["config"]
    assert config.command == "load"
    assert config.pluginmanager is pm
    assert config.settings is not None
    assert rec.names().index("configure") < rec.names().index("batch_start")


def test_hook_tallyclerk_unconfigure(pm: pluggy.PluginManager, db: Path, tmp_path: Path) -> None:
    rec = Recorder()
    with registered(pm, rec), pytest.raises(SchemaError, match="schema"):
        load(pm, [tmp_path / "x.csv"], db, schema=str(tmp_path / "missing-schema.json"))
    # a configuration error before configure: nothing to undo
    assert "unconfigure" not in rec.names()
    with registered(pm, rec):
        load(pm, [tmp_path / "missing.csv"], db)
    assert rec.names()[-1] == "unconfigure"
    assert rec.of("unconfigure")[0]["config"] is rec.of("configure")[0]["config"]


# -- sources and sinks -----------------------------------------------------------------------


class KeyValueSource:
    """A toy format: one record per line, ``key=value;key=value``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.batch_rows = 2
        self._lines = Path(path).read_text(encoding="utf-8").splitlines()
        self.closed = False

    @property
    def columns(self) -> list[str]:
        return ["k", "v"]

    @property
    def bytes_read(self) -> int:
        return sum(len(line) + 1 for line in self._lines)

    def __iter__(self) -> Iterator[RecordBatch]:
        rows = [tuple(p.split("=", 1)[1] for p in line.split(";")) for line in self._lines]
        for start in range(0, len(rows), self.batch_rows):
            chunk = rows[start : start + self.batch_rows]
            numbers = list(range(start + 1, start + 1 + len(chunk)))
            yield RecordBatch.from_rows(["k", "v"], chunk, numbers, numbers)

    def close(self) -> None:
        self.closed = True


def test_hook_tallyclerk_open_source(pm: pluggy.PluginManager, tmp_path: Path, db: Path) -> None:
    f = tmp_path / "data.kv"
    f.write_text("k=a;v=1\nk=b;v=2\nk=c;v=3\n", encoding="utf-8")
    opened: list[KeyValueSource] = []

    class Plugin:
        @hookimpl
        def tallyclerk_open_source(self, path: str, options: Mapping[str, Any]) -> Any:
            if not path.endswith(".kv"):
                return None
            opened.append(KeyValueSource(path))
            return opened[-1]

    with registered(pm, Plugin()):
        report = load(pm, [f], db)
    assert report["files"][0]["status"] == "loaded"
    assert report["rows_written"] == 3
    assert query(db, 'SELECT k, v FROM "t" ORDER BY k') == [("a", "1"), ("b", "2"), ("c", "3")]
    assert opened[0].closed
    # without the plugin nothing claims .kv files: the file fails, the others would load
    report = load(pm, [f], db, force=True)
    assert report["files"][0]["status"] == "failed"
    assert "no loader" in report["files"][0]["error"]


class ListSink:
    """A sink that keeps rows in memory (no SQL: executor is None)."""

    url = "memory://list"

    def __init__(self) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.committed: list[dict[str, Any]] = []
        self.closed = False
        self.table = ""

    def prepare(self, table: str, schema: Any) -> None:
        self.table = table

    def begin_file(self, claim: Any) -> Any:
        sink = self

        class Write:
            executor = None

            def __init__(self) -> None:
                self.rows: list[dict[str, Any]] = []

            def write(self, batch: RecordBatch) -> int:
                valid = [r for i, r in enumerate(batch.to_pylist()) if not batch.is_rejected(i)]
                self.rows.extend(valid)
                return len(valid)

            def commit(self) -> None:
                sink.committed.extend(self.rows)

            def rollback(self) -> None:
                self.rows.clear()

        return Write()

    def close(self) -> None:
        self.closed = True


def test_hook_tallyclerk_open_sink(
    pm: pluggy.PluginManager, bad_csv: Path, schema_file: Path, tmp_path: Path
) -> None:
    sink = ListSink()

    class Plugin:
        @hookimpl
        def tallyclerk_open_sink(self, url: str, options: Mapping[str, Any]) -> Any:
            return sink if url.startswith("memory://") else None

    audit_db = tmp_path / "audit.db"
    with registered(pm, Plugin()):
        report = load(pm, [bad_csv], audit_db, into="memory://x", audit=f"sqlite:///{audit_db}",
                      schema=str(schema_file))
    assert report["files"][0]["status"] == "loaded"
    assert (report["rows_read"], report["rows_written"], report["rows_rejected"]) == (10, 8, 2)
    assert len(sink.committed) == 8 and sink.closed
    assert {r["id"] for r in sink.committed} == {1, 2, 4, 5, 6, 8, 9, 10}
    # the audit store (another database) recorded the file and its rejects
    assert query(audit_db, "SELECT count(*) FROM tallyclerk_rejects") == [(2,)]


# -- record hooks ----------------------------------------------------------------------------


def test_hook_tallyclerk_validate_batch(
    pm: pluggy.PluginManager, good_csv: Path, schema_file: Path, db: Path
) -> None:
    class NoOddIds:
        @hookimpl
        def tallyclerk_validate_batch(self, batch: RecordBatch, context: Any) -> None:
            assert context.path == str(good_csv) and context.table == "t"
            for i, value in enumerate(batch.column("id")):
                if value % 2:  # typed already: the Table Schema validator ran first
                    batch.reject(i, "id", "even", f"id {value} is odd")

    with registered(pm, NoOddIds()):
        report = load(pm, [good_csv], db, schema=str(schema_file))
    assert (report["rows_written"], report["rows_rejected"]) == (5, 5)
    assert query(db, 'SELECT id FROM "t" ORDER BY id') == [(2,), (4,), (6,), (8,), (10,)]
    rows = query(db, "SELECT rule, reason FROM tallyclerk_rejects ORDER BY id")
    assert rows[0] == ("even", "id 1 is odd")


def test_hook_tallyclerk_transform_batch(
    pm: pluggy.PluginManager, good_csv: Path, schema_file: Path, db: Path
) -> None:
    class Upper:
        @hookimpl
        def tallyclerk_transform_batch(self, batch: RecordBatch, context: Any) -> None:
            names = batch.column("name")
            batch.set_column("name", [None if v is None else v.upper() for v in names])

    with registered(pm, Upper()):
        load(pm, [good_csv], db, schema=str(schema_file))
    assert query(db, 'SELECT name FROM "t" WHERE id = 3') == [("N3",)]


# -- events ----------------------------------------------------------------------------------


def test_hook_tallyclerk_batch_start(pm: pluggy.PluginManager, good_csv: Path, db: Path) -> None:
    rec = Recorder()
    with registered(pm, rec):
        report = load(pm, [good_csv], db, table="orders")
    (call,) = rec.of("batch_start")
    assert call == {"batch_id": report["batch_id"], "table": "orders", "paths": [str(good_csv)]}


def test_hook_tallyclerk_batch_finish(pm: pluggy.PluginManager, good_csv: Path, db: Path) -> None:
    rec = Recorder()
    with registered(pm, rec):
        report = load(pm, [good_csv], db)
    (call,) = rec.of("batch_finish")
    assert call["batch_id"] == report["batch_id"]
    assert call["report"]["status"] == "succeeded" == report["status"]


def test_hook_tallyclerk_file_start(pm: pluggy.PluginManager, good_csv: Path, db: Path) -> None:
    rec = Recorder()
    with registered(pm, rec):
        load(pm, [good_csv], db)
    (call,) = rec.of("file_start")
    ctx = call["context"]
    assert ctx.path == str(good_csv) and ctx.table == "t" and ctx.attempt == 1
    assert ctx.file_id > 0 and ctx.options["batch_rows"] > 0


def test_every_file_level_hook_gets_the_same_context(
    pm: pluggy.PluginManager, bad_csv: Path, schema_file: Path, db: Path
) -> None:
    rec = Recorder()
    with registered(pm, rec):
        load(pm, [bad_csv], db, schema=str(schema_file))
    contexts = [kw["context"] for name, kw in rec.calls if "context" in kw]
    names = [name for name, kw in rec.calls if "context" in kw]
    assert {"file_start", "validate_batch", "rows_rejected", "file_finish"} <= set(names)
    assert all(c is contexts[0] for c in contexts), names
    assert contexts[0].schema is not None  # the schema travels in the context only


def test_hook_tallyclerk_file_finish(
    pm: pluggy.PluginManager, good_csv: Path, tmp_path: Path, db: Path
) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text('id,name\n1,"never closed\n', encoding="utf-8")
    rec = Recorder()
    with registered(pm, rec):
        load(pm, [good_csv, broken], db)
    finished = {c["path"]: c for c in rec.of("file_finish")}
    assert finished[str(good_csv)]["status"] == "loaded"
    assert finished[str(good_csv)]["result"].rows_written == 10
    failed = finished[str(broken)]
    assert failed["status"] == "failed" and failed["result"].error
    r = failed["result"]
    assert r.rows_read == r.rows_written + r.rows_rejected + r.rows_rolled_back
    assert r.rows_written == 0


def test_hook_tallyclerk_file_skipped(pm: pluggy.PluginManager, good_csv: Path, db: Path) -> None:
    first = load(pm, [good_csv], db)
    rec = Recorder()
    with registered(pm, rec):
        second = load(pm, [good_csv], db)
    (call,) = rec.of("file_skipped")
    assert call["path"] == str(good_csv)
    assert call["skip"].earlier_batch_id == first["batch_id"]
    assert second["files"][0]["status"] == "skipped"
    assert query(db, 'SELECT count(*) FROM "t"') == [(10,)]


def test_hook_tallyclerk_timeout(
    pm: pluggy.PluginManager, tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    big = write_csv(tmp_path / "big.csv", [(i, "x", 1) for i in range(2000)])
    monkeypatch.setenv("TALLYCLERK_OPERATION_TIMEOUT_S", "0.5")
    monkeypatch.setenv("TALLYCLERK_WATCHDOG_INTERVAL_S", "0.05")
    monkeypatch.setenv("TALLYCLERK_BATCH_ROWS", "10")

    class Slow:
        @hookimpl
        def tallyclerk_validate_batch(self, batch: RecordBatch, context: Any) -> None:
            time.sleep(0.02)  # simulates slow work; the watchdog ends the batch

    rec = Recorder()
    with registered(pm, rec), registered(pm, Slow()):
        report = load(pm, [big], db)
    (call,) = rec.of("timeout")
    assert (call["batch_id"], call["kind"]) == (report["batch_id"], "operation")
    assert call["context"].path == str(big)
    assert report["status"] == "timed_out"
    f = report["files"][0]
    assert f["status"] == "failed" and "timed out" in f["error"]
    # the watchdog may release the file before the pipeline records it (counts then stay 0)
    assert f["rows_written"] == 0 and f["rows_rejected"] == 0
    assert f["rows_read"] == f["rows_rolled_back"]
    assert count_rows(db, "t") == 0


def test_timeout_between_files_fires_the_hook_once(
    pm: pluggy.PluginManager, tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A timeout that ends the batch after one file and before the next still fires
    ``tallyclerk_timeout`` (once, without a file context)."""
    import time

    first = write_csv(tmp_path / "first.csv", [(1, "x", 1)])
    second = write_csv(tmp_path / "second.csv", [(2, "y", 1)])
    monkeypatch.setenv("TALLYCLERK_OPERATION_TIMEOUT_S", "0.3")
    monkeypatch.setenv("TALLYCLERK_WATCHDOG_INTERVAL_S", "0.05")

    class SlowFinish:
        @hookimpl
        def tallyclerk_file_finish(self, context: Any, status: str, result: Any) -> None:
            time.sleep(1.0)  # after the file committed: the watchdog fires in between

    rec = Recorder()
    with registered(pm, rec), registered(pm, SlowFinish()):
        report = load(pm, [first, second], db)
    assert report["status"] == "timed_out"
    assert [f["status"] for f in report["files"]] == ["loaded", "failed"]
    (call,) = rec.of("timeout")
    assert (call["batch_id"], call["kind"], call["context"]) == (
        report["batch_id"], "operation", None)


def test_hook_tallyclerk_rows_rejected(
    pm: pluggy.PluginManager, bad_csv: Path, schema_file: Path, db: Path
) -> None:
    rec = Recorder()
    with registered(pm, rec):
        load(pm, [bad_csv], db, schema=str(schema_file))
    rejects = [r for call in rec.of("rows_rejected") for r in call["rejects"]]
    assert {c["file"] for c in rec.of("rows_rejected")} == {str(bad_csv)}
    assert [(r.record_number, r.line, r.column) for r in rejects] == [
        (3, 4, "amount"), (7, 8, "amount")
    ]
    assert all(r.reason and r.rule for r in rejects)


# -- formats ---------------------------------------------------------------------------------


def test_hook_tallyclerk_formats(pm: pluggy.PluginManager, good_csv: Path, db: Path) -> None:
    """``--format`` is checked against the declared formats before anything starts: a loader
    that claims a format it does not declare is refused (exit 2), without being probed."""
    from tallyclerk.errors import ConfigError
    from tallyclerk.plugins import declared_formats

    opened: list[str] = []

    class Csv2:
        @hookimpl
        def tallyclerk_open_source(self, path: str, options: Mapping[str, Any]) -> Any:
            opened.append(path)
            if options.get("format") != "csv2":
                return None
            from tallyclerk.builtins.csv_loader import CsvSource

            return CsvSource(path, delimiter=",", batch_rows=100)

    class Declares:
        @hookimpl
        def tallyclerk_formats(self) -> dict[str, tuple[str, ...]]:
            return {"CSV2": (".csv2",)}

    assert declared_formats(pm)["csv"] == (".csv",)
    assert {"csv", "tsv", "jsonl", "ndjson"} <= set(declared_formats(pm))
    with registered(pm, Csv2()):
        with pytest.raises(ConfigError, match="no loader for --format 'csv2'.*csv"):
            load(pm, [good_csv], db, options={"format": "csv2"})
        assert opened == []  # refused without probing any loader with a made-up path
        with registered(pm, Declares()):
            report = load(pm, [good_csv], db, options={"format": "csv2"})
    assert report["rows_written"] == 10
