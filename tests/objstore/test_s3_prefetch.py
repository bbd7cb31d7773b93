"""Objects copied ahead of the load (``tallyclerk.objprefetch``): through the Python API, the
next object is copied while one loads; what is claimed is what is loaded, at most two copies
exist at a time, none is left behind, and a stop while a copy is awaited ends the load."""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import s3fs  # type: ignore[import-untyped,unused-ignore]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tallyclerk
from tallyclerk.hookspecs import hookimpl
from tests import s3server
from tests.clirun import SCHEMA, query
from tests.objstore.conftest import csv_bytes


@pytest.fixture()
def spools(s3_server: s3server.S3Server, monkeypatch: pytest.MonkeyPatch,
           tmp_path: Path) -> Path:
    """The AWS environment of the server, and a temporary directory of the test's own."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    where = tmp_path / "spools"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


def rows(first: int, n: int) -> list[tuple[Any, ...]]:
    return [(i, f"n{i}", i % 7) for i in range(first, first + n)]


class Rewriter:
    """At the start of each file, counts the copies on disk; when the first file starts (the
    second object is being copied, or is), rewrites the second object."""

    def __init__(self, s3: Any, bucket: str, key: str, body: bytes, spools: Path) -> None:
        self.s3, self.bucket, self.key, self.body, self.spools = s3, bucket, key, body, spools
        self.copies: list[int] = []

    @hookimpl
    def tallyclerk_file_start(self, context: Any) -> None:
        self.copies.append(len(list(self.spools.glob("tallyclerk-fetch-*"))))
        if len(self.copies) == 1:
            self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=self.body)


def fingerprint_of(body: bytes, where: Path) -> str:
    path = where / ("fp-" + hashlib.sha256(body).hexdigest()[:16] + ".csv")
    path.write_bytes(body)
    return str(tallyclerk.file_fingerprint(str(path)))


def test_what_is_claimed_is_what_is_loaded_when_an_object_is_rewritten_during_the_load(
    tmp_path: Path, bucket: str, s3: Any, spools: Path
) -> None:
    bodies = {f"pre/o{n}.csv": csv_bytes(rows(n * 1000, 300)) for n in range(4)}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    v1 = bodies["pre/o1.csv"]
    v2 = csv_bytes(rows(50_000, 200))
    etags = {v1: s3.head_object(Bucket=bucket, Key="pre/o1.csv")["ETag"].strip('"')}
    hook = Rewriter(s3, bucket, "pre/o1.csv", v2, spools)
    into = f"sqlite:///{tmp_path / 'p.db'}"
    db = tmp_path / "p.db"

    report = tallyclerk.load([f"s3://{bucket}/{k}" for k in bodies], table="t", into=into,
                             schema=SCHEMA, plugins=[hook])
    etags[v2] = s3.head_object(Bucket=bucket, Key="pre/o1.csv")["ETag"].strip('"')

    assert [(f.status, f.rows_read) for f in report.files][::2] == [("loaded", 300)] * 2
    assert report.files[3].status == "loaded"
    assert hook.copies and max(hook.copies) <= 2  # the one loading and the next one
    assert list(spools.glob("tallyclerk-fetch-*")) == []  # none left behind
    ((fp, size, etag, n, low),) = query(
        db, "SELECT f.fingerprint, f.size, f.object_etag, f.rows_written, "
            "(SELECT min(id) FROM t WHERE id BETWEEN 1000 AND 1999 OR id >= 50000) "
            "FROM tallyclerk_files f WHERE f.object_url LIKE '%/o1.csv'")
    loaded = v1 if low == 1000 else v2  # whichever version the copy read...
    assert (fp, size, etag, n) == (fingerprint_of(loaded, tmp_path), len(loaded),
                                   etags[loaded], loaded.count(b"\n") - 1)  # ...is the claim's

    again = tallyclerk.load([f"s3://{bucket}/pre/o1.csv"], table="t", into=into,
                            schema=SCHEMA)

    # the rewritten object is new content unless the first load already read it
    assert [f.status for f in again.files] == ["skipped" if loaded is v2 else "loaded"]
    assert query(db, "SELECT count(*) FROM t WHERE id >= 50000") == [(200,)]
    assert query(db, "SELECT count(*), count(DISTINCT id) FROM t") == [
        (300 * 4 + 200,) * 2] if loaded is v1 else [(300 * 3 + 200,) * 2]


def test_a_stop_while_the_copy_is_awaited_ends_the_load_and_leaves_nothing(
    tmp_path: Path, bucket: str, s3: Any, s3_server: s3server.S3Server, spools: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    body = csv_bytes(rows(1, 200_000))  # about 3 MB through a proxy at 64 KiB per 50 ms
    s3.put_object(Bucket=bucket, Key="slow/a.csv", Body=body)
    port = int(s3_server.endpoint.rsplit(":", 1)[1])
    proxy = s3server.CuttingProxy(port, cut_after=1 << 40, cuts=0, delay_s=0.05)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    s3fs.S3FileSystem.clear_instance_cache()  # fsspec keeps one per options, not per endpoint
    stop = tallyclerk.StopToken()

    def stop_mid_copy() -> None:
        deadline = time.monotonic() + 60
        while proxy.forwarded < 128 * 1024 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.stop("test stop")

    stopper = threading.Thread(target=stop_mid_copy)
    stopper.start()
    try:
        report = tallyclerk.load([f"s3://{bucket}/slow/a.csv"], table="t",
                                 into=f"sqlite:///{tmp_path / 's.db'}", schema=SCHEMA,
                                 stop=stop)
        forwarded = proxy.forwarded
    finally:
        stopper.join()
        proxy.close()
        s3fs.S3FileSystem.clear_instance_cache()

    assert report.status == "cancelled"
    (entry,) = report.files
    assert entry.status == "failed" and "test stop" in (entry.error or "")
    assert forwarded < len(body)
    assert list(spools.glob("tallyclerk-fetch-*")) == []


class CopyCounter:
    """Counts the copies on disk at the start of each file."""

    def __init__(self, spools: Path) -> None:
        self.spools = spools
        self.copies: list[int] = []

    @hookimpl
    def tallyclerk_file_start(self, context: Any) -> None:
        self.copies.append(len(list(self.spools.glob("tallyclerk-fetch-*"))))


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.sampled_from(["a", "b", "c", "a-twin", "missing"]), min_size=1,
                     max_size=6))
def test_any_order_of_objects_missing_and_repeated_loads_each_content_once(
    tmp_path: Path, bucket: str, s3: Any, spools: Path, plan: list[str]
) -> None:
    """Whatever the order, repeats, twins (same content, another key) and missing objects the
    load asks for, copies made ahead are taken by the right path or not at all."""
    bodies = {"a": csv_bytes(rows(1, 50)), "b": csv_bytes(rows(100, 70)),
              "c": csv_bytes(rows(200, 30))}
    bodies["a-twin"] = bodies["a"]
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=f"prop/{key}.csv", Body=body)
    db = tmp_path / f"prop-{uuid.uuid4().hex[:8]}.db"
    counter = CopyCounter(spools)

    report = tallyclerk.load([f"s3://{bucket}/prop/{k}.csv" for k in plan], table="t",
                             into=f"sqlite:///{db}", schema=SCHEMA, plugins=[counter])

    seen: set[bytes] = set()
    expected = []
    for key in plan:
        url = f"s3://{bucket}/prop/{key}.csv"
        if key == "missing":
            expected.append((url, "failed", 0))
        elif bodies[key] in seen:
            expected.append((url, "skipped", 0))
        else:
            seen.add(bodies[key])
            expected.append((url, "loaded", bodies[key].count(b"\n") - 1))
    # (the report lists a repeated path's entries together: compared without order)
    assert sorted((f.path, f.status, f.rows_written) for f in report.files) == sorted(expected)
    ids = sorted(i for body in seen for i in range(int(body.split(b"\n")[1].split(b",")[0]),
                                                    int(body.split(b"\n")[1].split(b",")[0])
                                                    + body.count(b"\n") - 1))
    if seen:  # (no table when every object was missing)
        assert [i for (i,) in query(db, "SELECT id FROM t ORDER BY id")] == ids
    assert max(counter.copies, default=0) <= 2
    assert list(spools.glob("tallyclerk-fetch-*")) == []
