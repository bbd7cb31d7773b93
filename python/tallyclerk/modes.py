"""Write modes: how a load's rows meet the rows already in the table.

``append`` (the default) adds the rows. ``replace`` rebuilds the table from this load's files:
the pipeline loads every file, in its own transaction, into a *shadow table*
(:func:`shadow_table`, one per batch) and, when every file loaded, the sink swaps it for the
table in one transaction (``Sink.swap_table``), the manifest updated in that same transaction
when the audit store shares the database. ``merge`` upserts by a key
(``--primary-key COL[,COL]`` or the schema's ``primaryKey``): a row whose key exists updates
that row, the others are inserted; within one file a repeated key is a rejected row (rule
``primary-key``), first one kept; across files the later file wins.

A sink declares the modes it supports in ``write_modes`` (absent: append only); the pipeline
refuses a mode the sink does not declare (exit 2), so a sink never appends silently when the
user asked for a merge. Sinks read the mode from their open options with :func:`resolve`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tallyclerk.errors import ConfigError

if TYPE_CHECKING:
    from tallyclerk._core import RecordBatch, TableSchema

__all__ = [
    "MODES",
    "PRIMARY_KEY_RULE",
    "KeyTracker",
    "WriteMode",
    "key_index_name",
    "parse_keys",
    "resolve",
    "schema_primary_key",
    "shadow_table",
    "sink_modes",
]

MODES = ("append", "replace", "merge")
PRIMARY_KEY_RULE = "primary-key"
SHADOW_PREFIX = "_tc_replace_"


@dataclass(frozen=True)
class WriteMode:
    """A resolved write mode: ``mode`` and, for ``merge``, the key columns."""

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


def sink_modes(sink: object) -> Collection[str]:
    """The write modes a sink declares (``write_modes``; append only when absent)."""
    modes = getattr(sink, "write_modes", None)
    return ("append",) if modes is None else tuple(modes)


def key_index_name(table: str, keys: Sequence[str]) -> str:
    """The unique index a merge creates on ``keys`` of ``table`` (short, stable)."""
    digest = hashlib.sha256("\0".join([table, *keys]).encode()).hexdigest()[:16]
    return f"_tc_key_{digest}"


def file_id_index_name(table: str) -> str:
    """The index on ``_tc_file_id`` every built-in SQL sink keeps (short, stable): a re-run of
    a crashed file and ``--force`` delete a file's rows by it, so their cost does not grow
    with the table."""
    digest = hashlib.sha256(table.encode()).hexdigest()[:16]
    return f"_tc_file_{digest}"


def shadow_table(batch_id: str) -> str:
    """The table a ``replace`` batch loads into before the swap (at most 44 characters)."""
    return SHADOW_PREFIX + batch_id


class KeyTracker:
    """Rejects, within one file, a row whose key repeats an earlier row's (rule
    ``primary-key``, the first row kept) or has an empty key column."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = tuple(keys)
        self._seen: dict[tuple[Any, ...], int] = {}

    def check(self, batch: RecordBatch) -> None:
        names = batch.columns
        missing = [k for k in self.keys if k not in names]
        if missing:
            raise ConfigError(
                f"primary key column(s) {', '.join(map(repr, missing))} are not in the file"
            )
        columns = [batch.column(k) for k in self.keys]
        numbers = batch.record_numbers()
        seen = self._seen
        rejected = batch.is_rejected if batch.num_rejected else None
        for i, key in enumerate(zip(*columns, strict=True)):
            if rejected is not None and rejected(i):
                continue
            if any(v is None for v in key):
                empty = next(k for k, v in zip(self.keys, key, strict=True) if v is None)
                batch.reject(i, empty, PRIMARY_KEY_RULE, f"key column {empty!r} is empty")
                continue
            first = seen.setdefault(key, numbers[i])
            if first != numbers[i]:
                batch.reject(
                    i,
                    self.keys[0] if len(self.keys) == 1 else None,
                    PRIMARY_KEY_RULE,
                    f"duplicate key {_show(key)}: record {first} of this file has it",
                )


def _show(key: tuple[Any, ...]) -> str:
    text = ", ".join(repr(v) for v in key)
    return text if len(text) <= 200 else text[:200] + "..."
