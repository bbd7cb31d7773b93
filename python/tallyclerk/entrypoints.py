"""A group's installed entry points, read without ``importlib.metadata``.

Scanning the installed plugins with ``importlib.metadata`` costs a one-row load about 25 ms of
CPU (importing it with ``email``, ``zipfile``, ``csv``... and reading every distribution's
metadata), spent even when no third-party plugin is installed (issue 16.1).
:func:`group_entries` reads the ``entry_points.txt`` of every ``*.dist-info`` / ``*.egg-info``
on ``sys.path`` directly, as ``importlib.metadata`` finds them and in its order, so the plugin
manager loads installed plugins itself, as pluggy's ``load_setuptools_entrypoints`` would,
and imports ``importlib.metadata`` only when a plugin's distribution is asked for
(``list_plugin_distinfo``: ``tallyclerk plugins``).
Anything it does not read the same way (a zip or egg on ``sys.path``, another finder of
distributions on ``sys.meta_path``, an unreadable directory, text pluggy would fail to parse)
makes it answer None: the caller then takes the full path, whose result and errors stay the
reference.
"""

from __future__ import annotations

import os
import re
import sys

__all__ = ["group_entries", "group_names"]

_SEPARATORS = re.compile(r"[-_.]+")
_NOT_THERE = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def _section_pairs(text: str, group: str, found: list[tuple[str, str]]) -> bool:
    """Add the ``(name, value)`` entry points of section ``group`` of ``text`` to ``found``;
    False when a line in a section is not ``name = value`` (``importlib.metadata`` raises on
    it)."""
    section: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
            continue
        if section is None:
            continue
        name, eq, value = line.partition("=")
        if not eq:
            return False
        if section == group:
            found.append((name.strip(), value.strip()))
    return True


def _metadata_dirs(children: list[str]) -> list[str]:
    """The ``*.dist-info`` / ``*.egg-info`` children of one ``sys.path`` entry in the order
    ``importlib.metadata.distributions()`` yields them: grouped by normalized project name,
    the groups in the order their first member is listed (its ``Lookup``)."""
    groups: dict[str, list[str]] = {}
    for child in children:
        low = child.lower()
        if low.endswith((".dist-info", ".egg-info")):
            name = low.rpartition(".")[0].partition("-")[0]
            groups.setdefault(_SEPARATORS.sub("_", name), []).append(child)
    return [child for members in groups.values() for child in members]


def _finders_are_standard() -> bool:
    import importlib.machinery

    return all(finder is importlib.machinery.PathFinder
               or getattr(finder, "find_distributions", None) is None
               for finder in sys.meta_path)


def group_entries(group: str) -> list[tuple[str, str, str]] | None:
    """Every entry point of ``group`` among the distributions on ``sys.path``: ``(name,
    value, metadata directory)`` in the order ``importlib.metadata.distributions()`` lists
    them (repeats kept; the directory as ``importlib.metadata`` names it, ``os.path.join``
    of the ``sys.path`` entry and the child), or None when only ``importlib.metadata`` can
    tell."""
    if not _finders_are_standard():
        return None
    found: list[tuple[str, str, str]] = []
    for entry in sys.path:
        if not isinstance(entry, str) or entry.lower().endswith(".egg"):
            return None
        root = entry or "."
        try:
            children = os.listdir(root)
        except FileNotFoundError:
            continue  # importlib.metadata finds nothing there either
        except OSError:
            return None  # a zip file, an unreadable directory...
        for child in _metadata_dirs(children):
            try:
                with open(os.path.join(root, child, "entry_points.txt"), encoding="utf-8") as fh:
                    text = fh.read()
            except _NOT_THERE:
                continue
            except (OSError, UnicodeDecodeError):
                return None
            pairs: list[tuple[str, str]] = []
            if not _section_pairs(text, group, pairs):
                return None
            found.extend((name, value, os.path.join(entry, child)) for name, value in pairs)
    return found


def group_names(group: str) -> list[str] | None:
    """Every entry-point name of ``group`` among the distributions on ``sys.path`` (in
    ``sys.path`` order, repeats kept), or None when only ``importlib.metadata`` can tell."""
    entries = group_entries(group)
    return None if entries is None else [name for name, _value, _where in entries]
