"""A plain ``s3://bucket/key`` read with botocore's own client (``tallyclerk.s3get``), against
the real moto server: the same objects, configuration and failures as through s3fs, without
importing s3fs; fsspec configuration still reaches s3fs; a copy cut in the middle fails the
file with nothing loaded, and the next run loads it exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tallyclerk
from tests import s3server
from tests.clirun import SCHEMA, env_for, query, run_cli
from tests.objstore.conftest import csv_bytes


@pytest.fixture()
def aws_env(s3_server: s3server.S3Server, monkeypatch: pytest.MonkeyPatch,
            tmp_path: Path) -> Path:
    """The server's AWS environment in this process; spools in a directory of the test's."""
    import tempfile

    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    spools = tmp_path / "spools"
    spools.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spools))
    return spools


def rows(first: int, n: int) -> list[tuple[Any, ...]]:
    return [(i, f"name-{i}-" + "x" * 30, i % 11) for i in range(first, first + n)]


def test_a_plain_object_is_loaded_without_importing_s3fs(
    tmp_path: Path, bucket: str, s3: Any, s3_server: s3server.S3Server
) -> None:
    body = csv_bytes(rows(1, 500))
    s3.put_object(Bucket=bucket, Key="plain/a.csv", Body=body)
    script = (
        "import json, sys, tallyclerk\n"
        f"r = tallyclerk.load({f's3://{bucket}/plain/a.csv'!r}, table='t', "
        f"into={'sqlite:///' + str(tmp_path / 'p.db')!r}, schema={SCHEMA!r})\n"
        "print(json.dumps([[f.status, f.rows_written] for f in r.files]))\n"
        "print(json.dumps(sorted(m for m in ('s3fs', 'aiobotocore', 'aiohttp') "
        "if m in sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env=env_for(**s3_server.env()), check=False)

    assert proc.returncode == 0, proc.stderr
    files, imported = map(json.loads, proc.stdout.splitlines())
    assert files == [["loaded", 500]]
    assert imported == []
    head = s3.head_object(Bucket=bucket, Key="plain/a.csv")
    assert query(tmp_path / "p.db", "SELECT size, object_etag, object_url FROM "
                                    "tallyclerk_files") == [
        (len(body), head["ETag"].strip('"'), f"s3://{bucket}/plain/a.csv")]


def test_fsspec_configuration_still_reaches_s3fs(
    tmp_path: Path, bucket: str, s3: Any, s3_server: s3server.S3Server
) -> None:
    """``FSSPEC_S3`` names the endpoint and ``AWS_ENDPOINT_URL`` a closed port: only a read
    through s3fs (which applies fsspec's configuration) reaches the object."""
    s3.put_object(Bucket=bucket, Key="conf/a.csv", Body=csv_bytes(rows(1, 20)))
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    dead = f"http://127.0.0.1:{s3server.free_port()}"
    env = env_for(**s3_server.env(dead),
                  FSSPEC_S3=json.dumps({"endpoint_url": s3_server.endpoint}),
                  TALLYCLERK_MAX_RETRIES="0", TALLYCLERK_CONNECT_TIMEOUT_S="2")

    r = run_cli("load", f"s3://{bucket}/conf/a.csv", "--table", "t", "--schema",
                "schema.json", "--into", "sqlite:///t.db", "--json", cwd=tmp_path, env=env)

    assert r.code == 0, r.err
    assert [(f["status"], f["rows_written"]) for f in r.json()["files"]] == [("loaded", 20)]


def test_a_prefix_and_a_missing_bucket_fail_their_files_and_the_rest_loads(
    tmp_path: Path, bucket: str, s3: Any, s3_env: dict[str, str]
) -> None:
    s3.put_object(Bucket=bucket, Key="dir/inner.csv", Body=csv_bytes(rows(1, 3)))
    s3.put_object(Bucket=bucket, Key="ok.csv", Body=csv_bytes(rows(10, 4)))
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    gone = "tc-none-" + uuid.uuid4().hex[:10]

    r = run_cli("load", f"s3://{bucket}/dir", f"s3://{gone}/a.csv", f"s3://{bucket}/ok.csv",
                "--table", "t", "--schema", "schema.json", "--into", "sqlite:///t.db",
                "--json", cwd=tmp_path, env=s3_env)

    assert r.code == 1, r.err
    prefix, missing, ok = r.json()["files"]
    assert prefix["status"] == "failed" and "is a prefix" in prefix["error"], prefix
    assert missing["status"] == "failed" and "no such object" in missing["error"], missing
    assert (ok["status"], ok["rows_written"]) == ("loaded", 4)
    assert query(tmp_path / "t.db", "SELECT count(*) FROM t") == [(4,)]


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(alphabet="aZ09 -_.+%=,;()!'~@&$é中", min_size=1, max_size=12))
def test_keys_with_any_characters_load_under_their_own_url(
    tmp_path: Path, bucket: str, s3: Any, aws_env: Path, name: str
) -> None:
    key = f"odd/{name}.csv"
    first = 1000 * (1 + len(name))
    s3.put_object(Bucket=bucket, Key=key, Body=csv_bytes(rows(first, 7)))
    db = tmp_path / f"k-{uuid.uuid4().hex[:8]}.db"
    url = f"s3://{bucket}/{key}"

    report = tallyclerk.load(url, table="t", into=f"sqlite:///{db}", schema=SCHEMA)

    assert [(f.path, f.status, f.rows_written) for f in report.files] == [(url, "loaded", 7)]
    assert query(db, "SELECT min(id), count(*) FROM t") == [(first, 7)]
    assert query(db, "SELECT object_url FROM tallyclerk_files") == [(url,)]
    assert list(aws_env.iterdir()) == []


def test_a_copy_cut_in_the_middle_fails_with_nothing_loaded_then_loads_exactly_once(
    tmp_path: Path, bucket: str, s3: Any, s3_server: s3server.S3Server, aws_env: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    big = csv_bytes(rows(1, 30_000))  # about 1.6 MB: cut after 128 KiB of every response
    s3.put_object(Bucket=bucket, Key="cut/big.csv", Body=big)
    s3.put_object(Bucket=bucket, Key="cut/small.csv", Body=csv_bytes(rows(90_000, 5)))
    urls = [f"s3://{bucket}/cut/big.csv", f"s3://{bucket}/cut/small.csv"]
    into = f"sqlite:///{tmp_path / 'c.db'}"
    port = int(s3_server.endpoint.rsplit(":", 1)[1])
    proxy = s3server.CuttingProxy(port, cut_after=128 * 1024, cuts=-1)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    fast = {"max_retries": 1, "backoff_initial_ms": 1, "read_timeout_s": 5}
    try:
        cut = tallyclerk.load(urls, table="t", into=into, schema=SCHEMA, settings=fast)
    finally:
        proxy.close()
    assert proxy.cut_count >= 2
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)

    again = tallyclerk.load(urls, table="t", into=into, schema=SCHEMA)
    third = tallyclerk.load(urls, table="t", into=into, schema=SCHEMA)

    big_entry, small_entry = cut.files
    assert big_entry.status == "failed" and "after 2 attempts" in (big_entry.error or "")
    assert big_entry.path in (big_entry.error or ""), big_entry.error
    assert small_entry.status == "loaded"
    assert [(f.status, f.rows_written) for f in again.files] == [("loaded", 30_000),
                                                               ("skipped", 0)]
    assert [f.status for f in third.files] == ["skipped", "skipped"]
    db = tmp_path / "c.db"
    assert query(db, "SELECT count(*), count(DISTINCT id) FROM t") == [(30_005, 30_005)]
    assert query(db, "SELECT path FROM tallyclerk_files WHERE status = 'loaded' "
                     "ORDER BY id") == [(urls[1],), (urls[0],)]
    assert list(aws_env.iterdir()) == []
    assert s3server.SECRET_KEY not in repr([cut, again, third])

