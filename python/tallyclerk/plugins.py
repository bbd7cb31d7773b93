"""The plugin manager: built-in plugins, entry-point plugins and ``-p`` plugins.

Loading order (as datasette and llm do it):

1. Entry points of the ``tallyclerk`` group (``pm.load_setuptools_entrypoints``). The built-in
   plugins are declared there too, by tallyclerk's own ``pyproject.toml``.
2. :data:`DEFAULT_PLUGINS` that step 1 did not load (a source checkout without an install,
   or ``TALLYCLERK_LOAD_PLUGINS``) are registered by module path.
3. ``-p MODULE`` plugins of this run (``-p no:NAME`` blocks a plugin instead).

Environment:

``TALLYCLERK_LOAD_PLUGINS``
    Unset: every installed plugin loads. Set to a comma-separated list: only the entry-point
    plugins named there load (by entry-point name or distribution name); the built-ins always
    load. Set to the empty string: no third-party plugin loads, only the built-ins.
``TALLYCLERK_TRACE_PLUGINS``
    Set (non-empty, not ``0``): every hook call and its result are logged at INFO level
    to the ``tallyclerk.plugins.trace`` logger.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import types
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

import pluggy

from tallyclerk import hookspecs
from tallyclerk.errors import ConfigError

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "get_plugin_manager",
    "list_plugins",
]

log = logging.getLogger("tallyclerk.plugins")
trace_log = logging.getLogger("tallyclerk.plugins.trace")

ENTRY_POINT_GROUP = "tallyclerk"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "tallyclerk.builtins.csv_loader",
    "tallyclerk.builtins.jsonl_loader",
    "tallyclerk.builtins.tableschema_validator",
    "tallyclerk.builtins.sqlite_sink",
    "tallyclerk.builtins.postgres_sink",
    "tallyclerk.builtins.sqlalchemy_sink",
    "tallyclerk.metrics",
)

PluginInfo = dict[str, Any]


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _allowed_entry_points(allow: Sequence[str]) -> list[str]:
    """Entry-point names of the group matching the allow-list (by entry-point or dist name)."""
    wanted = {_normalize(a) for a in allow}
    names: list[str] = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        dist_name = _normalize(dist.metadata["name"]) if dist is not None else ""
        if ep.value in DEFAULT_PLUGINS:
            continue
        if _normalize(ep.name) in wanted or dist_name in wanted:
            names.append(ep.name)
    return names


def _trace(pm: pluggy.PluginManager) -> None:
    def before(
        hook_name: str, hook_impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]
    ) -> None:
        trace_log.info(
            "call %s(%s) -> %s",
            hook_name,
            ", ".join(sorted(kwargs)),
            [impl.plugin_name for impl in hook_impls],
        )

    def after(
        outcome: pluggy.Result[Any],
        hook_name: str,
        hook_impls: Sequence[pluggy.HookImpl],
        kwargs: Mapping[str, Any],
    ) -> None:
        if outcome.exception is not None:
            trace_log.info("%s raised %s", hook_name, type(outcome.exception).__name__)
        else:
            trace_log.info("%s returned %r", hook_name, outcome.get_result())

    pm.add_hookcall_monitoring(before, after)


def _env_flag(value: str | None) -> bool:
    return bool(value) and value not in ("0", "false", "no")


def get_plugin_manager(
    plugins: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
) -> pluggy.PluginManager:
    """A new plugin manager with the built-in, installed and requested plugins registered.

    :param plugins: ``-p`` values: module paths to import and register for this run, or
        ``no:NAME`` to block the plugin registered under NAME.
    :param env: the environment (``os.environ`` by default); see the module docstring.
    :raises ConfigError: a ``-p`` module cannot be imported.
    """
    env = os.environ if env is None else env
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    if _env_flag(env.get("TALLYCLERK_TRACE_PLUGINS")):
        _trace(pm)

    extra: list[str] = []
    for spec in plugins:
        if spec.startswith("no:"):
            pm.set_blocked(spec[3:])
        else:
            extra.append(spec)

    allow = env.get("TALLYCLERK_LOAD_PLUGINS")
    if allow is None:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    else:
        for name in _allowed_entry_points([a.strip() for a in allow.split(",") if a.strip()]):
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)

    for module_path in DEFAULT_PLUGINS:
        if pm.is_blocked(module_path) or pm.has_plugin(module_path):
            continue
        module = importlib.import_module(module_path)
        if not pm.is_registered(module):
            pm.register(module, name=module_path)

    for module_path in extra:
        if pm.has_plugin(module_path) or pm.is_blocked(module_path):
            continue
        try:
            module = importlib.import_module(module_path)
        except ImportError as exc:
            raise ConfigError(f"plugin {module_path!r} cannot be imported: {exc}") from exc
        if not pm.is_registered(module):
            pm.register(module, name=module_path)
    return pm


def _plugin_name(pm: pluggy.PluginManager, plugin: object) -> str:
    name = pm.get_name(plugin)
    if name is not None:
        return name
    if isinstance(plugin, types.ModuleType):
        return plugin.__name__
    return type(plugin).__name__


def list_plugins(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Every registered plugin: ``{"name", "module", "version", "builtin", "hooks"}``.

    ``version`` is the version of the distribution that declared the plugin's entry point
    (tallyclerk's own for built-ins), or None for a ``-p`` module outside any distribution.
    """
    from tallyclerk import __version__

    distinfo = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    out: list[PluginInfo] = []
    for plugin in pm.get_plugins():
        name = _plugin_name(pm, plugin)
        if isinstance(plugin, types.ModuleType):
            module = plugin.__name__
        else:
            module = type(plugin).__module__
        dist = distinfo.get(id(plugin))
        builtin = module in DEFAULT_PLUGINS
        version: str | None
        if dist is not None:
            version = dist.version
            dist_name: str | None = dist.project_name
        elif builtin:
            version, dist_name = __version__, "tallyclerk"
        else:
            version, dist_name = None, None
        callers = pm.get_hookcallers(plugin) or []
        out.append(
            {
                "name": name,
                "module": module,
                "distribution": dist_name,
                "version": version,
                "builtin": builtin,
                "hooks": sorted(h.name for h in callers),
            }
        )
    out.sort(key=lambda p: (not p["builtin"], p["name"]))
    return out
