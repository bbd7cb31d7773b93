"""The schema contract: which schema a file is checked against, and what happens to columns.

A target table remembers its schema (``tallyclerk_schemas``, versioned; see
:mod:`tallyclerk.audit.schemas`). For each file, :func:`plan_file` decides, before a row is
written:

- **the schema**: the table's stored one; for a table without one, ``--schema`` when given,
  else the schema built from the first file (inferred, or text columns with ``--infer none``).
  A ``--schema`` that differs from the stored one is checked once per load by
  :func:`check_given`: equal fields (the stored schema may have more, added by evolution) are
  fine; fields that only *add* columns are an evolution under ``--columns evolve``; anything
  else (a field's type or constraints changed, schema-level properties changed, or added fields
  under ``freeze``/``discard``) is a configuration conflict found before any file is claimed
  (:class:`SchemaConflict`, exit 2), with the diff.
- **columns the table lacks** (in the file's header, or JSONL keys), by ``--columns``:
  ``evolve`` adds them as nullable ``string`` columns (a new schema version, recorded in the
  file's transaction), ``freeze`` fails the file naming them (:class:`ContractViolation`,
  exit 1), ``discard`` loads the rest and records them as dropped.
- **schema fields missing from the file**: NULL in every row of that file and recorded as
  missing; a missing ``required`` field fails the file, naming it.

Every decision is recorded per file in the manifest (``schema_version``, ``column_changes``)
and shown by ``tallyclerk status`` and the report (``columns_added``, ``columns_dropped``,
``columns_missing``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from tallyclerk import TableSchema
from tallyclerk.audit.schemas import fingerprint
from tallyclerk.audit.types import StoredSchema
from tallyclerk.errors import ConfigError, SourceError
from tallyclerk.names import column_name_problem

__all__ = [
    "COLUMN_MODES",
    "ContractViolation",
    "FilePlan",
    "SchemaConflict",
    "check_given",
    "is_plain_text",
    "plan_file",
    "text_schema",
]

COLUMN_MODES = ("evolve", "freeze", "discard")
DEFAULT_COLUMNS = "evolve"


class ContractViolation(SourceError):
    """A file breaks the column contract (``freeze``, a missing required field, a column that
    cannot be added): the file fails (exit 1), the other files still load."""


class SchemaConflict(ConfigError):
    """``--schema`` conflicts with the table's stored schema (exit 2, before any file)."""


class FilePlan:
    """What loading one file does to the table's schema and columns.

    A plain class, not a dataclass: the generated methods cost import time on every start
    (issue 16.1); nothing compares or prints a plan. Read-only by convention."""

    __slots__ = ("schema", "create_schema", "version", "new_version", "added", "added_fields",
                 "dropped", "missing")

    def __init__(self, *, schema: TableSchema, create_schema: TableSchema, version: int,
                 new_version: StoredSchema | None = None, added: list[str] | None = None,
                 added_fields: list[dict[str, Any]] | None = None,
                 dropped: list[str] | None = None, missing: list[str] | None = None) -> None:
        self.schema = schema
        """The schema the file is validated against (the table's, after any evolution)."""
        self.create_schema = create_schema
        """The schema the sink is prepared with (the table before this file's added
        columns)."""
        self.version = version
        """The schema version the file is checked against."""
        self.new_version = new_version
        """A version to record with the file (the table's first, or an evolution)."""
        self.added: list[str] = [] if added is None else added
        self.added_fields: list[dict[str, Any]] = [] if added_fields is None else added_fields
        """The fields (``TableSchema.fields()`` dicts) the sink adds to the existing table."""
        self.dropped: list[str] = [] if dropped is None else dropped
        self.missing: list[str] = [] if missing is None else missing

    @property
    def changes(self) -> dict[str, list[str]]:
        return {"added": self.added, "dropped": self.dropped, "missing": self.missing}

    @property
    def validate(self) -> bool:
        """False for a plain-text table with nothing to drop: rows go in as read (the
        behaviour of a load without a schema: values are kept exactly, "" stays "")."""
        return bool(self.dropped) or not is_plain_text(self.schema)


def _doc(schema: TableSchema) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(schema.to_json())
    return doc


def text_schema(columns: Sequence[str]) -> TableSchema:
    """Nullable ``string`` columns that keep every value as read (``missingValues: []``)."""
    doc = {"fields": [{"name": c, "type": "string"} for c in columns], "missingValues": []}
    return TableSchema.from_json(json.dumps(doc))


def is_plain_text(schema: TableSchema) -> bool:
    """Only unconstrained ``string`` fields and no missing values: validation changes nothing."""
    doc = _doc(schema)
    if doc.get("missingValues") != [] or set(doc) - {"fields", "missingValues"}:
        return False
    return all(set(f) <= {"name", "type"} and f.get("type") == "string" for f in doc["fields"])


def _spelled_out(field: dict[str, Any]) -> dict[str, Any]:
    """A field with the Table Schema defaults written out (``type`` "string", ``format``
    "default", no constraints), so that leaving a default out is no change."""
    f = dict(field)
    f.setdefault("type", "string")
    if f.get("format") == "default":
        del f["format"]
    if not f.get("constraints"):
        f.pop("constraints", None)
    return f


def _schema_property(doc: dict[str, Any], key: str) -> Any:
    """A schema-level property, its spec default and spellings made one (``missingValues``
    ``[""]``; a ``primaryKey`` of one name or a list of it)."""
    value = doc.get(key)
    if key == "missingValues" and value == [""]:
        return None
    if key == "primaryKey" and isinstance(value, str):
        return [value]
    return value


def _diff(stored: dict[str, Any], given: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(conflicts, added field names) of ``given`` against ``stored``."""
    conflicts: list[str] = []
    old = {f["name"]: _spelled_out(f) for f in stored["fields"]}
    added: list[str] = []
    for f in map(_spelled_out, given["fields"]):
        name = f["name"]
        before = old.get(name)
        if before is None:
            added.append(name)
            if (f.get("constraints") or {}).get("required"):
                conflicts.append(f"new field {name!r} is required (existing rows have no value)")
            twin = next((n for n in old if n.lower() == name.lower()), None)
            if twin is not None:
                conflicts.append(f"new field {name!r} differs from the field {twin!r} only in "
                                 "letter case (SQLite takes them for one column)")
            continue
        for key in sorted(set(before) | set(f)):
            if before.get(key) != f.get(key):
                conflicts.append(
                    f"field {name!r}: {key} {json.dumps(before.get(key))} -> "
                    f"{json.dumps(f.get(key))}"
                )
    for key in sorted((set(stored) | set(given)) - {"fields"}):
        if _schema_property(stored, key) != _schema_property(given, key):
            conflicts.append(
                f"{key}: {json.dumps(stored.get(key))} -> {json.dumps(given.get(key))}"
            )
    return conflicts, added


def _type_changes(conflicts: list[str]) -> list[str]:
    """The conflicts a revision cannot make: a field's type (its column's type)."""
    return [c for c in conflicts if ": type " in c]


def check_given(
    table: str, stored: StoredSchema | None, given: TableSchema | None, mode: str, source: str,
    *, revise: bool = False,
) -> None:
    """Refuse a ``--schema`` that conflicts with the table's stored schema (see the module).

    ``revise`` (``tallyclerk replay --schema FIXED``): the given schema is a correction of the
    stored one, so its constraints, formats and options may differ (it becomes the table's
    next version); a changed field type is still refused (the column's type is the table's).
    """
    if stored is None or given is None:
        return
    conflicts, added = _diff(json.loads(stored.schema_json), _doc(given))
    if revise:
        conflicts = _type_changes(conflicts)
    if added and mode != "evolve":
        conflicts.append(
            f"new field(s) {', '.join(repr(a) for a in added)} (allowed with --columns evolve)"
        )
    if conflicts:
        raise SchemaConflict(
            f"{f'--schema {source}' if source else 'the given schema'} conflicts with the "
            f"schema of table {table!r} (version "
            f"{stored.version}; see `tallyclerk schema {table}`): " + "; ".join(conflicts)
        )


def plan_file(
    *,
    table: str,
    path: str,
    columns: Sequence[str],
    stored: StoredSchema | None,
    given: TableSchema | None,
    mode: str,
    first_schema: Callable[[], tuple[TableSchema, str]],
    batch_id: str | None = None,
    file_id: int | None = None,
    revise: bool = False,
) -> FilePlan:
    """Decide the schema and the column changes for one file (see the module docstring).

    ``first_schema()`` builds a table's first schema from this file when there is neither a
    stored nor a given one: ``(schema, reason)``.

    ``revise``: the given schema replaces the stored one's constraints and options (a new
    version; see :func:`check_given`).

    Raises:
        ContractViolation: ``freeze`` and the file has columns the table lacks; a missing
            ``required`` field; a column that cannot be added (``_tc_file_id``, ...).
    """
    reasons: list[str] = []
    create: TableSchema | None
    if stored is not None:
        doc = json.loads(stored.schema_json)
        version, create = stored.version, TableSchema.from_json(stored.schema_json)
        if given is not None and revise:  # check_given allowed it: the same column types
            fixed = _doc(given)
            if fixed != doc:
                fixed_names = {f["name"] for f in fixed["fields"]}
                fixed["fields"].extend(f for f in doc["fields"] if f["name"] not in fixed_names)
                doc = fixed
                reasons.append(f"revised by a given schema (version {version} corrected)")
        elif given is not None:  # check_given allowed it: equal, or only adds fields
            known = {f["name"] for f in doc["fields"]}
            new = [f for f in _doc(given)["fields"] if f["name"] not in known]
            if new:
                doc["fields"].extend(new)
                reasons.append(f"--schema adds {', '.join(repr(f['name']) for f in new)}")
    elif given is not None:
        doc, version, create = _doc(given), 0, None
        reasons.append("given with --schema")
    else:
        first, why = first_schema()
        doc, version, create = _doc(first), 0, None
        reasons.append(why)

    names = [f["name"] for f in doc["fields"]]
    known_names = set(names)
    extra = [c for c in columns if c not in known_names]
    added: list[str] = []
    added_fields: list[dict[str, Any]] = []
    dropped: list[str] = []
    if extra:
        if mode == "freeze":
            raise ContractViolation(
                f"{path}: column(s) {', '.join(repr(c) for c in extra)} not in table "
                f"{table!r} (--columns freeze); the file was not loaded",
                path=path,
            )
        if mode == "discard":
            dropped = extra
        else:
            folded = {n.lower(): n for n in names}
            for c in extra:
                problem = column_name_problem(c)
                if problem is None and c.lower() in folded:
                    problem = (f"it differs from the column {folded[c.lower()][:80]!r} only in "
                               "letter case, and SQLite takes them for one column (its values "
                               "would be lost); rename it, or --columns discard")
                if problem is not None:
                    raise ContractViolation(
                        f"{path}: column {c[:80]!r} cannot be added to table {table!r}: {problem}",
                        path=path,
                    )
                folded[c.lower()] = c
            added = extra
            doc["fields"].extend({"name": c, "type": "string"} for c in extra)
            reasons.append(f"{path} adds column(s) {', '.join(repr(c) for c in extra)}")
    present = set(columns)
    missing = [f for f in doc["fields"] if f["name"] not in present]
    required = [f["name"] for f in missing if (f.get("constraints") or {}).get("required")]
    if required:
        raise ContractViolation(
            f"{path}: required field(s) {', '.join(repr(r) for r in required)} of table "
            f"{table!r} missing from the file's columns; the file was not loaded",
            path=path,
        )
    schema_json = json.dumps(doc, separators=(",", ":"))
    try:
        schema = TableSchema.from_json(schema_json)
    except ConfigError as exc:
        raise SourceError(f"{path}: its columns cannot be the columns of table {table!r}: "
                          f"{exc}", path=path) from exc
    new_version: StoredSchema | None = None
    if reasons:
        schema_json = schema.to_json()
        new_version = StoredSchema(
            table=table, version=version + 1, schema_json=schema_json,
            fingerprint=fingerprint(schema_json), reason="; ".join(reasons),
            batch_id=batch_id, file_id=file_id,
        )
        version += 1
    if create is None:  # a new table: created with everything, nothing to add
        create, added_fields = schema, []
    else:  # the columns the table gains (from the file, or from a wider --schema)
        had = set(create.field_names)
        added_fields = [f for f in schema.fields() if f["name"] not in had]
        added = [f["name"] for f in added_fields]
    return FilePlan(
        schema=schema, create_schema=create, version=version, new_version=new_version,
        added=added, added_fields=added_fields, dropped=dropped,
        missing=[f["name"] for f in missing],
    )
