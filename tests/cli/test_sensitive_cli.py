"""Sensitive fields (``"sensitive": true`` in the schema, or the ``sensitive_columns``
setting) never appear in clear where the audit trail can show them: the rejects' raw text and
reasons, ``tallyclerk rejects`` (text and JSON), the report, logs (JSON and text, at debug
level, with hook tracing), audit events and the metrics textfile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tallyclerk import RecordBatch, TableSchema
from tests.cli.conftest import env_for, query, tallyclerk

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"

# cards that fail the Luhn check, a malformed row's card, a pattern failure: never in clear
BAD_LUHN = "4111111111111112"
BAD_PATTERN = "9999-CARD-SECRET"
MALFORMED = "5500005555555551"
GOOD = "4111111111111111"
SECRETS = (BAD_LUHN, BAD_PATTERN, MALFORMED)

SCHEMA = {
    "fields": [
        {"name": "id", "type": "integer"},
        {"name": "card", "type": "string", "sensitive": True,
         "constraints": {"pattern": "[0-9]{16}"}},
        {"name": "note", "type": "string"},
    ]
}


def _write(work: Path) -> None:
    (work / "schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    (work / "cards.csv").write_text(
        "id,card,note\n"
        f"1,{GOOD},ok\n"
        f"2,{BAD_LUHN},luhn\n"
        f"3,{BAD_PATTERN},pattern\n"
        f"4,{MALFORMED},too,many,fields\n",
        encoding="utf-8",
    )
    (work / "cards.jsonl").write_text(
        json.dumps({"id": 5, "card": GOOD, "note": "ok"}) + "\n"
        + json.dumps({"id": 6, "card": BAD_LUHN, "note": "luhn"}) + "\n"
        + '{"id": 7, "card": "' + MALFORMED + '", broken\n',
        encoding="utf-8",
    )


def _everything_written(work: Path, *outputs: str) -> str:
    """Every byte the run left outside the source files, plus what it printed."""
    texts = list(outputs)
    for path in work.iterdir():
        if path.is_file() and path.suffix not in (".csv", ".jsonl"):
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_sensitive_values_never_appear_in_clear(tmp_path: Path, log_format: str) -> None:
    _write(tmp_path)
    env = env_for(PLUGINS, TALLYCLERK_TRACE_PLUGINS="1")
    r = tallyclerk("--log-format", log_format, "--log-level", "debug",
                   "load", "cards.csv", "cards.jsonl", "--table", "cards",
                   "--schema", "schema.json", "--into", "sqlite:///data.db",
                   "--audit", "sqlite:///audit.db", "-p", "tc_luhn", "--json",
                   "--metrics-textfile", "metrics.prom", cwd=tmp_path, env=env)
    assert r.code == 0, r.err
    report = r.json()
    assert (report["rows_read"], report["rows_written"], report["rows_rejected"]) == (7, 2, 5)
    rejects = tallyclerk("rejects", "--json", "--audit", "sqlite:///audit.db",
                         "--into", "sqlite:///data.db", cwd=tmp_path, env=env)
    text = tallyclerk("rejects", "--audit", "sqlite:///audit.db", "--into",
                      "sqlite:///data.db", cwd=tmp_path, env=env)
    status = tallyclerk("status", "--json", "--audit", "sqlite:///audit.db", cwd=tmp_path,
                        env=env)
    rows = rejects.json()["rejects"]
    assert sorted(x["rule"] for x in rows) == ["json", "luhn", "luhn", "pattern", "row-length"]
    assert all(x["masked"] for x in rows), rows
    by_rule = {x["rule"]: x for x in rows}
    assert by_rule["luhn"]["reason"] == "card *** fails the Luhn check"
    assert "***" in by_rule["pattern"]["reason"] and "pattern" in by_rule["pattern"]["reason"]
    assert by_rule["row-length"]["raw"] == "***"
    # the valid rows are the data: loaded in clear into the target, never into the audit store
    assert query(tmp_path / "data.db", "SELECT card FROM cards ORDER BY id") == [(GOOD,), (GOOD,)]
    everything = _everything_written(tmp_path, r.out, r.err, rejects.out, rejects.err,
                                     text.out, text.err, status.out, status.err)
    assert "***" in text.out
    for secret in SECRETS:
        assert secret not in everything
        assert secret[:8] not in everything.replace(GOOD[:8], "")  # nor a preview's head


def test_sensitive_columns_setting_masks_without_a_schema(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text(f"id,card\n1,{BAD_LUHN}\n2,{GOOD}\n", encoding="utf-8")
    env = env_for(PLUGINS, TALLYCLERK_SENSITIVE_COLUMNS="card")
    r = tallyclerk("load", "c.csv", "--table", "c", "--json", "--on-error", "skip-file",
                   "-p", "tc_luhn", cwd=tmp_path, env=env)
    assert r.code == 1, r.err
    assert "***" in r.json()["files"][0]["error"]
    everything = _everything_written(tmp_path, r.out, r.err)
    assert BAD_LUHN not in everything


def test_masked_rejects_say_so_and_unmasked_ones_keep_the_record(tmp_path: Path) -> None:
    """A masked reject's raw text is not the record (replay cannot use it): ``masked`` says
    so; without sensitive fields the raw text is the record as read."""
    _write(tmp_path)
    plain = {"fields": [{**f, "sensitive": False} for f in SCHEMA["fields"]]}
    (tmp_path / "plain.json").write_text(json.dumps(plain), encoding="utf-8")
    env = env_for(PLUGINS)
    r = tallyclerk("load", "cards.csv", "--table", "p", "--schema", "plain.json", "--json",
                   "-p", "tc_luhn", cwd=tmp_path, env=env)
    assert r.code == 0, r.err
    rows = query(tmp_path / "tallyclerk.db",
                 "SELECT record_number, raw, masked FROM tallyclerk_rejects ORDER BY 1")
    assert rows == [(2, f"2,{BAD_LUHN},luhn", 0), (3, f"3,{BAD_PATTERN},pattern", 0),
                    (4, f"4,{MALFORMED},too,many,fields", 0)]


@settings(max_examples=60, deadline=None)
@given(secret=st.text(min_size=1, max_size=80).filter(lambda s: "\x00" not in s),
       other=st.text(max_size=10))
def test_a_sensitive_value_is_never_in_a_reject(secret: str, other: str) -> None:
    schema = TableSchema.from_json(json.dumps({"fields": [
        {"name": "a", "type": "string"},
        {"name": "s", "type": "integer", "sensitive": True},
    ]}))
    batch = RecordBatch.from_rows(["a", "s"], [[other, secret], [other, secret]], [1, 2],
                                  [2, 3], [f"{other},{secret}", f"{other},{secret}"])
    batch.validate(schema)
    if not batch.is_rejected(1):
        batch.reject(1, "s", "custom", f"value {secret} / {secret!r} is wrong")
    for r in batch.rejects():
        assert r.masked
        if len(secret) > 3:  # shorter values may occur by chance in the other text
            assert secret not in r.raw.replace(other, "")
            assert secret not in r.reason.replace(other, "")


def test_validate_masks_sensitive_values_too(tmp_path: Path) -> None:
    """``tallyclerk validate`` (the dry run) shows reasons as a load stores them."""
    _write(tmp_path)
    env = env_for(PLUGINS, TALLYCLERK_SENSITIVE_COLUMNS="note")
    r = tallyclerk("validate", "cards.csv", "--schema", "schema.json", "--json", "-p", "tc_luhn",
                   cwd=tmp_path, env=env)
    assert r.code == 1, r.err
    everything = r.out + r.err
    assert "***" in everything
    for secret in SECRETS:
        assert secret not in everything
