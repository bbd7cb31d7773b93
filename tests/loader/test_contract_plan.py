"""The column contract's decisions (``tallyclerk.contract``) as properties over column sets:
whatever the files' columns, evolve ends with the union of every column in first-seen order
and one version per file that added some; discard never changes the schema and drops exactly
the unknown columns; freeze fails exactly the files with unknown columns."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tallyclerk import TableSchema
from tallyclerk.audit.types import StoredSchema
from tallyclerk.contract import (
    ContractViolation,
    SchemaConflict,
    check_given,
    plan_file,
    text_schema,
)

NAMES = st.sampled_from(["id", "name", "amount", "day", "note", "x y", 'q"t', "Ünï"])
FILES = st.lists(st.lists(NAMES, min_size=1, max_size=5, unique=True), min_size=1, max_size=6)


def replay(files: list[list[str]], mode: str) -> tuple[StoredSchema | None, list[object]]:
    stored: StoredSchema | None = None
    outcomes: list[object] = []
    for i, cols in enumerate(files):
        try:
            plan = plan_file(table="t", path=f"f{i}", columns=cols, stored=stored, given=None,
                             mode=mode, first_schema=lambda c=cols: (text_schema(c), "first"))
        except ContractViolation as exc:
            outcomes.append(exc)
            continue
        outcomes.append(plan)
        if plan.new_version is not None:
            stored = plan.new_version
    return stored, outcomes


@settings(max_examples=60, deadline=None)
@given(FILES)
def test_evolve_ends_with_the_union_in_first_seen_order(files: list[list[str]]) -> None:
    stored, plans = replay(files, "evolve")
    union = list(dict.fromkeys(c for cols in files for c in cols))
    assert stored is not None
    assert [f["name"] for f in json.loads(stored.schema_json)["fields"]] == union
    adding = sum(1 for p in plans[1:] if getattr(p, "added", None))
    assert stored.version == 1 + adding
    for p, cols in zip(plans, files, strict=True):
        assert not isinstance(p, ContractViolation)
        assert sorted(p.missing) == sorted(set(p.schema.field_names) - set(cols))  # type: ignore[union-attr]


@settings(max_examples=60, deadline=None)
@given(FILES)
def test_discard_and_freeze_keep_the_first_schema(files: list[list[str]]) -> None:
    first = set(files[0])
    for mode in ("discard", "freeze"):
        stored, outcomes = replay(files, mode)
        assert stored is not None and stored.version == 1
        assert set(json.loads(stored.schema_json)["fields"][i]["name"]
                   for i in range(len(files[0]))) == first
        for out, cols in zip(outcomes, files, strict=True):
            unknown = [c for c in cols if c not in first]
            if mode == "freeze":
                assert isinstance(out, ContractViolation) == bool(unknown)
            else:
                assert out.dropped == unknown and out.added == []  # type: ignore[union-attr]


def _stored(fields: list[dict[str, object]]) -> StoredSchema:
    doc = json.dumps({"fields": fields})
    return StoredSchema(table="t", version=3, schema_json=doc, fingerprint="f", reason="r")


def test_given_schema_conflicts_are_named() -> None:
    stored = _stored([{"name": "id", "type": "integer"}, {"name": "n", "type": "string"}])
    same = TableSchema.from_json(json.dumps({"fields": [{"name": "id", "type": "integer"}]}))
    check_given("t", stored, same, "freeze", "s.json")  # a subset, identical: fine
    changed = TableSchema.from_json(json.dumps({"fields": [{"name": "id", "type": "number"}]}))
    with pytest.raises(SchemaConflict, match="field 'id': type \"integer\" -> \"number\""):
        check_given("t", stored, changed, "evolve", "s.json")
    wider = TableSchema.from_json(json.dumps(
        {"fields": [{"name": "id", "type": "integer"}, {"name": "z", "type": "date"}]}))
    check_given("t", stored, wider, "evolve", "s.json")
    with pytest.raises(SchemaConflict, match="allowed with --columns evolve"):
        check_given("t", stored, wider, "discard", "s.json")
    required = TableSchema.from_json(json.dumps(
        {"fields": [{"name": "z", "type": "date", "constraints": {"required": True}}]}))
    with pytest.raises(SchemaConflict, match="new field 'z' is required"):
        check_given("t", stored, required, "evolve", "s.json")
    plan = plan_file(table="t", path="f", columns=["id", "n", "z"], stored=stored, given=wider,
                     mode="evolve", first_schema=lambda: (same, ""))
    assert plan.version == 4 and plan.added == ["z"]
    assert [f["type"] for f in plan.added_fields] == ["date"]


def test_a_required_field_missing_from_the_file_fails_it() -> None:
    stored = _stored([{"name": "id", "type": "integer", "constraints": {"required": True}},
                      {"name": "n", "type": "string"}])
    plan = plan_file(table="t", path="f", columns=["id"], stored=stored, given=None,
                     mode="evolve", first_schema=lambda: (text_schema(["x"]), ""))
    assert plan.missing == ["n"] and plan.new_version is None and plan.version == 3
    with pytest.raises(ContractViolation, match="required field\\(s\\) 'id'"):
        plan_file(table="t", path="f", columns=["n"], stored=stored, given=None,
                  mode="evolve", first_schema=lambda: (text_schema(["x"]), ""))
    with pytest.raises(ContractViolation, match="_tc_file_id"):
        plan_file(table="t", path="f", columns=["id", "_TC_FILE_ID"], stored=stored,
                  given=None, mode="evolve", first_schema=lambda: (text_schema(["x"]), ""))
