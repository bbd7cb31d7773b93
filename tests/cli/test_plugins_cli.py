"""Plugin loading end to end: entry points, -p, TALLYCLERK_LOAD_PLUGINS, ``tallyclerk plugins``.

A throwaway distribution (``tc-fake-plugin`` 1.2.3, a ``.dist-info`` directory on PYTHONPATH)
declares an entry point in the ``tallyclerk`` group, exactly as an installed plugin would.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli.conftest import env_for, query, tallyclerk

BUILTINS = {
    "tallyclerk.builtins.csv_loader",
    "tallyclerk.builtins.jsonl_loader",
    "tallyclerk.builtins.tableschema_validator",
    "tallyclerk.builtins.sqlite_sink",
    "tallyclerk.builtins.sqlalchemy_sink",
}

FAKE_PLUGIN = '''
from tallyclerk.hookspecs import hookimpl

@hookimpl
def tallyclerk_transform_batch(batch, context):
    batch.set_column("name", ["fake:" + str(v) for v in batch.column("name")])
'''

ONE_RUN_PLUGIN = '''
from tallyclerk.hookspecs import hookimpl

@hookimpl
def tallyclerk_addoption(parser, pluginmanager):
    parser.add_argument("--suffix-with", default="")

@hookimpl
def tallyclerk_transform_batch(batch, context):
    suffix = context.options.get("suffix_with", "")
    batch.set_column("name", [str(v) + suffix for v in batch.column("name")])
'''


@pytest.fixture()
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "tc_fake_plugin.py").write_text(FAKE_PLUGIN, encoding="utf-8")
    (site / "one_run_plugin.py").write_text(ONE_RUN_PLUGIN, encoding="utf-8")
    info = site / "tc_fake_plugin-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tc-fake-plugin\nVersion: 1.2.3\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text("[tallyclerk]\nfake = tc_fake_plugin\n", "utf-8")
    (info / "RECORD").write_text("", encoding="utf-8")
    return site


def env_with(site: Path, **extra: str) -> dict[str, str]:
    env = env_for(**extra)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env["PYTHONPATH"]])
    return env


def plugins(tmp_path: Path, env: dict[str, str], *args: str) -> dict[str, dict]:
    r = tallyclerk("plugins", "--json", *args, cwd=tmp_path, env=env)
    assert r.code == 0, r.err
    return {p["name"]: p for p in r.json()["plugins"]}


def test_plugins_lists_builtins_with_version_and_hooks(tmp_path: Path) -> None:
    listed = plugins(tmp_path, env_for())
    assert BUILTINS <= set(listed)
    csv = listed["tallyclerk.builtins.csv_loader"]
    assert csv["builtin"] is True and csv["version"] == "0.2.0"
    assert csv["hooks"] == ["tallyclerk_formats", "tallyclerk_open_source"]
    assert listed["tallyclerk.builtins.tableschema_validator"]["hooks"] == [
        "tallyclerk_validate_batch"
    ]
    r = tallyclerk("plugins", cwd=tmp_path)
    assert r.code == 0 and "tallyclerk.builtins.sqlite_sink" in r.out and "HOOKS" in r.out


def test_entry_point_plugin_is_loaded_and_listed(tmp_path: Path, site: Path) -> None:
    listed = plugins(tmp_path, env_with(site))
    fake = listed["fake"]
    assert fake["version"] == "1.2.3" and fake["builtin"] is False
    assert fake["distribution"] == "tc-fake-plugin"
    assert fake["hooks"] == ["tallyclerk_transform_batch"]


def test_load_plugins_env_restricts(tmp_path: Path, site: Path) -> None:
    assert "fake" not in plugins(tmp_path, env_with(site, TALLYCLERK_LOAD_PLUGINS=""))
    assert BUILTINS <= set(plugins(tmp_path, env_with(site, TALLYCLERK_LOAD_PLUGINS="")))
    assert "fake" not in plugins(
        tmp_path, env_with(site, TALLYCLERK_LOAD_PLUGINS="tallyclerk.metrics"))
    assert "fake" in plugins(tmp_path, env_with(site, TALLYCLERK_LOAD_PLUGINS="tc-fake-plugin"))
    assert "fake" in plugins(tmp_path, env_with(site, TALLYCLERK_LOAD_PLUGINS="tc_fake_plugin"))
    assert "fake" in plugins(tmp_path, env_with(site, TALLYCLERK_LOAD_PLUGINS=" fake,"))


@pytest.mark.parametrize("name", ["fake", "tc-fake-plugin", "tc_fake_plugin", "TC.Fake_Plugin"])
def test_dash_p_no_and_load_plugins_take_the_same_names(
    tmp_path: Path, site: Path, name: str
) -> None:
    """Entry-point, distribution and module names, in ``-p no:`` as in the allow-list."""
    assert "fake" not in plugins(tmp_path, env_with(site), "-p", f"no:{name}")
    assert "fake" in plugins(tmp_path, env_with(site, TALLYCLERK_LOAD_PLUGINS=name))
    (tmp_path / "a.csv").write_text("id,name\n1,x\n", encoding="utf-8")
    r = tallyclerk("load", "a.csv", "--table", "t", "--json", "-p", f"no:{name}",
                   cwd=tmp_path, env=env_with(site))
    assert r.code == 0, r.err
    assert query(tmp_path / "tallyclerk.db", 'SELECT name FROM "t"') == [("x",)]


@pytest.mark.parametrize("how", ["-p", "env"])
def test_an_unknown_plugin_name_is_a_usage_error(tmp_path: Path, site: Path, how: str) -> None:
    if how == "-p":
        r = tallyclerk("plugins", "-p", "no:tallyclerk-luhn", cwd=tmp_path, env=env_with(site))
    else:
        r = tallyclerk("plugins", cwd=tmp_path,
                       env=env_with(site, TALLYCLERK_LOAD_PLUGINS="fake,tallyclerk-luhn"))
    assert r.code == 2, (r.code, r.err)
    assert "tallyclerk-luhn" in r.err and "Traceback" not in r.err
    assert len(r.err.strip().splitlines()) == 1


CLASHING = '''
from tallyclerk.hookspecs import hookimpl

@hookimpl
def tallyclerk_addoption(parser):
    parser.add_argument("--suffix-with", default="")
'''


def test_two_plugins_adding_one_option_is_a_usage_error_naming_both(
    tmp_path: Path, site: Path
) -> None:
    (site / "clashing_plugin.py").write_text(CLASHING, encoding="utf-8")
    (tmp_path / "a.csv").write_text("id,name\n1,x\n", encoding="utf-8")
    r = tallyclerk("load", "a.csv", "--table", "t", "-p", "one_run_plugin",
                   "-p", "clashing_plugin", cwd=tmp_path, env=env_with(site))
    assert r.code == 2, (r.code, r.err)
    assert "one_run_plugin" in r.err and "clashing_plugin" in r.err and "--suffix-with" in r.err
    assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1
    (site / "clashing_plugin.py").write_text(CLASHING.replace("--suffix-with", "--format"),
                                             encoding="utf-8")
    r = tallyclerk("load", "a.csv", "--table", "t", "-p", "clashing_plugin", cwd=tmp_path,
                   env=env_with(site))
    assert r.code == 2 and "clashing_plugin" in r.err and "--format" in r.err, r.err


def test_entry_point_plugin_runs_in_a_load(tmp_path: Path, site: Path) -> None:
    (tmp_path / "a.csv").write_text("id,name\n1,x\n", encoding="utf-8")
    r = tallyclerk("load", "a.csv", "--table", "t", "--json", cwd=tmp_path, env=env_with(site))
    assert r.code == 0, r.err
    assert query(tmp_path / "tallyclerk.db", 'SELECT name FROM "t"') == [("fake:x",)]


def test_dash_p_loads_a_plugin_for_one_run_with_its_options(tmp_path: Path, site: Path) -> None:
    (tmp_path / "a.csv").write_text("id,name\n1,x\n", encoding="utf-8")
    env = env_with(site, TALLYCLERK_LOAD_PLUGINS="")
    r = tallyclerk("load", "a.csv", "--table", "t", "-p", "one_run_plugin", "--suffix-with", "!",
                   "--json", cwd=tmp_path, env=env)
    assert r.code == 0, r.err
    assert query(tmp_path / "tallyclerk.db", 'SELECT name FROM "t"') == [("x!",)]
    assert "one_run_plugin" in plugins(tmp_path, env, "-p", "one_run_plugin")
    assert "one_run_plugin" not in plugins(tmp_path, env)


def test_dash_p_unknown_module_is_a_usage_error(tmp_path: Path) -> None:
    r = tallyclerk("plugins", "-p", "no_such_module_xyz", cwd=tmp_path)
    assert r.code == 2 and r.err.startswith("tallyclerk: error: ") and "Traceback" not in r.err


def test_dash_p_no_blocks_a_builtin(tmp_path: Path) -> None:
    """Blocking the fast SQLite sink routes sqlite:/// URLs to the generic SQLAlchemy sink."""
    listed = plugins(tmp_path, env_for(), "-p", "no:tallyclerk.builtins.sqlite_sink")
    assert "tallyclerk.builtins.sqlite_sink" not in listed
    (tmp_path / "a.csv").write_text("id,name\n1,x\n2,y\n", encoding="utf-8")
    r = tallyclerk("load", "a.csv", "--table", "t", "--json",
                   "-p", "no:tallyclerk.builtins.sqlite_sink", cwd=tmp_path)
    assert r.code == 0, r.err
    assert query(tmp_path / "tallyclerk.db", 'SELECT count(*) FROM "t"') == [(2,)]


def test_trace_plugins_logs_hook_calls(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,name\n1,x\n", encoding="utf-8")
    r = tallyclerk("load", "a.csv", "--table", "t", "--json", cwd=tmp_path,
                   env=env_for(TALLYCLERK_TRACE_PLUGINS="1"))
    assert r.code == 0
    assert "tallyclerk_open_source" in r.err and "tallyclerk_open_sink" in r.err
    assert r.out.count("\n") == 1  # stdout still carries only the JSON object



def test_builtins_are_declared_as_entry_points() -> None:
    """pyproject.toml declares every built-in as an entry point named by its module path (so
    an installed tallyclerk lists them), and the plugin manager registers them first."""
    import sys

    from tallyclerk.plugins import DEFAULT_PLUGINS, get_plugin_manager
    from tests.clirun import ROOT

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = project["project"]["entry-points"]["tallyclerk"]
    assert declared == {m: m for m in DEFAULT_PLUGINS}
    pm = get_plugin_manager()
    names = [pm.get_name(p) for p in pm.get_plugins()]
    assert set(DEFAULT_PLUGINS) <= set(names)


SINK_OVERRIDE = '''
from tallyclerk.builtins.sqlite_sink import tallyclerk_open_sink as builtin
from tallyclerk.hookspecs import hookimpl

@hookimpl
def tallyclerk_open_sink(url, options):
    if url.startswith("sqlite:"):
        print("override-sink", flush=True)
        return builtin(url=url, options=options)
    return None
'''


@pytest.mark.parametrize("how", ["installed", "-p"])
def test_a_third_party_sink_wins_over_the_builtin_one(
    tmp_path: Path, site: Path, how: str
) -> None:
    """Built-in sinks are trylast and registered first: an unmarked plugin sink claiming the
    same scheme is asked first, installed (entry point) or given with -p."""
    (site / "override_sink.py").write_text(SINK_OVERRIDE, encoding="utf-8")
    if how == "installed":
        (site / "tc_fake_plugin-1.2.3.dist-info" / "entry_points.txt").write_text(
            "[tallyclerk]\nfake = tc_fake_plugin\noverride = override_sink\n", "utf-8")
        extra: tuple[str, ...] = ()
    else:
        extra = ("-p", "override_sink")
    (tmp_path / "a.csv").write_text("id,name\n1,x\n", encoding="utf-8")
    r = tallyclerk("load", "a.csv", "--table", "t", *extra, cwd=tmp_path,
                   env=env_with(site, TALLYCLERK_LOAD_PLUGINS="override,tc_fake_plugin"
                                if how == "installed" else ""))
    assert r.code == 0, r.err
    assert "override-sink" in r.out
