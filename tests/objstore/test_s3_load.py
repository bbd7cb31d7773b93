"""``tallyclerk load s3://...`` against a real local S3 server (moto), through the real CLI."""

from __future__ import annotations

import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tallyclerk import file_fingerprint
from tests import s3server
from tests.clirun import Result, query, run_cli
from tests.objstore.conftest import csv_bytes


def load(work: Path, env: dict[str, str], *paths: str, extra: tuple[str, ...] = (),
         **settings: str) -> Result:
    return run_cli("load", *paths, "--table", "t", "--schema", "schema.json",
                   "--into", "sqlite:///t.db", "--json", *extra, cwd=work,
                   env={**env, **settings})


def table_ids(work: Path) -> list[int]:
    try:
        return sorted(r[0] for r in query(work / "t.db", "SELECT id FROM t"))
    except sqlite3.OperationalError:  # a rolled-back first load leaves no table
        return []


def manifest(work: Path) -> list[dict[str, Any]]:
    con = sqlite3.connect(work / "t.db")
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM tallyclerk_files ORDER BY id")]
    finally:
        con.close()


def test_single_object_is_loaded_and_its_identity_recorded(
    work: Path, bucket: str, s3: Any, s3_env: dict[str, str]
) -> None:
    body = csv_bytes([(i, f"n{i}", i) for i in range(1, 6)])
    s3.put_object(Bucket=bucket, Key="2026/orders.csv", Body=body)
    url = f"s3://{bucket}/2026/orders.csv"

    r = load(work, s3_env, url)

    assert r.code == 0, r.err
    report = r.json()
    assert [(f["path"], f["status"], f["rows_written"]) for f in report["files"]] == [
        (url, "loaded", 5)]
    assert table_ids(work) == [1, 2, 3, 4, 5]
    (row,) = manifest(work)
    head = s3.head_object(Bucket=bucket, Key="2026/orders.csv")
    (work / "copy.csv").write_bytes(body)
    assert row["path"] == url and row["object_url"] == url
    assert row["size"] == len(body)
    assert row["object_etag"] == head["ETag"].strip('"')
    assert row["object_version"] is None  # the bucket is not versioned
    # exactly-once identity: the same fingerprint as the same bytes on a local disk
    assert row["fingerprint"] == file_fingerprint(str(work / "copy.csv"))


def test_glob_loads_the_matching_objects_only(
    work: Path, bucket: str, s3: Any, s3_env: dict[str, str]
) -> None:
    for key, first in (("in/b.csv", 20), ("in/a.csv", 10), ("in/notes.txt", 30),
                       ("in/sub/c.csv", 40), ("other/d.csv", 50)):
        body = csv_bytes([(first, "x", 1), (first + 1, "y", 2)])
        s3.put_object(Bucket=bucket, Key=key, Body=body)

    r = load(work, s3_env, f"s3://{bucket}/in/*.csv")

    assert r.code == 0, r.err
    assert [f["path"] for f in r.json()["files"]] == [
        f"s3://{bucket}/in/a.csv", f"s3://{bucket}/in/b.csv"]
    assert table_ids(work) == [10, 11, 20, 21]

    nothing = load(work, s3_env, f"s3://{bucket}/in/*.jsonl")
    assert nothing.code == 1, nothing.err
    (entry,) = nothing.json()["files"]
    assert entry["status"] == "failed" and "no such object" in entry["error"]


def test_rewritten_object_new_content_loads_same_content_skips(
    work: Path, bucket: str, s3: Any, s3_env: dict[str, str]
) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    key, url = "feed/today.csv", f"s3://{bucket}/feed/today.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=csv_bytes([(1, "a", 1), (2, "b", 2)]))
    assert load(work, s3_env, url).code == 0
    v2 = csv_bytes([(3, "c", 3), (4, "d", 4), (5, "e", 5)])
    s3.put_object(Bucket=bucket, Key=key, Body=v2)

    again = load(work, s3_env, url)

    assert again.code == 0, again.err
    assert [f["status"] for f in again.json()["files"]] == ["loaded"]
    assert table_ids(work) == [1, 2, 3, 4, 5]
    s3.put_object(Bucket=bucket, Key=key, Body=v2)  # rewritten with the same content
    same = load(work, s3_env, url)
    assert same.code == 0, same.err
    assert [f["status"] for f in same.json()["files"]] == ["skipped"]
    assert table_ids(work) == [1, 2, 3, 4, 5]
    loaded = [m for m in manifest(work) if m["status"] == "loaded"]
    versions = [m["object_version"] for m in loaded]
    assert len(loaded) == 2 and None not in versions and versions[0] != versions[1]


def big_object(rows: int) -> bytes:
    return csv_bytes([(i, "name-" + "x" * 40, i) for i in range(1, rows + 1)])


def test_connection_dropped_mid_object_is_retried_and_loaded_once(
    work: Path, bucket: str, s3: Any, s3_server: s3server.S3Server
) -> None:
    body = big_object(40_000)  # about 2.3 MB
    s3.put_object(Bucket=bucket, Key="big.csv", Body=body)
    port = int(s3_server.endpoint.rsplit(":", 1)[1])
    proxy = s3server.CuttingProxy(port, cut_after=256 * 1024, cuts=1)
    try:
        from tests.clirun import env_for

        r = load(work, env_for(**s3_server.env(proxy.endpoint)), f"s3://{bucket}/big.csv")
    finally:
        proxy.close()

    assert proxy.cut_count == 1
    assert r.code == 0, r.err
    assert table_ids(work) == list(range(1, 40_001))
    (row,) = manifest(work)
    assert row["status"] == "loaded" and row["size"] == len(body)


def test_connection_dropped_every_time_fails_the_file_and_loads_the_rest(
    work: Path, bucket: str, s3: Any, s3_server: s3server.S3Server
) -> None:
    s3.put_object(Bucket=bucket, Key="big.csv", Body=big_object(40_000))
    s3.put_object(Bucket=bucket, Key="small.csv", Body=csv_bytes([(90_001, "s", 1)]))
    port = int(s3_server.endpoint.rsplit(":", 1)[1])
    proxy = s3server.CuttingProxy(port, cut_after=256 * 1024, cuts=-1)
    try:
        from tests.clirun import env_for

        r = load(work, env_for(**s3_server.env(proxy.endpoint)), f"s3://{bucket}/big.csv",
                 f"s3://{bucket}/small.csv", TALLYCLERK_MAX_RETRIES="1",
                 TALLYCLERK_BACKOFF_INITIAL_MS="1", TALLYCLERK_READ_TIMEOUT_S="5")
    finally:
        proxy.close()

    assert r.code == 1, r.err
    big, small = r.json()["files"]
    assert big["status"] == "failed" and big["path"] in big["error"], big
    assert "after 2 attempts" in big["error"]
    assert small["status"] == "loaded"
    assert table_ids(work) == [90_001]  # nothing of the failed object, never half-loaded
    assert [m["path"] for m in manifest(work) if m["status"] == "loaded"] == [
        f"s3://{bucket}/small.csv"]


def test_credentials_never_reach_outputs_or_the_audit_store(
    work: Path, bucket: str, s3: Any, s3_server: s3server.S3Server, s3_env: dict[str, str]
) -> None:
    from tests.clirun import env_for

    s3.put_object(Bucket=bucket, Key="ok.csv", Body=csv_bytes([(1, "a", 1), (2, "b", -1)]))
    s3.put_object(Bucket=bucket, Key="big.csv", Body=big_object(20_000))
    port = int(s3_server.endpoint.rsplit(":", 1)[1])
    proxy = s3server.CuttingProxy(port, cut_after=64 * 1024, cuts=-1)
    dead = f"http://127.0.0.1:{s3server.free_port()}"
    debug = ("--log-level", "debug")
    fast = {"TALLYCLERK_MAX_RETRIES": "1", "TALLYCLERK_BACKOFF_INITIAL_MS": "1",
            "TALLYCLERK_CONNECT_TIMEOUT_S": "2", "TALLYCLERK_READ_TIMEOUT_S": "3"}
    try:
        runs = [
            load(work, s3_env, f"s3://{bucket}/ok.csv", f"s3://{bucket}/missing.csv",
                 f"s3://{bucket}/*.csv", extra=debug),
            load(work, env_for(**s3_server.env(proxy.endpoint)), f"s3://{bucket}/big.csv",
                 extra=debug, **fast),
            load(work, env_for(**s3_server.env(dead)), f"s3://{bucket}/ok.csv", extra=debug,
                 **fast),
            run_cli("report", "--audit", "sqlite:///t.db", cwd=work, env=s3_env),
            run_cli("rejects", "--audit", "sqlite:///t.db", cwd=work, env=s3_env),
        ]
    finally:
        proxy.close()

    assert [r.code for r in runs[:3]] == [1, 1, 1], [r.err[-2000:] for r in runs]
    statuses = [(f["path"].rsplit("/", 1)[1], f["status"]) for f in runs[0].json()["files"]]
    assert sorted(statuses) == [("big.csv", "loaded"), ("missing.csv", "failed"),
                                ("ok.csv", "loaded"), ("ok.csv", "skipped")]
    (down,) = runs[2].json()["files"]
    assert down["status"] == "failed" and f"s3://{bucket}/ok.csv" in down["error"], down
    secrets = (s3server.SECRET_KEY, urllib.parse.quote(s3server.SECRET_KEY, safe=""))
    for r in runs:
        for secret in secrets:
            assert secret not in r.out and secret not in r.err
    con = sqlite3.connect(work / "t.db")
    try:
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        dump = "\n".join(repr(con.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables)
    finally:
        con.close()
    assert "tallyclerk_files" in tables and f"s3://{bucket}/ok.csv" in dump
    raw = b"".join(p.read_bytes() for p in work.glob("t.db*"))
    for secret in secrets:
        assert secret not in dump
        assert secret.encode() not in raw


@pytest.mark.parametrize("url, leaked", [
    ("https://reader:hunter2pw@example.invalid/a.csv", "hunter2pw"),
    ("https://example.invalid/a.csv?X-Amz-Signature=deadbeefsig", "deadbeefsig"),
    ("az://container/a.csv?sv=2024&sig=s3cr3tsas", "s3cr3tsas"),
])
def test_url_with_credentials_is_refused_without_echoing_them(
    work: Path, s3_env: dict[str, str], url: str, leaked: str
) -> None:
    r = load(work, s3_env, url)
    assert r.code == 2, r.err
    assert "credential" in r.err or "password" in r.err
    assert leaked not in r.err and leaked not in r.out
    assert not (work / "t.db").exists() or leaked.encode() not in (work / "t.db").read_bytes()


def test_sigterm_during_a_slow_copy_stops_without_waiting_for_the_object(
    work: Path, bucket: str, s3: Any, s3_server: s3server.S3Server
) -> None:
    import json
    import signal
    import subprocess
    import time

    from tests.clirun import cli_argv, env_for

    body = big_object(100_000)  # about 5.8 MB: at most 64 KiB every 50 ms takes 4.5 s or more
    s3.put_object(Bucket=bucket, Key="slow.csv", Body=body)
    port = int(s3_server.endpoint.rsplit(":", 1)[1])
    proxy = s3server.CuttingProxy(port, cut_after=1 << 40, cuts=0, delay_s=0.05)
    spools = work / "spools"
    spools.mkdir()
    env = {**env_for(**s3_server.env(proxy.endpoint)), "TMPDIR": str(spools)}
    try:
        proc = subprocess.Popen(
            cli_argv("load", f"s3://{bucket}/slow.csv", "--table", "t", "--schema",
                     "schema.json", "--into", "sqlite:///t.db", "--json"),
            cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while proxy.forwarded < 256 * 1024 and proc.poll() is None:
            assert time.monotonic() < deadline, "the copy never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        forwarded = proxy.forwarded
    finally:
        proxy.close()

    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert forwarded < len(body)  # it stopped before the object was through
    report = json.loads(out)
    assert report["status"] == "cancelled"
    (entry,) = report["files"]
    assert entry["status"] == "failed" and "SIGTERM" in entry["error"]
    assert table_ids(work) == []
    assert list(spools.iterdir()) == []  # the spool was removed


def test_compressed_object_loads_and_its_plain_twin_is_skipped(
    work: Path, bucket: str, s3: Any, s3_env: dict[str, str]
) -> None:
    import gzip

    body = csv_bytes([(i, f"z{i}", i) for i in range(1, 8)])
    s3.put_object(Bucket=bucket, Key="in/orders.csv.gz", Body=gzip.compress(body))
    s3.put_object(Bucket=bucket, Key="plain/orders.csv", Body=body)

    gz = load(work, s3_env, f"s3://{bucket}/in/*.csv.gz")
    plain = load(work, s3_env, f"s3://{bucket}/plain/orders.csv")

    assert gz.code == 0, gz.err
    assert [(f["status"], f["rows_written"]) for f in gz.json()["files"]] == [("loaded", 7)]
    # the fingerprint is the decompressed content's: the same rows uncompressed are skipped
    assert plain.code == 0 and plain.json()["files"][0]["status"] == "skipped", plain.out
    assert table_ids(work) == list(range(1, 8))


def test_validate_checks_objects_and_writes_nothing(
    work: Path, bucket: str, s3: Any, s3_env: dict[str, str]
) -> None:
    s3.put_object(Bucket=bucket, Key="v/good.csv", Body=csv_bytes([(1, "a", 1), (2, "b", 2)]))
    s3.put_object(Bucket=bucket, Key="v/bad.csv", Body=csv_bytes([(3, "c", -1)]))
    assert load(work, s3_env, f"s3://{bucket}/v/good.csv").code == 0
    before = (work / "t.db").read_bytes()

    r = run_cli("validate", f"s3://{bucket}/v/*.csv", f"s3://{bucket}/v/none.csv",
                "--table", "t", "--schema", "schema.json", "--into", "sqlite:///t.db", "--json",
                cwd=work, env=s3_env)

    assert r.code == 1, r.err
    files = {f["path"].rsplit("/", 1)[1]: f for f in r.json()["files"]}
    assert (files["bad.csv"]["status"], files["bad.csv"]["rows_rejected"]) == ("rejects", 1)
    assert files["good.csv"]["would_skip"] is True
    assert files["none.csv"]["status"] == "failed"
    assert "no such object" in files["none.csv"]["error"]
    assert (work / "t.db").read_bytes() == before


def test_azure_without_an_account_is_a_configuration_error(
    work: Path, s3_env: dict[str, str]
) -> None:
    pytest.importorskip("adlfs")
    env = {k: v for k, v in s3_env.items() if not k.startswith("AZURE_")}
    r = load(work, env, "az://container/in/a.csv")
    assert r.code == 2, (r.code, r.err)
    assert r.err.startswith("tallyclerk: error: az:// cannot be used here"), r.err
    assert "Traceback" not in r.err
