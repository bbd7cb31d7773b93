"""The pytest plugin itself, tested the way pytest teaches: ``pytester`` runs a plugin author's
test files in a subprocess and we look at the outcomes.

- the plugin is active through its ``pytest11`` entry point (no conftest needed), and
  ``-p no:tallyclerk`` turns it off;
- the conformance suite passes a well-behaved toy loader and catches a misbehaving one
  (a suite that cannot fail would prove nothing);
- ``tallyclerk_plugin`` unregisters what a test registered; ``tallyclerk_runner`` loads for real.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

TOY_LOADER = '''
"""A toy format: one record per line, "k=v;k=v". Written like a third-party loader."""
import os

from tallyclerk import RecordBatch
from tallyclerk.errors import SourceError
from tallyclerk.hookspecs import hookimpl

GREEDY = False      # claim every file (a bug the suite must catch)
UNBOUNDED = False   # ignore batch_rows (a bug the suite must catch)


class KvSource:
    def __init__(self, path, batch_rows):
        self.path = path
        self.batch_rows = batch_rows
        self._bytes = 0
        try:
            self._fh = open(path, "rb")
        except OSError as exc:
            raise SourceError(f"{path}: cannot open: {exc.strerror}", path=path) from None
        first = self._fh.readline().decode()
        self._columns = [p.split("=", 1)[0] for p in first.strip().split(";")] if first else []
        self._fh.seek(0)

    @property
    def columns(self):
        return list(self._columns)

    @property
    def bytes_read(self):
        return self._bytes

    def __iter__(self):
        rows, numbers = [], []
        for lineno, raw in enumerate(self._fh, start=1):
            self._bytes += len(raw)
            rows.append(tuple(p.split("=", 1)[1] for p in raw.decode().strip().split(";")))
            numbers.append(lineno)
            if not UNBOUNDED and len(rows) >= self.batch_rows:
                yield RecordBatch.from_rows(self._columns, rows, numbers, numbers)
                rows, numbers = [], []
        if rows:
            yield RecordBatch.from_rows(self._columns, rows, numbers, numbers)

    def close(self):
        self._fh.close()


@hookimpl
def tallyclerk_formats():
    return {"kv": (".kv",)}


@hookimpl
def tallyclerk_open_source(path, options):
    fmt = options.get("format")
    if not GREEDY:
        if fmt and fmt != "kv":
            return None
        if not fmt and not path.endswith(".kv"):
            return None
    return KvSource(path, int(options.get("batch_rows") or 1000))
'''

CONFORMANCE_TESTS = '''
from typing import ClassVar

import toy_loader
from tallyclerk.testing import LoaderConformance


class TestToyLoader(LoaderConformance):
    plugin = toy_loader
    format = "kv"
    suffixes = (".kv",)
    expected_rows: ClassVar = [{"k": str(i), "v": f"v{i}"} for i in range(1, 6)]

    def make_sample(self, directory):
        path = directory / "sample.kv"
        path.write_text("".join(f"k={i};v=v{i}\\n" for i in range(1, 6)), encoding="utf-8")
        return path
'''


def test_conformance_suite_passes_a_good_loader(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(toy_loader=TOY_LOADER, test_toy=CONFORMANCE_TESTS)
    result = pytester.runpytest_subprocess("-v")
    result.assert_outcomes(passed=13, skipped=1)  # no make_bad_file: that check skips
    result.stdout.fnmatch_lines(["*TestToyLoader::test_load_accounts_for_every_row PASSED*"])


@pytest.mark.parametrize(
    ("bug", "caught_by", "shown"),
    [
        # opening a file that is not its own: the loader's own error surfaces
        ("GREEDY", "test_declines_other_files", "E *SourceError: *missing.csv*"),
        # assertion rewriting is on in the suites: the failure shows the batch sizes
        ("UNBOUNDED", "test_batches_are_bounded", "E *AssertionError: [[]5[]]*"),
    ],
)
def test_conformance_suite_catches_a_bad_loader(
    pytester: pytest.Pytester, bug: str, caught_by: str, shown: str
) -> None:
    pytester.makepyfile(
        toy_loader=TOY_LOADER.replace(f"{bug} = False", f"{bug} = True"),
        test_toy=CONFORMANCE_TESTS,
    )
    result = pytester.runpytest_subprocess("-v")
    result.stdout.fnmatch_lines([f"*TestToyLoader::{caught_by} FAILED*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([shown])


def test_fixtures_come_from_the_entry_point_and_can_be_turned_off(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_fixtures='''
        def test_url(tallyclerk_sqlite_url, tmp_path):
            assert tallyclerk_sqlite_url == "sqlite:///" + str(tmp_path / "tallyclerk-test.db")

        def test_audit(tallyclerk_audit):
            assert tallyclerk_audit.list_batches() == []
        '''
    )
    assert pytester.runpytest_subprocess().ret == pytest.ExitCode.OK
    off = pytester.runpytest_subprocess("-p", "no:tallyclerk")
    off.stdout.fnmatch_lines(["*fixture 'tallyclerk_sqlite_url' not found*"])


def test_tallyclerk_plugin_unregisters_after_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_registration='''
        from tallyclerk.hookspecs import hookimpl

        SEEN = {}

        class Shout:
            @hookimpl
            def tallyclerk_transform_batch(self, batch, context):
                batch.set_column("name", [v.upper() for v in batch.column("name")])

        def test_registered_for_this_test(tallyclerk_plugin, tallyclerk_runner, tmp_path):
            plugin = tallyclerk_plugin(Shout())
            SEEN["pm"], SEEN["plugin"] = tallyclerk_plugin.pm, plugin
            path = tmp_path / "a.csv"
            path.write_text("id,name\\n1,ann\\n2,bob\\n", encoding="utf-8")
            result = tallyclerk_runner.load([path], table="people")
            result.check_accounting()
            assert [r["name"] for r in result.data()] == ["ANN", "BOB"]

        def test_gone_afterwards():
            assert not SEEN["pm"].is_registered(SEEN["plugin"])
        '''
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2)


INSTALLED_VALIDATOR = '''
"""An installed validator (declared by an entry point): rejects the name "bad"."""
from tallyclerk.hookspecs import hookimpl


@hookimpl
def tallyclerk_validate_batch(batch):
    if "name" not in batch.columns:
        return
    for i, v in enumerate(batch.column("name")):
        if v == "bad":
            batch.reject(i, "name", "bad-name", "the name is bad")
'''

ISOLATION_TESTS = '''
import pytest

import broken_validator
import tc_installed
from tallyclerk.testing import ValidatorConformance


def _csv(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("id,name\\n1,ok\\n2,bad\\n", encoding="utf-8")
    return path


def test_installed_plugins_take_part_by_default(tallyclerk_pm, tallyclerk_runner, tmp_path):
    assert tallyclerk_pm.has_plugin("installed")
    result = tallyclerk_runner.load([_csv(tmp_path)], table="t")
    assert [r["rule"] for r in result.rejects()] == ["bad-name"]


def test_registering_an_installed_plugin_works(tallyclerk_plugin, tallyclerk_pm):
    assert tallyclerk_plugin(tc_installed) is tc_installed
    with tallyclerk_plugin.registered(tc_installed):
        assert tallyclerk_pm.is_registered(tc_installed)


def test_still_installed_afterwards(tallyclerk_pm):
    assert tallyclerk_pm.has_plugin("installed")


@pytest.mark.tallyclerk_isolated
def test_isolated_mode_has_the_builtins_only(tallyclerk_pm, tallyclerk_runner, tmp_path):
    assert not tallyclerk_pm.has_plugin("installed")
    assert tallyclerk_pm.has_plugin("tallyclerk.builtins.csv_loader")
    path = _csv(tmp_path)
    assert tallyclerk_runner.load([path], table="t").rejects() == []
    ran = tallyclerk_runner.cli("load", str(path), "--table", "u", "--json",
                                "--into", tallyclerk_runner.into)
    assert ran.code == 0, ran.err
    assert ran.json()["rows_rejected"] == 0


class TestBrokenValidator(ValidatorConformance):
    """The broken copy rejects nothing: isolated, the suite sees it (the installed plugin
    would otherwise have rejected the bad row for it)."""
    plugin = broken_validator
    columns = ["id", "name"]
    good_rows = [("1", "ok")]
    bad_rows = [("2", "bad")]
'''


def test_fixtures_work_with_installed_plugins_and_isolate_on_request(
    pytester: pytest.Pytester,
) -> None:
    """An installed plugin (a distribution with an entry point on the path): the fixtures
    see it by default, registering it again works, isolated mode and the conformance suites
    leave it out."""
    pytester.makepyfile(
        tc_installed=INSTALLED_VALIDATOR,
        broken_validator=INSTALLED_VALIDATOR.replace('v == "bad"', "False"),
        test_isolation=ISOLATION_TESTS,
    )
    info = pytester.path / "tc_installed-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tc-installed\nVersion: 1.0\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text("[tallyclerk]\ninstalled = tc_installed\n",
                                           encoding="utf-8")
    result = pytester.runpytest_subprocess("-v", "-p", "no:randomly")
    result.stdout.fnmatch_lines([
        "*test_installed_plugins_take_part_by_default PASSED*",
        "*test_registering_an_installed_plugin_works PASSED*",
        "*test_still_installed_afterwards PASSED*",
        "*test_isolated_mode_has_the_builtins_only PASSED*",
        "*TestBrokenValidator::test_bad_rows_are_rejected_with_reasons FAILED*",
        "*TestBrokenValidator::test_load_quarantines_exactly_the_bad_rows FAILED*",
    ])
