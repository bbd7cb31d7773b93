"""Write modes: how a load's rows meet the rows already in the table.

``append`` (the default) adds the rows. ``replace`` rebuilds the table from this load's files:
the pipeline loads every file, in its own transaction, into a *shadow table*
(:func:`shadow_table`, one per batch) and, when every file loaded, the sink swaps it for the
table in one transaction (``Sink.swap_table``), the manifest updated in that same transaction
when the audit store shares the database. ``merge`` upserts by a key
(``--primary-key COL[,COL]`` or the schema's ``primaryKey``): a row whose key exists updates
that row, the others are inserted; within one file a repeated key is a rejected row (rule
``primary-key``, checked in Rust by ``tallyclerk._core.KeyCheck``), first one kept; across
files the later file wins.

A sink declares the modes it supports in ``write_modes`` (absent: append only); the pipeline
refuses a mode the sink does not declare (exit 2), so a sink never appends silently when the
user asked for a merge. Sinks read the mode from their open options with :func:`resolve`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from tallyclerk.digest import sha256
from tallyclerk.errors import ConfigError

if TYPE_CHECKING:
    from tallyclerk._core import TableSchema

__all__ = [
    "MODES",
    "PRIMARY_KEY_RULE",
    "UNIQUE_RULE",
    "WriteMode",
    "key_index_name",
    "key_reason",
    "parse_keys",
    "resolve",
    "schema_primary_key",
    "shadow_table",
    "sink_modes",
    "unique_keys",
]

MODES = ("append", "replace", "merge")
# the rules of a rejected duplicate (one name each, in every write mode and sink): a
# repeated primary key / merge key, a repeated value of a ``unique`` field
PRIMARY_KEY_RULE = "primary-key"
UNIQUE_RULE = "unique"
SHADOW_PREFIX = "_tc_replace_"


class WriteMode(NamedTuple):
    """A resolved write mode: ``mode`` and, for ``merge``, the key columns.

    (A named tuple, not a frozen dataclass: as immutable, and far cheaper to define at import;
    issue 16.1.)"""

    mode: str = "append"
    primary_key: tuple[str, ...] = ()

    @property
    def merge(self) -> bool:
        return self.mode == "merge"

    @property
    def replace(self) -> bool:
        return self.mode == "replace"


def parse_keys(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"a,b"`` or ``["a", "b"]`` as a tuple of column names (empty names refused)."""
    if value is None:
        return ()
    parts = value.split(",") if isinstance(value, str) else list(value)
    keys = tuple(str(p).strip() for p in parts)
    if not keys or any(not k for k in keys):
        raise ConfigError(f"--primary-key {value!r}: expected COL[,COL...] with no empty names")
    if len({k for k in keys}) != len(keys):
        raise ConfigError(f"--primary-key {value!r} names a column twice")
    return keys


def schema_primary_key(schema: TableSchema | None) -> tuple[str, ...]:
    """The Table Schema's ``primaryKey`` (a name or a list of names), or ``()``."""
    if schema is None:
        return ()
    doc = json.loads(schema.to_json())
    pk = doc.get("primaryKey") if isinstance(doc, dict) else None
    if pk is None or pk == [] or pk == "":
        return ()
    if isinstance(pk, str):
        return parse_keys([pk])
    if isinstance(pk, list) and all(isinstance(k, str) for k in pk):
        return parse_keys(pk)
    raise ConfigError(f"the schema's primaryKey must be a name or a list of names, not {pk!r}")


def resolve(options: Mapping[str, Any], schema: TableSchema | None) -> WriteMode:
    """The write mode of ``options["mode"]`` / ``options["primary_key"]`` (CLI ``--mode``,
    ``--primary-key``); the schema's ``primaryKey`` when merging without ``--primary-key``.

    Raises:
        ConfigError: an unknown mode, a merge without a key, a key the schema lacks, or
            ``--primary-key`` with another mode.
    """
    mode = str(options.get("mode") or "append")
    if mode not in MODES:
        raise ConfigError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    keys = parse_keys(options.get("primary_key"))
    if mode != "merge":
        if keys:
            raise ConfigError(f"--primary-key is for --mode merge (not --mode {mode})")
        return WriteMode(mode)
    if not keys:
        keys = schema_primary_key(schema)
    if not keys:
        raise ConfigError(
            "--mode merge needs --primary-key COL[,COL] or a primaryKey in the schema"
        )
    if schema is not None:
        names = set(schema.field_names)
        missing = [k for k in keys if k not in names]
        if missing:
            raise ConfigError(
                f"primary key column(s) {', '.join(map(repr, missing))} are not columns of "
                "the table"
            )
    return WriteMode("merge", keys)


def unique_keys(schema: TableSchema, merge_key: Sequence[str] = ()) -> list[list[str]]:
    """The column lists a table keeps a unique index on: the merge key, the schema's
    ``primaryKey`` and each ``unique`` field (each once)."""
    out: list[list[str]] = [list(merge_key)] if merge_key else []
    for cols, _rule in schema.keys:
        if list(cols) not in out:
            out.append(list(cols))
    return out


def key_reason(key: Sequence[str], rule: str, values: Sequence[str], where: str) -> str:
    """The reason of a duplicate, worded as the Rust check words it: ``duplicate value 7 for
    unique field "id" (already in the table)``."""
    shown = values[0] if len(values) == 1 else "(" + ", ".join(values) + ")"
    if len(shown) > 80:
        shown = shown[:80] + "..."
    cols = ", ".join(json.dumps(k) for k in key)
    if rule == UNIQUE_RULE:
        return f"duplicate value {shown} for unique field {cols} ({where})"
    return f"duplicate key {shown} for primary key {cols} ({where})"


def sink_modes(sink: object) -> Collection[str]:
    """The write modes a sink declares (``write_modes``; append only when absent)."""
    modes = getattr(sink, "write_modes", None)
    return ("append",) if modes is None else tuple(modes)


def key_index_name(table: str, keys: Sequence[str]) -> str:
    """The unique index a merge creates on ``keys`` of ``table`` (short, stable)."""
    digest = sha256("\0".join([table, *keys]).encode()).hexdigest()[:16]
    return f"_tc_key_{digest}"


def file_id_index_name(table: str) -> str:
    """The index on ``_tc_file_id`` every built-in SQL sink keeps (short, stable): a re-run of
    a crashed file and ``--force`` delete a file's rows by it, so their cost does not grow
    with the table."""
    digest = sha256(table.encode()).hexdigest()[:16]
    return f"_tc_file_{digest}"


def shadow_table(batch_id: str) -> str:
    """The table a ``replace`` batch loads into before the swap (at most 44 characters)."""
    return SHADOW_PREFIX + batch_id
