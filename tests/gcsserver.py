"""A local Google Cloud Storage emulator for the test suite: gcp-storage-emulator (pure Python).

It runs in a subprocess of its own on 127.0.0.1 and a free port, in memory. gcsfs reaches it
through the standard ``STORAGE_EMULATOR_HOST`` variable, exactly as a user points tallyclerk at
an emulator; the test's own hands use gcsfs's core class with that endpoint.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.s3server import free_port


class GcsUnavailable(RuntimeError):
    """The emulator cannot be started here; the message says why."""


@dataclass
class GcsServer:
    endpoint: str
    proc: subprocess.Popen[bytes]

    def env(self) -> dict[str, str]:
        """The CLI's environment: the emulator, and no machine credentials."""
        return {"STORAGE_EMULATOR_HOST": self.endpoint,
                "GOOGLE_APPLICATION_CREDENTIALS": os.devnull}

    def fs(self) -> Any:
        from gcsfs.core import GCSFileSystem

        return GCSFileSystem(endpoint_url=self.endpoint, token="anon")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start(timeout_s: float = 30.0) -> GcsServer:
    try:
        import gcp_storage_emulator  # noqa: F401
    except ImportError as exc:
        raise GcsUnavailable(f"gcp-storage-emulator is not installed ({exc})") from None
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
         "--port", str(port), "--in-memory", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    server = GcsServer(f"http://127.0.0.1:{port}", proc)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise GcsUnavailable(f"the GCS emulator exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(server.endpoint + "/storage/v1/b", timeout=1):
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise GcsUnavailable(f"the GCS emulator did not answer on {server.endpoint}")


@contextlib.contextmanager
def server_for_tests() -> Iterator[GcsServer]:
    """An emulator for a test session (skips when it is missing, except in CI)."""
    import pytest

    try:
        server = start()
    except GcsUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"gcp-storage-emulator is required in CI: {exc}")
        pytest.skip(f"no local GCS emulator could be started: {exc}")
    try:
        yield server
    finally:
        server.stop()
