"""Start-up (issue 16.1), beyond the audit store: a local load imports no object-store
machinery, and the installed plugins are found, named and loaded without ``importlib.metadata``
(as it and pluggy would do it), and the dataclasses a plain load never builds are not created.
(``test_startup_imports.py`` holds the modules a SQLite load must not import at all.)"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pluggy
import pytest

from tallyclerk import hookspecs
from tallyclerk.plugins import get_plugin_manager
from tests.cli.conftest import env_for, probe, write_csv

API_PROBE = """
import sys
import tallyclerk
report = tallyclerk.load(sys.argv[1], table="t", into=sys.argv[2])
assert report.status == "succeeded", report
print(" ".join(sorted(m for m in sys.modules)))
"""

# imported only for s3://, gs://, az://, https:// paths (fsspec, spools, copies ahead)
OBJECT_STORAGE = ("tallyclerk.objstore", "tallyclerk.objprefetch", "tallyclerk.s3get", "botocore")


def test_a_local_load_through_the_api_imports_no_object_storage(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "one.csv", [(1, "a", 1.5)])
    out = probe(API_PROBE, str(src), f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    modules = set(out.splitlines()[-1].split())
    assert "tallyclerk.pipeline.policy" in modules  # the probe works
    assert sorted(m for m in OBJECT_STORAGE if m in modules) == []


# The load marker (a row in the target database beside the rows) is written only when the
# audit store is another database; a plain SQLite load keeps its manifest in the target itself.
MARKER = "tallyclerk.audit.marker"


def test_a_load_with_its_audit_store_in_the_target_imports_no_load_marker(
    tmp_path: Path,
) -> None:
    src = write_csv(tmp_path / "one.csv", [(1, "a", 1.5)])
    out = probe(API_PROBE, str(src), f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    modules = set(out.splitlines()[-1].split())
    assert "tallyclerk.settle" in modules  # the probe works
    assert MARKER not in modules


# argparse (with gettext, ~2.3 ms) is the CLI's: the hook specs, the protocols and the metrics
# plugin name it in annotations only (and the metrics options' converters import it).
def test_a_load_through_the_api_imports_no_argparse(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "one.csv", [(1, "a", 1.5)])
    out = probe(API_PROBE, str(src), f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    modules = set(out.splitlines()[-1].split())
    assert "tallyclerk.metrics" in modules  # the probe works (the metrics plugin is a built-in)
    assert sorted(m for m in ("argparse", "gettext") if m in modules) == []


# A project's pyproject.toml that never names tallyclerk is not parsed (``tomllib`` and the parse
# cost ~5 ms of a start in a project directory); a ``[tool.tallyclerk]`` table is still found,
# however its key is spelled.
TOML_PROBE = """
import sys
from tallyclerk.settings import load_settings
print(load_settings(start_dir=sys.argv[1], env={}).linger_ms, "tomllib" in sys.modules)
"""


def _settings_in(directory: Path, pyproject: str) -> tuple[float, bool]:
    (directory / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    out = probe(TOML_PROBE, str(directory), cwd=directory, env=env_for())
    linger, imported = out.split()
    return float(linger), imported == "True"


def test_a_pyproject_without_tallyclerk_is_not_parsed(tmp_path: Path) -> None:
    assert _settings_in(tmp_path, '[project]\nname = "app"\n[tool.ruff]\nline-length = 99\n') \
        == (5.0, False)


@pytest.mark.parametrize("table", ["[tool.tallyclerk]", '[tool."tallyclerk"]',
                                   '[tool."tally\\u0063lerk"]', "[tool.'tallyclerk']"])
def test_a_pyproject_table_is_found_however_its_key_is_spelled(tmp_path: Path,
                                                                table: str) -> None:
    assert _settings_in(tmp_path, f"{table}\nlinger_ms = 7\n") == (7.0, True)


def test_a_malformed_pyproject_that_never_names_tallyclerk_is_left_alone(
    tmp_path: Path,
) -> None:
    assert _settings_in(tmp_path, "[project\nname = \n") == (5.0, False)


# Without ``site`` (a clean install's interpreter imports far less than this machine's, whose
# ``site`` runs editable installs' finders): a CLI load imports no ``shutil`` (argparse's help
# width; it imports bz2, lzma and zlib), no ``pathlib`` (the config file search; it imports
# urllib.parse, ipaddress, fnmatch) and no ``urllib.parse`` (a URL with no escape and no query
# is not unquoted).
CLEAN_PROBE = """
import sys
from tallyclerk.cli import main
code = main(sys.argv[1:])
print(code)
print(" ".join(sorted(sys.modules)))
"""
CLEAN_START = ("shutil", "bz2", "lzma", "pathlib", "urllib.parse", "ipaddress")


def test_a_cli_load_on_a_bare_interpreter_imports_no_shutil_nor_pathlib(tmp_path: Path) -> None:
    import site

    src = write_csv(tmp_path / "one.csv", [(1, "a", 1.5)])
    env = env_for(TALLYCLERK_LOAD_PLUGINS="")
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], *site.getsitepackages()])
    out = probe(CLEAN_PROBE,
                "load", str(src), "--table", "t", "--into", f"sqlite:///{tmp_path / 'x.db'}",
                cwd=tmp_path, env=env, flags=("-S",))
    code, modules = out.splitlines()[-2:]
    assert code == "0", out
    assert "site" not in modules.split() and "tallyclerk.pipeline" in modules.split()
    assert sorted(m for m in CLEAN_START if m in modules.split()) == []


@pytest.mark.parametrize("columns", [None, "40", "123", "0", "wide"])
def test_the_help_is_as_wide_as_argparse_makes_it(monkeypatch: pytest.MonkeyPatch,
                                                  columns: str | None) -> None:
    import argparse

    from tallyclerk.cli import Parser

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    helps = []
    for parser in (Parser(prog="tallyclerk x", description="word " * 40),
                   argparse.ArgumentParser(prog="tallyclerk x", description="word " * 40)):
        parser.add_argument("--a-long-option-name", metavar="VALUE", help="help " * 30)
        parser.add_argument("path", nargs="+", help="the paths " * 8)
        helps.append(parser.format_help())
    assert helps[0] == helps[1]


class _SchemaPath:
    """An ``os.PathLike`` that is not a ``pathlib.Path`` (``schema_from`` checks for the protocol,
    so that the start-up imports no pathlib)."""

    def __init__(self, path: Path) -> None:
        self._path = str(path)

    def __fspath__(self) -> str:
        return self._path


def test_a_schema_given_as_any_path_like_is_read(tmp_path: Path) -> None:
    import json

    from tallyclerk.session import schema_from

    doc = {"fields": [{"name": "id", "type": "integer"}, {"name": "name", "type": "string"}]}
    (tmp_path / "schema.json").write_text(json.dumps(doc), encoding="utf-8")
    for given in (_SchemaPath(tmp_path / "schema.json"), tmp_path / "schema.json",
                  str(tmp_path / "schema.json")):
        schema = schema_from(given)
        assert schema is not None and schema.field_names == ["id", "name"]


# The installed plugins are scanned with TALLYCLERK_LOAD_PLUGINS unset (a user's default). The
# probe leaves site-packages (where this machine's Parquet plugin is installed) off sys.path
# once the built-ins are imported, and adds a directory of distributions instead.
SCAN_PROBE = """
import importlib, sys
from tallyclerk.plugins import DEFAULT_PLUGINS, get_plugin_manager, list_plugins
for name in DEFAULT_PLUGINS:
    importlib.import_module(name)
sys.path[:] = [p for p in sys.path if "-packages" not in p] + [sys.argv[1]]
pm = get_plugin_manager([], env={})
print(sorted((p["name"], p["version"]) for p in list_plugins(pm) if not p["builtin"]))
print("importlib.metadata" in sys.modules)
"""

DEMO_PLUGIN = '''
from tallyclerk.hookspecs import hookimpl


@hookimpl
def tallyclerk_formats():
    return {"demo": [".demo"]}
'''


def _dist(root: Path, name: str, entry_points: str) -> None:
    info = root / f"{name}-1.5.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.5\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")


@pytest.mark.parametrize("third_party", [False, True])
def test_installed_plugins_are_scanned_without_importlib_metadata(
    tmp_path: Path, third_party: bool
) -> None:
    """Only built-in entry points installed (tallyclerk's own): nothing to load, and
    ``importlib.metadata`` (~25 ms with ``email``...) is not imported. A third-party entry
    point: loaded through it as before, with its distribution's version."""
    site = tmp_path / "site"
    _dist(site, "tallyclerk", "[console_scripts]\ntallyclerk = tallyclerk.cli:console_main\n\n"
          "[tallyclerk]\ntallyclerk.builtins.csv_loader = tallyclerk.builtins.csv_loader\n")
    _dist(site, "other", "[other.group]\nx = os\n")
    if third_party:
        _dist(site, "demo_plugin", "[tallyclerk]\ndemo = demo_plugin\n")
        (site / "demo_plugin.py").write_text(DEMO_PLUGIN, encoding="utf-8")
    out = probe(SCAN_PROBE, str(site), cwd=tmp_path, env=env_for())
    plugins, metadata = out.splitlines()[-2:]
    if third_party:
        assert (plugins, metadata) == ("[('demo', '1.5')]", "True")
    else:
        assert (plugins, metadata) == ("[]", "False")


# Installed plugins are loaded without importlib.metadata, exactly as pluggy's own scan
# loads them: the same plugins under the same names in the same order (hook order), the
# same distributions, a repeated entry-point name loaded once (the first distribution wins),
# a ``module:attr.attr`` value resolved as ``EntryPoint.load`` does.
LOAD_PROBE = """
import importlib, json, sys
import pluggy
from tallyclerk import hookspecs
from tallyclerk.plugins import (DEFAULT_PLUGINS, ENTRY_POINT_GROUP, _allowed_entry_points,
                                _PluginManager, get_plugin_manager, list_plugins)
for name in DEFAULT_PLUGINS:
    importlib.import_module(name)
sys.path[:] = [p for p in sys.path if "-packages" not in p] + [sys.argv[1]]
env = {} if sys.argv[2] == "-" else {"TALLYCLERK_LOAD_PLUGINS": sys.argv[2]}
pm = get_plugin_manager([], env=env)
lazy = "importlib.metadata" not in sys.modules
ref = _PluginManager(ENTRY_POINT_GROUP)
ref.add_hookspecs(hookspecs)
for name in DEFAULT_PLUGINS:
    ref.register(importlib.import_module(name), name=name)
if not env:
    pluggy.PluginManager.load_setuptools_entrypoints(ref, ENTRY_POINT_GROUP)
else:  # what get_plugin_manager did before: pluggy's scan for each allowed name
    for name in _allowed_entry_points(env["TALLYCLERK_LOAD_PLUGINS"].split(",")):
        pluggy.PluginManager.load_setuptools_entrypoints(ref, ENTRY_POINT_GROUP, name=name)
def seen(m):
    return {
        "order": [name for name, _p in m.list_name_plugin()],
        "hooks": [[i.plugin_name for i in m.hook.tallyclerk_formats.get_hookimpls()]],
        "dists": [(m.get_name(p), d.project_name, d.version, str(d._path))
                  for p, d in m.list_plugin_distinfo()],
        "list": list_plugins(m),
    }
print(json.dumps([lazy, seen(pm) == seen(ref), seen(pm)["order"][len(DEFAULT_PLUGINS):]]))
"""

PLUGIN_A = DEMO_PLUGIN + '''

class _Holder:
    @staticmethod
    @hookimpl
    def tallyclerk_formats():
        return {"held": [".held"]}


class NS:
    holder = _Holder()
'''


@pytest.mark.parametrize(("allow", "loaded"), [
    (None, ["demo", "held", "late", "zeta"]),
    # a distribution's name (importlib.metadata sees one distribution a project: not "late")
    ("Demo.Plugin,zeta", ["demo", "held", "zeta"]),
    ("zeta,held", ["held", "zeta"]),
    ("demo_plugin", ["demo", "held"]),  # a module's name
])
def test_installed_plugins_are_loaded_as_pluggy_loads_them(
    tmp_path: Path, allow: str | None, loaded: list[str]
) -> None:
    """Unset, or an allow-list (``TALLYCLERK_LOAD_PLUGINS``: names resolved through
    ``importlib.metadata`` as before, each loaded plugin without a scan of its own)."""
    site = tmp_path / "site"
    _dist(site, "tallyclerk", "[tallyclerk]\n"
          "tallyclerk.builtins.csv_loader = tallyclerk.builtins.csv_loader\n")
    _dist(site, "zeta_plugin", "# a comment\n[tallyclerk]\nzeta = zeta_plugin\n")
    _dist(site, "demo_plugin", "[console_scripts]\nx = os\n[tallyclerk]\n"
          "demo = demo_plugin\nheld = demo_plugin : NS.holder\n")
    # the same project again (an older copy's metadata): its "demo" is not loaded twice
    _dist(site, "Demo.Plugin", "[tallyclerk]\ndemo = zeta_plugin\nlate = late_plugin\n")
    (site / "demo_plugin.py").write_text(PLUGIN_A, encoding="utf-8")
    (site / "zeta_plugin.py").write_text(DEMO_PLUGIN, encoding="utf-8")
    (site / "late_plugin.py").write_text(DEMO_PLUGIN, encoding="utf-8")
    out = probe(LOAD_PROBE, str(site), allow or "-", cwd=tmp_path, env=env_for())
    import json

    lazy, same, order = json.loads(out.splitlines()[-1])
    assert same, out
    assert sorted(order) == loaded
    if allow is None:
        assert lazy  # no importlib.metadata until the distributions are asked for


# TALLYCLERK_LOAD_PLUGINS names plugins by entry-point, module or distribution name: the
# installed entry points and their distributions' names are read as importlib.metadata's
# entry_points(group=...) gives them (one distribution a project, "Name" from METADATA or
# PKG-INFO), without importing it unless only it can tell.
NAMES_PROBE = """
import sys
from tallyclerk.plugins import ENTRY_POINT_GROUP, _entry_points
sys.path[:] = [p for p in sys.path if "-packages" not in p] + [sys.argv[1]]
got = _entry_points()
lazy = "importlib.metadata" not in sys.modules
from importlib import metadata
ref = [(ep.name, ep.value.split(":", 1)[0].strip(), str(ep.dist.metadata["name"]))
       for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)]
print(got == ref, lazy, sorted(got))
"""


def _meta(root: Path, child: str, files: dict[str, str]) -> None:
    (root / child).mkdir(parents=True)
    for name, text in files.items():
        (root / child / name).write_text(text, encoding="utf-8")


@pytest.mark.parametrize("odd", [None, "folded", "mbox"])
def test_plugin_names_are_read_as_importlib_metadata_reads_them(
    tmp_path: Path, odd: str | None
) -> None:
    site = tmp_path / "site"
    eps = "[tallyclerk]\n{} = {}_mod:obj\n"
    _meta(site, "Alpha.Plugin-1.0.dist-info", {
        "METADATA": "Metadata-Version: 2.1\nName: Alpha.Plugin\nVersion: 1.0\n\nName: body\n",
        "entry_points.txt": eps.format("a", "alpha")})
    # the same project again: importlib.metadata lists its first distribution only
    _meta(site, "alpha_plugin-0.9.dist-info", {
        "METADATA": "Name: alpha_plugin\n", "entry_points.txt": eps.format("old", "old")})
    _meta(site, "beta-1.egg-info", {"PKG-INFO": "Metadata-Version: 1.0\r\nname:   beta \r\n",
                                    "entry_points.txt": eps.format("b", "beta")})
    _meta(site, "gamma-1.dist-info", {"METADATA": "Version: 1\n",  # no Name: "None"
                                      "entry_points.txt": eps.format("c", "gamma")})
    _meta(site, "delta-1.dist-info", {"METADATA": "Summary: x\n  y\nName: Delta\n",
                                      "entry_points.txt": eps.format("d", "delta")})
    if odd == "folded":  # a folded Name header: left to importlib.metadata
        _meta(site, "eps-1.dist-info", {"METADATA": "Name: Eps\n  ilon\n",
                                        "entry_points.txt": eps.format("e", "eps")})
    if odd == "mbox":
        _meta(site, "zeta-1.dist-info", {"METADATA": "From someone\nName: Zeta\n",
                                         "entry_points.txt": eps.format("z", "zeta")})
    out = probe(NAMES_PROBE, str(site), cwd=tmp_path, env=env_for())
    same, lazy, found = out.splitlines()[-1].split(" ", 2)
    assert same == "True", found
    assert lazy == str(odd is None)
    assert "'old'" not in found and "'None')" in found and "'beta ')" in found


FAILING_PROBE = """
import importlib, sys
import pluggy
from tallyclerk import hookspecs
from tallyclerk.plugins import (DEFAULT_PLUGINS, ENTRY_POINT_GROUP, _PluginManager,
                                get_plugin_manager)
for name in DEFAULT_PLUGINS:
    importlib.import_module(name)
sys.path[:] = [p for p in sys.path if "-packages" not in p] + [sys.argv[1]]
def outcome(make):
    try:
        make()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"
def ref():
    pm = _PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    pluggy.PluginManager.load_setuptools_entrypoints(pm, ENTRY_POINT_GROUP)
print(outcome(lambda: get_plugin_manager([], env={})) == outcome(ref) != "ok")
"""


@pytest.mark.parametrize("value", ["not a module!", "missing_plugin_module",
                                   "os:no_such_attribute"])
def test_an_entry_point_that_cannot_load_fails_as_in_pluggy(tmp_path: Path, value: str) -> None:
    site = tmp_path / "site"
    _dist(site, "broken_plugin", f"[tallyclerk]\nbroken = {value}\n")
    out = probe(FAILING_PROBE, str(site), cwd=tmp_path, env=env_for())
    assert out.splitlines()[-1] == "True"


PLUGIN_LOAD_PROBE = """
import sys
import tallyclerk
report = tallyclerk.load(sys.argv[1], table="t", into=sys.argv[2])
assert report.status == "succeeded", report
print(" ".join(sorted(m for m in sys.modules)))
"""


def test_a_load_with_a_plugin_installed_imports_no_importlib_metadata(tmp_path: Path) -> None:
    """``TALLYCLERK_LOAD_PLUGINS`` unset (a user's default) and a third-party plugin
    installed: it is loaded, without ``importlib.metadata`` (~20 ms); this machine's Parquet
    plugin, when installed, loads without ``pyarrow`` for a CSV file."""
    site = tmp_path / "site"
    _dist(site, "demo_plugin", "[tallyclerk]\ndemo = demo_plugin\n")
    (site / "demo_plugin.py").write_text(DEMO_PLUGIN, encoding="utf-8")
    src = write_csv(tmp_path / "one.csv", [(1, "a", 1.5)])
    env = env_for()
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(site)])
    out = probe(PLUGIN_LOAD_PROBE, str(src), f"sqlite:///{tmp_path / 'x.db'}",
                cwd=tmp_path, env=env)
    modules = set(out.splitlines()[-1].split())
    assert "demo_plugin" in modules  # the plugin was loaded
    assert "importlib.metadata" not in modules
    if "tallyclerk_parquet" in modules:
        assert "pyarrow" not in modules


START_UP_PROBE = """
import sys
from tallyclerk.cli import build_parser
from tallyclerk.cli.load import request_from_args
from tallyclerk.plugins import get_plugin_manager
pm = get_plugin_manager([])
args = build_parser(pm, "load").parse_args(sys.argv[1:])
req = request_from_args(args)
assert pm.has_plugin("tallyclerk.builtins.sqlite_sink") and req.table == "t", req
print(" ".join(sorted(m for m in sys.modules)))
"""

# Not imported before the load's audit store: OpenSSL (``_hashlib``, ~2.5 ms) for the SQLite
# sink's index names (tallyclerk.digest), the object-store machinery.
NOT_BEFORE_THE_AUDIT_STORE = ("hashlib", "_hashlib", *OBJECT_STORAGE)


def test_start_up_loads_no_openssl(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "one.csv", [(1, "a", 1.5)])
    out = probe(START_UP_PROBE,
                "load", str(src), "--table", "t", "--into", f"sqlite:///{tmp_path / 'x.db'}",
                cwd=tmp_path)
    modules = set(out.splitlines()[-1].split())
    assert "tallyclerk.modes" in modules  # the probe works
    assert sorted(m for m in NOT_BEFORE_THE_AUDIT_STORE if m in modules) == []


ODD_PLUGIN = '''
import functools

from tallyclerk.hookspecs import hookimpl


def _wrapped(f):
    @functools.wraps(f)  # copies the marker
    def inner(*args, **kwargs):
        return f(*args, **kwargs)
    return inner


@hookimpl
def tallyclerk_formats():
    return {"odd": [".odd"]}


@_wrapped
@hookimpl(trylast=True)
def tallyclerk_batch_start(batch_id, table, paths):
    pass


class _Holder:
    @staticmethod
    @hookimpl(tryfirst=True)
    def tallyclerk_file_start(context):
        pass

    @hookimpl
    def tallyclerk_batch_finish(self, batch_id, report):
        pass


tallyclerk_file_start = _Holder.tallyclerk_file_start
tallyclerk_batch_finish = _Holder().tallyclerk_batch_finish  # a bound method
tallyclerk_rows_written = 3  # not a function: no hook
__annotations__ = {"x": int}


def __getattr__(name):
    raise AttributeError(name)
'''


def _table(pm: Any) -> list[tuple[str, list[tuple[str, object, bool, bool]]]]:
    return sorted(
        (name, [(i.plugin_name, i.function, i.tryfirst, i.trylast)
                for i in getattr(pm.hook, name).get_hookimpls()])
        for name in vars(pm.hook) if name.startswith("tallyclerk_")
    )


def test_the_plugin_manager_finds_the_hooks_pluggy_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manager reads module plugins' plain attributes itself (start-up, issue 16.1): the
    same implementations, markers and order as pluggy's own look-up, built-ins and a ``-p``
    plugin with wrapped, static, bound and non-function attributes alike."""
    (tmp_path / "odd_plugin.py").write_text(ODD_PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = get_plugin_manager(["odd_plugin"], env={"TALLYCLERK_LOAD_PLUGINS": ""})
    reference = pluggy.PluginManager("tallyclerk")
    reference.add_hookspecs(hookspecs)
    for name, plugin in pm.list_name_plugin():  # in registration order
        reference.register(plugin, name=name)
    table = _table(pm)
    assert dict(table)["tallyclerk_batch_finish"][-1][0] == "odd_plugin"  # the probe works
    assert table == _table(reference)


# Issue 16.1: ``@dataclass`` compiles each generated method (``__init__``, ``__repr__``,
# ``__eq__``, a frozen class's ``__setattr__``...) when its module is imported, 0.3-2 ms a class
# on every start. Outside the audit store, a plain load defines dataclasses only for the public
# API (what users build, compare, print, or read with ``dataclasses.fields``/``asdict``); the
# pipeline's own records (BatchRun, FileState, FilePlan, RejectPolicy, Backoff, Outcome) are
# plain classes and WriteMode a named tuple. A new internal dataclass on the load path fails
# here: make it a plain class, or import it where it is used.
DATACLASS_PROBE = """
import dataclasses, sys
import tallyclerk
report = tallyclerk.load(sys.argv[1], table="t", into=sys.argv[2])
assert report.status == "succeeded", report
found = set()
for name, module in list(sys.modules.items()):
    if name.startswith("tallyclerk.") and not name.startswith("tallyclerk.audit"):
        for value in list(vars(module).values()):
            if (isinstance(value, type) and value.__module__ == name
                    and dataclasses.is_dataclass(value)):
                found.add(f"{name}.{value.__qualname__}")
print(" ".join(sorted(found)))
"""

PUBLIC_DATACLASSES = {
    "tallyclerk.dburl.DbUrl",
    "tallyclerk.protocols.BatchContext",
    "tallyclerk.protocols.Config",
    "tallyclerk.report.FileReport",
    "tallyclerk.progress.LoadProgress",
    "tallyclerk.report.LoadReport",
    "tallyclerk.session.LoadRequest",
    "tallyclerk.settings.Settings",
    "tallyclerk.repairreport.RepairReport",
}


def test_a_plain_load_defines_dataclasses_only_for_the_public_api(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "one.csv", [(1, "a", 1.5)])
    out = probe(DATACLASS_PROBE, str(src), f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    found = set(out.splitlines()[-1].split())
    assert "tallyclerk.settings.Settings" in found  # the probe works
    assert sorted(found - PUBLIC_DATACLASSES) == []


def test_a_plain_load_creates_no_progress_nor_repair_report(tmp_path: Path) -> None:
    """``LoadProgress`` (built only for a ``progress`` callback) and ``RepairReport`` (only by
    ``repair``) are defined in modules of their own, imported when first asked for; their old
    homes hand out the same classes."""
    src = write_csv(tmp_path / "one.csv", [(1, "a", 1.5)])
    out = probe(API_PROBE, str(src), f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    modules = set(out.splitlines()[-1].split())
    assert "tallyclerk.report" in modules and "tallyclerk.settle" in modules  # the probe works
    assert sorted(m for m in ("tallyclerk.progress", "tallyclerk.repairreport")
                  if m in modules) == []
    import tallyclerk
    from tallyclerk import progress, repairreport, report, settle

    assert tallyclerk.LoadProgress is report.LoadProgress is progress.LoadProgress
    assert tallyclerk.RepairReport is settle.RepairReport is repairreport.RepairReport
    assert settle.OUTCOMES == repairreport.OUTCOMES


SKIP_PROBE = """
import sys
import tallyclerk
first = tallyclerk.load(sys.argv[1], table="t", into=sys.argv[2])
seen = "tallyclerk.audit.skiptypes" in sys.modules
again = tallyclerk.load(sys.argv[1], table="t", into=sys.argv[2])
print(first.status, seen, [f.status for f in again.files],
      "tallyclerk.audit.skiptypes" in sys.modules)
"""


def test_a_new_file_creates_no_file_skip_nor_reject_row(tmp_path: Path) -> None:
    """``FileSkip`` and ``RejectRow`` (``tallyclerk.audit.skiptypes``) are created when a file
    is skipped or a row rejected, not on a load of a new file; ``tallyclerk.audit`` and
    ``tallyclerk.audit.types`` hand out the same classes."""
    src = write_csv(tmp_path / "one.csv", [(1, "a", 1.5)])
    out = probe(SKIP_PROBE, str(src), f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    assert out.splitlines()[-1] == "succeeded False ['skipped'] True"
    from tallyclerk import audit
    from tallyclerk.audit import skiptypes, types

    assert audit.FileSkip is types.FileSkip is skiptypes.FileSkip
    assert audit.RejectRow is types.RejectRow is skiptypes.RejectRow


# Issue 16.1, the audit modules' imports: the host and user names of a batch come from
# ``os.uname()`` and the environment / ``pwd`` (not ``socket`` with ``selectors`` and ``array``,
# nor ``getpass`` with ``termios``), and the hash chain and the schema fingerprints use CPython's
# own SHA-256 (``tallyclerk.digest``), not OpenSSL's through ``hashlib``. The chain is sealed,
# never verified, so its report's dataclasses (``tallyclerk.audit.chainreport``) are not
# created, nor the uncertain files' (``tallyclerk.audit.uncertain``: only with an audit store
# in another database).
AUDIT_PROBE = """
import sqlite3, sys
import tallyclerk
report = tallyclerk.load(sys.argv[1], table="t", into=sys.argv[2])
assert report.status == "succeeded", report
row = sqlite3.connect(sys.argv[2].removeprefix("sqlite:///")).execute(
    "SELECT host, user, chain_hash FROM tallyclerk_batches").fetchone()
print(row[0], row[1], row[2] is not None)
print(" ".join(sorted(sys.modules)))
"""
NOT_FOR_THE_AUDIT_STORE = ("socket", "getpass", "termios", "hashlib", "_hashlib",
                           "tallyclerk.audit.chainreport", "tallyclerk.audit.uncertain")


@pytest.mark.parametrize("who", [{}, {"LOGNAME": "", "USER": "", "LNAME": "lname"},
                                 {"LOGNAME": "logname", "USER": "user"}])
def test_the_audit_store_imports_no_socket_getpass_nor_openssl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, who: dict[str, str]
) -> None:
    import getpass
    import socket

    src = write_csv(tmp_path / "one.csv", [(1, "a", 1.5)])
    env = env_for(TALLYCLERK_LOAD_PLUGINS="")
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        env.pop(name, None)
    env.update(who)
    out = probe(AUDIT_PROBE, str(src), f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path, env=env)
    names, modules = out.splitlines()[-2:]
    assert "tallyclerk.audit.chain" in modules.split()  # the probe works
    assert sorted(m for m in NOT_FOR_THE_AUDIT_STORE if m in modules.split()) == []
    # the batch's host and user, as socket and getpass name them
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in who.items():
        monkeypatch.setenv(name, value)
    assert names.split() == [socket.gethostname(), getpass.getuser(), "True"]


def test_the_chain_reexports_its_report_and_uncertain_its_target_identity() -> None:
    """What moved out of ``chain`` and ``uncertain`` (imported when asked for) is still there,
    the same objects."""
    from tallyclerk import VerifyReport
    from tallyclerk.audit import chain, chainreport, datatarget, uncertain

    assert chain.VerifyReport is chainreport.VerifyReport is VerifyReport
    assert chain.Break is chainreport.Break
    assert VerifyReport().head_hash == chain.GENESIS
    assert (uncertain.OPTION, uncertain.target_key) == (datatarget.OPTION, datatarget.target_key)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        chain.Nope  # noqa: B018


def test_the_audit_rows_annotations_are_not_compiled_at_start_up() -> None:
    """``audit.rows`` is imported without ``from __future__ import annotations``: with it,
    ``typing.NamedTuple`` compiles each of the ~100 string annotations into a ``ForwardRef``
    (~0.7 ms of every start). The resolved hints are the same."""
    import typing
    from datetime import datetime

    from tallyclerk.audit import rows

    for row_type in rows.SPECS:
        hints = typing.get_type_hints(row_type)
        assert list(hints) == list(row_type._fields)
        assert not [a for a in row_type.__annotations__.values()
                    if isinstance(a, (str, typing.ForwardRef))], row_type
    assert typing.get_type_hints(rows.Batch)["finished_at"] == datetime | None


CONSOLE_PROBE = """
import gc, sys
import tallyclerk.cli
light = sorted(m for m in ("argparse", "pluggy", "orjson", "tallyclerk.cli.app",
                           "tallyclerk.hookspecs") if m in sys.modules)
import tallyclerk.cli.app
seen = []
real = tallyclerk.cli.app.console_main
def console_main():
    seen.append(gc.isenabled())
    real()
tallyclerk.cli.app.console_main = console_main
import atexit
atexit.register(lambda: print("light:", light, "gc enabled at the command:", seen))
sys.argv = ["tallyclerk", "plugins"]
tallyclerk.cli.console_main()
"""


def test_the_console_entry_imports_the_cli_only_once_the_collector_is_paused(
    tmp_path: Path,
) -> None:
    """``tallyclerk.cli`` (the console script's module) imports nothing heavy itself, so the
    collector is paused before the command line's modules are imported; ``tallyclerk``
    itself imports neither pluggy nor the hook specifications, and ``hookimpl`` is still
    importable from it."""
    out = probe(CONSOLE_PROBE, cwd=tmp_path)
    assert "light: [] gc enabled at the command: [False]" in out, out
    from tallyclerk import hookimpl

    assert hookimpl is hookspecs.hookimpl
