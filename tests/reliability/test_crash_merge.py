"""Crash suite for ``--mode merge``: a load of overlapping daily snapshots SIGKILLed at seeded
random points (a timer, or a row-count fault point inside a file) and at each commit boundary,
then run again to completion, ends with exactly the table of an uninterrupted run.

A merge cannot delete "this file's earlier rows" on a re-run the way an append does (later
files may have updated them). It does not need to: with the audit store in the data database a
file's upserts and its ``loaded`` manifest row commit together, so a killed file left nothing;
with a separate audit store the gap between the data commit and the manifest is re-run as an
upsert of the same rows, which changes nothing the file had not already set (the re-run comes
before the later files, in the same order).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from pathlib import Path

import pytest

from tests.reliability.util import cli_argv, env_for, query, tallyclerk

FILES = 8
ROWS = 3_000
STEP = 1_000  # file f holds keys f*STEP .. f*STEP+ROWS-1: each overlaps the next two files
BATCH_ROWS = 500
TABLE = "customers"
SCHEMA = {
    "fields": [
        {"name": "customer_id", "type": "integer"},
        {"name": "tier", "type": "string"},
        {"name": "day", "type": "integer"},
    ],
    "primaryKey": "customer_id",
}


def _seed() -> int:
    text = os.environ.get("TALLYCLERK_CRASH_SEED")
    return int(text) if text else random.SystemRandom().randrange(2**32)


def write_snapshots(directory: Path) -> list[Path]:
    """FILES daily snapshots; each ends with a repeated key (a ``primary-key`` reject)."""
    (directory / "schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    paths = []
    for f in range(FILES):
        lines = ["customer_id,tier,day"]
        lines += [f"{k},tier-{(k * 7 + f) % 5},{f}" for k in range(f * STEP, f * STEP + ROWS)]
        lines.append(f"{f * STEP},duplicate,{f}")
        path = directory / f"day-{f:02d}.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def expected_table() -> list[tuple[int, str, int]]:
    """The model: each key holds the values of the last file that has it."""
    table: dict[int, tuple[str, int]] = {}
    for f in range(FILES):
        for k in range(f * STEP, f * STEP + ROWS):
            table[k] = (f"tier-{(k * 7 + f) % 5}", f)
    return [(k, *v) for k, v in sorted(table.items())]


def _args(paths: list[Path], separate: bool) -> list[str]:
    args = ["load", *[p.name for p in paths], "--table", TABLE, "--into", "sqlite:///data.db",
            "--schema", "schema.json", "--mode", "merge", "--batch-rows", str(BATCH_ROWS),
            "--json"]
    return args + (["--audit", "sqlite:///audit.db"] if separate else [])


def check_end_state(cwd: Path, separate: bool) -> None:
    data = cwd / "data.db"
    audit = cwd / ("audit.db" if separate else "data.db")
    got = query(data, f'SELECT customer_id, tier, day FROM "{TABLE}" ORDER BY customer_id')
    assert got == expected_table()
    manifest = query(audit, "SELECT path, rows_read, rows_written, rows_rejected, rows_inserted, "
                            "rows_updated FROM tallyclerk_files WHERE status = 'loaded'")
    assert sorted(m[0] for m in manifest) == sorted(f"day-{f:02d}.csv" for f in range(FILES))
    for _path, read, written, rejected, inserted, updated in manifest:
        assert (read, written, rejected) == (ROWS + 1, ROWS, 1)
        assert inserted + updated == written
    assert not query(audit, "SELECT id FROM tallyclerk_files WHERE status = 'loading'")
    assert query(data, "PRAGMA integrity_check") == [("ok",)]


def test_the_model_is_what_an_uninterrupted_merge_loads(tmp_path: Path) -> None:
    paths = write_snapshots(tmp_path)
    r = tallyclerk(*_args(paths, False), cwd=tmp_path)
    assert r.code == 0, r.err
    files = r.json()["files"]
    assert [(f["rows_inserted"], f["rows_updated"]) for f in files[:3]] == [
        (ROWS, 0), (STEP, ROWS - STEP), (STEP, ROWS - STEP)]
    check_end_state(tmp_path, False)


@pytest.mark.parametrize("separate", [False, True], ids=["same-db", "separate-audit"])
def test_merge_killed_at_random_points_then_rerun_gives_the_same_table(
    tmp_path: Path, separate: bool
) -> None:
    seed = _seed()
    print(f"merge crash seed: {seed} (TALLYCLERK_CRASH_SEED={seed} reproduces it)")
    rng = random.Random(seed)
    paths = write_snapshots(tmp_path)
    args = _args(paths, separate)
    wanted, kills, log = 6, 0, []
    for _cycle in range(wanted * 3):
        if kills >= wanted:
            break
        if rng.random() < 0.5:
            n = rng.randint(1, FILES * ROWS // BATCH_ROWS)
            env = env_for(TALLYCLERK_FAULT=f"batch-written:kill@{n}")
            proc = subprocess.run(cli_argv(*args), cwd=tmp_path, env=env, capture_output=True,
                                  text=True, timeout=300, check=False)
            how, rc = f"fault @{n}", proc.returncode
        else:
            delay = rng.uniform(0.0, 3.0)
            with subprocess.Popen(cli_argv(*args), cwd=tmp_path, env=env_for(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as child:
                try:
                    child.wait(timeout=delay)
                except subprocess.TimeoutExpired:
                    child.send_signal(signal.SIGKILL)
                child.wait(timeout=300)
                how, rc = f"timer {delay:.2f}s", child.returncode
        log.append((how, rc))
        assert rc in (-signal.SIGKILL, 0), (seed, log)
        kills += rc == -signal.SIGKILL
        if rc == 0:
            break  # everything loaded before the kill came
    final = tallyclerk(*args, cwd=tmp_path)
    assert final.code == 0, (seed, log, final.err)
    check_end_state(tmp_path, separate)


@pytest.mark.parametrize(
    ("point", "separate"),
    [("before-data-commit", False), ("after-commit-before-event", False),
     ("before-data-commit", True), ("after-data-commit-before-manifest", True)],
)
def test_merge_killed_at_each_commit_boundary_then_rerun(
    tmp_path: Path, point: str, separate: bool
) -> None:
    paths = write_snapshots(tmp_path)
    killed = tallyclerk(*_args(paths, separate), cwd=tmp_path,
                        env=env_for(TALLYCLERK_FAULT=f"{point}:kill@3"))
    assert killed.code == -signal.SIGKILL, killed.err
    rerun = tallyclerk(*_args(paths, separate), cwd=tmp_path)
    assert rerun.code == 0, rerun.err
    statuses = [f["status"] for f in rerun.json()["files"]]
    done = 3 if point == "after-commit-before-event" else 2
    assert statuses == ["skipped"] * done + ["loaded"] * (FILES - done)
    check_end_state(tmp_path, separate)
