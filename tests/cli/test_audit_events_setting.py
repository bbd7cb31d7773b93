"""``audit_events = false`` (``TALLYCLERK_AUDIT_EVENTS=0``) drops the audit events of a load but
never the manifest: the file is still recorded as loaded with its counts, in the same database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import SCHEMA, env_for, query, tallyclerk, write_csv


@pytest.mark.parametrize(("value", "events"), [(None, True), ("0", False), ("true", True)])
def test_audit_events_toggle_keeps_the_manifest(tmp_path: Path, value: str | None,
                                               events: bool) -> None:
    src = write_csv(tmp_path / "a.csv", [(1, "x", 1.5), (2, "y", 2.5)])
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    db = tmp_path / "t.db"
    env = env_for() if value is None else env_for(TALLYCLERK_AUDIT_EVENTS=value)
    r = tallyclerk("load", str(src), "--table", "t", "--schema", str(schema),
                   "--into", f"sqlite:///{db}", "--json", cwd=tmp_path, env=env)
    assert r.code == 0, r.err
    assert r.json()["rows_written"] == 2
    files = query(db, "SELECT status, rows_read, rows_written FROM tallyclerk_files")
    assert files == [("loaded", 2, 2)]
    kinds = {k for (k,) in query(db, "SELECT DISTINCT type FROM tallyclerk_events")}
    if events:
        assert {"batch_started", "file_loaded", "batch_finished"} <= kinds
    else:
        assert kinds.isdisjoint({"batch_started", "file_started", "file_loaded",
                                 "batch_finished"})
