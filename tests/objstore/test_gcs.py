"""``gs://`` loads and watches against a real local GCS emulator, through the real CLI.

The same fsspec path as ``s3://`` (tests/objstore/test_s3_*.py covers its faults); here: globs,
the object's identity in the manifest (URL, size, ETag, generation), exactly once across
re-runs, a rewritten object loaded again, and ``watch`` over a prefix. No ``GCSFS_*`` variable
is set: a user's ``STORAGE_EMULATOR_HOST`` alone must be enough (gcsfs's default class would
spend a minute per bucket on a gRPC probe the emulator does not serve).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import gcsserver
from tests.clirun import env_for, query, run_cli
from tests.objstore.conftest import csv_bytes
from tests.objstore.test_s3_load import manifest, table_ids

TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def gcs() -> Iterator[gcsserver.GcsServer]:
    with gcsserver.server_for_tests() as server:
        yield server


@pytest.fixture()
def gbucket(gcs: gcsserver.GcsServer) -> str:
    name = "tc-" + uuid.uuid4().hex[:12]
    gcs.fs().mkdir(name)
    return name


def _load(work: Path, gcs: gcsserver.GcsServer, *paths: str):  # type: ignore[no-untyped-def]
    return run_cli("load", *paths, "--table", "t", "--schema", "schema.json",
                   "--into", "sqlite:///t.db", "--json", cwd=work,
                   env=env_for(**gcs.env()), timeout=TIMEOUT_S)


def test_a_glob_loads_each_object_once_with_its_identity(
        work: Path, gcs: gcsserver.GcsServer, gbucket: str) -> None:
    fs = gcs.fs()
    fs.pipe(f"{gbucket}/2026/a.csv", csv_bytes([(1, "a", 1), (2, "b", 2)]))
    fs.pipe(f"{gbucket}/2026/b.csv", csv_bytes([(3, "c", 3)]))
    fs.pipe(f"{gbucket}/2026/skip.txt", b"not data")
    url = f"gs://{gbucket}/2026/*.csv"

    first = _load(work, gcs, url)
    assert first.code == 0, first.err
    assert table_ids(work) == [1, 2, 3]
    rows = manifest(work)
    assert [r["path"] for r in rows] == [f"gs://{gbucket}/2026/a.csv",
                                         f"gs://{gbucket}/2026/b.csv"]
    info = fs.info(f"{gbucket}/2026/a.csv")
    assert rows[0]["object_url"] == f"gs://{gbucket}/2026/a.csv"
    assert rows[0]["size"] == info["size"]
    assert rows[0]["object_etag"] == info["etag"]
    assert rows[0]["object_version"] == str(info["generation"])
    assert all(r["rows_read"] == r["rows_written"] + r["rows_rejected"] for r in rows)

    again = _load(work, gcs, url)
    assert again.code == 0, again.err
    assert table_ids(work) == [1, 2, 3]  # nothing doubled

    fs.pipe(f"{gbucket}/2026/b.csv", csv_bytes([(3, "c", 3), (4, "d", 4)]))  # rewritten
    third = _load(work, gcs, url)
    assert third.code == 0, third.err
    assert table_ids(work) == [1, 2, 3, 3, 4]  # the new content is a new file
    assert [r["status"] for r in manifest(work)].count("loaded") == 3


def test_a_missing_object_fails_with_its_url_and_nothing_is_written(
        work: Path, gcs: gcsserver.GcsServer, gbucket: str) -> None:
    r = _load(work, gcs, f"gs://{gbucket}/nope.csv")
    assert r.code != 0
    assert f"gs://{gbucket}/nope.csv" in r.err
    assert table_ids(work) == []


def test_watch_loads_new_objects_under_a_prefix(
        work: Path, gcs: gcsserver.GcsServer, gbucket: str) -> None:
    fs = gcs.fs()
    fs.pipe(f"{gbucket}/in/a.csv", csv_bytes([(1, "a", 1)]))
    args = ("watch", f"gs://{gbucket}/in/", "--table", "t", "--schema", "schema.json",
            "--into", "sqlite:///t.db", "--once", "--settle", "0", "--json")
    first = run_cli(*args, cwd=work, env=env_for(**gcs.env()), timeout=TIMEOUT_S)
    assert first.code == 0, first.err
    fs.pipe(f"{gbucket}/in/b.csv", csv_bytes([(2, "b", 2)]))
    second = run_cli(*args, cwd=work, env=env_for(**gcs.env()), timeout=TIMEOUT_S)
    assert second.code == 0, second.err
    assert table_ids(work) == [1, 2]
    assert query(work / "t.db", "SELECT count(*) FROM tallyclerk_files WHERE status = 'loaded'"
                 ) == [(2,)]
