"""The ``tallyclerk`` pytest plugin (entry point ``pytest11``): fixtures for plugin authors.

Installed with tallyclerk; active in every pytest run (``-p no:tallyclerk`` turns it off).

``tallyclerk_sqlite_url``
    a ``sqlite:////abs/path.db`` URL of a fresh file in the test's ``tmp_path``.
``tallyclerk_audit``
    an :class:`~tallyclerk.audit.AuditService` on that file, closed after the test.
``tallyclerk_pm``
    a fresh plugin manager with the built-in and installed plugins (``get_plugin_manager()``);
    in *isolated mode* the built-ins only (plus what the test registers). A test is isolated
    when it is marked ``@pytest.mark.tallyclerk_isolated`` or its class sets
    ``tallyclerk_isolated = True`` (the conformance suites do).
``tallyclerk_plugin``
    ``tallyclerk_plugin(obj_or_module)`` registers a plugin on ``tallyclerk_pm`` for this test
    only (unregistered in ``finally``); ``with tallyclerk_plugin.registered(obj):`` for a block.
``tallyclerk_runner``
    a :class:`~tallyclerk.testing.Runner`: ``tallyclerk_runner.load(paths, table=..., schema=...,
    plugins=[...])`` runs a real load (the CLI's code path, in-process) into the SQLite file and
    returns a :class:`~tallyclerk.testing.LoadResult` (``report``, ``rows()``, ``rejects()``,
    ``check_accounting()``); ``tallyclerk_runner.cli(...)`` runs the real command in a
    subprocess.

The conformance suites (:mod:`tallyclerk.testing`) are built on these fixtures.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tallyclerk.testing import SUITE_MODULES

# before anything imports them: failed checks in the suites show the values they compared
pytest.register_assert_rewrite(*SUITE_MODULES)

if TYPE_CHECKING:
    import pluggy

    from tallyclerk.audit import AuditService
    from tallyclerk.testing.runner import PluginRegistrar, Runner


@pytest.fixture()
def tallyclerk_sqlite_url(tmp_path: Path) -> str:
    """The URL of a fresh SQLite database file (not created yet) in ``tmp_path``."""
    return "sqlite:///" + str(tmp_path / "tallyclerk-test.db")


@pytest.fixture()
def tallyclerk_audit(tallyclerk_sqlite_url: str) -> Iterator[AuditService]:
    """An audit store on ``tallyclerk_sqlite_url`` (its tables created), closed afterwards."""
    from tallyclerk.audit import AuditService

    audit = AuditService(tallyclerk_sqlite_url)
    try:
        yield audit
    finally:
        audit.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "tallyclerk_isolated: the tallyclerk fixtures load the built-in plugins only, "
        "no installed plugin (the plugin under test is registered by the test)",
    )


def isolated(request: pytest.FixtureRequest) -> bool:
    """Whether the requesting test runs in isolated mode (marker or class attribute)."""
    if request.node.get_closest_marker("tallyclerk_isolated") is not None:
        return True
    return bool(getattr(request.cls, "tallyclerk_isolated", False))


@pytest.fixture()
def tallyclerk_pm(request: pytest.FixtureRequest) -> pluggy.PluginManager:
    """A fresh plugin manager: the built-in plugins and every installed plugin, or in
    isolated mode the built-ins only."""
    from tallyclerk.plugins import get_plugin_manager

    if isolated(request):
        return get_plugin_manager(env={**os.environ, "TALLYCLERK_LOAD_PLUGINS": ""})
    return get_plugin_manager()


@pytest.fixture()
def tallyclerk_plugin(tallyclerk_pm: pluggy.PluginManager) -> Iterator[PluginRegistrar]:
    """Register plugins on ``tallyclerk_pm`` for this test; all unregistered at its end."""
    from tallyclerk.testing.runner import PluginRegistrar

    registrar = PluginRegistrar(tallyclerk_pm)
    try:
        yield registrar
    finally:
        registrar.close()


@pytest.fixture()
def tallyclerk_runner(
    request: pytest.FixtureRequest,
    tallyclerk_pm: pluggy.PluginManager,
    tmp_path: Path,
    tallyclerk_sqlite_url: str,
) -> Runner:
    """Runs real loads into ``tallyclerk_sqlite_url`` with ``tallyclerk_pm`` (isolated mode:
    ``runner.cli`` loads no installed plugin either)."""
    from tallyclerk.testing.runner import Runner

    return Runner(tallyclerk_pm, tmp_path, tallyclerk_sqlite_url, isolated=isolated(request))
