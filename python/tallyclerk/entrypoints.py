"""The names of a group's installed entry points, read without ``importlib.metadata``.

Scanning the installed plugins with ``importlib.metadata`` costs a one-row load about 25 ms of
CPU (importing it with ``email``, ``zipfile``, ``csv``... and reading every distribution's
metadata), spent even when no third-party plugin is installed (issue 16.1).
:func:`group_names` reads the ``entry_points.txt`` of every ``*.dist-info`` / ``*.egg-info``
on ``sys.path`` directly, as ``importlib.metadata`` finds them, so the plugin manager asks
``importlib.metadata`` (and pluggy) only when an entry point it has not registered yet exists.
Anything it does not read the same way (a zip or egg on ``sys.path``, another finder of
distributions on ``sys.meta_path``, an unreadable directory, text pluggy would fail to parse)
makes it answer None: the caller then takes the full path, whose result and errors stay the
reference.
"""

from __future__ import annotations

import os
import sys

__all__ = ["group_names"]

_NOT_THERE = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def _section_names(text: str, group: str, names: list[str]) -> bool:
    """Add the entry-point names of section ``group`` of ``text`` to ``names``; False when a
    line in a section is not ``name = value`` (``importlib.metadata`` raises on it)."""
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
        name, eq, _value = line.partition("=")
        if not eq:
            return False
        if section == group:
            names.append(name.strip())
    return True


def _finders_are_standard() -> bool:
    import importlib.machinery

    return all(finder is importlib.machinery.PathFinder
               or getattr(finder, "find_distributions", None) is None
               for finder in sys.meta_path)


def group_names(group: str) -> list[str] | None:
    """Every entry-point name of ``group`` among the distributions on ``sys.path`` (in
    ``sys.path`` order, repeats kept), or None when only ``importlib.metadata`` can tell."""
    if not _finders_are_standard():
        return None
    names: list[str] = []
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
        for child in children:
            if not child.lower().endswith((".dist-info", ".egg-info")):
                continue
            try:
                with open(os.path.join(root, child, "entry_points.txt"), encoding="utf-8") as fh:
                    text = fh.read()
            except _NOT_THERE:
                continue
            except (OSError, UnicodeDecodeError):
                return None
            if not _section_names(text, group, names):
                return None
    return names
