"""The loader conformance suite: what every ``tallyclerk_open_source`` plugin must do.

Subclass :class:`LoaderConformance` in a test module (the name must start with ``Test``), say
which plugin and which sample file, and pytest runs every check against your loader::

    from tallyclerk.testing import LoaderConformance
    import tallyclerk_parquet

    class TestParquetLoader(LoaderConformance):
        plugin = tallyclerk_parquet
        format = "parquet"
        suffixes = (".parquet",)
        expected_rows = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}]

        def make_sample(self, directory):
            path = directory / "sample.parquet"
            ...write expected_rows there...
            return path

The checks: the hookimpls match the hook specifications; the loader claims its files (by
``--format`` and by suffix) and only its files; a source has the protocol's shape; it yields
:class:`~tallyclerk.RecordBatch` objects with consecutive record numbers and lines, never more
rows than ``batch_rows``, and exactly ``expected_rows``; a real load through the pipeline
accounts for every row (``rows_read = rows_written + rows_rejected``), loads a file once, and
a missing or broken file fails with a one-line error naming the file (and the line) and no
traceback.
"""

from __future__ import annotations

import json
import math
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pluggy
import pytest

from tallyclerk.testing.runner import Runner

__all__ = ["LoaderConformance", "strict_plugin_manager"]

FOREIGN_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".xlsx", ".txt", ".zz9")
FOREIGN_FORMATS = ("csv", "tsv", "jsonl", "ndjson", "parquet", "xlsx", "no-such-format-zz9")


def strict_plugin_manager(plugin: object) -> pluggy.PluginManager:
    """A plugin manager with tallyclerk's hookspecs and ``plugin`` only.

    Registering validates every hookimpl's arguments against its spec; ``check_pending``
    fails on a misspelled hook name.
    """
    from tallyclerk import hookspecs

    pm = pluggy.PluginManager("tallyclerk")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin)
    pm.check_pending()
    return pm


def _options(**extra: Any) -> dict[str, Any]:
    from tallyclerk.settings import Settings

    settings = Settings()
    options: dict[str, Any] = {
        "format": None,
        "schema": None,
        "settings": settings,
        "batch_rows": settings.batch_rows,
        "max_field_bytes": settings.max_field_bytes,
        "encoding": None,
        "delimiter": None,
    }
    options.update(extra)
    return options


class LoaderConformance:
    """Checks a loader plugin against the ``tallyclerk_open_source`` contract.

    Set in the subclass:

    ``plugin``
        the plugin (a module or an object with hookimpls).
    ``format``
        the ``--format`` name it claims (``None`` if it claims by suffix only);
        ``other_formats``: more ``--format`` names it also claims (aliases).
    ``suffixes``
        the file-name suffixes it claims without ``--format``.
    ``expected_rows``
        the rows ``make_sample`` writes, as dicts in file order (values as the loader yields
        them: text for text formats, typed for typed formats; with ``schema`` set, as the
        schema types them: ``{"id": 1}`` for an integer field).
    ``make_sample(self, directory) -> Path``
        writes the sample file (at least three records) and returns its path; or set
        ``sample_file`` to an existing file.

    Optional:

    ``make_bad_file(self, directory) -> Path | None``
        a file whose content is broken as a whole (the load of that file must fail);
        ``bad_line``: the line the error must name (None: the file name suffices).
    ``schema``
        a Table Schema (dict) the sample loads with (default: none, every column as text).
    ``table``
        the target table in the load checks (default ``"conformance"``).
    ``tallyclerk_isolated``
        True (the default): only the built-ins and ``plugin`` take part, in-process and in
        the ``tallyclerk`` subprocess; no installed plugin can do the plugin's work for it.
    """

    plugin: ClassVar[Any] = None
    tallyclerk_isolated: ClassVar[bool] = True
    format: ClassVar[str | None] = None
    other_formats: ClassVar[tuple[str, ...]] = ()
    suffixes: ClassVar[tuple[str, ...]] = ()
    expected_rows: ClassVar[list[dict[str, Any]]] = []
    sample_file: ClassVar[str | Path | None] = None
    bad_line: ClassVar[int | None] = None
    schema: ClassVar[Mapping[str, Any] | None] = None
    table: ClassVar[str] = "conformance"

    # -- what the subclass provides -------------------------------------------------------

    def make_sample(self, directory: Path) -> Path:
        if self.sample_file is None:
            raise NotImplementedError("set sample_file or implement make_sample(directory)")
        return Path(self.sample_file)

    def make_bad_file(self, directory: Path) -> Path | None:
        return None

    # -- helpers ----------------------------------------------------------------------------

    @pytest.fixture()
    def sample(self, tmp_path: Path) -> Path:
        directory = tmp_path / "sample"
        directory.mkdir(exist_ok=True)
        return self.make_sample(directory)

    @pytest.fixture()
    def loader_pm(self) -> pluggy.PluginManager:
        assert self.plugin is not None, "set plugin = <your plugin module or object>"
        return strict_plugin_manager(self.plugin)

    def open(self, pm: pluggy.PluginManager, path: Path | str, **options: Any) -> Any:
        return pm.hook.tallyclerk_open_source(path=str(path), options=_options(**options))

    def batches(self, pm: pluggy.PluginManager, path: Path, **options: Any) -> list[Any]:
        source = self.open(pm, path, format=self.format, **options)
        assert source is not None, f"the loader did not claim {path} with --format {self.format}"
        try:
            return list(source)
        finally:
            source.close()

    def _plugin_modules(self) -> list[types.ModuleType]:
        return [self.plugin] if isinstance(self.plugin, types.ModuleType) else []

    # -- claims -----------------------------------------------------------------------------

    def test_hookimpls_match_the_specs(self) -> None:
        pm = strict_plugin_manager(self.plugin)
        hooks = {caller.name for caller in pm.get_hookcallers(self.plugin) or []}
        assert "tallyclerk_open_source" in hooks

    def test_declares_its_formats(self, loader_pm: pluggy.PluginManager) -> None:
        """``tallyclerk_formats`` names ``format`` and ``other_formats``, and every suffix
        the loader claims (``--format`` is checked against it before a load starts)."""
        from tallyclerk.plugins import declared_formats

        declared = declared_formats(loader_pm)
        for fmt in [f for f in (self.format, *self.other_formats) if f]:
            assert fmt.lower() in declared, f"tallyclerk_formats() does not declare {fmt!r}"
        suffixes = {s for group in declared.values() for s in group}
        missing = [s for s in self.suffixes if s not in suffixes]
        assert not missing, f"tallyclerk_formats() does not declare the suffixes {missing}"

    def test_claims_its_format(self, loader_pm: pluggy.PluginManager, sample: Path) -> None:
        if self.format is None:
            pytest.skip("this loader claims by suffix only")
        source = self.open(loader_pm, sample, format=self.format)
        assert source is not None, f"--format {self.format} was not claimed"
        source.close()

    def test_claims_its_suffixes(self, loader_pm: pluggy.PluginManager, sample: Path) -> None:
        if not self.suffixes:
            pytest.skip("this loader claims by --format only")
        for suffix in self.suffixes:
            target = sample.with_name(sample.stem + "-copy" + suffix)
            target.write_bytes(sample.read_bytes())
            source = self.open(loader_pm, target)
            assert source is not None, f"a {suffix} file was not claimed without --format"
            source.close()

    def test_declines_other_files(self, loader_pm: pluggy.PluginManager, tmp_path: Path) -> None:
        """Claims nothing else: other suffixes and other formats give None, without opening
        the file (the paths do not exist: a loader decides by name first)."""
        own = {s.lower() for s in self.suffixes}
        for suffix in FOREIGN_SUFFIXES:
            if suffix in own:
                continue
            path = tmp_path / f"missing{suffix}"
            assert self.open(loader_pm, path) is None, f"claimed a {suffix} file"
        for fmt in FOREIGN_FORMATS:
            if fmt == self.format or fmt in self.other_formats:
                continue
            path = tmp_path / f"missing{next(iter(self.suffixes), '.zz9')}"
            assert self.open(loader_pm, path, format=fmt) is None, f"claimed --format {fmt}"

    # -- the source -------------------------------------------------------------------------

    def test_source_has_the_protocol_shape(
        self, loader_pm: pluggy.PluginManager, sample: Path
    ) -> None:
        from tallyclerk.protocols import Source

        source = self.open(loader_pm, sample, format=self.format)
        try:
            assert isinstance(source, Source), "missing path/columns/bytes_read/batch_rows/close"
            assert source.path == str(sample)
            columns = source.columns
            assert isinstance(columns, list) and all(isinstance(c, str) for c in columns)
            assert columns == list(self.expected_rows[0]), "columns known before the first batch"
            assert source.bytes_read >= 0
            source.batch_rows = 1  # assignable between batches (may be ignored)
        finally:
            source.close()
        source.close()  # closing twice is harmless

    def test_yields_record_batches_with_numbers_and_lines(
        self, loader_pm: pluggy.PluginManager, sample: Path
    ) -> None:
        from tallyclerk import RecordBatch

        batches = self.batches(loader_pm, sample)
        assert batches, "no record batch"
        assert all(isinstance(b, RecordBatch) for b in batches)
        numbers = [n for b in batches for n in b.record_numbers()]
        assert numbers == list(range(1, len(numbers) + 1)), "record numbers 1, 2, 3... in order"
        lines = [n for b in batches for n in b.lines()]
        assert all(line >= 1 for line in lines)
        assert lines == sorted(lines), "lines never go backwards"
        assert len(set(lines)) == len(lines), "one record per line number"

    def test_yields_the_expected_rows(self, loader_pm: pluggy.PluginManager, sample: Path) -> None:
        """``expected_rows`` as the loader yields them or, with ``schema`` set, as the schema
        types them (what the validators after the built-in one see)."""
        batches = self.batches(loader_pm, sample)
        if self.schema is not None:
            from tallyclerk import TableSchema

            compiled = TableSchema.from_json(json.dumps(self.schema))
            for b in batches:
                b.validate(compiled)
                assert b.num_rejected == 0, b.rejects()
        rows = [row for b in batches for row in b.to_pylist()]
        assert rows == self.expected_rows

    def test_batches_are_bounded(self, loader_pm: pluggy.PluginManager, sample: Path) -> None:
        """``batch_rows`` bounds every batch (memory stays bounded whatever the file size)."""
        n = len(self.expected_rows)
        assert n >= 3, "the sample needs at least three records"
        batches = self.batches(loader_pm, sample, batch_rows=2)
        assert all(b.num_rows <= 2 for b in batches), [b.num_rows for b in batches]
        assert len(batches) >= math.ceil(n / 2)
        assert sum(b.num_rows for b in batches) == n

    def test_counts_bytes_read(self, loader_pm: pluggy.PluginManager, sample: Path) -> None:
        source = self.open(loader_pm, sample, format=self.format, batch_rows=1)
        seen = []
        try:
            for _batch in source:
                seen.append(source.bytes_read)
            seen.append(source.bytes_read)
        finally:
            source.close()
        assert seen == sorted(seen), "bytes_read never decreases"
        assert 0 < seen[-1] <= sample.stat().st_size

    def test_missing_file_raises_source_error(
        self, loader_pm: pluggy.PluginManager, tmp_path: Path
    ) -> None:
        from tallyclerk.errors import SourceError

        path = tmp_path / f"missing{next(iter(self.suffixes), '')}"
        with pytest.raises(SourceError) as info:
            source = self.open(loader_pm, path, format=self.format)
            try:
                list(source)
            finally:
                source.close()
        assert path.name in str(info.value)

    # -- through the pipeline ----------------------------------------------------------------

    def test_load_accounts_for_every_row(self, tallyclerk_runner: Runner, sample: Path) -> None:
        result = tallyclerk_runner.load(
            [sample], table=self.table, schema=self.schema, plugins=[self.plugin],
            options={"format": self.format},
        )
        entry = result.file(sample)
        assert entry["status"] == "loaded", entry
        result.check_accounting()
        assert entry["rows_read"] == len(self.expected_rows)
        assert result.count() == entry["rows_written"]
        columns = list(self.expected_rows[0])
        assert [list(r) for r in result.data()][:1] == [columns]

    def test_loads_a_file_once(self, tallyclerk_runner: Runner, sample: Path) -> None:
        first = tallyclerk_runner.load([sample], table=self.table, schema=self.schema,
                                       plugins=[self.plugin], options={"format": self.format})
        again = tallyclerk_runner.load([sample], table=self.table, schema=self.schema,
                                       plugins=[self.plugin], options={"format": self.format})
        assert first.file(sample)["status"] == "loaded"
        assert again.file(sample)["status"] == "skipped"
        assert again.count() == first.file(sample)["rows_written"]

    def test_bad_file_fails_with_a_clear_error(
        self, tallyclerk_runner: Runner, tmp_path: Path
    ) -> None:
        """Through the real command: exit 1, the file failed, its error names the file (and
        the line), one line on stderr at most, no traceback; the other file still loads."""
        directory = tmp_path / "bad"
        directory.mkdir()
        bad = self.make_bad_file(directory)
        if bad is None:
            pytest.skip("no make_bad_file(): this format has no whole-file errors to check")
        good = self.make_sample(_mkdir(tmp_path / "good"))
        args = [str(bad), str(good), "--table", self.table, "--json",
                "--into", tallyclerk_runner.into]
        if self.format:
            args += ["--format", self.format]
        result = tallyclerk_runner.cli("load", *args, plugins=self._plugin_modules())
        assert "Traceback" not in result.err, result.err
        assert result.code == 1, (result.code, result.err)
        report = result.json()
        entry = next(f for f in report["files"] if f["path"] == str(bad))
        assert entry["status"] == "failed"
        assert bad.name in entry["error"], entry["error"]
        if self.bad_line is not None:
            assert f"line {self.bad_line}" in entry["error"], entry["error"]
        other = next(f for f in report["files"] if f["path"] == str(good))
        assert other["status"] == "loaded"


def _mkdir(path: Path) -> Path:
    path.mkdir(exist_ok=True)
    return path
