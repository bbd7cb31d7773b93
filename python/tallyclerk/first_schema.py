"""The first schema of a table loaded without ``--schema``: inferred from its first file.

A load (and ``tallyclerk validate``, which checks as a load would) that has neither a
``--schema`` nor a schema remembered for its table builds one from the first file it reads:

- by default, the types :func:`tallyclerk.infer` finds in a sample of the file's first
  ``infer_rows`` rows (setting and ``--infer-rows``, 10,000 unless set), read through the same
  input opener as the load (compression, the spool of an object); ``required`` is not kept
  (a later empty value or a later file without the column is not a reason to reject data
  nobody declared required);
- ``--infer none`` or ``infer_rows`` 0: every column ``string`` with ``missingValues: []``
  (values load exactly as read);
- text columns, too, when there is nothing to infer from: a header-only file (a sample of 0
  rows: the table is created, and remembered, with text columns), or a format inference does
  not read (a plugin's, such as Parquet, whose loader yields typed values itself).

With ``--workers N`` the parent builds the first schema once, from the load's first path, and
hands it to every worker (:data:`SHARED_OPTION`): all workers plan the same version 1, whoever
records it first (the others find it stored: a retry on the same database, an identical
version otherwise), so the table's columns never depend on which worker created it.

The schema becomes the table's version 1 (:mod:`tallyclerk.contract`); every later file and
load is checked against that remembered version, never inferred again.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from tallyclerk import TableSchema
from tallyclerk.contract import text_schema
from tallyclerk.errors import ConfigError, SourceError, TallyclerkError

__all__ = ["DEFAULT_INFER_ROWS", "SHARED_OPTION", "first_schema", "infer_rows", "shared_schema"]

log = logging.getLogger("tallyclerk.pipeline")

DEFAULT_INFER_ROWS = 10_000
SHARED_OPTION = "_first_schema"
"""The load option by which ``--workers`` processes receive their parent's first schema."""


def infer_rows(options: Mapping[str, Any], settings: Any) -> int:
    """Rows sampled for a new table's schema (0: text columns), from ``--infer``,
    ``--infer-rows`` and the ``infer_rows`` setting."""
    given = options.get("infer_rows")
    rows = int(getattr(settings, "infer_rows", DEFAULT_INFER_ROWS) if given is None else given)
    if options.get("infer") == "none":
        return 0
    if options.get("infer") == "auto" and rows <= 0:
        return DEFAULT_INFER_ROWS
    return max(rows, 0)


def first_schema(
    path: str,
    table: str,
    columns: Sequence[str],
    options: Mapping[str, Any],
    settings: Any,
    *,
    local: str | None = None,
) -> tuple[TableSchema, str]:
    """``(schema, reason)``: the first schema of ``table`` from the file ``path`` (read from
    ``local``, an object's spool, when given) whose columns are ``columns``.

    Raises:
        SourceError: the file has no usable columns (it fails alone, exit 1).
    """
    text = _text_schema(path, table, columns)  # refuses a file without columns
    shared = options.get(SHARED_OPTION)
    if isinstance(shared, Mapping):  # a worker of a load: the schema its parent inferred
        return TableSchema.from_json(str(shared["schema"])), str(shared["reason"])
    rows = infer_rows(options, settings)
    if rows <= 0:
        return text, f"text columns of {path}"
    from tallyclerk.inference import infer

    try:
        doc = infer(
            local or path, rows=rows, format=options.get("format"),
            delimiter=options.get("delimiter"),
            encoding=str(options.get("encoding") or "utf-8"),
            max_field_bytes=int(options.get("max_field_bytes") or 0)
            or int(getattr(settings, "max_field_bytes", 1 << 24)),
            compression=str(options.get("compression") or "auto"),
        )
    except ConfigError as exc:  # a format inference does not read (a plugin's): text
        log.info("file %s: no schema inferred (%s); text columns", path, exc)
        return text, f"text columns of {path} (not inferred: {exc})"
    sampled = _sampled_rows(doc)
    if sampled == 0:  # a header-only file: no sample, no types to remember
        log.info("file %s: no rows to infer a schema from; text columns", path)
        return text, f"text columns of {path} (no rows to infer types from)"
    n = rows if sampled is None else sampled
    return _inferred_schema(doc, columns), (
        f"inferred from a sample of {n} row{'' if n == 1 else 's'} of {path}")


def _text_schema(path: str, table: str, columns: Sequence[str]) -> TableSchema:
    """The all-text schema of a file's columns; a file without usable columns fails (exit 1),
    it is not a usage error."""
    if not columns:
        raise SourceError(
            f"{path}: no columns: no record names a usable column, so table {table!r} "
            "cannot be created from this file",
            path=path,
        )
    try:
        return text_schema(columns)
    except ConfigError as exc:
        raise SourceError(
            f"{path}: its header cannot be the columns of table {table!r}: {exc}", path=path
        ) from exc


def _sampled_rows(doc: Mapping[str, Any]) -> int | None:
    """The sample size :func:`tallyclerk.infer` records in the schema's description."""
    found = re.search(r"from a sample of (\d+) row", str(doc.get("description") or ""))
    return int(found.group(1)) if found else None


def _inferred_schema(doc: Mapping[str, Any], columns: Sequence[str]) -> TableSchema:
    """The types of the file's columns (in its order; a column the sample had no type for is
    text), without ``required``."""
    types = {str(f["name"]): f for f in doc.get("fields", [])}
    fields = []
    for name in columns:
        f = dict(types.get(name) or {"name": name, "type": "string"})
        constraints = {k: v for k, v in (f.pop("constraints", None) or {}).items()
                       if k != "required"}
        if constraints:
            f["constraints"] = constraints
        fields.append(f)
    out: dict[str, Any] = {"fields": fields}
    for key in ("missingValues", "description"):
        if key in doc:
            out[key] = doc[key]
    return TableSchema.from_json(json.dumps(out))


def shared_schema(
    path: str, table: str, options: Mapping[str, Any], settings: Any, hook: Any
) -> dict[str, str] | None:
    """For a ``--workers`` parent: ``{"schema", "reason"}`` of the first schema built from
    ``path`` (a local file, opened by the loader plugins through ``hook``), or None when it
    cannot be built here (text columns, an object URL, an unreadable file: each worker then
    builds its own from its first file, and the schema store's versions settle it)."""
    if infer_rows(options, settings) <= 0 or not os.path.isfile(path):
        return None
    try:
        source = hook.tallyclerk_open_source(path=path, options=options)
        if source is None:
            return None
        try:
            columns = list(source.columns)
        finally:
            source.close()
        schema, reason = first_schema(path, table, columns, options, settings)
    except (TallyclerkError, OSError) as exc:
        log.info("file %s: no shared first schema (%s); each worker builds its own", path, exc)
        return None
    return {"schema": schema.to_json(), "reason": reason}
