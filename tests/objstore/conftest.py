"""Fixtures of the object-storage suite: one moto S3 server for the session, a fresh bucket and
a working directory per test, and the CLI environment pointing at the server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import s3server
from tests.clirun import SCHEMA, env_for


@pytest.fixture(scope="session")
def s3_server() -> Iterator[s3server.S3Server]:
    with s3server.server_for_tests() as server:
        yield server


@pytest.fixture()
def bucket(s3_server: s3server.S3Server) -> str:
    name = "tc-" + uuid.uuid4().hex[:12]
    s3_server.client().create_bucket(Bucket=name)
    return name


@pytest.fixture()
def s3(s3_server: s3server.S3Server) -> Any:
    """A boto3 client of the server (the test's own hands, not tallyclerk's)."""
    return s3_server.client()


@pytest.fixture()
def s3_env(s3_server: s3server.S3Server) -> dict[str, str]:
    """The CLI's environment: the standard AWS variables, ``AWS_ENDPOINT_URL`` the server."""
    return env_for(**s3_server.env())


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    return tmp_path


def csv_bytes(rows: list[tuple[Any, ...]], header: str = "id,name,amount") -> bytes:
    lines = [header] + [",".join("" if v is None else str(v) for v in r) for r in rows]
    return ("\n".join(lines) + "\n").encode()
