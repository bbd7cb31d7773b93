"""Object URLs through the Python API: ``tallyclerk.load("s3://...")`` in this process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tallyclerk
from tallyclerk.errors import ConfigError
from tests import s3server
from tests.clirun import SCHEMA, query
from tests.objstore.conftest import csv_bytes


@pytest.fixture()
def aws_env(s3_server: s3server.S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("aws_env")
def test_load_api_takes_object_urls_and_globs(tmp_path: Path, bucket: str, s3: Any) -> None:
    for n in (1, 2, 3):
        s3.put_object(Bucket=bucket, Key=f"api/part-{n}.csv",
                      Body=csv_bytes([(n * 10 + i, f"r{i}", i) for i in range(4)]))
    into = f"sqlite:///{tmp_path / 'api.db'}"

    report = tallyclerk.load(f"s3://{bucket}/api/part-*.csv", table="t", into=into,
                             schema=SCHEMA)
    again = tallyclerk.load([f"s3://{bucket}/api/part-2.csv"], table="t", into=into,
                            schema=SCHEMA)

    assert report.status == "succeeded"
    assert [(f.path, f.status, f.rows_written) for f in report.files] == [
        (f"s3://{bucket}/api/part-{n}.csv", "loaded", 4) for n in (1, 2, 3)]
    assert [f.status for f in again.files] == ["skipped"]
    assert query(tmp_path / "api.db", "SELECT count(*) FROM t") == [(12,)]
    urls = query(tmp_path / "api.db", "SELECT object_url FROM tallyclerk_files "
                                      "WHERE status = 'loaded' ORDER BY id")
    assert urls == [(f"s3://{bucket}/api/part-{n}.csv",) for n in (1, 2, 3)]


def test_load_api_refuses_a_url_with_credentials(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="credential") as info:
        tallyclerk.load("https://example.invalid/a.csv?token=t0psecret", table="t",
                        into=f"sqlite:///{tmp_path / 'x.db'}")
    assert "t0psecret" not in str(info.value)
    assert not (tmp_path / "x.db").exists()


@pytest.mark.usefixtures("aws_env")
def test_a_schema_less_object_load_infers_from_the_spool(tmp_path: Path, bucket: str,
                                                         s3: Any) -> None:
    """The sample is read from the object's local copy (through the same opener: gzip), and
    the second object is checked against the first one's types."""
    import gzip

    s3.put_object(Bucket=bucket, Key="inf/a.csv.gz",
                  Body=gzip.compress(csv_bytes([(1, "x", 1.5), (2, "y", 2)])))
    s3.put_object(Bucket=bucket, Key="inf/b.csv", Body=csv_bytes([(3, "z", "lots")]))
    into = f"sqlite:///{tmp_path / 'inf.db'}"
    report = tallyclerk.load([f"s3://{bucket}/inf/a.csv.gz", f"s3://{bucket}/inf/b.csv"],
                             table="t", into=into)
    assert [(f.status, f.rows_written, f.rows_rejected) for f in report.files] == [
        ("loaded", 2, 0), ("loaded", 0, 1)]
    current = tallyclerk.table_schema("t", into=into)
    assert current is not None and f"s3://{bucket}/inf/a.csv.gz" in current["reason"]
    assert {f["name"]: f["type"] for f in current["schema"]["fields"]} == {
        "id": "integer", "name": "string", "amount": "number"}
    assert query(tmp_path / "inf.db", "SELECT typeof(id), SUM(amount) FROM t") == [
        ("integer", 3.5)]
