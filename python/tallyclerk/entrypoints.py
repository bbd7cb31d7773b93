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
from collections.abc import Iterator

__all__ = ["group_entries", "group_entries_by_project", "group_names"]

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


def _distributions() -> list[tuple[str, str]] | None:
    """``(sys.path entry, metadata directory name)`` of every distribution, in the order
    ``importlib.metadata.distributions()`` lists them, or None when only it can tell."""
    if not _finders_are_standard():
        return None
    found: list[tuple[str, str]] = []
    for entry in sys.path:
        if not isinstance(entry, str) or entry.lower().endswith(".egg"):
            return None
        try:
            children = os.listdir(entry or ".")
        except FileNotFoundError:
            continue  # importlib.metadata finds nothing there either
        except OSError:
            return None  # a zip file, an unreadable directory...
        found.extend((entry, child) for child in _metadata_dirs(children))
    return found


def _read(entry: str, child: str, name: str) -> str | None:
    """A metadata file's text as ``importlib.metadata`` reads it (None: not there).

    :raises OSError: (or ``UnicodeDecodeError``) a read ``importlib.metadata`` would fail."""
    try:
        with open(os.path.join(entry or ".", child, name), encoding="utf-8") as fh:
            return fh.read()
    except _NOT_THERE:
        return None


def _entries_of(
    dists: list[tuple[str, str]], group: str
) -> list[tuple[str, str, str, str]] | None:
    found: list[tuple[str, str, str, str]] = []
    for entry, child in dists:
        try:
            text = _read(entry, child, "entry_points.txt")
        except (OSError, UnicodeDecodeError):
            return None
        if text is None:
            continue
        pairs: list[tuple[str, str]] = []
        if not _section_pairs(text, group, pairs):
            return None
        found.extend((name, value, entry, child) for name, value in pairs)
    return found


def group_entries(group: str) -> list[tuple[str, str, str]] | None:
    """Every entry point of ``group`` among the distributions on ``sys.path``: ``(name,
    value, metadata directory)`` in the order ``importlib.metadata.distributions()`` lists
    them (repeats kept; the directory as ``importlib.metadata`` names it, ``os.path.join``
    of the ``sys.path`` entry and the child), or None when only ``importlib.metadata`` can
    tell."""
    dists = _distributions()
    found = None if dists is None else _entries_of(dists, group)
    if found is None:
        return None
    return [(name, value, os.path.join(entry, child)) for name, value, entry, child in found]


# email's header line (email.feedparser.headerRE); any other line ends the headers
_HEADER_LINE = r"^(From |[\041-\071\073-\176]*:|[\t ])"  # compiled on first use


def _project_name(entry: str, child: str) -> str | None:
    """``str(dist.metadata["name"])`` as ``importlib.metadata`` gives it (the first ``Name``
    header of ``METADATA``, else of ``PKG-INFO``; ``"None"`` without one), or None when only
    it can tell (no such file, a folded or unusual header, an ``mbox`` first line)."""
    try:
        text = _read(entry, child, "METADATA") or _read(entry, child, "PKG-INFO")
    except (OSError, UnicodeDecodeError):
        return None
    if not text or text.startswith("From "):
        return None
    name: str | None = None
    for line in _lines(text):
        if not line:
            break  # the end of the headers
        if line[0] in " \t":
            if name is not None:
                return None  # a folded Name header
            continue
        if name is not None:
            return name
        if not re.match(_HEADER_LINE, line):
            break  # email reads the rest as the body
        key, _colon, value = line.partition(":")
        if key.lower() == "name":
            name = value.lstrip(" \t")
    return "None" if name is None else name


_NEWLINE = r"\r\n|\r|\n"  # email.feedparser's NLCRE (compiled on first use)


def _lines(text: str) -> Iterator[str]:
    """The lines of ``text`` as email splits them, read only as far as they are asked for
    (tallyclerk's own ``METADATA`` holds its whole README after the headers)."""
    start = 0
    for match in re.finditer(_NEWLINE, text):
        yield text[start:match.start()]
        start = match.end()
    yield text[start:]


def group_entries_by_project(group: str) -> list[tuple[str, str, str]] | None:
    """``(name, value, project name)`` of the entry points of ``group`` as
    ``importlib.metadata.entry_points(group=group)`` lists them (one distribution a
    normalized project name: the first found) with ``str(ep.dist.metadata["name"])``, or None
    when only ``importlib.metadata`` can tell."""
    dists = _distributions()
    if dists is None:
        return None
    unique: list[tuple[str, str]] = []
    seen: set[str] = set()
    for entry, child in dists:
        stem, ext = os.path.splitext(child)
        if ext not in (".dist-info", ".egg-info"):
            return None  # importlib.metadata would read the name from the metadata
        key = _SEPARATORS.sub("-", stem.partition("-")[0]).lower().replace("-", "_")
        if key not in seen:
            seen.add(key)
            unique.append((entry, child))
    found = _entries_of(unique, group)
    if found is None:
        return None
    names: dict[tuple[str, str], str] = {}
    out: list[tuple[str, str, str]] = []
    for name, value, entry, child in found:
        if (entry, child) not in names:
            project = _project_name(entry, child)
            if project is None:
                return None
            names[(entry, child)] = project
        out.append((name, value, names[(entry, child)]))
    return out


def group_names(group: str) -> list[str] | None:
    """Every entry-point name of ``group`` among the distributions on ``sys.path`` (in
    ``sys.path`` order, repeats kept), or None when only ``importlib.metadata`` can tell."""
    entries = group_entries(group)
    return None if entries is None else [name for name, _value, _where in entries]
