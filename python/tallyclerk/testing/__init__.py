"""Testing tools for tallyclerk plugin authors.

- The pytest plugin (:mod:`tallyclerk.testing.pytest_plugin`, entry point ``pytest11``,
  active wherever tallyclerk is installed): fixtures ``tallyclerk_sqlite_url``,
  ``tallyclerk_audit``, ``tallyclerk_pm``, ``tallyclerk_plugin`` and ``tallyclerk_runner``.
- Conformance suites, like the Singer SDK's test classes: subclass :class:`LoaderConformance`,
  :class:`ValidatorConformance` or :class:`SinkConformance` in a ``Test*`` class, set
  ``plugin = your_module`` and the sample data, and pytest checks your plugin against the
  hook contracts.

Names are imported on first use, so the pytest plugin can register the suites for assertion
rewriting before they are imported (failures then show the compared values).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tallyclerk.testing.loader_suite import LoaderConformance, strict_plugin_manager
    from tallyclerk.testing.runner import CliResult, LoadResult, PluginRegistrar, Runner
    from tallyclerk.testing.sink_suite import SinkConformance
    from tallyclerk.testing.validator_suite import ValidatorConformance

SUITE_MODULES = (
    "tallyclerk.testing.loader_suite",
    "tallyclerk.testing.validator_suite",
    "tallyclerk.testing.sink_suite",
    "tallyclerk.testing.runner",
)

_WHERE = {
    "CliResult": "tallyclerk.testing.runner",
    "LoadResult": "tallyclerk.testing.runner",
    "LoaderConformance": "tallyclerk.testing.loader_suite",
    "PluginRegistrar": "tallyclerk.testing.runner",
    "Runner": "tallyclerk.testing.runner",
    "SinkConformance": "tallyclerk.testing.sink_suite",
    "ValidatorConformance": "tallyclerk.testing.validator_suite",
    "strict_plugin_manager": "tallyclerk.testing.loader_suite",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'tallyclerk.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CliResult",
    "LoadResult",
    "LoaderConformance",
    "PluginRegistrar",
    "Runner",
    "SinkConformance",
    "ValidatorConformance",
    "strict_plugin_manager",
]
