"""The sink conformance suite: what every ``tallyclerk_open_sink`` plugin must do.

::

    from tallyclerk.testing import SinkConformance
    import my_sink

    class TestMySink(SinkConformance):
        plugin = my_sink

        def make_url(self, directory):
            return "mydb:///" + str(directory / "target.mydb")

The checks: the hookimpl matches its spec; the sink claims its URLs and declines others; its
``url`` shows no password; it creates the table with every identifier quoted (odd table and
column names arrive intact), writes only the valid rows tagged with the file id, and nothing
survives a rollback; through the pipeline, a file's rows commit together with its manifest
row (a failing file leaves neither rows nor a ``loaded`` status), and a forced reload
replaces a file's rows instead of doubling them.

Write modes (``--mode``): for each mode the sink declares in ``write_modes``, ``merge``
updates rows by key (the later file wins, a repeated key within a file is a rejected row,
inserted and updated rows are counted) and ``replace`` swaps the table for the load's files,
all or nothing. A mode the sink does not declare must be refused (``ConfigError``), never
served as an append. The checks of an undeclared mode are skipped, saying so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pluggy
import pytest

from tallyclerk.hookspecs import hookimpl
from tallyclerk.testing.loader_suite import strict_plugin_manager
from tallyclerk.testing.runner import Runner, read_table, table_columns

__all__ = ["SinkConformance"]

ODD_TABLE = 'odd "table"; --'
ODD_SCHEMA: Mapping[str, Any] = {
    "fields": [
        {"name": "id", "type": "integer"},
        {"name": "select", "type": "string"},
        {"name": "two words", "type": "number"},
        {"name": 'quo"te', "type": "string"},
        {"name": "Ünïcödé", "type": "string"},
    ]
}
ODD_ROWS = [
    ("1", "a", "1.5", 'say "hi"', "é"),
    ("2", "b; DROP TABLE x", "2.5", "it's", "ü"),
    ("3", "c", "not a number", "x", "y"),  # rejected by the schema: never written
]


def _claim(table: str, file_id: int) -> Any:
    from tallyclerk.audit import FileClaim

    return FileClaim(file_id=file_id, batch_id="conformance", path="conformance.csv",
                     table=table, fingerprint="f" * 16, size=0, mtime=0.0, attempt=1,
                     token="conformance-token")


class _FailSecondBatch:
    """A transform that fails a file at its second record batch (after one was written)."""

    def __init__(self) -> None:
        self.seen = 0

    @hookimpl
    def tallyclerk_transform_batch(self, batch: Any, context: Any) -> None:
        self.seen += 1
        if self.seen == 2:
            from tallyclerk.errors import SinkError

            raise SinkError("conformance: failing the file after its first batch")


class SinkConformance:
    """Checks a sink plugin against the ``tallyclerk_open_sink`` contract.

    Set ``plugin``; override ``make_url(directory)`` (default: a SQLite file) and, for a
    database SQLAlchemy cannot read, ``read_rows(url, table)`` / ``read_columns(url, table)``.
    ``audit_url(url)`` is the audit store the pipeline checks use (default: the same
    database when it is SQLite or PostgreSQL, else a SQLite file beside it).
    """

    plugin: ClassVar[Any] = None
    tallyclerk_isolated: ClassVar[bool] = True
    foreign_urls: ClassVar[tuple[str, ...]] = ("nosuchscheme://host/db", "zz9:///x.db")

    def make_url(self, directory: Path) -> str:
        return "sqlite:///" + str(directory / "conformance-target.db")

    def read_rows(self, url: str, table: str) -> list[dict[str, Any]]:
        return read_table(url, table)

    def read_columns(self, url: str, table: str) -> list[str]:
        return table_columns(url, table)

    def audit_url(self, url: str, directory: Path) -> str | None:
        if url.startswith(("sqlite:", "postgresql", "postgres:")):
            return None
        return "sqlite:///" + str(directory / "conformance-audit.db")

    # -- helpers ----------------------------------------------------------------------------

    @pytest.fixture()
    def sink_pm(self) -> pluggy.PluginManager:
        assert self.plugin is not None, "set plugin = <your plugin module or object>"
        return strict_plugin_manager(self.plugin)

    @pytest.fixture()
    def url(self, tmp_path: Path) -> str:
        return self.make_url(tmp_path)

    def open(self, pm: pluggy.PluginManager, url: str) -> Any:
        from tallyclerk.settings import Settings

        return pm.hook.tallyclerk_open_sink(url=url, options={"settings": Settings()})

    def odd_batch(self) -> tuple[Any, Any]:
        from tallyclerk import RecordBatch, TableSchema

        schema = TableSchema.from_json(json.dumps(ODD_SCHEMA))
        names = [f["name"] for f in ODD_SCHEMA["fields"]]
        batch = RecordBatch.from_rows(names, ODD_ROWS, [1, 2, 3], [2, 3, 4])
        batch.validate(schema)
        return batch, schema

    # -- checks -------------------------------------------------------------------------------

    def test_hookimpls_match_the_specs(self) -> None:
        pm = strict_plugin_manager(self.plugin)
        hooks = {caller.name for caller in pm.get_hookcallers(self.plugin) or []}
        assert "tallyclerk_open_sink" in hooks

    def test_claims_its_urls_only(self, sink_pm: pluggy.PluginManager, url: str) -> None:
        sink = self.open(sink_pm, url)
        assert sink is not None, f"{url} was not claimed"
        sink.close()
        for foreign in self.foreign_urls:
            assert self.open(sink_pm, foreign) is None, f"claimed {foreign}"

    def test_url_shows_no_password(self, sink_pm: pluggy.PluginManager, url: str) -> None:
        from tallyclerk.redact import redact

        sink = self.open(sink_pm, url)
        try:
            assert sink.url == redact(sink.url), "the sink's url must have its password masked"
        finally:
            sink.close()

    def test_creates_the_table_with_quoted_identifiers(
        self, sink_pm: pluggy.PluginManager, url: str
    ) -> None:
        batch, schema = self.odd_batch()
        sink = self.open(sink_pm, url)
        try:
            sink.prepare(ODD_TABLE, schema)
            fw = sink.begin_file(_claim(ODD_TABLE, 41))
            written = fw.write(batch)
            fw.commit()
        finally:
            sink.close()
        assert written == 2, "write() returns the valid rows written (rejected rows are not)"
        names = [f["name"] for f in ODD_SCHEMA["fields"]]
        assert self.read_columns(url, ODD_TABLE) == [*names, "_tc_file_id"]
        rows = self.read_rows(url, ODD_TABLE)
        assert [(r["id"], r["select"], r['quo"te'], r["Ünïcödé"], r["_tc_file_id"])
                for r in rows] == [(1, "a", 'say "hi"', "é", 41),
                                   (2, "b; DROP TABLE x", "it's", "ü", 41)]
        assert [float(r["two words"]) for r in rows] == [1.5, 2.5]

    def test_rollback_leaves_nothing(self, sink_pm: pluggy.PluginManager, url: str) -> None:
        batch, schema = self.odd_batch()
        sink = self.open(sink_pm, url)
        try:
            sink.prepare(ODD_TABLE, schema)
            fw = sink.begin_file(_claim(ODD_TABLE, 42))
            fw.write(batch)
            fw.rollback()
        finally:
            sink.close()
        assert self.read_rows(url, ODD_TABLE) == []

    def test_executor_runs_in_the_file_transaction(
        self, sink_pm: pluggy.PluginManager, url: str
    ) -> None:
        """``FileWrite.executor`` (when there is one) runs SQL in the file's transaction:
        what it writes disappears with a rollback."""
        batch, schema = self.odd_batch()
        sink = self.open(sink_pm, url)
        try:
            sink.prepare(ODD_TABLE, schema)
            fw = sink.begin_file(_claim(ODD_TABLE, 43))
            if fw.executor is None:
                fw.rollback()
                pytest.skip("this sink runs no SQL: the audit manifest commits separately")
            assert fw.executor.dialect_name in ("sqlite", "postgresql", "duckdb")
            assert fw.executor.query("SELECT 1") == [(1,)]
            fw.write(batch)
            fw.rollback()
        finally:
            sink.close()
        assert self.read_rows(url, ODD_TABLE) == []

    def _files(self, directory: Path) -> list[Path]:
        directory.mkdir(exist_ok=True)
        paths = []
        for n in range(2):
            path = directory / f"part{n}.csv"
            lines = ["id,name"] + [f"{n * 10 + i},name {n}-{i}" for i in range(1, 6)]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            paths.append(path)
        return paths

    def test_rows_commit_with_the_manifest(
        self, tallyclerk_runner: Runner, url: str, tmp_path: Path
    ) -> None:
        first, second = self._files(tmp_path / "files")
        audit = self.audit_url(url, tmp_path)
        failer = _FailSecondBatch()
        failed = tallyclerk_runner.load([first], table="conformance", into=url, audit=audit,
                                        plugins=[self.plugin, failer],
                                        settings={"batch_rows": 2, "max_retries": 0})
        assert failed.file(first)["status"] == "failed"
        assert self.read_rows(url, "conformance") == [], "a failed file leaves no rows"
        ok = tallyclerk_runner.load([first, second], table="conformance", into=url, audit=audit,
                                    plugins=[self.plugin], settings={"batch_rows": 2})
        assert [f["status"] for f in ok.files] == ["loaded", "loaded"]
        ok.check_accounting()
        rows = self.read_rows(url, "conformance")
        assert len(rows) == ok.report["rows_written"] == 10
        assert len({r["_tc_file_id"] for r in rows}) == 2, "rows tagged with their file's id"

    def test_forced_reload_replaces_rows(
        self, tallyclerk_runner: Runner, url: str, tmp_path: Path
    ) -> None:
        first, _second = self._files(tmp_path / "files")
        audit = self.audit_url(url, tmp_path)
        tallyclerk_runner.load([first], table="conformance", into=url, audit=audit,
                               plugins=[self.plugin])
        before = {r["_tc_file_id"] for r in self.read_rows(url, "conformance")}
        again = tallyclerk_runner.load([first], table="conformance", into=url, audit=audit,
                                       plugins=[self.plugin], force=True)
        assert again.file(first)["status"] == "loaded"
        rows = self.read_rows(url, "conformance")
        assert len(rows) == 5, "a forced reload replaces the file's rows, never doubles them"
        after = {r["_tc_file_id"] for r in rows}
        assert len(before) == len(after) == 1 and before != after

    # -- write modes ----------------------------------------------------------------------------

    def _modes(self, url: str) -> tuple[str, ...]:
        from tallyclerk.modes import sink_modes
        from tallyclerk.testing.loader_suite import strict_plugin_manager as pm_for

        sink = self.open(pm_for(self.plugin), url)
        try:
            return tuple(sink_modes(sink))
        finally:
            sink.close()

    def _need(self, url: str, mode: str) -> None:
        if mode not in self._modes(url):
            pytest.skip(f"this sink does not declare --mode {mode} (write_modes)")

    def _snapshots(self, directory: Path) -> list[Path]:
        directory.mkdir(exist_ok=True)
        days = {
            "day1.csv": "id,name\n1,one\n2,two\n3,three\n",
            "day2.csv": "id,name\n2,TWO\n4,four\n4,four again\n",
            "broken.csv": "id,name\n9\n",
        }
        for name, text in days.items():
            (directory / name).write_text(text, encoding="utf-8")
        return [directory / name for name in days]

    _PLAIN: ClassVar[Mapping[str, Any]] = {
        "fields": [{"name": "id", "type": "integer"}, {"name": "name", "type": "string"}],
    }
    _KEYED: ClassVar[Mapping[str, Any]] = {
        "fields": [{"name": "id", "type": "integer"}, {"name": "name", "type": "string"}],
        "primaryKey": ["id"],
    }

    def _pairs(self, url: str) -> list[tuple[Any, Any]]:
        return sorted((int(r["id"]), r["name"]) for r in self.read_rows(url, "modes"))

    def test_an_undeclared_mode_is_refused(
        self, tallyclerk_runner: Runner, url: str, tmp_path: Path
    ) -> None:
        from tallyclerk.errors import ConfigError

        undeclared = [m for m in ("merge", "replace") if m not in self._modes(url)]
        if not undeclared:
            pytest.skip("this sink declares every write mode")
        day1 = self._snapshots(tmp_path / "files")[0]
        for mode in undeclared:
            with pytest.raises(ConfigError, match=mode):
                tallyclerk_runner.load([day1], table="modes", into=url, schema=self._KEYED,
                                       audit=self.audit_url(url, tmp_path),
                                       plugins=[self.plugin], options={"mode": mode})

    def test_merge_updates_by_key_and_the_later_file_wins(
        self, tallyclerk_runner: Runner, url: str, tmp_path: Path
    ) -> None:
        self._need(url, "merge")
        day1, day2, _broken = self._snapshots(tmp_path / "files")
        audit = self.audit_url(url, tmp_path)
        first = tallyclerk_runner.load([day1], table="modes", into=url, audit=audit,
                                       schema=self._KEYED, plugins=[self.plugin],
                                       options={"mode": "merge"})
        assert first.file(day1)["rows_inserted"] == 3
        second = tallyclerk_runner.load([day2], table="modes", into=url, audit=audit,
                                        schema=self._KEYED, plugins=[self.plugin],
                                        options={"mode": "merge", "primary_key": "id"})
        second.check_accounting()
        f = second.file(day2)
        assert (f["rows_read"], f["rows_written"], f["rows_rejected"]) == (3, 2, 1), (
            "a key repeated within a file is a rejected row (rule primary-key)")
        assert (f["rows_inserted"], f["rows_updated"]) == (1, 1)
        assert [r["rule"] for r in second.rejects()] == ["primary-key"]
        assert self._pairs(url) == [(1, "one"), (2, "TWO"), (3, "three"), (4, "four")]

    def test_replace_swaps_the_table_all_or_nothing(
        self, tallyclerk_runner: Runner, url: str, tmp_path: Path
    ) -> None:
        self._need(url, "replace")
        day1, day2, broken = self._snapshots(tmp_path / "files")
        audit = self.audit_url(url, tmp_path)
        tallyclerk_runner.load([day1], table="modes", into=url, audit=audit,
                               schema=self._PLAIN, plugins=[self.plugin])
        failed = tallyclerk_runner.load([day2, broken], table="modes", into=url, audit=audit,
                                        schema=self._PLAIN, plugins=[self.plugin],
                                        on_error="skip-file", options={"mode": "replace"})
        assert [f["status"] for f in failed.files] == ["failed", "failed"]
        assert self._pairs(url) == [(1, "one"), (2, "two"), (3, "three")], (
            "a replace with a failed file leaves the table as it was")
        done = tallyclerk_runner.load([day2], table="modes", into=url, audit=audit,
                                      schema=self._PLAIN, plugins=[self.plugin],
                                      options={"mode": "replace"})
        assert done.file(day2)["status"] == "loaded"
        assert self._pairs(url) == [(2, "TWO"), (4, "four"), (4, "four again")]

    def test_a_key_already_in_the_table_is_a_rejected_row(
        self, tallyclerk_runner: Runner, url: str, tmp_path: Path
    ) -> None:
        """A sink declaring ``checks_unique = True`` rejects, outside ``merge``, the rows whose
        ``primaryKey`` is already in the table (rule ``primary-key``)."""
        from tallyclerk.testing.loader_suite import strict_plugin_manager as pm_for

        sink = self.open(pm_for(self.plugin), url)
        try:
            checks = bool(getattr(sink, "checks_unique", False))
        finally:
            sink.close()
        if not checks:
            pytest.skip("this sink does not declare checks_unique")
        day1, day2, _broken = self._snapshots(tmp_path / "files")
        audit = self.audit_url(url, tmp_path)
        tallyclerk_runner.load([day1], table="modes", into=url, audit=audit,
                               schema=self._KEYED, plugins=[self.plugin])
        second = tallyclerk_runner.load([day2], table="modes", into=url, audit=audit,
                                        schema=self._KEYED, plugins=[self.plugin])
        second.check_accounting()
        f = second.file(day2)
        assert (f["rows_read"], f["rows_written"], f["rows_rejected"]) == (3, 1, 2), (
            "key 2 is in the table, key 4 repeats within the file")
        assert sorted(r["reason"].rsplit("(", 1)[1] for r in second.rejects()) == [
            "already in the table)", "first seen on line 3)"]
        assert self._pairs(url) == [(1, "one"), (2, "two"), (3, "three"), (4, "four")]
