"""``tallyclerk load https://...`` (here plain http on 127.0.0.1): fsspec's HTTP back-end."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.clirun import env_for
from tests.objstore.conftest import csv_bytes
from tests.objstore.test_s3_load import load, manifest, table_ids


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture()
def site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "site"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_http_url_loads_once_and_a_missing_one_fails(work: Path, site: tuple[Path, str]) -> None:
    root, base = site
    body = csv_bytes([(1, "a", 1), (2, "b", 2), (3, "c", 3)])
    (root / "daily.csv").write_bytes(body)
    env = env_for()

    first = load(work, env, f"{base}/daily.csv", f"{base}/gone.csv")

    assert first.code == 1, first.err
    ok, gone = first.json()["files"]
    assert (ok["status"], ok["rows_written"]) == ("loaded", 3)
    assert gone["status"] == "failed" and "no such object" in gone["error"]
    assert table_ids(work) == [1, 2, 3]
    (row,) = [m for m in manifest(work) if m["status"] == "loaded"]
    assert row["object_url"] == f"{base}/daily.csv" and row["size"] == len(body)
    again = load(work, env, f"{base}/daily.csv")
    assert again.code == 0 and again.json()["files"][0]["status"] == "skipped"
    assert table_ids(work) == [1, 2, 3]
