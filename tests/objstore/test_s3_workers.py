"""``tallyclerk load 's3://...' --workers N --load-id ID`` on two "hosts" (separate processes with
their own ``TALLYCLERK_HOST`` and working directory, nothing shared but the S3 server and the
PostgreSQL audit store): every object is loaded exactly once."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.clirun import cli_argv
from tests.postgres.test_workers import SCHEMA, finish, rows

pytestmark = pytest.mark.postgres


def test_two_hosts_share_one_s3_load(
    pg_url: str, bucket: str, s3: Any, s3_env: dict[str, str], tmp_path: Path
) -> None:
    keys = [f"in/f{n:03d}.csv" for n in range(40)]
    for n, key in enumerate(keys):
        body = "file_no,row_no\n" + "".join(f"{n},{r}\n" for r in range(200))
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    args = ["load", f"s3://{bucket}/in/*.csv", "--table", "events", "--into", pg_url,
            "--schema", "schema.json", "--workers", "2", "--load-id", "s3-nightly", "--json"]
    procs = []
    for host in ("host-a", "host-b"):
        home = tmp_path / host  # each machine's own disk: no shared filesystem
        home.mkdir()
        (home / "schema.json").write_text(json.dumps(SCHEMA))
        env = {**s3_env, "TALLYCLERK_HOST": host, "TALLYCLERK_LEASE_S": "2",
               "TALLYCLERK_HEARTBEAT_S": "0.5", "TMPDIR": str(home)}
        procs.append(subprocess.Popen(cli_argv(*args), cwd=home, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      start_new_session=True))
    results = [finish(p) for p in procs]

    urls = [f"s3://{bucket}/{k}" for k in keys]
    for code, out, err in results:
        assert code == 0, err[-3000:]
        report = json.loads(out)
        assert [f["path"] for f in report["files"]] == urls
        assert {f["status"] for f in report["files"]} == {"loaded"}
        assert report["rows_written"] == 40 * 200
    engine = sa.create_engine(pg_url)
    try:
        loaded = rows(engine, "SELECT path, object_url, object_etag, split_part(owner, ':', 1) "
                              "FROM tallyclerk_files WHERE status = 'loaded'")
        assert sorted(r[0] for r in loaded) == urls  # each object once
        assert all(r[1] == r[0] and r[2] for r in loaded)
        assert {r[3] for r in loaded} == {"host-a", "host-b"}
        per_file = rows(engine, "SELECT file_no, count(*), count(DISTINCT row_no) FROM events "
                                "GROUP BY 1 ORDER BY 1")
        assert per_file == [(n, 200, 200) for n in range(40)]
    finally:
        engine.dispose()
    # the spools were removed on both machines
    assert not list(tmp_path.glob("host-*/tallyclerk-fetch-*"))
