"""Write modes through the CLI on every built-in sink: append, replace, merge by key."""

from __future__ import annotations

from pathlib import Path

from tests.clirun import Result, env_for, run_cli
from tests.modes.targets import Target

DAY1 = [(1, "Ada", "gold"), (2, "Bob", "silver"), (3, "Cy", "bronze")]
MERGED = [(1, "Ada", "gold"), (2, "Bob", "gold"), (3, "Cy", "bronze"), (4, "Dee", "silver")]


def load(target: Target, cwd: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return run_cli("load", *args, "--table", "customers", "--schema", "schema.json",
                   *target.args(), "--json", cwd=cwd, env=env or env_for())


def test_merge_updates_existing_keys_and_inserts_new_ones(target: Target, snapshots: Path):
    first = load(target, snapshots, "day1.csv", "--mode", "merge")
    assert first.code == 0, first.err
    second = load(target, snapshots, "day2.csv", "--mode", "merge")
    assert second.code == 0, second.err
    assert target.rows("customers") == MERGED
    (f,) = second.json()["files"]
    assert (f["rows_written"], f["rows_inserted"], f["rows_updated"]) == (2, 1, 1)
    assert first.json()["files"][0]["rows_inserted"] == 3
    # the manifest keeps the same counts
    assert [m[3:] for m in target.manifest()] == [(3, 3, 0), (2, 1, 1)]


def test_merge_within_one_load_the_last_file_wins(target: Target, snapshots: Path):
    (snapshots / "day3.csv").write_text("customer_id,name,tier\n2,Bob,platinum\n",
                                        encoding="utf-8")
    r = load(target, snapshots, "day1.csv", "day2.csv", "day3.csv", "--mode", "merge",
             "--primary-key", "customer_id")
    assert r.code == 0, r.err
    assert target.rows("customers") == [
        (1, "Ada", "gold"), (2, "Bob", "platinum"), (3, "Cy", "bronze"), (4, "Dee", "silver")]


def test_merge_rejects_a_repeated_or_empty_key_within_a_file(target: Target, snapshots: Path):
    (snapshots / "dups.csv").write_text(
        "customer_id,name,tier\n5,Eve,gold\n5,Eve again,silver\n,Nobody,gold\n6,Fay,gold\n",
        encoding="utf-8")
    r = load(target, snapshots, "dups.csv", "--mode", "merge")
    assert r.code == 0, r.err
    (f,) = r.json()["files"]
    assert (f["rows_read"], f["rows_written"], f["rows_rejected"]) == (4, 2, 2)
    assert target.rows("customers") == [(5, "Eve", "gold"), (6, "Fay", "gold")]
    rejects = run_cli("rejects", *target.args(), "--json", cwd=snapshots, env=env_for())
    assert rejects.code == 0, rejects.err
    listed = rejects.json()["rejects"]
    assert sorted((x["line"], x["rule"]) for x in listed) == [(3, "primary-key"),
                                                              (4, "primary-key")]


def test_merge_force_reapplies_a_file(target: Target, snapshots: Path):
    assert load(target, snapshots, "day1.csv", "day2.csv", "--mode", "merge").code == 0
    again = load(target, snapshots, "day1.csv", "--mode", "merge")
    assert again.json()["files"][0]["status"] == "skipped"
    forced = load(target, snapshots, "day1.csv", "--mode", "merge", "--force")
    assert forced.code == 0, forced.err
    (f,) = forced.json()["files"]
    assert (f["status"], f["rows_inserted"], f["rows_updated"]) == ("loaded", 0, 3)
    assert target.rows("customers") == [*DAY1, (4, "Dee", "silver")]


def test_merge_needs_a_key(target: Target, snapshots: Path):
    (snapshots / "nokey.json").write_text(
        '{"fields": [{"name": "customer_id", "type": "integer"}, {"name": "name"}, '
        '{"name": "tier"}]}', encoding="utf-8")
    r = run_cli("load", "day1.csv", "--table", "customers", "--schema", "nokey.json",
                *target.args(), "--mode", "merge", cwd=snapshots, env=env_for())
    assert r.code == 2 and "--primary-key" in r.err
    bad = load(target, snapshots, "day1.csv", "--mode", "merge", "--primary-key", "nope")
    assert bad.code == 2 and "'nope'" in bad.err
    append_key = load(target, snapshots, "day1.csv", "--primary-key", "customer_id")
    assert append_key.code == 2 and "--mode merge" in append_key.err


def test_replace_rebuilds_the_table_from_this_loads_files(target: Target, snapshots: Path):
    assert load(target, snapshots, "day1.csv", "day2.csv").code == 0
    assert len(target.rows("customers")) == 4  # day 2's customer 2: a primary-key reject
    r = load(target, snapshots, "day2.csv", "--mode", "replace")
    assert r.code == 0, r.err
    assert r.json()["files"][0]["status"] == "loaded"  # loaded again, into the new table
    assert target.rows("customers") == [(2, "Bob", "gold"), (4, "Dee", "silver")]
    assert not [t for t in target.tables() if t.startswith("_tc_replace_")]
    statuses = [(m[0], m[1], m[2]) for m in target.manifest()]
    assert statuses == [("day1.csv", "customers", "replaced"),
                        ("day2.csv", "customers", "replaced"),
                        ("day2.csv", "customers", "loaded")]
    # the replaced content is no longer loaded: an append loads it again
    again = load(target, snapshots, "day1.csv")
    assert again.json()["files"][0]["status"] == "loaded"


def test_replace_is_all_or_nothing(target: Target, snapshots: Path):
    assert load(target, snapshots, "day1.csv").code == 0
    (snapshots / "broken.csv").write_text("customer_id,name,tier\n9,x\n", encoding="utf-8")
    r = load(target, snapshots, "day2.csv", "broken.csv", "--mode", "replace",
             "--on-error", "skip-file")
    assert r.code == 1
    files = r.json()["files"]
    assert [f["status"] for f in files] == ["failed", "failed"]
    assert "replace abandoned" in files[0]["error"] and files[0]["rows_written"] == 0
    # the batch's totals are its files' (they said 2 rows written, 0 rolled back)
    rep = r.json()
    for key in ("rows_read", "rows_written", "rows_rejected", "rows_rolled_back"):
        assert rep[key] == sum(f[key] for f in files), (key, rep)
    assert rep["rows_read"] == rep["rows_written"] + rep["rows_rejected"] + rep[
        "rows_rolled_back"]
    status = run_cli("status", *target.args(), "--json", cwd=snapshots, env=env_for())
    assert status.code == 0, status.err
    shown = status.json()
    assert (shown["rows_written"], shown["rows_rolled_back"]) == (0, files[0]["rows_read"])
    assert target.rows("customers") == DAY1
    assert not [t for t in target.tables() if t.startswith("_tc_replace_")]


def test_replace_killed_before_its_swap_leaves_the_old_table(target: Target, snapshots: Path):
    assert load(target, snapshots, "day1.csv").code == 0
    killed = load(target, snapshots, "day2.csv", "--mode", "replace",
                  env=env_for(TALLYCLERK_FAULT="replace-before-swap-commit:kill"))
    assert killed.code == -9
    assert target.rows("customers") == DAY1
    rerun = load(target, snapshots, "day2.csv", "--mode", "replace")
    assert rerun.code == 0, rerun.err
    assert target.rows("customers") == [(2, "Bob", "gold"), (4, "Dee", "silver")]
    # the interrupted replace's shadow table is dropped and its file marked failed
    assert not [t for t in target.tables() if t.startswith("_tc_replace_")]
    assert [m[2] for m in target.manifest()] == ["replaced", "failed", "loaded"]


def test_append_is_the_default_and_counts_inserted_rows(target: Target, snapshots: Path):
    r = load(target, snapshots, "day1.csv", "day2.csv", "--mode", "append")
    assert r.code == 0, r.err
    # the schema's primaryKey holds in append too: day 2's customer 2 is already in the table
    assert [(f["rows_inserted"], f["rows_updated"], f["rows_rejected"])
            for f in r.json()["files"]] == [(3, 0, 0), (1, 0, 1)]
    assert len(target.rows("customers")) == 4
    rejects = run_cli("rejects", *target.args(), "--json", cwd=snapshots, env=env_for())
    (x,) = rejects.json()["rejects"]
    assert (x["line"], x["rule"]) == (2, "primary-key")
    assert x["reason"] == ('duplicate key 2 for primary key "customer_id" '
                           "(already in the table)")
