"""The plugin manager: built-in plugins, entry-point plugins and ``-p`` plugins.

Loading order, the same from a wheel and from a source checkout:

1. :data:`DEFAULT_PLUGINS`, the built-ins, in that order, registered under their module path
   (which is also their entry-point name in tallyclerk's own ``pyproject.toml``, so step 2
   does not load them twice).
2. Entry points of the ``tallyclerk`` group (``pm.load_setuptools_entrypoints``): every
   installed plugin, or those ``TALLYCLERK_LOAD_PLUGINS`` allows. The installed entry points
   are read without ``importlib.metadata`` (:mod:`tallyclerk.entrypoints`) and loaded as
   pluggy would (same order, same names); ``importlib.metadata`` is imported only when a
   plugin's distribution is asked for (``list_plugin_distinfo``), or when the direct read
   cannot tell (then pluggy's own scan runs).
3. ``-p MODULE`` plugins of this run (``-p no:NAME`` blocks a plugin instead).

Hooks run in LIFO registration order, so every installed and ``-p`` plugin runs before the
built-ins. The built-in loaders and sinks are also ``trylast``: a plugin claiming the same
format or URL scheme wins over them whatever its markers, unless it is ``trylast`` itself.
Among the built-in sinks the SQLite sink is asked first, then the PostgreSQL sink, then the
generic SQLAlchemy sink.

A plugin *name*, in ``-p no:NAME`` and in ``TALLYCLERK_LOAD_PLUGINS`` alike, is its
entry-point name, its distribution's name or its module's name (``-``, ``_`` and ``.`` are
interchangeable, case is ignored): for the Parquet plugin ``parquet``, ``tallyclerk-parquet``
or ``tallyclerk_parquet``. A name that matches no plugin is a usage error (exit 2).

Environment:

``TALLYCLERK_LOAD_PLUGINS``
    Unset: every installed plugin loads. Set to a comma-separated list of plugin names: only
    the installed plugins named there load; the built-ins always load. Set to the empty
    string: no third-party plugin loads, only the built-ins.
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
from typing import Any

import pluggy

from tallyclerk import hookspecs
from tallyclerk.errors import ConfigError

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "declared_formats",
    "get_plugin_manager",
    "list_plugins",
]

log = logging.getLogger("tallyclerk.plugins")
trace_log = logging.getLogger("tallyclerk.plugins.trace")

ENTRY_POINT_GROUP = "tallyclerk"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "tallyclerk.builtins.csv_loader",
    "tallyclerk.builtins.jsonl_loader",
    "tallyclerk.builtins.tsv_loader",
    "tallyclerk.builtins.tableschema_validator",
    # trylast, so asked in registration order (pluggy calls trylast ones first-in first-out):
    # SQLite, PostgreSQL, DuckDB, then the generic SQLAlchemy sink
    "tallyclerk.builtins.sqlite_sink",
    "tallyclerk.builtins.postgres_sink",
    "tallyclerk.builtins.duckdb_sink",
    "tallyclerk.builtins.sqlalchemy_sink",
    "tallyclerk.metrics",
)
"""The built-in plugins, registered first (so every other plugin runs before them)."""

PluginInfo = dict[str, Any]


_DEFER = object()
# values pluggy (any supported version) never takes for a hook: modules, literals, pluggy's
# markers, ``from __future__ import annotations`` (classes: see _module_marker)
_NOT_HOOKS = frozenset({types.ModuleType, str, bytes, int, float, bool, tuple, list, dict, set,
                        frozenset, type(None), pluggy.HookimplMarker, pluggy.HookspecMarker,
                        type(annotations)})
# names whose module attribute is ModuleType's own data descriptor, not the module's value
_MODULE_DESCRIPTORS = frozenset({"__dict__", "__annotations__"})


def _module_marker(obj: object, name: str, marker: str) -> Any:
    """The marker options of ``obj.name`` when ``obj`` is a module and the value is plainly
    a function (its ``marker`` attribute, as pluggy reads it) or plainly no hook (None);
    :data:`_DEFER` for anything else, left to pluggy's own look-up.

    pluggy looks at every name of a plugin with ``inspect.getattr_static``, about 8 us a name
    (~2 ms for the built-ins' 330 names at each start, issue 16.1); a module's plain values
    need no descriptor protocol.
    """
    if type(obj) is not types.ModuleType or name in _MODULE_DESCRIPTORS:
        return _DEFER
    value = obj.__dict__.get(name, _DEFER)
    kind = type(value)
    if kind is types.FunctionType:
        opts = value.__dict__.get(marker)
        return opts if isinstance(opts, dict) else None
    if kind in _NOT_HOOKS or (isinstance(value, type) and not hasattr(kind, "__get__")):
        return None  # a class is a hook only when its metaclass makes it a descriptor
    return _DEFER


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager, reading module plugins' plain functions and values directly, and
    loading installed plugins without ``importlib.metadata`` (:func:`_load_entry_points`):
    their distributions are recorded as metadata directories and become
    ``importlib.metadata`` distributions when first asked for."""

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        self._dist_dirs: list[tuple[object, str]] = []

    def _add_dist_dir(self, plugin: object, where: str) -> None:
        self._dist_dirs.append((plugin, where))

    def _settle_dists(self) -> None:
        """Append the recorded distributions to pluggy's list, as its own
        ``load_setuptools_entrypoints`` does (raw distributions from pluggy 1.6 on,
        wrapped before)."""
        if not self._dist_dirs:
            return
        from importlib.metadata import PathDistribution
        from pathlib import Path

        pending, self._dist_dirs = self._dist_dirs, []
        raw = hasattr(pluggy.PluginManager, "list_plugin_distributions")
        for plugin, where in pending:
            dist: Any = PathDistribution(Path(where))
            if not raw:
                from pluggy._manager import DistFacade  # type: ignore[attr-defined]

                dist = DistFacade(dist)
            self._plugin_distinfo.append((plugin, dist))

    def list_plugin_distinfo(self) -> Any:
        self._settle_dists()
        return super().list_plugin_distinfo()

    def list_plugin_distributions(self) -> Any:
        self._settle_dists()
        return super().list_plugin_distributions()

    def load_setuptools_entrypoints(self, group: str, name: str | None = None) -> int:
        self._settle_dists()
        return super().load_setuptools_entrypoints(group, name)

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = _module_marker(plugin, name, self.project_name + "_impl")
        return super().parse_hookimpl_opts(plugin, name) if opts is _DEFER else opts

    def parse_hookspec_opts(self, module_or_class: Any, name: str) -> Any:
        opts = _module_marker(module_or_class, name, self.project_name + "_spec")
        if opts is _DEFER:
            return super().parse_hookspec_opts(module_or_class, name)
        return opts


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _entry_points() -> list[tuple[str, str, str]]:
    """``(entry-point name, module, distribution name)`` of every installed plugin.

    Read without ``importlib.metadata`` (:func:`tallyclerk.entrypoints.group_entries_by_project`:
    the same entries, distributions and names) unless only it can tell; then it (with
    ``email``, ``zipfile``, ``csv``...) is imported here, not with this module.
    """
    from tallyclerk.entrypoints import group_entries_by_project

    direct = group_entries_by_project(ENTRY_POINT_GROUP)
    if direct is not None:  # read as importlib.metadata reads it, without importing it
        return [(name, value.split(":", 1)[0].strip(), project)
                for name, value, project in direct]
    from importlib import metadata

    found: list[tuple[str, str, str]] = []
    names: dict[int, str] = {}  # each distribution's metadata parsed once, not once an entry
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        if dist is None:
            dist_name = ""
        elif id(dist) in names:
            dist_name = names[id(dist)]
        else:  # (tallyclerk's own METADATA holds its whole README: ~3 ms to parse)
            dist_name = names[id(dist)] = str(dist.metadata["name"])
        found.append((ep.name, ep.value.split(":", 1)[0].strip(), dist_name))
    return found


def resolve_name(
    name: str,
    modules: Sequence[str] = (),
    *,
    installed: Sequence[tuple[str, str, str]] | None = None,
) -> tuple[set[str], set[str]]:
    """What a plugin name given by a user stands for: ``(entry-point names, module names)``.

    ``name`` may be an entry-point, distribution or module name (compared normalized); both
    sets are empty when no installed plugin, built-in or one of ``modules`` matches.
    """
    wanted = _normalize(name)
    eps: set[str] = set()
    mods: set[str] = set()
    for ep_name, module, dist_name in _entry_points() if installed is None else installed:
        if wanted in (_normalize(ep_name), _normalize(module), _normalize(dist_name)):
            eps.add(ep_name)
            mods.add(module)
    for module in (*DEFAULT_PLUGINS, *modules):
        if _normalize(module) == wanted:
            mods.add(module)
    return eps, mods


def _unknown(name: str, where: str) -> ConfigError:
    known = sorted({ep for ep, _m, _d in _entry_points()} | set(DEFAULT_PLUGINS))
    return ConfigError(
        f"{where}: no plugin named {name!r} (give an entry-point, distribution or module "
        f"name; installed: {', '.join(known)})"
    )


def _allowed_entry_points(allow: Sequence[str]) -> list[str]:
    """Entry-point names of the installed (not built-in) plugins named in the allow-list.

    :raises ConfigError: a name matches no plugin.
    """
    names: list[str] = []
    if not allow:
        return names  # TALLYCLERK_LOAD_PLUGINS="": built-ins only, no importlib.metadata
    installed = _entry_points()  # once (each read scans every distribution)
    for wanted in allow:
        eps, mods = resolve_name(wanted, installed=installed)
        if not eps and not mods:
            raise _unknown(wanted, "TALLYCLERK_LOAD_PLUGINS")
        for ep_name, module, _dist in installed:
            if ep_name in eps and module not in DEFAULT_PLUGINS and ep_name not in names:
                names.append(ep_name)
    return names


# importlib.metadata.EntryPoint.pattern: what EntryPoint.load() imports and looks up
# (compiled on first use: only a third-party plugin needs it)
_ENTRY_POINT_VALUE = (
    r"(?P<module>[\w.]+)\s*"
    r"(:\s*(?P<attr>[\w.]+)\s*)?"
    r"((?P<extras>\[.*\])\s*)?$"
)


def _load_entry_points(pm: _PluginManager, names: Sequence[str] | None = None) -> None:
    """Load every installed plugin (or those of ``names``, one name after the other), as
    ``pm.load_setuptools_entrypoints(group[, name])`` does: in
    ``importlib.metadata.distributions()`` order, each entry point neither registered (the
    built-ins are, under their entry-point names) nor blocked is loaded (``EntryPoint.load``)
    and registered under its name. The entry points are read without ``importlib.metadata``
    (:mod:`tallyclerk.entrypoints`, ~20 ms less a start with a plugin installed); when only
    it can tell, or a value is one ``EntryPoint.load`` would fail on, pluggy's own scan runs,
    so its result and errors stay the reference."""
    if names is not None and not names:
        return
    from tallyclerk.entrypoints import group_entries

    entries = group_entries(ENTRY_POINT_GROUP)
    if entries is not None:
        entries = [e for e in entries if (names is None or e[0] in names)
                   and not pm.has_plugin(e[0]) and not pm.is_blocked(e[0])]
    if entries is None or not all(re.match(_ENTRY_POINT_VALUE, v) for _n, v, _w in entries):
        for only in [None] if names is None else names:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=only)
        return
    for only, (name, value, where) in [
        (only, entry) for only in ([None] if names is None else names) for entry in entries
    ]:
        if (only is not None and name != only) or pm.has_plugin(name) or pm.is_blocked(name):
            continue  # another name's, or an earlier distribution's of the same name
        match = re.match(_ENTRY_POINT_VALUE, value)
        assert match is not None  # checked above
        plugin: Any = importlib.import_module(match.group("module"))
        for attr in filter(None, (match.group("attr") or "").split(".")):
            plugin = getattr(plugin, attr)
        pm.register(plugin, name=name)
        pm._add_dist_dir(plugin, where)


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
        ``no:NAME`` to block the plugin named NAME (entry-point, distribution or module name).
    :param env: the environment (``os.environ`` by default); see the module docstring.
    :raises ConfigError: a ``-p`` module cannot be imported, or ``-p no:NAME`` or
        ``TALLYCLERK_LOAD_PLUGINS`` names no plugin.
    """
    env = os.environ if env is None else env
    pm = _PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    if _env_flag(env.get("TALLYCLERK_TRACE_PLUGINS")):
        _trace(pm)

    extra = [spec for spec in plugins if not spec.startswith("no:")]
    for spec in plugins:
        if spec.startswith("no:"):
            eps, mods = resolve_name(spec[3:], extra)
            if not eps and not mods:
                raise _unknown(spec[3:], f"-p {spec}")
            for blocked in eps | mods:
                pm.set_blocked(blocked)

    for module_path in DEFAULT_PLUGINS:
        if pm.is_blocked(module_path) or pm.has_plugin(module_path):
            continue
        module = importlib.import_module(module_path)
        if not pm.is_registered(module):
            pm.register(module, name=module_path)

    allow = env.get("TALLYCLERK_LOAD_PLUGINS")
    if allow is None:
        _load_entry_points(pm)
    else:
        _load_entry_points(
            pm, _allowed_entry_points([a.strip() for a in allow.split(",") if a.strip()]))

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


def declared_formats(pm: pluggy.PluginManager) -> dict[str, tuple[str, ...]]:
    """Every format the loaders declare (``tallyclerk_formats``): name -> suffixes, names in
    lower case; a name two loaders declare keeps the suffixes of both."""
    merged: dict[str, tuple[str, ...]] = {}
    for declared in pm.hook.tallyclerk_formats():
        for name, suffixes in dict(declared or {}).items():
            key = str(name).lower()
            merged[key] = tuple(dict.fromkeys([*merged.get(key, ()), *map(str, suffixes)]))
    return merged


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
