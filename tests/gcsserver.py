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
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.s3server import free_port, launch, running, terminate


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
        terminate(self.proc)


def start(timeout_s: float = 30.0) -> GcsServer:
    try:
        import gcp_storage_emulator  # noqa: F401
    except ImportError as exc:
        raise GcsUnavailable(f"gcp-storage-emulator is not installed ({exc})") from None
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = launch([sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
                   "--port", str(port), "--in-memory", "--quiet"],
                  endpoint + "/storage/v1/b", timeout_s, GcsUnavailable, "the GCS emulator")
    return GcsServer(endpoint, proc)


@contextlib.contextmanager
def server_for_tests() -> Iterator[GcsServer]:
    """An emulator for a test session (skips when it is missing, except in CI)."""
    with running(start, GcsUnavailable, "gcp-storage-emulator") as server:
        yield server
